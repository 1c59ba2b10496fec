"""The PG APIs of All-in-One Payment Request: Send and Resend Payment Request, Transaction
Status (v3), Refund, Refund Status (reference §12–§17).

`PgService` turns the raw bytes of a request into Paytm's answer without touching HTTP (so
property tests can throw anything at it); `pg_routes` mounts it at the real paths.

Order of checks:
    decode JSON ─► envelope (head, body) ─► body.mid readable (invalid) and known (335)
    ─► head.signature over the exact body text (330) ─► head and body fields
    ─► state (duplicate order 325, refund codes 6xx, ...)

Every answer that names a known MID is signed: head.signature in string mode over the
exact text of "body" the emulator sends (the client verifies it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from agent.sim.paytm.clock import IST, TIMESTAMP_FORMAT, Instant
from agent.sim.paytm.context import EmulatorContext
from agent.sim.paytm.jsonraw import member_raw
from agent.sim.paytm.money import rupees
from agent.sim.paytm.pg_state import (
    CODE_BANK_PENDING,
    CODE_CLOSED,
    CODE_DECLINED,
    CODE_ORDER_NOT_FOUND,
    CODE_PAID,
    CODE_REFUND_AMOUNT,
    CODE_REFUND_INVALID,
    CODE_REFUND_NOT_FOUND,
    LinkOrder,
    LinkRequest,
    LinkStatus,
    PgRefused,
    PgState,
    Refund,
    RefundApply,
    RefundStatus,
)
from agent.sim.paytm.settings import EmulatorSettings
from agent.sim.paytm.signature import SimKey, check, sign
from agent.sim.paytm.webhooks import WebhookSender
from agent.sim.paytm.wire import (
    COMPACT,
    HTTP_TOO_LARGE,
    MAX_BODY_BYTES,
    ApiReply,
    Parsed,
    serve_call,
)

log = logging.getLogger(__name__)

SEND_API, RESEND_API, PG_STATUS_API = "send_link", "resend_link", "pg_status"
REFUND_API, REFUND_STATUS_API = "refund_apply", "refund_status"
DEFAULT_RESEND_PATH = "/order/resendpaymentrequest"  # reference §13: Unconfirmed


def pg_paths(resend_path: str = DEFAULT_RESEND_PATH) -> dict[str, str]:
    return {
        SEND_API: "/order/sendpaymentrequest",
        RESEND_API: resend_path,
        PG_STATUS_API: "/v3/order/status",
        REFUND_API: "/refund/apply",
        REFUND_STATUS_API: "/v2/refund/status",
    }


# Request-level codes (the state's codes are in pg_state.py).
CODE_OK = "0000"
CODE_INVALID = "1001"
CODE_BAD_AMOUNT = "2007"
CODE_BAD_PHONE = "2008"
CODE_CHECKSUM = "330"
CODE_MID = "335"
CODE_SYSTEM_ERROR = "501"
JSON_CONTENT_TYPE = "application/json"

_MID_RE = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_ORDER_ID_RE = re.compile(r"[A-Za-z0-9@\-_.]{1,50}", re.ASCII)
_TXN_ID_RE = re.compile(r"[\x21-\x7e]{1,64}", re.ASCII)
_RUPEES_RE = re.compile(r"([0-9]{1,10})(?:\.([0-9]{1,2}))?", re.ASCII)  # no commas, ≤ 2 dp
_POS_ID_RE = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+", re.ASCII)
_MOBILE_RE = re.compile(r"[6-9][0-9]{9}", re.ASCII)  # Indian mobile numbers start with 6–9
_DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
MAX_POS_ID = 50
MAX_DISPLAY_NAME = 50
MAX_COMMENTS = 500
MAX_CLIENT_ID = 3
MAX_VERSION = 4
CHANNELS = frozenset({"WEB", "WAP"})
HEAD_VERSION = "v1"  # answered when the request sent none (reference §12: "v1")

JsonObject = Mapping[str, object]


class _Invalid(Exception):
    """A refusal before the state is consulted: `code` and a message naming the field."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


def _required(body: JsonObject, name: str, code: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _Invalid(code, f"Request parameters are not valid: {name} "
                       f"({'missing' if value is None else 'must be a non-empty string'})")
    return value


def _optional(body: JsonObject, name: str, code: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(code, f"Request parameters are not valid: {name} (must be a string)")
    return value


def _matching(body: JsonObject, name: str, pattern: re.Pattern[str], code: str,
              what: str) -> str:
    value = _required(body, name, code)
    if not pattern.fullmatch(value):
        raise _Invalid(code, f"Request parameters are not valid: {name} ({what})")
    return value


def _rupees(text: str) -> int | None:
    match = _RUPEES_RE.fullmatch(text)
    if match is None:
        return None
    whole, fraction = match.groups()
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))


def _ist_wall(text: str) -> float | None:
    if not _DATETIME_RE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=IST).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Request:
    text: str
    head: JsonObject
    body: JsonObject
    mid: str
    key: SimKey


class PgService:
    def __init__(self, settings: EmulatorSettings, state: PgState) -> None:
        self._settings = settings
        self._state = state

    # ------------------------------------------------------------------
    # Entry points (the wire.Processor protocol)

    def handle(self, api: str, raw: bytes, content_type: str, now: Instant) -> ApiReply:
        try:
            return self._handle(api, raw, content_type, now)
        except Exception:
            # A bug of ours must not become a stack trace on the wire; 501 is Paytm's
            # "System error". Tests assert it never appears.
            log.exception("emulator failed on a %s request", api)
            return self._reply(api, now, None, {}, {}, CODE_SYSTEM_ERROR, "System error",
                               Parsed())

    def too_large(self, api: str, now: Instant) -> ApiReply:
        code = CODE_REFUND_INVALID if api in (REFUND_API, REFUND_STATUS_API) else CODE_INVALID
        reply = self._reply(api, now, None, {}, {}, code,
                            f"Request parameters are not valid: request (larger than "
                            f"{MAX_BODY_BYTES} bytes)", Parsed())
        return ApiReply(body=reply.body, status=HTTP_TOO_LARGE, result_code=reply.result_code,
                        parsed=reply.parsed, text=reply.text)

    # ------------------------------------------------------------------

    def _handle(self, api: str, raw: bytes, content_type: str, now: Instant) -> ApiReply:
        invalid = CODE_REFUND_INVALID if api in (REFUND_API, REFUND_STATUS_API) else CODE_INVALID
        parsed = Parsed()
        head: JsonObject = {}
        body: JsonObject = {}
        key: SimKey | None = None
        try:
            text, document = _decode(raw, content_type, invalid)
            parsed = _parsed(document)
            head, body = _envelope(document, invalid)
            mid = body.get("mid")
            if not isinstance(mid, str) or not _MID_RE.fullmatch(mid):
                raise _Invalid(invalid, "Request parameters are not valid: mid")
            merchant = self._settings.merchant(mid)
            if merchant is None:
                raise _Invalid(CODE_MID, "Mid is invalid")
            key = merchant.key
            _check_signature(head, text, key)
            request = _Request(text=text, head=head, body=body, mid=mid, key=key)
            if api == SEND_API:
                return self._send(request, now, parsed)
            if api == RESEND_API:
                return self._resend(request, now, parsed)
            if api == PG_STATUS_API:
                return self._status(request, now, parsed)
            if api == REFUND_API:
                return self._refund(request, now, parsed)
            if api == REFUND_STATUS_API:
                return self._refund_status(request, now, parsed)
            raise ValueError(f"unknown PG api {api!r}")
        except (_Invalid, PgRefused) as refusal:
            # A caller whose signature failed is not authenticated: its answer goes out
            # unsigned (an assumption), so a client with the wrong key can still read "330".
            signer = None if refusal.code == CODE_CHECKSUM else key
            return self._reply(api, now, signer, head, _echo(api, body), refusal.code,
                               refusal.message, parsed)

    # ------------------------------------------------------------------
    # Send and Resend Payment Request

    def _send(self, r: _Request, now: Instant, parsed: Parsed) -> ApiReply:
        _check_optional_head(r.head, CODE_INVALID)
        body = r.body
        order_id = _matching(body, "merchantOrderId", _ORDER_ID_RE, CODE_INVALID,
                             "1-50 letters, digits or @ - _ .")
        amount = _required(body, "amount", CODE_BAD_AMOUNT)
        paise = _rupees(amount)
        if paise is None or paise == 0:
            raise _Invalid(CODE_BAD_AMOUNT, "Txn amount is invalid: amount must be rupees "
                           "with at most 2 decimals, above zero, no commas")
        if paise > self._settings.max_link_paise:
            raise _Invalid(CODE_BAD_AMOUNT, "Txn amount is invalid: amount is above the "
                           f"limit of {rupees(self._settings.max_link_paise)}")
        pos_id = _required(body, "posId", CODE_INVALID)
        if len(pos_id) > MAX_POS_ID or not _POS_ID_RE.fullmatch(pos_id):
            raise _Invalid(CODE_INVALID, "Request parameters are not valid: posId "
                           "(StoreID_POSID, letters and digits, at most 50 characters)")
        phone = _required(body, "userPhoneNo", CODE_BAD_PHONE)
        if not _MOBILE_RE.fullmatch(phone):
            raise _Invalid(CODE_BAD_PHONE, "Invalid mobile number: userPhoneNo must be a "
                           "10-digit Indian mobile number")
        expiry = _required(body, "expiry", CODE_INVALID)
        expiry_wall = _ist_wall(expiry)
        if expiry_wall is None:
            raise _Invalid(CODE_INVALID, "Request parameters are not valid: expiry "
                           "(yyyy-MM-dd HH:mm:ss)")
        if expiry_wall <= now.wall:
            raise _Invalid(CODE_INVALID, "Request parameters are not valid: expiry "
                           "(must be in the future)")
        display_name = _optional(body, "displayName", CODE_INVALID)
        if display_name is not None and len(display_name) > MAX_DISPLAY_NAME:
            raise _Invalid(CODE_INVALID, "Request parameters are not valid: displayName "
                           f"(at most {MAX_DISPLAY_NAME} characters)")
        self._state.send(LinkRequest(mid=r.mid, order_id=order_id, amount=amount,
                                     amount_paise=paise, pos_id=pos_id, phone=phone,
                                     expiry=expiry, expiry_wall=expiry_wall,
                                     display_name=display_name), now)
        return self._reply(SEND_API, now, r.key, r.head, _echo(SEND_API, r.body), CODE_OK,
                           "Success", parsed)

    def _resend(self, r: _Request, now: Instant, parsed: Parsed) -> ApiReply:
        _check_optional_head(r.head, CODE_INVALID)
        order_id = _matching(r.body, "merchantOrderId", _ORDER_ID_RE, CODE_INVALID,
                             "1-50 letters, digits or @ - _ .")
        self._state.resend(r.mid, order_id, now)
        return self._reply(RESEND_API, now, r.key, r.head, _echo(RESEND_API, r.body), CODE_OK,
                           "Success", parsed)

    # ------------------------------------------------------------------
    # Transaction Status

    def _status(self, r: _Request, now: Instant, parsed: Parsed) -> ApiReply:
        _check_optional_head(r.head, CODE_INVALID)
        order_id = r.body.get("orderId")
        if not isinstance(order_id, str) or not _ORDER_ID_RE.fullmatch(order_id):
            raise _Invalid(CODE_ORDER_NOT_FOUND, "Invalid Order Id.")
        order = self._state.status(r.mid, order_id, now)
        body: dict[str, object] = {"mid": r.mid, "orderId": order_id}
        if order is None or order.status is LinkStatus.OPEN:
            body["resultInfo"] = _info("NO_RECORD_FOUND", CODE_ORDER_NOT_FOUND,
                                       "Invalid Order Id.")
            return self._signed(now, r.key, r.head, body, CODE_ORDER_NOT_FOUND,
                                parsed)
        body = self._order_fields(order)
        word, code, message = {
            LinkStatus.PAYING: ("PENDING", CODE_BANK_PENDING,
                                "Looks like the payment is not complete. Please wait while "
                                "we confirm the status with your bank."),
            LinkStatus.PAID: ("TXN_SUCCESS", CODE_PAID, "Txn Success"),
            LinkStatus.FAILED: ("TXN_FAILURE", CODE_DECLINED,
                                "Your payment has been declined by your bank"),
            LinkStatus.EXPIRED: ("TXN_FAILURE", CODE_CLOSED,
                                 "Txn failed: the payment link expired"),
        }[order.status]
        body["resultInfo"] = _info(word, code, message)
        return self._signed(now, r.key, r.head, body, code, parsed)

    def _order_fields(self, order: LinkOrder) -> dict[str, object]:
        p = order.payment
        refunded = self._state.refunded_paise(order.mid, order.order_id)
        fields: dict[str, object] = {
            "txnId": p.txn_id if p else "",
            "bankTxnId": p.bank_txn_id if p else "",
            "orderId": order.order_id,
            "txnAmount": rupees(order.request.amount_paise),
            "txnType": "SALE",
            "gatewayName": p.gateway if p else "",
            "bankName": p.bank_name if p else "",
            "mid": order.mid,
            "paymentMode": p.payment_mode if p else "",
            "refundAmt": rupees(refunded),
            "txnDate": p.txn_date if p else "",
        }
        return fields

    # ------------------------------------------------------------------
    # Refund and Refund Status

    def _refund(self, r: _Request, now: Instant, parsed: Parsed) -> ApiReply:
        _check_optional_head(r.head, CODE_REFUND_INVALID)
        body = r.body
        if body.get("txnType") != "REFUND":
            raise _Invalid(CODE_REFUND_INVALID, "Invalid refund request: txnType must be REFUND")
        order_id = _matching(body, "orderId", _ORDER_ID_RE, CODE_REFUND_INVALID,
                             "1-50 letters, digits or @ - _ .")
        ref_id = _matching(body, "refId", _ORDER_ID_RE, CODE_REFUND_INVALID,
                           "1-50 letters, digits or @ - _ .")
        txn_id = _matching(body, "txnId", _TXN_ID_RE, CODE_REFUND_INVALID,
                           "at most 64 characters")
        amount = _required(body, "refundAmount", CODE_REFUND_AMOUNT)
        paise = _rupees(amount)
        if paise is None or paise == 0:
            raise _Invalid(CODE_REFUND_AMOUNT, "Invalid refund amount: rupees with at most "
                           "2 decimals, above zero, no commas")
        comments = _optional(body, "comments", CODE_REFUND_INVALID)
        if comments is not None and len(comments) > MAX_COMMENTS:
            raise _Invalid(CODE_REFUND_INVALID, "Invalid refund request: comments "
                           f"(at most {MAX_COMMENTS} characters)")
        refund = self._state.refund(RefundApply(mid=r.mid, order_id=order_id, ref_id=ref_id,
                                                txn_id=txn_id, amount=amount,
                                                amount_paise=paise, comments=comments), now)
        answer: dict[str, object] = {
            "txnTimestamp": refund.txn_time,
            "orderId": order_id,
            "mid": r.mid,
            "refId": ref_id,
            "refundId": refund.refund_id,
            "txnId": txn_id,
            "refundAmount": rupees(paise),
            "resultInfo": _refund_info(refund),
        }
        return self._signed(now, r.key, r.head, answer, refund.code, parsed)

    def _refund_status(self, r: _Request, now: Instant, parsed: Parsed) -> ApiReply:
        _check_optional_head(r.head, CODE_REFUND_INVALID)
        order_id = _matching(r.body, "orderId", _ORDER_ID_RE, CODE_REFUND_INVALID,
                             "1-50 letters, digits or @ - _ .")
        ref_id = _matching(r.body, "refId", _ORDER_ID_RE, CODE_REFUND_INVALID,
                           "1-50 letters, digits or @ - _ .")
        refund = self._state.refund_status(r.mid, order_id, ref_id, now)
        if refund is None:
            raise PgRefused(CODE_REFUND_NOT_FOUND, "Record not found: no refund "
                            f"{ref_id!r} on order {order_id!r}")
        total = self._state.refunded_paise(r.mid, order_id)
        answer: dict[str, object] = {
            "orderId": order_id,
            "userCreditInitiateTimestamp": (refund.decided.ist_text() + ".0"
                                            if refund.status is RefundStatus.SUCCESS
                                            and refund.decided else ""),
            "mid": r.mid,
            "merchantRefundRequestTimestamp": refund.requested.ist_text() + ".0",
            "txnTimestamp": refund.txn_time,
            "acceptRefundTimestamp": (refund.requested.ist_text() + ".0"
                                      if refund.status is not RefundStatus.FAILED else ""),
            "refundId": refund.refund_id,
            "txnAmount": rupees(refund.order_amount_paise),
            "refundAmount": rupees(refund.request.amount_paise),
            "totalRefundAmount": rupees(total),
            "refId": ref_id,
            "txnId": refund.request.txn_id,
            "resultInfo": _refund_info(refund),
        }
        if refund.status is RefundStatus.FAILED:
            answer["rejectRefundReasonCode"] = refund.code
            answer["rejectRefundReasonMessage"] = refund.message
        return self._signed(now, r.key, r.head, answer, refund.code, parsed)

    # ------------------------------------------------------------------
    # Answers

    def _reply(self, api: str, now: Instant, key: SimKey | None, head: JsonObject,
               echo: dict[str, object], code: str, message: str, parsed: Parsed) -> ApiReply:
        body = dict(echo)
        body["resultInfo"] = _info(_failure_word(api, code), code, message)
        return self._signed(now, key, head, body, code, parsed)

    @staticmethod
    def _signed(now: Instant, key: SimKey | None, head: JsonObject,
                body: Mapping[str, object], code: str, parsed: Parsed) -> ApiReply:
        """Serialise the body once, compactly, and sign exactly that text.

        Compact (`"body":{`) because that is what Paytm sends and what Paytm's own SDK
        (`paytm-pg`) requires: it cuts the body out of the raw answer by looking for
        `"body":{` and verifies the signature over that text. ASCII escapes keep the text
        byte-identical however a client decodes it.
        """
        body_text = json.dumps(body, separators=COMPACT)
        answer_head: dict[str, object] = {
            "responseTimestamp": str(int(now.wall * 1000)),
            "version": _echo_version(head),
        }
        client_id = head.get("clientId")
        if isinstance(client_id, str):
            answer_head["clientId"] = client_id
        if key is not None:  # no merchant, no key: the answer goes out unsigned
            answer_head["signature"] = sign(body_text, key)
        text = '{"head":' + json.dumps(answer_head, separators=COMPACT) + ',"body":' \
            + body_text + "}"
        return ApiReply(body={"head": answer_head, "body": body}, result_code=code,
                        parsed=parsed, text=text)


def _echo_version(head: JsonObject) -> str:
    """The answer head's version is the request's (Paytm's response heads echo it)."""
    version = head.get("version")
    return version if isinstance(version, str) and version else HEAD_VERSION


def _info(status: str, code: str, message: str) -> dict[str, str]:
    return {"resultStatus": status, "resultCode": code, "resultMsg": message}


def _failure_word(api: str, code: str) -> str:
    if api in (SEND_API, RESEND_API):
        return "S" if code == CODE_OK else "F"
    if api == PG_STATUS_API:
        # Not about any payment (garbage, checksum, MID): a plain F, never TXN_FAILURE.
        return "NO_RECORD_FOUND" if code == CODE_ORDER_NOT_FOUND else "F"
    return "TXN_FAILURE"  # refunds: every refusal of reference §16's table


def _refund_info(refund: Refund) -> dict[str, str]:
    word = {RefundStatus.PENDING: "PENDING", RefundStatus.SUCCESS: "TXN_SUCCESS",
            RefundStatus.FAILED: "TXN_FAILURE"}[refund.status]
    return _info(word, refund.code, refund.message)


def _echo(api: str, body: JsonObject) -> dict[str, object]:
    names = {SEND_API: ("mid", "merchantOrderId"), RESEND_API: ("mid", "merchantOrderId"),
             PG_STATUS_API: ("mid", "orderId"), REFUND_API: ("mid", "orderId", "refId"),
             REFUND_STATUS_API: ("mid", "orderId", "refId")}.get(api, ())
    return {name: body[name] for name in names if isinstance(body.get(name), str)}


def _check_signature(head: JsonObject, text: str, key: SimKey) -> None:
    signature = head.get("signature")
    if not isinstance(signature, str):
        raise _Invalid(CODE_CHECKSUM, "Invalid checksum: head.signature missing")
    body_text = member_raw(text, "body")
    if body_text is None or not check(body_text, key, signature):
        raise _Invalid(CODE_CHECKSUM, "Invalid checksum")


def _check_optional_head(head: JsonObject, code: str) -> None:
    """Every head field but the signature is optional on every PG API.

    `clientId` only picks the key of a merchant with several (Paytm's Python samples send
    a head with `signature` alone); `requestTimestamp` is optional and is accepted in any
    form (Paytm's SDK sends `str(datetime.now())` with its spaces removed, not epoch
    digits). Present fields must still have the documented shape.
    """
    client_id = head.get("clientId")
    if client_id is not None and (not isinstance(client_id, str)
                                  or not 1 <= len(client_id) <= MAX_CLIENT_ID):
        raise _Invalid(code, "Request parameters are not valid: head.clientId")
    version = head.get("version")
    if version is not None and (not isinstance(version, str)
                                or not 1 <= len(version) <= MAX_VERSION):
        raise _Invalid(code, "Request parameters are not valid: head.version")
    channel = head.get("channelId")
    if channel is not None and channel not in CHANNELS:
        raise _Invalid(code, "Request parameters are not valid: head.channelId (WEB or WAP)")


def _decode(raw: bytes, content_type: str, code: str) -> tuple[str, object]:
    if content_type != JSON_CONTENT_TYPE:
        raise _Invalid(code, "Request parameters are not valid: request (Content-Type must "
                       f"be {JSON_CONTENT_TYPE})")
    if not raw.strip():
        raise _Invalid(code, "Request parameters are not valid: request (empty)")
    try:
        text = raw.decode("utf-8")
        return text, json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Invalid(code, "Request parameters are not valid: request (not JSON)") from None


def _envelope(document: object, code: str) -> tuple[JsonObject, JsonObject]:
    if not isinstance(document, dict):
        raise _Invalid(code, "Request parameters are not valid: request (not a JSON object)")
    head, body = document.get("head"), document.get("body")
    if not isinstance(head, dict):
        raise _Invalid(code, "Request parameters are not valid: head (missing or not an "
                       "object)")
    if not isinstance(body, dict):
        raise _Invalid(code, "Request parameters are not valid: body (missing or not an "
                       "object)")
    return head, body


def _parsed(document: object) -> Parsed:
    body = document.get("body") if isinstance(document, dict) else None
    if not isinstance(body, Mapping):
        return Parsed(json=document)
    mid = body.get("mid")
    order = body.get("orderId", body.get("merchantOrderId"))
    return Parsed(json=document, mid=mid if isinstance(mid, str) else None,
                  txn=order if isinstance(order, str) else None)


def pg_routes(ctx: EmulatorContext, webhooks: WebhookSender) -> list[web.RouteDef]:
    service = PgService(ctx.settings, ctx.pg_state)
    paths = pg_paths(ctx.settings.resend_path)
    ctx.apis.update(paths)

    def route(api: str) -> web.RouteDef:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await serve_call(request, ctx, api, service)
            finally:
                # Orders settle lazily: whatever became final by now gets its callback.
                webhooks.collect(ctx.clock.now())

        return web.post(paths[api], handler)

    return [route(api) for api in paths]

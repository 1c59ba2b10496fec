"""The EDC (wireless ECR) APIs: Sale, Status Enquiry (sale and void), Void.

`EdcService` turns the raw bytes of a request into Paytm's answer without touching HTTP
(so property tests can throw anything at it); `edc_routes` mounts it at the real paths.

Order of checks, as a gateway must do them:
    decode JSON ─► envelope (head, body) ─► paytmMid known? (0029; the key depends on it)
    ─► checksum (0330) ─► head and body fields (0002, 1810, ...) ─► terminal (0029, 0007)
    ─► state: duplicate id (0233), terminal busy (0333), accepted (0009)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace

from aiohttp import web

from agent.sim.paytm.clock import Instant
from agent.sim.paytm.codes import ANSWERS
from agent.sim.paytm.context import EmulatorContext
from agent.sim.paytm.jsonraw import member_raw
from agent.sim.paytm.magic import ACQUIRING_BANK, Behaviour
from agent.sim.paytm.settings import EmulatorSettings, ResultStyle
from agent.sim.paytm.signature import ChecksumMode, SimKey, check, check_params
from agent.sim.paytm.state import EdcState, Sale, StatusKind, StatusView
from agent.sim.paytm.validation import (
    CODE_INVALID,
    JsonObject,
    Refused,
    check_mid,
    check_sale_head,
    check_status_head,
    check_void_head,
    parse_sale,
    parse_status,
    parse_void,
)
from agent.sim.paytm.wire import (
    HTTP_TOO_LARGE,
    MAX_BODY_BYTES,
    ApiReply,
    Parsed,
    serve_call,
)

log = logging.getLogger(__name__)

SALE_API, STATUS_API, VOID_API = "sale", "status", "void"
EDC_PATHS: dict[str, str] = {
    SALE_API: "/ecr/payment/request",
    STATUS_API: "/ecr/V2/payment/status",
    VOID_API: "/ecr/void",  # reference §6: path Unconfirmed, the common public choice
}

CODE_ACCEPTED = "0009"
CODE_CHECKSUM = "0330"
CODE_SYSTEM_ERROR = "0012"
CODE_MERCHANT_NOT_FOUND = "0029"
STATUS_CODES: dict[StatusKind, str] = {
    StatusKind.NOT_FOUND: "0404",
    StatusKind.PENDING: "0010",
    StatusKind.SUCCESS: "0000",
    StatusKind.FAILED: "0011",
    StatusKind.VOID_NOT_FOUND: "0180",
    StatusKind.VOID_PENDING: "0010",
    StatusKind.VOID_SUCCESS: "0000",
    StatusKind.VOID_FAILED: "0090",
}
JSON_CONTENT_TYPE = "application/json"
# Not a Paytm field: where the emulator says *why* it answered 0002, so that resultMsg can
# stay Paytm's exact text (seed 003) and a developer still learns which field was wrong.
DETAIL_FIELD = "emulatorDetail"


def result_info(code: str, style: ResultStyle, message: str | None = None) -> dict[str, str]:
    entry = ANSWERS[code]
    if style is ResultStyle.OBSERVED:  # the letter in resultCode, as Odoo receives it
        status, result_code = entry.word, entry.letter
    else:  # the Sale page's table: the letter in resultStatus
        status, result_code = entry.letter, entry.word
    return {"resultStatus": status, "resultCode": result_code, "resultCodeId": code,
            "resultMsg": message or entry.message}


def refusal_detail(refusal: Refused) -> str | None:
    """What was wrong, for DETAIL_FIELD: the field and, where useful, a short reason. Only
    for 0002, whose text names nothing; every other code says what it is about."""
    if refusal.code != CODE_INVALID or (refusal.field is None and refusal.detail is None):
        return None
    text = refusal.field or "request"
    return text + (f" ({refusal.detail})" if refusal.detail else "")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class EdcService:
    def __init__(self, settings: EmulatorSettings, state: EdcState) -> None:
        self._settings = settings
        self._state = state

    # ------------------------------------------------------------------
    # Entry points (the wire.Processor protocol)

    def handle(self, api: str, raw: bytes, content_type: str, now: Instant) -> ApiReply:
        try:
            return self._handle(api, raw, content_type, now)
        except Exception:
            # A bug of ours must not become a stack trace on the wire; Paytm's own answer
            # to trouble on its side is 0012. Tests assert this code never appears.
            log.exception("emulator failed on a %s request", api)
            return self._reply(now, {}, {}, CODE_SYSTEM_ERROR, Parsed())

    def too_large(self, api: str, now: Instant) -> ApiReply:
        refusal = Refused(CODE_INVALID, "request", f"larger than {MAX_BODY_BYTES} bytes")
        reply = self._reply(now, {}, {}, CODE_INVALID, Parsed(), detail=refusal_detail(refusal))
        return replace(reply, status=HTTP_TOO_LARGE)

    # ------------------------------------------------------------------

    def _handle(self, api: str, raw: bytes, content_type: str, now: Instant) -> ApiReply:
        head: JsonObject = {}
        body: JsonObject = {}
        parsed = Parsed()
        try:
            text, document = _decode(raw, content_type)
            parsed = _parsed(document)
            head, body = _envelope(document)
            mid = check_mid(body)
            merchant = self._settings.merchant(mid)
            if merchant is None:
                raise Refused(CODE_MERCHANT_NOT_FOUND, "paytmMid")
            self._check_checksum(head, body, text, merchant.key)
            if api == SALE_API:
                check_sale_head(head)
                sale = self._state.start_sale(parse_sale(body), now)
                reply = self._reply(now, head, body, CODE_ACCEPTED, parsed)
                # Magic 05: the sale is on the terminal, but its answer never arrives.
                return replace(reply, drop=sale.behaviour is Behaviour.LOST_RESPONSE)
            if api == STATUS_API:
                check_status_head(head)
                request = parse_status(body)
                view = self._state.status(request, now)
                return self._status_reply(now, head, body, view, parsed)
            if api == VOID_API:
                check_void_head(head)
                self._state.start_void(parse_void(body), now)
                return self._reply(now, head, body, CODE_ACCEPTED, parsed)
            raise ValueError(f"unknown EDC api {api!r}")
        except Refused as refusal:
            return self._reply(now, head, body, refusal.code, parsed,
                               detail=refusal_detail(refusal))

    def _check_checksum(self, head: JsonObject, body: JsonObject, text: str,
                        key: SimKey) -> None:
        checksum = head.get("checksum")
        if not isinstance(checksum, str):
            raise Refused(CODE_CHECKSUM, "checksum")
        if self._settings.checksum_mode is ChecksumMode.PARAMS:
            # Reference §2.5: the top-level string fields only; nested objects are not signed.
            signed = {k: v for k, v in body.items() if isinstance(v, str)}
            valid = check_params(signed, key, checksum)
        else:
            body_text = member_raw(text, "body")
            valid = body_text is not None and check(body_text, key, checksum)
        if not valid:
            raise Refused(CODE_CHECKSUM, "checksum")

    # ------------------------------------------------------------------
    # Answers

    def _head(self, now: Instant, head: JsonObject) -> dict[str, object]:
        answer: dict[str, object] = {"responseTimeStamp": now.ist_text()}
        for name in ("channelId", "version"):
            value = _str_or_none(head.get(name))
            if value is not None:
                answer[name] = value
        return answer

    def _reply(self, now: Instant, head: JsonObject, body: JsonObject, code: str,
               parsed: Parsed, detail: str | None = None) -> ApiReply:
        echo = {name: _str_or_none(body.get(name))
                for name in ("merchantTransactionId", "paytmMid", "paytmTid")}
        answer: dict[str, object] = {k: v for k, v in echo.items() if v is not None}
        answer["resultInfo"] = result_info(code, self._settings.result_style)
        if detail is not None:
            answer[DETAIL_FIELD] = detail
        return ApiReply(body={"head": self._head(now, head), "body": answer},
                        result_code=code, parsed=parsed)

    def _status_reply(self, now: Instant, head: JsonObject, body: JsonObject,
                      view: StatusView, parsed: Parsed) -> ApiReply:
        code = STATUS_CODES[view.kind]
        info = result_info(code, self._settings.result_style, view.reason)
        if view.sale is None or view.kind is StatusKind.NOT_FOUND:
            answer: dict[str, object] = {
                name: body.get(name) for name in
                ("paytmMid", "paytmTid", "transactionDateTime", "merchantTransactionId")}
        else:
            answer = _sale_fields(view.sale)
        answer["resultInfo"] = info
        return ApiReply(body={"head": self._head(now, head), "body": answer},
                        result_code=code, parsed=parsed)


def _sale_fields(sale: Sale) -> dict[str, object]:
    """Reference §5.2 field names, verbatim. Payment fields are null until there is one."""
    r = sale.request
    p = sale.payment
    return {
        "paytmMid": r.mid,
        "paytmTid": r.tid,
        "transactionDateTime": r.date_time,
        "merchantTransactionId": r.txn,
        "merchantReferenceNo": r.reference,
        "transactionAmount": r.amount,
        "acquirementId": p.acquirementId if p else None,
        "retrievalReferenceNo": p.retrievalReferenceNo if p else None,
        "authCode": p.authCode if p else None,
        "issuerMaskCardNo": p.issuerMaskCardNo if p else None,
        "issuingBankName": p.issuingBankName if p else None,
        "issuingBankId": p.issuingBankId if p else None,
        "cardType": p.cardType if p else None,
        "cardScheme": p.cardScheme if p else None,
        "payMethod": p.payMethod if p else None,
        "aid": p.aid if p else None,
        "bankResponseCode": p.bankResponseCode if p else None,
        "bankResponseMessage": p.bankResponseMessage if p else None,
        "bankMid": r.mid if p else None,
        "bankTid": p.bankTid if p else None,
        "acquiringBank": ACQUIRING_BANK if p else None,
        "merchantExtendedInfo": r.extended_info,
        "extendedInfo": r.extend_info,
    }


def _decode(raw: bytes, content_type: str) -> tuple[str, object]:
    if content_type != JSON_CONTENT_TYPE:
        raise Refused(CODE_INVALID, "request", f"Content-Type must be {JSON_CONTENT_TYPE}")
    if not raw.strip():
        raise Refused(CODE_INVALID, "request", "empty")
    try:
        text = raw.decode("utf-8")
        return text, json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(CODE_INVALID, "request", "not JSON") from None


def _envelope(document: object) -> tuple[JsonObject, JsonObject]:
    if not isinstance(document, dict):
        raise Refused(CODE_INVALID, "request", "not a JSON object")
    head, body = document.get("head"), document.get("body")
    if not isinstance(head, dict):
        raise Refused(CODE_INVALID, "head", "missing or not an object")
    if not isinstance(body, dict):
        raise Refused(CODE_INVALID, "body", "missing or not an object")
    return head, body


def _parsed(document: object) -> Parsed:
    body = document.get("body") if isinstance(document, dict) else None
    if not isinstance(body, Mapping):
        return Parsed(json=document)
    return Parsed(json=document, mid=_str_or_none(body.get("paytmMid")),
                  tid=_str_or_none(body.get("paytmTid")),
                  txn=_str_or_none(body.get("merchantTransactionId")),
                  event=_str_or_none(body.get("event")))


def edc_routes(ctx: EmulatorContext) -> list[web.RouteDef]:
    service = EdcService(ctx.settings, ctx.edc_state)
    ctx.apis.update(EDC_PATHS)

    def route(api: str) -> web.RouteDef:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await serve_call(request, ctx, api, service)

        return web.post(EDC_PATHS[api], handler)

    return [route(api) for api in EDC_PATHS]

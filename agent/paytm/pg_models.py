"""Typed requests and answers of Paytm's PG APIs (reference §11–§17), and the pure parsers
that classify an answer. No I/O here: `agent.paytm.pg` posts and verifies.

    Send / Resend Payment Request ─► LinkAnswer          queued, or refused with a code
    Transaction Status (v3)       ─► PgStatusAnswer      SUCCESS | FAILED | PENDING | NOT_FOUND
    Refund                        ─► RefundAnswer        SUCCESS | PENDING | FAILED | DUPLICATE
                                                         | BUSY | NOT_FOUND
    Refund Status                 ─► RefundStatusAnswer  SUCCESS | PENDING | FAILED | NOT_FOUND

A parser never raises. An answer it cannot classify with confidence is `Unknown` (for the
calls that change something: Send, Resend, Refund) or PENDING (for the status calls,
so the caller simply asks again), exactly as the EDC client does.

PG amounts are rupees with exactly two decimals and no separators ("1303.00", §11); every
amount in this module's API is paise (a string of digits, as everywhere in the agent) and is
converted at the edge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agent.errors import FieldError
from agent.paytm.answer_fields import detail, raw_text
from agent.paytm.clock import IST, format_paytm, parse_paytm
from agent.paytm.codes import PG_STATUS_CODES, REFUND_CODES, Handling, ResultCode
from agent.paytm.outcome import Unknown
from agent.rules import POS_ID_MAX, check_paise, is_pos_id, rupees_plain

# ---------------------------------------------------------------------------
# Field rules (reference §11, §12, §14, §16)

# PG order ids: 1–50 of letters, digits and @ - _ . (§12, §14). The register protocol is
# stricter (8–32 alphanumerics); that is the engine's rule, not Paytm's.
ORDER_ID_RE = re.compile(r"[A-Za-z0-9@\-_.]{1,50}", re.ASCII)
# refId is string(50) with no documented character set: the order-id alphabet is assumed.
REF_ID_RE = ORDER_ID_RE
# Paytm transaction ids are digits in every sample; string(64) (§11). Any visible ASCII.
TXN_ID_RE = re.compile(r"[\x21-\x7e]{1,64}", re.ASCII)
PHONE_RE = re.compile(r"[0-9]{10}", re.ASCII)  # userPhoneNo: a 10-digit mobile number
MAX_DISPLAY_NAME = 50
MAX_COMMENTS = 500
# What Paytm sends back: "1303.00", also "1303.0" and "1303" in some answers.
_RUPEES_RE = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?", re.ASCII)


def check_order_id(order_id: object, field: str = "orderId") -> str:
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        raise FieldError(field, "must be 1–50 letters, digits or @ - _ . "
                         f"(got {order_id!r})")
    return order_id


def check_ref_id(ref_id: object) -> str:
    if not isinstance(ref_id, str) or not REF_ID_RE.fullmatch(ref_id):
        raise FieldError("refId", f"must be 1–50 letters, digits or @ - _ . (got {ref_id!r})")
    return ref_id


def check_txn_id(txn_id: object) -> str:
    if not isinstance(txn_id, str) or not TXN_ID_RE.fullmatch(txn_id):
        raise FieldError("txnId", f"must be 1–64 visible ASCII characters (got {txn_id!r})")
    return txn_id


def paise_to_rupees(paise: str) -> str:
    """'130300' → '1303.00', '1' → '0.01': what PG amounts look like on the wire."""
    return rupees_plain(check_paise(paise, "amount"))


def rupees_to_paise(text: object) -> int | None:
    """A rupee amount as Paytm writes it ("1303.00", "1303.5", "1303") in paise; None for
    anything else (negative, commas, three decimals, exponents...). Never raises."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text * 100 if text >= 0 else None
    if isinstance(text, float):
        text = repr(text)  # 1303.5 → "1303.5"; 1e+20 and nan do not match below
    if not isinstance(text, str):
        return None
    match = _RUPEES_RE.fullmatch(text.strip())
    if match is None:
        return None
    whole, fraction = match.groups()
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))


# ---------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class SendLinkRequest:
    order_id: str  # merchantOrderId: unique per MID across every POS (§11)
    amount_paise: str  # digits, no leading zero; sent as rupees "1303.00"
    pos_id: str  # StoreID_POSID, from the lane config
    phone: str  # the customer's 10-digit mobile number
    expiry: datetime  # aware; sent as IST yyyy-MM-dd HH:mm:ss. Future-ness is the engine's
    display_name: str | None = None  # None: the client uses paytm.display_name, if set

    def __post_init__(self) -> None:
        check_order_id(self.order_id, "merchantOrderId")
        check_paise(self.amount_paise, "amount")
        if not is_pos_id(self.pos_id):
            raise FieldError("posId", f"must look like StoreID_POSID (letters and digits, "
                             f"at most {POS_ID_MAX} characters; got {self.pos_id!r})")
        if not isinstance(self.phone, str) or not PHONE_RE.fullmatch(self.phone):
            raise FieldError("userPhoneNo", f"must be 10 digits (got {self.phone!r})")
        if not isinstance(self.expiry, datetime) or self.expiry.utcoffset() is None:
            raise FieldError("expiry", "must be a timezone-aware datetime (it is sent in IST)")
        if self.display_name is not None and (
                not isinstance(self.display_name, str)
                or len(self.display_name) > MAX_DISPLAY_NAME):
            raise FieldError("displayName",
                             f"must be at most {MAX_DISPLAY_NAME} characters")

    def body(self, mid: str, default_display_name: str = "") -> dict[str, object]:
        body: dict[str, object] = {
            "mid": mid,
            "merchantOrderId": self.order_id,
            "amount": rupees_plain(self.amount_paise),
            "posId": self.pos_id,
            "userPhoneNo": self.phone,
            "expiry": format_paytm(self.expiry),
        }
        display_name = self.display_name if self.display_name is not None \
            else default_display_name
        if display_name:
            body["displayName"] = display_name
        return body


REFUND_TXN_TYPE = "REFUND"  # body.txnType of the Refund API (Observed in Paytm's samples)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    order_id: str  # the paid order (for an EDC sale: its merchantTransactionId, §7)
    ref_id: str  # ours, unique per refund request; a failed refund is retried with a new one
    txn_id: str  # Paytm's transaction id of the payment (EDC: acquirementId)
    amount_paise: str  # this refund; Paytm caps the cumulative total at the amount paid
    comments: str | None = None

    def __post_init__(self) -> None:
        check_order_id(self.order_id)
        check_ref_id(self.ref_id)
        check_txn_id(self.txn_id)
        check_paise(self.amount_paise, "refundAmount")
        if self.comments is not None and (not isinstance(self.comments, str)
                                          or len(self.comments) > MAX_COMMENTS):
            raise FieldError("comments", f"must be at most {MAX_COMMENTS} characters")

    def body(self, mid: str) -> dict[str, object]:
        body: dict[str, object] = {
            "mid": mid,
            "txnType": REFUND_TXN_TYPE,
            "orderId": self.order_id,
            "refId": self.ref_id,
            "txnId": self.txn_id,
            "refundAmount": rupees_plain(self.amount_paise),
        }
        if self.comments:
            body["comments"] = self.comments
        return body


# ---------------------------------------------------------------------------
# Answers


@dataclass(frozen=True, slots=True)
class PgResultInfo:
    """`resultInfo` exactly as received ("" for a missing or non-string member)."""

    status: str  # resultStatus
    code: str  # resultCode
    message: str  # resultMsg


# Send and Resend Payment Request answers. Paytm publishes no code table for these APIs
# (reference §12: response schema Unconfirmed); these are the codes the emulator answers,
# borrowed from Paytm's PG family where one exists. Unknown codes are still classified by
# resultStatus; the table only gives the engine a handling and a cashier text.
LINK_CODES: dict[str, ResultCode] = {c.code: c for c in (
    ResultCode("0000", "SUCCESS", "Success: SMS queued", Handling.PROCEED,
               "Payment link sent to the customer"),
    ResultCode("1001", "FAILURE", "Request parameters are not valid", Handling.FIX_REQUEST,
               "Paytm found the request invalid"),
    ResultCode("2007", "FAILURE", "Txn amount is invalid", Handling.FIX_REQUEST,
               "Amount not accepted by Paytm"),
    ResultCode("2008", "FAILURE", "Invalid mobile number", Handling.FIX_REQUEST,
               "Mobile number not accepted by Paytm"),
    ResultCode("325", "FAILURE", "Duplicate order id", Handling.DUPLICATE,
               "Order id already used"),
    ResultCode("330", "FAILURE", "Invalid checksum", Handling.OPERATOR,
               "Paytm rejected the signature: check the merchant key"),
    ResultCode("335", "FAILURE", "Mid is invalid", Handling.OPERATOR,
               "Merchant id unknown to Paytm: check MID"),
    ResultCode("334", "FAILURE", "Invalid order id", Handling.NOT_FOUND,
               "Order unknown to Paytm"),
    ResultCode("3001", "FAILURE", "SMS could not be sent", Handling.FAILED,
               "SMS could not be sent to this number"),
    ResultCode("3002", "FAILURE", "Order is no longer open", Handling.FAILED,
               "Payment link already paid, failed or expired"),
    ResultCode("501", "FAILURE", "System error", Handling.RETRY_STATUS,
               "Paytm system error"),
)}


@dataclass(frozen=True, slots=True)
class LinkAnswer:
    """Paytm's answer to Send or Resend: the SMS was queued, or the request was refused.

    `queued` never means "paid": only Transaction Status says that (§11).
    """

    queued: bool
    code: str  # resultCode ("" when Paytm sent none)
    message: str
    result: PgResultInfo
    order_id: str | None  # merchantOrderId/orderId echo, when Paytm sent one

    @property
    def known(self) -> ResultCode | None:
        return LINK_CODES.get(self.code)

    @property
    def handling(self) -> Handling | None:
        known = self.known
        return known.handling if known is not None else None


class PgStatusState(StrEnum):
    """Same values as `agent.paytm.edc.StatusState`, so the engine can treat both alike."""

    SUCCESS = "success"  # final: paid (TXN_SUCCESS / 01)
    FAILED = "failed"  # final: TXN_FAILURE with a failure code (227, 810, ...)
    PENDING = "pending"  # not final, or not understood: ask again
    NOT_FOUND = "not_found"  # 334 / NO_RECORD_FOUND: normal while the customer has not paid


@dataclass(frozen=True, slots=True)
class PgStatusAnswer:
    state: PgStatusState
    code: str  # resultCode
    message: str
    result: PgResultInfo
    order_id: str | None  # orderId echo
    txn_id: str | None  # Paytm's transaction id (store it against the order, §11; ≤ 64)
    bank_txn_id: str | None  # bank reference: the UPI RRN/UTR
    payment_mode: str | None  # UPI, PPI, CC, DC, NB...
    amount: str | None  # txnAmount as sent, rupees
    amount_paise: int | None  # the same in paise; None when absent or unreadable
    bank_name: str | None
    gateway: str | None  # gatewayName
    txn_date: str | None  # as sent, e.g. "2024-01-01 10:00:05.0"
    refund_amount: str | None  # refundAmt as sent, rupees

    @property
    def known(self) -> ResultCode | None:
        return PG_STATUS_CODES.get(self.code)

    @property
    def txn_time(self) -> datetime | None:
        return parse_paytm(self.txn_date)

    def matches(self, order_id: str, amount_paise: str | int) -> bool:
        """Paytm's rule for this API (§14): the answer is about this order *and* this
        amount. False when either is missing or different; the bill must not be closed."""
        try:
            expected = int(amount_paise)
        except ValueError:
            return False
        return (self.order_id is not None and self.order_id == order_id
                and self.amount_paise is not None and self.amount_paise == expected)


class RefundState(StrEnum):
    SUCCESS = "success"  # 10: refunded
    PENDING = "pending"  # 601/628: registered, not final. Never retry: poll Refund Status
    FAILED = "failed"  # refused or failed (620, 619, 629, ...): a new refId may be tried
    DUPLICATE = "duplicate"  # 617: this refId was used before; ask Refund Status about it
    BUSY = "busy"  # 626: another refund on this order is in progress; not registered
    NOT_FOUND = "not_found"  # 631: no such payment (Refund) or refund (Refund Status)


@dataclass(frozen=True, slots=True)
class RefundAnswer:
    """Paytm's immediate answer to Refund: it registers the refund, never completes it (§16)."""

    state: RefundState
    code: str
    message: str
    result: PgResultInfo
    order_id: str | None
    ref_id: str | None
    refund_id: str | None  # Paytm's refund id
    txn_id: str | None
    refund_amount: str | None  # rupees, as sent
    refund_amount_paise: int | None
    txn_timestamp: str | None

    @property
    def known(self) -> ResultCode | None:
        return REFUND_CODES.get(self.code)

    @property
    def handling(self) -> Handling | None:
        known = self.known
        return known.handling if known is not None else None


@dataclass(frozen=True, slots=True)
class RefundStatusAnswer:
    """Refund Status (§17). `state` is never DUPLICATE or BUSY here."""

    state: RefundState
    code: str
    message: str
    result: PgResultInfo
    order_id: str | None
    ref_id: str | None
    refund_id: str | None
    txn_id: str | None
    txn_amount: str | None  # the order's value, rupees
    refund_amount: str | None  # this refund, rupees
    refund_amount_paise: int | None
    total_refund_amount: str | None  # cumulative refunded on the order, rupees
    total_refund_paise: int | None
    txn_timestamp: str | None
    accept_refund_timestamp: str | None  # Paytm took it from the merchant's balance
    merchant_refund_request_timestamp: str | None
    user_credit_initiate_timestamp: str | None  # Paytm pushed the credit to the bank
    reject_code: str | None  # rejectRefundReasonCode (webhook family, §18.2)
    reject_message: str | None

    @property
    def known(self) -> ResultCode | None:
        return REFUND_CODES.get(self.code)


# ---------------------------------------------------------------------------
# Parsing helpers


def _first(mapping: Mapping[str, object], *keys: str) -> str | None:
    for key in keys:
        value = detail(mapping, key)
        if value is not None:
            return value
    return None


def _body(document: object) -> tuple[Mapping[str, object], PgResultInfo] | Unknown:
    if not isinstance(document, dict):
        return Unknown("answer is not a JSON object")
    body = document.get("body")
    if not isinstance(body, dict):
        return Unknown("answer has no body object")
    info = body.get("resultInfo")
    if not isinstance(info, dict):
        return Unknown("answer has no resultInfo object")
    return body, PgResultInfo(status=raw_text(info.get("resultStatus")),
                              code=raw_text(info.get("resultCode")).strip(),
                              message=raw_text(info.get("resultMsg")))


def _echo_mismatch(body: Mapping[str, object], keys: tuple[str, ...], expected: str | None,
                   what: str) -> Unknown | None:
    if expected is None:
        return None
    for key in keys:
        echoed = body.get(key)
        if isinstance(echoed, str) and echoed and echoed != expected:
            return Unknown(f"answer is about {what} {echoed!r}, not {expected!r}")
    return None


_SUCCESS_WORDS = frozenset({"S", "SUCCESS", "TXN_SUCCESS"})
_FAILED_WORDS = frozenset({"F", "FAIL", "FAILED", "FAILURE", "TXN_FAILURE"})
_PENDING_WORDS = frozenset({"P", "PENDING"})


def _word(info: PgResultInfo) -> str:
    return info.status.strip().upper()


def _unclear(info: PgResultInfo) -> Unknown:
    return Unknown(f"unclear answer: resultStatus={info.status!r} resultCode={info.code!r} "
                   f"resultMsg={info.message!r}")


# ---------------------------------------------------------------------------
# Send and Resend Payment Request


def parse_link_answer(document: object, order_id: str | None = None) -> LinkAnswer | Unknown:
    """Queued needs resultStatus S/SUCCESS and no failure code; refused needs an explicit
    failure status. Anything else is Unknown: a "refused" that was in fact queued would
    let the customer pay an order the engine has given up on."""
    parts = _body(document)
    if isinstance(parts, Unknown):
        return parts
    body, info = parts
    if (other := _echo_mismatch(body, ("merchantOrderId", "orderId"), order_id,
                                "order")) is not None:
        return other
    word = _word(info)
    known = LINK_CODES.get(info.code)
    echoed = _first(body, "merchantOrderId", "orderId")
    if word in _SUCCESS_WORDS and (known is None or known.handling is Handling.PROCEED):
        return LinkAnswer(queued=True, code=info.code, message=info.message, result=info,
                          order_id=echoed)
    if word in _FAILED_WORDS and (known is None or known.handling is not Handling.PROCEED):
        return LinkAnswer(queued=False, code=info.code, message=info.message, result=info,
                          order_id=echoed)
    return _unclear(info)


# ---------------------------------------------------------------------------
# Transaction Status


_PG_SUCCESS_CODE = "01"
_PG_NOT_FOUND_CODE = "334"
_PG_NOT_FOUND_WORD = "NO_RECORD_FOUND"
# Codes that say the *request* failed (checksum, MID, Paytm's own error, invalid
# parameters), nothing about the payment: a TXN_FAILURE carrying one of them must not fail
# an order the customer may still pay.
_NOT_ABOUT_THE_PAYMENT = frozenset({"330", "335", "501", "1001"})
_PG_PENDING_CODES = frozenset({"400", "402"})


def _pg_status_state(info: PgResultInfo) -> PgStatusState:
    word, code = _word(info), info.code
    # Decided by the code alone: 334 may come with TXN_FAILURE, and reading that as
    # "failed" would fail an order whose customer simply has not paid yet.
    if code == _PG_NOT_FOUND_CODE:
        return PgStatusState.NOT_FOUND
    if word == _PG_NOT_FOUND_WORD:
        return PgStatusState.PENDING if code else PgStatusState.NOT_FOUND
    if code in _NOT_ABOUT_THE_PAYMENT:
        return PgStatusState.PENDING
    if word == "TXN_SUCCESS":
        return PgStatusState.SUCCESS if code == _PG_SUCCESS_CODE else PgStatusState.PENDING
    if word == "TXN_FAILURE":
        # A failure needs a failure code; none (or a pending one) is not understood.
        if code and code not in _PG_PENDING_CODES and code != _PG_SUCCESS_CODE:
            return PgStatusState.FAILED
        return PgStatusState.PENDING
    return PgStatusState.PENDING  # PENDING (400/402), and anything not understood


def parse_pg_status_answer(document: object,
                           order_id: str | None = None) -> PgStatusAnswer | Unknown:
    """Classify a Transaction Status answer (reference §14); never raises."""
    parts = _body(document)
    if isinstance(parts, Unknown):
        return parts
    body, info = parts
    if (other := _echo_mismatch(body, ("orderId",), order_id, "order")) is not None:
        return other
    amount = detail(body, "txnAmount")
    return PgStatusAnswer(
        state=_pg_status_state(info), code=info.code, message=info.message, result=info,
        order_id=detail(body, "orderId"), txn_id=detail(body, "txnId"),
        bank_txn_id=detail(body, "bankTxnId"), payment_mode=detail(body, "paymentMode"),
        amount=amount, amount_paise=rupees_to_paise(amount),
        bank_name=detail(body, "bankName"), gateway=detail(body, "gatewayName"),
        txn_date=detail(body, "txnDate"), refund_amount=detail(body, "refundAmt"))


# ---------------------------------------------------------------------------
# Refund and Refund Status

_REFUND_SUCCESS_CODE = "10"
_REFUND_PENDING_CODES = frozenset({"601", "628"})
_REFUND_SYSTEM_ERROR = "501"
# As for payments; 600 ("invalid refund request") answers a malformed *status question*.
_NOT_ABOUT_THE_REFUND = _NOT_ABOUT_THE_PAYMENT | {"600"}
_REFUND_FAILED_STATES: Mapping[str, RefundState] = {
    "617": RefundState.DUPLICATE,
    "626": RefundState.BUSY,
    "631": RefundState.NOT_FOUND,
}


def _refund_apply_state(info: PgResultInfo) -> RefundState | Unknown:
    word, code = _word(info), info.code
    if code == _REFUND_SYSTEM_ERROR:
        # Paytm failed somewhere; the refund may or may not be registered.
        return _unclear(info)
    if code == _REFUND_SUCCESS_CODE:
        return RefundState.SUCCESS if word in _SUCCESS_WORDS or not word else _unclear(info)
    if code in _REFUND_PENDING_CODES:
        return RefundState.PENDING if word in _PENDING_WORDS or not word else _unclear(info)
    if word in _FAILED_WORDS and code:
        return _REFUND_FAILED_STATES.get(code, RefundState.FAILED)
    if word in _PENDING_WORDS and code not in _REFUND_FAILED_STATES:
        return RefundState.PENDING
    return _unclear(info)


def parse_refund_answer(document: object, order_id: str | None = None,
                        ref_id: str | None = None) -> RefundAnswer | Unknown:
    """Classify a Refund answer (reference §16); never raises.

    SUCCESS and PENDING need the code and status to agree; FAILED (and its kinds
    DUPLICATE, BUSY, NOT_FOUND) needs an explicit failure status and a code. 501 and
    anything unclear are Unknown: whether the refund was registered is then not known,
    and Refund Status with the same refId is the way to find out.
    """
    parts = _body(document)
    if isinstance(parts, Unknown):
        return parts
    body, info = parts
    for keys, expected, what in ((("orderId",), order_id, "order"),
                                 (("refId",), ref_id, "refId")):
        if (other := _echo_mismatch(body, keys, expected, what)) is not None:
            return other
    state = _refund_apply_state(info)
    if isinstance(state, Unknown):
        return state
    amount = detail(body, "refundAmount")
    return RefundAnswer(
        state=state, code=info.code, message=info.message, result=info,
        order_id=detail(body, "orderId"), ref_id=detail(body, "refId"),
        refund_id=detail(body, "refundId"), txn_id=detail(body, "txnId"),
        refund_amount=amount, refund_amount_paise=rupees_to_paise(amount),
        txn_timestamp=detail(body, "txnTimestamp"))


def _refund_status_state(info: PgResultInfo) -> RefundState:
    word, code = _word(info), info.code
    if code == "631":
        return RefundState.NOT_FOUND
    if code in _NOT_ABOUT_THE_REFUND:
        return RefundState.PENDING  # the question failed, not the refund: ask again
    if word in _SUCCESS_WORDS:
        return RefundState.SUCCESS if code in (_REFUND_SUCCESS_CODE, "") \
            else RefundState.PENDING
    if word in _FAILED_WORDS and code and code not in _REFUND_PENDING_CODES \
            and code != _REFUND_SUCCESS_CODE:
        return RefundState.FAILED
    return RefundState.PENDING


def parse_refund_status_answer(document: object, order_id: str | None = None,
                               ref_id: str | None = None) -> RefundStatusAnswer | Unknown:
    """Classify a Refund Status answer (reference §17); never raises. Not understood is
    PENDING: the caller asks again rather than deciding on a guess."""
    parts = _body(document)
    if isinstance(parts, Unknown):
        return parts
    body, info = parts
    for keys, expected, what in ((("orderId",), order_id, "order"),
                                 (("refId",), ref_id, "refId")):
        if (other := _echo_mismatch(body, keys, expected, what)) is not None:
            return other
    amount = detail(body, "refundAmount")
    total = detail(body, "totalRefundAmount")
    return RefundStatusAnswer(
        state=_refund_status_state(info), code=info.code, message=info.message, result=info,
        order_id=detail(body, "orderId"), ref_id=detail(body, "refId"),
        refund_id=detail(body, "refundId"), txn_id=detail(body, "txnId"),
        txn_amount=detail(body, "txnAmount"),
        refund_amount=amount, refund_amount_paise=rupees_to_paise(amount),
        total_refund_amount=total, total_refund_paise=rupees_to_paise(total),
        txn_timestamp=detail(body, "txnTimestamp"),
        accept_refund_timestamp=detail(body, "acceptRefundTimestamp"),
        merchant_refund_request_timestamp=detail(body, "merchantRefundRequestTimestamp"),
        user_credit_initiate_timestamp=detail(body, "userCreditInitiateTimestamp"),
        reject_code=detail(body, "rejectRefundReasonCode"),
        reject_message=detail(body, "rejectRefundReasonMessage"))


# ---------------------------------------------------------------------------
# Response head

_EPOCH_S_DIGITS = 10
_EPOCH_MS_DIGITS = 13


def pg_response_time(document: object) -> datetime | None:
    """head.responseTimestamp as an aware IST datetime: epoch seconds or milliseconds
    (string(15), §13), or Paytm's IST text; None when absent or unreadable."""
    if not isinstance(document, dict):
        return None
    head = document.get("head")
    if not isinstance(head, dict):
        return None
    for key in ("responseTimestamp", "responseTimeStamp"):
        value = head.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            continue
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) in (_EPOCH_S_DIGITS,
                                                               _EPOCH_MS_DIGITS):
            seconds = int(text) / (1000 if len(text) == _EPOCH_MS_DIGITS else 1)
            try:
                return datetime.fromtimestamp(seconds, IST)
            except (OverflowError, OSError, ValueError):
                return None
        parsed = parse_paytm(text)
        if parsed is not None:
            return parsed
    return None

"""Paytm's S2S payment callback (reference §18.1): parsing and verification, as pure functions.

Two shapes arrive at the same URL:

    form  ORDERID=...&MID=...&STATUS=TXN_SUCCESS&...&CHECKSUMHASH=<108>   params mode over
          every received field except CHECKSUMHASH (unknown fields included, §2.3)
    JSON  {"head": {"signature": "<108>", ...}, "body": {"orderId": ..., "resultInfo": ...}}
          string mode over the exact text of "body" as received (§18.1, §2.4)

`parse_callback` never raises: whatever arrives, the answer is a typed `Callback` or an
`InvalidCallback` saying why not. A valid callback is only a hint — the seed requires the
bill to be closed on Transaction Status, never on the callback itself — and HTTP, replay
and idempotency handling are the receiver's (the engine's) business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from agent.paytm.checksum import CHECKSUM_FIELD, MerchantKey, verify, verify_params
from agent.paytm.jsontext import member_text
from agent.paytm.pg_models import rupees_to_paise

# A real callback has about fifteen fields and well under 2 KiB; anything far larger is
# not one and is refused before it is parsed.
MAX_CALLBACK_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

CallbackStatus = Literal["TXN_SUCCESS", "TXN_FAILURE"]
_FINAL_STATUSES: tuple[CallbackStatus, ...] = ("TXN_SUCCESS", "TXN_FAILURE")


@dataclass(frozen=True, slots=True)
class Callback:
    """A verified payment callback. Confirm with Transaction Status before acting on it."""

    order_id: str
    mid: str
    txn_id: str | None  # Paytm's transaction id
    amount: str | None  # TXNAMOUNT as sent, rupees
    amount_paise: int | None
    status: CallbackStatus
    resp_code: str | None  # RESPCODE: 01 on success
    resp_msg: str | None
    payment_mode: str | None  # UPI, PPI, CC, DC, NB...
    bank_txn_id: str | None  # UPI RRN/UTR
    txn_date: str | None
    bank_name: str | None = None
    gateway: str | None = None
    currency: str | None = None
    shape: Literal["form", "json"] = "form"


@dataclass(frozen=True, slots=True)
class InvalidCallback:
    """Why a request to the webhook is not a callback we may use (forged, tampered,
    malformed, about another merchant...). Safe to log; never contains the key."""

    reason: str


# ---------------------------------------------------------------------------
# Form


def _decode_form(body: bytes) -> list[tuple[str, str]] | InvalidCallback:
    if len(body) > MAX_CALLBACK_BYTES:
        return InvalidCallback(f"body larger than {MAX_CALLBACK_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return InvalidCallback("form body is not UTF-8")
    try:
        # Percent-escapes that are not UTF-8 become U+FFFD: such a value cannot match the
        # checksum, so nothing forged gets through by being undecodable.
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS,
                         errors="replace")
    except ValueError as exc:  # too many fields
        return InvalidCallback(f"form body not readable: {exc}")


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a form-encoded body (a repeated key keeps its last value); {} for
    anything unreadable. Never raises."""
    pairs = _decode_form(body)
    if isinstance(pairs, InvalidCallback):
        return {}
    return dict(pairs)


def verify_form_callback(fields: Mapping[str, str], key: MerchantKey,
                         mid: str | None = None) -> Callback | InvalidCallback:
    """A key-value callback: CHECKSUMHASH in params mode over every other field (§18.1)."""
    checksum = fields.get(CHECKSUM_FIELD)
    if not checksum:
        return InvalidCallback("no CHECKSUMHASH")
    # Base64 has no spaces: a space here is a "+" that the sender did not percent-encode
    # and form decoding turned into a space. Repairing it cannot make a forgery verify.
    checksum = checksum.replace(" ", "+")
    if not verify_params(fields, key, checksum):
        return InvalidCallback("CHECKSUMHASH does not verify")

    def get(name: str) -> str | None:
        value = fields.get(name)
        return value if value else None

    return _callback(order_id=get("ORDERID"), mid_sent=get("MID"), mid=mid,
                     status=get("STATUS"), txn_id=get("TXNID"), amount=get("TXNAMOUNT"),
                     resp_code=get("RESPCODE"), resp_msg=get("RESPMSG"),
                     payment_mode=get("PAYMENTMODE"), bank_txn_id=get("BANKTXNID"),
                     txn_date=get("TXNDATE"), bank_name=get("BANKNAME"),
                     gateway=get("GATEWAYNAME"), currency=get("CURRENCY"), shape="form")


def parse_form_callback(body: bytes, key: MerchantKey,
                        mid: str | None = None) -> Callback | InvalidCallback:
    pairs = _decode_form(body)
    if isinstance(pairs, InvalidCallback):
        return pairs
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            # Which copy would Paytm have signed? Neither reading is safe.
            return InvalidCallback(f"field {name!r} appears more than once")
        fields[name] = value
    return verify_form_callback(fields, key, mid)


# ---------------------------------------------------------------------------
# JSON


def _scalar(mapping: Mapping[str, object], *keys: str) -> str | None:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str) and value.strip() and value.strip().lower() != "null":
            return value
    return None


def parse_json_callback(body: bytes, key: MerchantKey,
                        mid: str | None = None) -> Callback | InvalidCallback:
    """`{"head": {"signature"}, "body": {...}}`: string mode over the body text as received."""
    if len(body) > MAX_CALLBACK_BYTES:
        return InvalidCallback(f"body larger than {MAX_CALLBACK_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return InvalidCallback("JSON body not readable")
    if not isinstance(document, dict):
        return InvalidCallback("JSON body is not an object")
    head, payload = document.get("head"), document.get("body")
    if not isinstance(head, dict) or not isinstance(payload, dict):
        return InvalidCallback("JSON callback needs head and body objects")
    signature = head.get("signature")
    if not isinstance(signature, str) or not signature:
        return InvalidCallback("no head.signature")
    body_text = member_text(text, "body")
    if body_text is None or not verify(body_text, key, signature):
        return InvalidCallback("head.signature does not verify")
    info = payload.get("resultInfo")
    result: Mapping[str, object] = info if isinstance(info, dict) else {}
    return _callback(
        order_id=_scalar(payload, "orderId", "ORDERID"),
        mid_sent=_scalar(payload, "mid", "MID"), mid=mid,
        status=_scalar(result, "resultStatus") or _scalar(payload, "status", "STATUS"),
        txn_id=_scalar(payload, "txnId", "TXNID"),
        amount=_scalar(payload, "txnAmount", "TXNAMOUNT"),
        resp_code=_scalar(result, "resultCode") or _scalar(payload, "respCode", "RESPCODE"),
        resp_msg=_scalar(result, "resultMsg") or _scalar(payload, "respMsg", "RESPMSG"),
        payment_mode=_scalar(payload, "paymentMode", "PAYMENTMODE"),
        bank_txn_id=_scalar(payload, "bankTxnId", "BANKTXNID"),
        txn_date=_scalar(payload, "txnDate", "TXNDATE"),
        bank_name=_scalar(payload, "bankName", "BANKNAME"),
        gateway=_scalar(payload, "gatewayName", "GATEWAYNAME"),
        currency=_scalar(payload, "currency", "CURRENCY"), shape="json")


# ---------------------------------------------------------------------------


def _callback(*, order_id: str | None, mid_sent: str | None, mid: str | None,
              status: str | None, txn_id: str | None, amount: str | None,
              resp_code: str | None, resp_msg: str | None, payment_mode: str | None,
              bank_txn_id: str | None, txn_date: str | None, bank_name: str | None,
              gateway: str | None, currency: str | None,
              shape: Literal["form", "json"]) -> Callback | InvalidCallback:
    if order_id is None:
        return InvalidCallback("no order id")
    if mid_sent is None:
        return InvalidCallback("no MID")
    if mid is not None and mid_sent != mid:
        return InvalidCallback(f"callback is for MID {mid_sent!r}, not ours")
    final = next((s for s in _FINAL_STATUSES if s == status), None)
    if final is None:
        # Paytm sends callbacks for final states only (§18.1); anything else is not one.
        return InvalidCallback(f"status {status!r} is not TXN_SUCCESS or TXN_FAILURE")
    return Callback(order_id=order_id, mid=mid_sent, txn_id=txn_id, amount=amount,
                    amount_paise=rupees_to_paise(amount), status=final, resp_code=resp_code,
                    resp_msg=resp_msg, payment_mode=payment_mode, bank_txn_id=bank_txn_id,
                    txn_date=txn_date, bank_name=bank_name, gateway=gateway,
                    currency=currency, shape=shape)


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"{"


def parse_callback(body: bytes, content_type: str, key: MerchantKey,
                   mid: str | None = None) -> Callback | InvalidCallback:
    """A callback as it arrived: its body and Content-Type (parameters such as charset are
    ignored). Form or JSON by the content type; without a usable one, by the first byte.
    `mid`: when given, a callback about another merchant is refused. Never raises."""
    try:
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind == JSON_CONTENT_TYPE or (kind != FORM_CONTENT_TYPE and _looks_like_json(body)):
            return parse_json_callback(body, key, mid)
        return parse_form_callback(body, key, mid)
    except Exception as exc:  # a forged request must never become a crash in the receiver
        return InvalidCallback(f"unreadable callback ({type(exc).__name__})")

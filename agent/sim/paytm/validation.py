"""Field checks for the EDC requests, with the limits of reference §4.1/§4.2, §5.1, §6, §10.

Pure functions: a parsed body in, a typed request or a `Refused` error out. The error
carries the Paytm code and the field, so the answer can say
"Request Parameters are not valid: transactionAmount".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from agent.sim.paytm.clock import TIMESTAMP_FORMAT

CODE_INVALID = "0002"
CODE_DISPLAY_INFO = "1810"
CODE_SUB_WALLET = "1809"
CODE_SPLIT_TYPE = "1825"
CODE_TIMEOUT_WITH_SPLIT = "1815"
CODE_SPLIT_WITH_POST_FACTO = "1813"
CODE_TIMEOUT_WITH_AT_TXN = "1814"

# Paytm documents paytmMid as string(20) on the Sale page, string(64) on Status and "min 20"
# on Void, and the operator contract's own example MID has 21 characters: accept 1–32.
_MID_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_TID_RE = re.compile(r"[A-Za-z0-9]{1,8}")  # Sale and Void: string(8)
_STATUS_TID_RE = re.compile(r"[A-Za-z0-9]{1,16}")  # Status Enquiry: string(16)
_TXN_RE = re.compile(r"[A-Za-z0-9]{8,32}")
_AMOUNT_RE = re.compile(r"[1-9][0-9]{0,11}")  # paise, string(12)
_DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_RETRY_COUNT_RE = re.compile(r"[0-9]{1,3}")
_TIMEOUT_CONFIG_RE = re.compile(r"[0-9]{1,2}")
_GSTIN_RE = re.compile(r"[0-9A-Z]{15}")
_GST_BREAKUP_RE = re.compile(r"[A-Z]+:[0-9]+(\.[0-9]{1,2})?(\|[A-Z]+:[0-9]+(\.[0-9]{1,2})?)*")
_INVOICE_DATE_RE = re.compile(r"[0-9]{14}")  # YYYYMMDDHHmmss

MAX_REFERENCE_NO = 32
MAX_CHANNEL_ID = 32
MAX_VERSION = 64  # Sale/Void head.version string(64)
MAX_STATUS_VERSION = 16
MAX_REQUEST_TIMESTAMP = 25
MAX_CHECKSUM = 108
MAX_EXTENDED_INFO = 999  # merchantExtendedInfo / extendInfo: "string(999)"
MAX_INVOICE_NO = 20
DISPLAY_INFO_MAX_ENTRIES = 3  # Map(3), reference §10.1
DISPLAY_INFO_MAX_KEY = 10  # per-entry limits Unconfirmed: the reference's defaults
DISPLAY_INFO_MAX_VALUE = 20
TIMEOUT_CONFIG_MIN, TIMEOUT_CONFIG_MAX = 1, 60
MODE_ALL, MODE_CARD, MODE_QR = "ALL", "CARD", "QR"  # reference §10.6
PAYMENT_MODES = frozenset({MODE_ALL, MODE_CARD, MODE_QR})
# The Sale page lists AT_TXN and POST_FACTO for splitType, and its own 1825 text says
# "if splitType is other than AT_TXN, POST_TXN" (seed 003): all three are accepted.
SPLIT_TYPES = frozenset({"AT_TXN", "POST_FACTO", "POST_TXN"})
SUB_WALLET_TYPES = frozenset({
    "FOOD", "GIFT", "MULTI_PURPOSE_GIFT", "TOLL", "CLOSED_LOOP_WALLET", "CLOSED_LOOP_SUB_WALLET",
    "FUEL", "INTERNATIONAL_FUNDS_TRANSFER", "CASHBACK", "GIFT_VOUCHER", "COMMUNICATION",
})
GST_FIELDS = ("gstIn", "gstBrkUp", "invoiceNo", "invoiceDate")
EVENT_VOID = "VOID"

JsonObject = Mapping[str, object]


class Refused(Exception):  # a refusal is an answer to send, not a fault of the emulator
    """Paytm would refuse this request with `code`; `field` names what is wrong."""

    def __init__(self, code: str, field: str | None = None, detail: str | None = None) -> None:
        self.code = code
        self.field = field
        self.detail = detail
        super().__init__(f"{code} {field or ''} {detail or ''}".strip())


@dataclass(frozen=True, slots=True)
class SaleRequest:
    mid: str
    tid: str
    txn: str
    amount: str  # paise, digits only
    date_time: str
    reference: str | None
    extended_info: object  # merchantExtendedInfo as sent, echoed by Status Enquiry
    extend_info: object  # extendInfo as sent, echoed as `extendedInfo`
    payment_mode: str = MODE_ALL  # ALL, CARD or QR: what the terminal offers the customer


@dataclass(frozen=True, slots=True)
class StatusRequest:
    mid: str
    tid: str
    txn: str
    date_time: str
    void: bool  # event = VOID


@dataclass(frozen=True, slots=True)
class VoidRequest:
    mid: str
    tid: str
    txn: str
    date_time: str


# ---------------------------------------------------------------------------
# Building blocks


def _invalid(field: str, detail: str | None = None) -> Refused:
    return Refused(CODE_INVALID, field, detail)


def _string(body: JsonObject, name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(name, "missing")
        return None
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    return value


def _present(body: JsonObject, name: str) -> str:
    value = _string(body, name, required=True)
    if value is None:  # _string raised already; this keeps the type narrow
        raise _invalid(name, "missing")
    return value


def _matching(body: JsonObject, name: str, pattern: re.Pattern[str]) -> str | None:
    value = _string(body, name, required=False)
    if value is not None and pattern.fullmatch(value) is None:
        raise _invalid(name)
    return value


def _required(body: JsonObject, name: str, pattern: re.Pattern[str]) -> str:
    value = _present(body, name)
    if pattern.fullmatch(value) is None:
        raise _invalid(name)
    return value


def is_timestamp(text: str) -> bool:
    if _DATETIME_RE.fullmatch(text) is None:
        return False
    try:
        datetime.strptime(text, TIMESTAMP_FORMAT)  # a format check only: no zone needed
    except ValueError:
        return False
    return True


def _timestamp(body: JsonObject, name: str) -> str:
    value = _present(body, name)
    if len(value) > MAX_REQUEST_TIMESTAMP or not is_timestamp(value):
        raise _invalid(name, "must be yyyy-MM-dd HH:mm:ss")
    return value


def _bounded(body: JsonObject, name: str, limit: int, required: bool) -> str | None:
    value = _string(body, name, required)
    if value is not None and (len(value) > limit or (required and not value)):
        raise _invalid(name, f"at most {limit} characters")
    return value


def _object_or_text(body: JsonObject, name: str, limit: int) -> object:
    """merchantExtendedInfo/extendInfo: documented as string(999) but sent as an object."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        raise _invalid(name, "must be an object")
    if len(text) > limit:
        raise _invalid(name, f"at most {limit} characters")
    return value


# ---------------------------------------------------------------------------
# Heads


def check_head(head: JsonObject, *, channel_required: bool, version_limit: int) -> None:
    """head.checksum is checked separately (a bad or missing one is 0330, not 0002)."""
    _timestamp(head, "requestTimeStamp")
    _bounded(head, "channelId", MAX_CHANNEL_ID, required=channel_required)
    _bounded(head, "version", version_limit, required=False)


def check_sale_head(head: JsonObject) -> None:
    check_head(head, channel_required=True, version_limit=MAX_VERSION)


def check_status_head(head: JsonObject) -> None:
    check_head(head, channel_required=False, version_limit=MAX_STATUS_VERSION)


def check_void_head(head: JsonObject) -> None:
    check_head(head, channel_required=True, version_limit=MAX_VERSION)


def check_mid(body: JsonObject) -> str:
    return _required(body, "paytmMid", _MID_RE)


# ---------------------------------------------------------------------------
# Bodies


def parse_sale(body: JsonObject) -> SaleRequest:
    mid = check_mid(body)
    # paytmTid is optional on Paytm (it then routes by merchant set-up); the emulator has no
    # such set-up, so it insists on a terminal. Assumption, documented in docs/emulator.md.
    tid = _required(body, "paytmTid", _TID_RE)
    date_time = _timestamp(body, "transactionDateTime")
    txn = _required(body, "merchantTransactionId", _TXN_RE)
    amount = _required(body, "transactionAmount", _AMOUNT_RE)
    reference = _bounded(body, "merchantReferenceNo", MAX_REFERENCE_NO, required=False)
    extended_info = _object_or_text(body, "merchantExtendedInfo", MAX_EXTENDED_INFO)
    if isinstance(extended_info, dict):
        _check_extended_info(extended_info)
    extend_info = _object_or_text(body, "extendInfo", MAX_EXTENDED_INFO)
    _check_flat_options(body)
    mode = _chosen_payment_mode(extended_info, body)
    _check_display_info(body.get("displayInfo"))
    _check_print_info(body.get("printInfo"))
    _check_gst(body.get("gstInformation"))
    _check_sub_wallet(body, int(amount))
    _check_split_and_timeout(body)
    _matching(body, "retryCount", _RETRY_COUNT_RE)
    return SaleRequest(mid=mid, tid=tid, txn=txn, amount=amount, date_time=date_time,
                       reference=reference, extended_info=extended_info,
                       extend_info=extend_info, payment_mode=mode)


def parse_status(body: JsonObject) -> StatusRequest:
    mid = check_mid(body)
    tid = _required(body, "paytmTid", _STATUS_TID_RE)
    date_time = _timestamp(body, "transactionDateTime")
    txn = _required(body, "merchantTransactionId", _TXN_RE)
    event = _string(body, "event", required=False)
    if event is not None and event.upper() != EVENT_VOID:
        raise _invalid("event", 'only "VOID" is known')
    return StatusRequest(mid=mid, tid=tid, txn=txn, date_time=date_time, void=event is not None)


def parse_void(body: JsonObject) -> VoidRequest:
    mid = check_mid(body)
    tid = _required(body, "paytmTid", _TID_RE)
    txn = _required(body, "merchantTransactionId", _TXN_RE)
    date_time = _timestamp(body, "transactionDateTime")
    return VoidRequest(mid=mid, tid=tid, txn=txn, date_time=date_time)


def _payment_mode(value: object, field: str) -> None:
    if not isinstance(value, str) or value.upper() not in PAYMENT_MODES:
        raise _invalid(field, "ALL, CARD or QR")


def _auto_accept(value: object, field: str) -> None:
    if isinstance(value, bool):
        return
    if not isinstance(value, str) or value.lower() not in ("true", "false"):
        raise _invalid(field, '"True" or "False"')


def _check_extended_info(info: Mapping[str, object]) -> None:
    # Paytm's own curl sample spells it "PaymentMode": "All"; Odoo sends "paymentMode": "ALL".
    for key, value in info.items():
        if key.lower() == "paymentmode":
            _payment_mode(value, f"merchantExtendedInfo.{key}")
        elif key.lower() == "autoaccept":
            _auto_accept(value, f"merchantExtendedInfo.{key}")


def _chosen_payment_mode(extended_info: object, body: JsonObject) -> str:
    """merchantExtendedInfo's paymentMode (any spelling of the key, any case of the value,
    reference §10.6), else the top-level one Odoo also sends (§4.2), else ALL."""
    if isinstance(extended_info, dict):
        for key, value in extended_info.items():
            if key.lower() == "paymentmode" and isinstance(value, str):
                return value.upper()
    flat = body.get("paymentMode")
    return flat.upper() if isinstance(flat, str) else MODE_ALL


def _check_flat_options(body: JsonObject) -> None:
    # Odoo also sends paymentMode/autoAccept as top-level strings (reference §4.2).
    if "paymentMode" in body:
        _payment_mode(body["paymentMode"], "paymentMode")
    if "autoAccept" in body:
        _auto_accept(body["autoAccept"], "autoAccept")


def _check_display_info(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _invalid("displayInfo", "must be an object")
    if len(value) > DISPLAY_INFO_MAX_ENTRIES:
        raise Refused(CODE_DISPLAY_INFO, "displayInfo")
    for key, text in value.items():
        if not isinstance(text, str):
            raise _invalid("displayInfo", "values must be strings")
        if len(key) > DISPLAY_INFO_MAX_KEY or len(text) > DISPLAY_INFO_MAX_VALUE:
            raise Refused(CODE_DISPLAY_INFO, "displayInfo")


def _check_print_info(value: object) -> None:
    # Entry count and lengths are Unconfirmed (reference §10.2): only the shape is checked.
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid("printInfo", "must be an object of strings")


def _check_gst(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _invalid("gstInformation", "must be an object")
    if not all(isinstance(value.get(name), str) and value.get(name) for name in GST_FIELDS):
        return  # "all inner fields required if the object is sent, otherwise GST data is ignored"
    gst_in, breakup, invoice_no, invoice_date = (str(value[name]) for name in GST_FIELDS)
    if _GSTIN_RE.fullmatch(gst_in) is None:
        raise _invalid("gstInformation.gstIn")
    if _GST_BREAKUP_RE.fullmatch(breakup) is None:
        raise _invalid("gstInformation.gstBrkUp")
    if len(invoice_no) > MAX_INVOICE_NO:
        raise _invalid("gstInformation.invoiceNo", f"at most {MAX_INVOICE_NO} characters")
    if _INVOICE_DATE_RE.fullmatch(invoice_date) is None or not _valid_compact_date(invoice_date):
        raise _invalid("gstInformation.invoiceDate", "YYYYMMDDHHmmss")


def _valid_compact_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d%H%M%S")  # a format check only: no zone needed
    except ValueError:
        return False
    return True


def _check_sub_wallet(body: JsonObject, amount: int) -> None:
    text = _string(body, "subWalletInfo", required=False)
    if text is None:
        return
    total = 0
    for part in text.split("|"):
        kind, sep, cap = part.partition(":")
        if not sep or kind not in SUB_WALLET_TYPES or not cap.isascii() or not cap.isdigit():
            raise _invalid("subWalletInfo", "TYPE:amount|TYPE:amount")
        total += int(cap)
    if total > amount:
        raise Refused(CODE_SUB_WALLET, "subWalletInfo")


def _check_split_and_timeout(body: JsonObject) -> None:
    split_type = _string(body, "splitType", required=False)
    if split_type is not None and split_type not in SPLIT_TYPES:
        raise Refused(CODE_SPLIT_TYPE, "splitType")
    split_info = body.get("splitInfo")
    if split_info is not None and not isinstance(split_info, str | dict):
        raise _invalid("splitInfo", "must be an object")
    if split_info is not None and split_type == "POST_FACTO":
        raise Refused(CODE_SPLIT_WITH_POST_FACTO, "splitInfo")
    timeout = _string(body, "timeoutConfig", required=False)
    if timeout is None:
        return
    if (_TIMEOUT_CONFIG_RE.fullmatch(timeout) is None
            or not TIMEOUT_CONFIG_MIN <= int(timeout) <= TIMEOUT_CONFIG_MAX):
        raise _invalid("timeoutConfig", f"{TIMEOUT_CONFIG_MIN}–{TIMEOUT_CONFIG_MAX}")
    if split_info is not None:
        raise Refused(CODE_TIMEOUT_WITH_SPLIT, "timeoutConfig")
    if split_type == "AT_TXN":
        raise Refused(CODE_TIMEOUT_WITH_AT_TXN, "timeoutConfig")

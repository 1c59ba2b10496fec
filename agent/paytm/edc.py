"""Async client for Paytm's EDC (wireless ECR) APIs: Sale, Status Enquiry, Void.

A call never raises for anything that happens on the wire. It returns a `CallOutcome`
(see `agent.paytm.outcome`): NotSent when aiohttp failed before writing a byte of the
request, Unknown whenever the request may have been written and no clear answer came
back, Answered with a typed answer otherwise. Requests are validated when they are
built, so a request Paytm would refuse for its format raises `FieldError` before any
byte leaves.

What is posted (reference §3, §4.1):

    {"head": {"requestTimeStamp": "2024-01-01 10:00:00",   IST, whatever the host zone
              "channelId": "EDC",
              "checksum": "<108 chars>",                    over the body, §2.5
              "version": "3.1"},
     "body": <body text>}                                   serialised once, signed as is
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import aiohttp

from agent.errors import FieldError
from agent.paytm.answer_fields import detail, raw_text
from agent.paytm.checksum import ChecksumMode, MerchantKey, generate, generate_params
from agent.paytm.clock import format_paytm, now_ist, parse_paytm
from agent.paytm.codes import EDC_REQUEST_CODES, EDC_STATUS_CODES, Handling
from agent.paytm.edc_answers import (
    PaymentDetails,
    RequestAnswer,
    ResultInfo,
    StatusAnswer,
    StatusState,
)
from agent.paytm.http import check_base_url
from agent.paytm.outcome import Answered, ApiName, CallOutcome, NotSent, Unknown
from agent.paytm.pipeline import Dialect, ExchangeObserver, SignedCaller
from agent.paytm.settings import PaytmConfig
from agent.paytm.transport import Observer, PaytmPoster

# decode_response moved to transport.py with the rest of the HTTP code; importable from here
# as before (an explicit re-export, for mypy --strict).
from agent.paytm.transport import decode_response as decode_response  # noqa: PLC0414
from agent.rules import check_paise, check_tid

log = logging.getLogger(__name__)

SALE_PATH = "/ecr/payment/request"
STATUS_PATH = "/ecr/V2/payment/status"
HEAD_VERSION = "3.1"  # Paytm's own sample sends 3.1 (reference §3)
VOID_EVENT = "VOID"  # Status Enquiry `event` for the status of a void (reference §5.1)

# ---------------------------------------------------------------------------
# Requests

PaymentMode = Literal["ALL", "CARD", "QR"]
PAYMENT_MODES: frozenset[str] = frozenset({"ALL", "CARD", "QR"})

_TXN_RE = re.compile(r"[A-Za-z0-9]{8,32}", re.ASCII)  # merchantTransactionId, reference §3
_INVOICE_DATE_RE = re.compile(r"[0-9]{14}", re.ASCII)  # YYYYMMDDHHmmss, reference §4.2
MAX_REFERENCE_LENGTH = 32  # merchantReferenceNo string(32)
MAX_DISPLAY_ENTRIES = 3  # displayInfo Map(3), reference §10.1
MAX_INVOICE_NO_LENGTH = 20  # gstInformation.invoiceNo, reference §4.2
MAX_EXTENDED_TEXT = 999  # merchantExtendedInfo / extendInfo string(999)


def _check_txn(txn: object) -> None:
    if not isinstance(txn, str) or not _TXN_RE.fullmatch(txn):
        raise FieldError("merchantTransactionId",
                         f"must be 8–32 letters or digits (got {txn!r})")


def _check_time(txn_time: object) -> None:
    if not isinstance(txn_time, datetime) or txn_time.utcoffset() is None:
        raise FieldError("transactionDateTime",
                         "must be a timezone-aware datetime (it is sent in IST)")


def _frozen_map(name: str, value: object) -> Mapping[str, str]:
    """A private read-only copy, so a caller's later edits cannot change a built request."""
    if not isinstance(value, Mapping):
        raise FieldError(name, f"must be a mapping of strings (got {type(value).__name__})")
    copy: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise FieldError(name, f"keys must be non-empty strings (got {key!r})")
        if not isinstance(item, str):
            raise FieldError(f"{name}.{key}", f"must be a string (got {type(item).__name__})")
        copy[key] = item
    return MappingProxyType(copy)


@dataclass(frozen=True, slots=True)
class GstInfo:
    """`gstInformation`: all four fields or none (Paytm ignores a partial block, §4.2)."""

    gst_in: str | None = None
    breakup: str | None = None  # e.g. "CGST:10|SGST:10"
    invoice_no: str | None = None
    invoice_date: str | None = None  # YYYYMMDDHHmmss

    def __post_init__(self) -> None:
        fields = {"gstIn": self.gst_in, "gstBrkUp": self.breakup,
                  "invoiceNo": self.invoice_no, "invoiceDate": self.invoice_date}
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise FieldError(f"gstInformation.{name}", "must be a string")
        missing = [name for name, value in fields.items() if not value]
        if missing:
            raise FieldError(f"gstInformation.{missing[0]}",
                             "is required when any GST field is given (missing: "
                             + ", ".join(missing) + ")")
        invoice_no, invoice_date = fields["invoiceNo"] or "", fields["invoiceDate"] or ""
        if len(invoice_no) > MAX_INVOICE_NO_LENGTH:
            raise FieldError("gstInformation.invoiceNo",
                             f"must be at most {MAX_INVOICE_NO_LENGTH} characters")
        if not _INVOICE_DATE_RE.fullmatch(invoice_date):
            raise FieldError("gstInformation.invoiceDate",
                             f"must be YYYYMMDDHHmmss (got {invoice_date!r})")
        try:
            # A calendar check only (20241301... is 14 digits but no date); no zone involved.
            datetime.strptime(invoice_date, "%Y%m%d%H%M%S")
        except ValueError:
            raise FieldError("gstInformation.invoiceDate",
                             f"is not a real date and time (got {invoice_date!r})") from None

    def to_json(self) -> dict[str, str]:
        return {"gstIn": self.gst_in or "", "gstBrkUp": self.breakup or "",
                "invoiceNo": self.invoice_no or "", "invoiceDate": self.invoice_date or ""}


@dataclass(frozen=True, slots=True)
class SaleRequest:
    tid: str
    txn: str  # merchantTransactionId: a new one for every attempt
    amount: str  # paise, digits only: "1000" is ₹10.00
    txn_time: datetime  # transactionDateTime; keep it, Status Enquiry sends it again
    reference: str | None = None  # merchantReferenceNo, shown on the terminal's pop-up
    payment_mode: PaymentMode | None = None
    auto_accept: bool | None = None  # True skips the terminal's accept pop-up (§10.5)
    display_info: Mapping[str, str] = field(default_factory=dict)
    print_info: Mapping[str, str] = field(default_factory=dict)
    extend_info: Mapping[str, str] = field(default_factory=dict)
    gst: GstInfo | None = None

    def __post_init__(self) -> None:
        check_tid(self.tid, "paytmTid")  # string(8), reference §6
        _check_txn(self.txn)
        check_paise(self.amount, "transactionAmount")  # string(12), reference §3
        _check_time(self.txn_time)
        if self.reference is not None and (
                not isinstance(self.reference, str)
                or not 1 <= len(self.reference) <= MAX_REFERENCE_LENGTH):
            raise FieldError("merchantReferenceNo", f"must be 1–{MAX_REFERENCE_LENGTH} "
                             f"characters (got {self.reference!r})")
        if self.payment_mode is not None and self.payment_mode not in PAYMENT_MODES:
            raise FieldError("merchantExtendedInfo.paymentMode",
                             f"must be ALL, CARD or QR (got {self.payment_mode!r})")
        if self.auto_accept is not None and not isinstance(self.auto_accept, bool):
            raise FieldError("merchantExtendedInfo.autoAccept", "must be true or false")
        for attr, name in (("display_info", "displayInfo"), ("print_info", "printInfo"),
                           ("extend_info", "extendInfo")):
            object.__setattr__(self, attr, _frozen_map(name, getattr(self, attr)))
        if len(self.display_info) > MAX_DISPLAY_ENTRIES:
            raise FieldError("displayInfo", f"may hold at most {MAX_DISPLAY_ENTRIES} entries "
                             f"(got {len(self.display_info)})")
        if self.extend_info and len(json.dumps(dict(self.extend_info))) > MAX_EXTENDED_TEXT:
            raise FieldError("extendInfo", f"must be at most {MAX_EXTENDED_TEXT} characters "
                             "as JSON")
        if self.gst is not None and not isinstance(self.gst, GstInfo):
            raise FieldError("gstInformation", "must be a GstInfo")

    def body(self, mid: str) -> dict[str, object]:
        body: dict[str, object] = {
            "paytmMid": mid,
            "paytmTid": self.tid,
            "transactionDateTime": format_paytm(self.txn_time),
            "merchantTransactionId": self.txn,
        }
        if self.reference is not None:
            body["merchantReferenceNo"] = self.reference
        body["transactionAmount"] = self.amount
        # Both flags live only inside merchantExtendedInfo (reference §10.5, §10.6), an
        # object, so they stay out of the params-mode checksum like every nested object.
        extended: dict[str, str] = {}
        if self.payment_mode is not None:
            extended["paymentMode"] = self.payment_mode
        if self.auto_accept:
            # Paytm documents only "True"; leaving the key out is its default (pop-up shown).
            extended["autoAccept"] = "True"
        if extended:
            body["merchantExtendedInfo"] = extended
        if self.display_info:
            body["displayInfo"] = dict(self.display_info)
        if self.print_info:
            body["printInfo"] = dict(self.print_info)
        if self.extend_info:
            body["extendInfo"] = dict(self.extend_info)
        if self.gst is not None:
            body["gstInformation"] = self.gst.to_json()
        return body


@dataclass(frozen=True, slots=True)
class StatusRequest:
    tid: str
    txn: str  # the sale's merchantTransactionId
    txn_time: datetime  # the sale's transactionDateTime (what Odoo sends, reference §5.1)
    void: bool = False  # ask for the status of the void of that sale (event=VOID)

    def __post_init__(self) -> None:
        check_tid(self.tid, "paytmTid")  # string(8), reference §6
        _check_txn(self.txn)
        _check_time(self.txn_time)

    def body(self, mid: str) -> dict[str, object]:
        body: dict[str, object] = {
            "paytmMid": mid,
            "paytmTid": self.tid,
            "transactionDateTime": format_paytm(self.txn_time),
            "merchantTransactionId": self.txn,
        }
        if self.void:
            body["event"] = VOID_EVENT
        return body


@dataclass(frozen=True, slots=True)
class VoidRequest:
    tid: str
    txn: str  # the original sale's merchantTransactionId
    txn_time: datetime

    def __post_init__(self) -> None:
        check_tid(self.tid, "paytmTid")  # string(8), reference §6
        _check_txn(self.txn)
        _check_time(self.txn_time)

    def body(self, mid: str) -> dict[str, object]:
        return {
            "paytmMid": mid,
            "paytmTid": self.tid,
            "transactionDateTime": format_paytm(self.txn_time),
            "merchantTransactionId": self.txn,
        }


# ---------------------------------------------------------------------------
# Answers (their types: agent.paytm.edc_answers)


# Words Paytm uses for the outcome, in whichever of resultStatus/resultCode is not a letter.
_ACCEPTED_WORDS = frozenset({"ACCEPTED_SUCCESS", "ACCEPTED"})
_SUCCESS_WORDS = frozenset({"SUCCESS", "TXN_SUCCESS"})
_FAILED_WORDS = frozenset({"FAIL", "FAILED", "FAILURE", "TXN_FAILURE"})
_PENDING_WORDS = frozenset({"PENDING"})
# Failure names in the resultMsg column of the Sale page's table (seed 003): a gateway that
# moves them to resultCode still says "refused".
_REQUEST_FAILED_WORDS = _FAILED_WORDS | frozenset({
    "SYSTEM_ERROR", "BLOCKED_MERCHANT", "NOT_FOUND", "MERCHANT_CONFIGURATION_ERROR",
    "MERCHANT_BLOCKED"})
_ACCEPTED_CODE = "0009"
_SUCCESS_CODE = "0000"
_NOT_FOUND_CODE = "0404"
_VOID_NOT_FOUND_CODE = "0180"
# The only codes that make a status FAILED, and only together with F: a sale that "failed"
# but was in fact charged would send the customer away having paid. 0090 says the void
# failed, which says nothing about a sale; 0011 says the sale failed, nothing about a void.
_SALE_FAILED_CODES = frozenset({"0011"})
_VOID_FAILED_CODES = frozenset({"0090"})

_Opinion = Literal["accepted", "success", "failed", "pending", "strange"]
_REQUEST_LETTERS: Mapping[str, _Opinion] = {"A": "accepted", "F": "failed"}
_STATUS_LETTERS: Mapping[str, _Opinion] = {"S": "success", "F": "failed", "P": "pending"}


def _result_info(body: Mapping[str, object]) -> ResultInfo | None:
    info = body.get("resultInfo")
    if not isinstance(info, dict):
        return None
    return ResultInfo(status=raw_text(info.get("resultStatus")),
                      code=raw_text(info.get("resultCode")),
                      code_id=raw_text(info.get("resultCodeId")).strip(),
                      message=raw_text(info.get("resultMsg")))


def _letter_and_words(info: ResultInfo) -> tuple[set[str], set[str]]:
    """The docs disagree on which member holds the one-letter status (reference §4.3):
    read both, and treat every longer value as a word."""
    values = [info.code.strip().upper(), info.status.strip().upper()]
    letters = {v for v in values if len(v) == 1}
    words = {v for v in values if len(v) > 1}
    return letters, words


def _body(document: object) -> tuple[Mapping[str, object], ResultInfo] | Unknown:
    if not isinstance(document, dict):
        return Unknown("answer is not a JSON object")
    body = document.get("body")
    if not isinstance(body, dict):
        return Unknown("answer has no body object")
    info = _result_info(body)
    if info is None:
        return Unknown("answer has no resultInfo object")
    return body, info


def _other_txn(body: Mapping[str, object], txn: str | None) -> Unknown | None:
    echoed = body.get("merchantTransactionId")
    if txn is not None and isinstance(echoed, str) and echoed and echoed != txn:
        return Unknown(f"answer is about merchantTransactionId {echoed!r}, not {txn!r}")
    return None


def parse_request_answer(document: object, txn: str | None = None) -> RequestAnswer | Unknown:
    """Classify a Sale or Void answer (any JSON value); never raises.

    Accepted needs every signal present (letter, word, resultCodeId) to say accepted;
    refused needs them all to say failed *and* a resultCodeId we know. Anything else,
    including signals that contradict each other, is Unknown: "rejected" would tell the
    engine the terminal never got the request, which we would then not know.
    """
    parts = _body(document)
    if isinstance(parts, Unknown):
        return parts
    body, info = parts
    if (other := _other_txn(body, txn)) is not None:
        return other
    letters, words = _letter_and_words(info)
    opinions: set[_Opinion] = set()
    for letter in letters:
        opinions.add(_REQUEST_LETTERS.get(letter, "strange"))
    for word in words:
        if word in _ACCEPTED_WORDS:
            opinions.add("accepted")
        elif word in _REQUEST_FAILED_WORDS:
            opinions.add("failed")
        else:  # a word we do not know says something we cannot read: never a decision
            opinions.add("strange")
    code_id = info.code_id
    if code_id == _ACCEPTED_CODE:
        opinions.add("accepted")
    elif code_id in EDC_REQUEST_CODES:
        opinions.add("failed")
    elif code_id:
        opinions.add("strange")
    if opinions == {"accepted"}:
        return RequestAnswer(accepted=True, code=code_id, message=info.message, result=info)
    if opinions == {"failed"} and code_id in EDC_REQUEST_CODES:
        return RequestAnswer(accepted=False, code=code_id, message=info.message, result=info)
    return Unknown(f"unclear answer: resultStatus={info.status!r} resultCode={info.code!r} "
                   f"resultCodeId={code_id!r} resultMsg={info.message!r}")


def _status_state(info: ResultInfo, void: bool) -> StatusState:
    code_id = info.code_id
    # "Not found" is decided by the code alone: Paytm pairs it with F, and reading that F
    # as "failed" would fail a sale that Paytm simply has not registered yet.
    if code_id == _NOT_FOUND_CODE or (void and code_id == _VOID_NOT_FOUND_CODE):
        return StatusState.NOT_FOUND
    failed_codes = _VOID_FAILED_CODES if void else _SALE_FAILED_CODES
    letters, words = _letter_and_words(info)
    opinions: set[_Opinion] = set()
    for letter in letters:
        opinions.add(_STATUS_LETTERS.get(letter, "strange"))
    for word in words:
        if word in _SUCCESS_WORDS:
            opinions.add("success")
        elif word in _FAILED_WORDS:
            opinions.add("failed")
        elif word in _PENDING_WORDS:
            opinions.add("pending")
        else:
            # "DECLINED" next to an S, say: a word we do not know may contradict the
            # letter, so the answer is "not understood — ask again", never final.
            opinions.add("strange")
    known = EDC_STATUS_CODES.get(code_id)
    if code_id == _SUCCESS_CODE:
        opinions.add("success")
    elif code_id in failed_codes:
        opinions.add("failed")
    elif known is not None and known.handling is Handling.PENDING:
        opinions.add("pending")
    elif code_id:
        # 0012 (system error), 0330 (checksum), a code for the other kind of status, or
        # one we have never seen: none of them says how the payment ended.
        opinions.add("strange")
    if opinions == {"success"}:
        return StatusState.SUCCESS
    if opinions == {"failed"} and code_id in failed_codes:
        return StatusState.FAILED
    return StatusState.PENDING


def _payment(body: Mapping[str, object]) -> PaymentDetails | None:
    card = detail(body, "issuerMaskCardNo")
    scheme = detail(body, "cardScheme")
    card_type = detail(body, "cardType")
    auth_code = detail(body, "authCode")
    rrn = detail(body, "retrievalReferenceNo")
    acquirement_id = detail(body, "acquirementId")
    method = detail(body, "payMethod")
    if method is None:
        if card is not None or scheme is not None or card_type is not None:
            method = "CARD"
        elif rrn is not None:
            # Paytm's UPI answers carry an RRN and null card fields (reference §5.2).
            method = "UPI"
    details = PaymentDetails(method=method, rrn=rrn, auth_code=auth_code, card=card,
                             scheme=scheme, card_type=card_type,
                             bank=detail(body, "issuingBankName"),
                             acquirement_id=acquirement_id,
                             txn_time=detail(body, "transactionDateTime"))
    if all(getattr(details, name) is None for name in
           ("method", "rrn", "auth_code", "card", "scheme", "card_type", "bank",
            "acquirement_id")):
        return None
    return details


def parse_status_answer(document: object, void: bool = False,
                        txn: str | None = None) -> StatusAnswer | Unknown:
    """Classify a Status Enquiry answer (any JSON value); never raises.

    SUCCESS needs every signal to say success; FAILED needs F and a failure code of the
    right kind; 0404 (and 0180 for a void) is NOT_FOUND; everything else is PENDING, so
    the engine asks again instead of deciding on something it does not understand.
    """
    parts = _body(document)
    if isinstance(parts, Unknown):
        return parts
    body, info = parts
    if (other := _other_txn(body, txn)) is not None:
        return other
    return StatusAnswer(state=_status_state(info, void), code=info.code_id,
                        message=info.message, result=info, payment=_payment(body),
                        amount=detail(body, "transactionAmount"),
                        reference=detail(body, "merchantReferenceNo"))


def response_time(document: object) -> datetime | None:
    """Paytm's head.responseTimeStamp as IST (§5.2's example spells it responseTimestamp)."""
    if not isinstance(document, dict):
        return None
    head = document.get("head")
    if not isinstance(head, dict):
        return None
    for key in ("responseTimeStamp", "responseTimestamp"):
        parsed = parse_paytm(head.get(key))
        if parsed is not None:
            return parsed
    return None


# ---------------------------------------------------------------------------
# The client

class EdcClient:
    """Sale, Status Enquiry and Void over one shared session; see the module docstring."""

    def __init__(self, session: aiohttp.ClientSession, config: PaytmConfig, key: MerchantKey,
                 observer: Observer | None = None,
                 exchanges: ExchangeObserver | None = None) -> None:
        self._session = session
        self._config = config
        self._key = key
        self._base_url = check_base_url(config.edc_base_url, "paytm.edc_base_url")
        self._caller = SignedCaller(
            PaytmPoster(session, config),
            Dialect(envelope=self._envelope, verify=note_answer_checksum,
                    server_time=response_time, describe=_describe),
            observer, exchanges)

    async def sale(self, req: SaleRequest) -> CallOutcome[RequestAnswer]:
        return await self._caller.call("sale", self._base_url + SALE_PATH, req.txn,
                                       req.body(self._config.mid),
                                       lambda doc: parse_request_answer(doc, req.txn))

    async def status(self, req: StatusRequest) -> CallOutcome[StatusAnswer]:
        return await self._caller.call("status", self._base_url + STATUS_PATH, req.txn,
                                       req.body(self._config.mid),
                                       lambda doc: parse_status_answer(doc, req.void, req.txn))

    async def void(self, req: VoidRequest) -> CallOutcome[RequestAnswer]:
        return await self._caller.call("void", self._base_url + self._config.void_path,
                                       req.txn, req.body(self._config.mid),
                                       lambda doc: parse_request_answer(doc, req.txn))

    def _envelope(self, body: Mapping[str, object]) -> bytes:
        """The posted document. The body is serialised once and that exact text is both
        signed (json mode) and posted, so the signature covers the bytes Paytm reads."""
        return edc_envelope(body, self._key, self._config.checksum_mode,
                            self._config.channel_id)


def edc_envelope(body: Mapping[str, object], key: MerchantKey, mode: ChecksumMode,
                 channel_id: str) -> bytes:
    """The posted EDC document, signed in `mode` (certify signs in both)."""
    # json.dumps with its defaults, as in Paytm's own Python samples (reference §2.4).
    body_text = json.dumps(body)
    if mode is ChecksumMode.JSON:
        checksum = generate(body_text, key)
    else:
        # Params mode: every top-level string; nested objects are left out (§2.5).
        checksum = generate_params({k: v for k, v in body.items() if isinstance(v, str)}, key)
    head = {
        "requestTimeStamp": format_paytm(now_ist()),
        "channelId": channel_id,
        "checksum": checksum,
        "version": HEAD_VERSION,
    }
    return ('{"head": ' + json.dumps(head) + ', "body": ' + body_text + "}").encode()


def note_answer_checksum(text: str, document: object) -> Unknown | None:
    """EDC answers are trusted on TLS alone: their checksum scheme is undocumented
    (reference §4.4), so one that is present is only logged."""
    del text
    head = document.get("head") if isinstance(document, dict) else None
    if isinstance(head, dict) and ("checksum" in head or "signature" in head):
        log.debug("answer carries head checksum %r", head.get("checksum", head.get("signature")))
    return None


def _describe(api: ApiName, txn: str, outcome: CallOutcome[Any], latency_s: float) -> None:
    match outcome:
        case Answered(response=RequestAnswer() as answer):
            log.info("%s %s: %s %s %r in %.2f s", api, txn,
                     "accepted" if answer.accepted else "refused", answer.code,
                     answer.message, latency_s)
        case Answered(response=StatusAnswer() as answer):
            # Polled every few seconds per lane: DEBUG keeps the technician's log readable.
            log.debug("%s %s: status %s %s %r in %.2f s", api, txn, answer.state.value,
                      answer.code, answer.message, latency_s)
        case NotSent(reason=reason):
            log.warning("%s %s: not sent (%s) after %.2f s", api, txn, reason, latency_s)
        case Unknown(reason=reason):
            log.warning("%s %s: outcome unknown (%s) after %.2f s", api, txn, reason,
                        latency_s)

"""From Paytm's answers to what the register reads. Pure: records and answers in, data out."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.config import Config
from agent.journal import Kind, TxnRecord
from agent.paytm.clock import IST
from agent.paytm.codes import EDC_REQUEST_CODES, EDC_STATUS_CODES, cashier_message
from agent.paytm.edc_answers import PaymentDetails
from agent.receipts import ReceiptData, build_receipt
from agent.register.codec import MessageError, decode_reply, encode
from agent.register.messages import Result

NOT_RECEIVED_CODE = "0404"
NOT_RECEIVED_MESSAGE = "Not received by Paytm"  # protocol §5.6, verbatim
UNKNOWN_MESSAGE = "Status unknown: do not hand over goods, still checking"
MESSAGE_MAX = 80
# A stored result carrying this member has its receipt rebuilt on reading (from the
# journaled request and payment and the current [receipt] config) instead of storing the
# lines: ~600 bytes a sale, twice (the reply and its outbox row). Its value is the wall
# clock the receipt was printed for. Results stored before it keep their own lines.
RECEIPT_AT = "receipt_at"
# …and this one (true) has its `payment` in the row's own payment column, not repeated.
PAYMENT_IN_ROW = "payment_in_row"


@dataclass(frozen=True, slots=True)
class PaytmView:
    """What Paytm says of one transaction when asked without acting on the answer (the
    close-of-day sweep compares it with the journal)."""

    state: str  # success | failed | pending | not_found | unreachable
    paytm_txn_id: str = ""  # Paytm's transaction (or refund) id, "" when it gave none
    amount: str | None = None  # paise, when Paytm said
    code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A final (or unknown) answer for one transaction, before it becomes a `result`."""

    status: str  # success | failed | unknown
    code: str  # Paytm's code ("" when Paytm gave none)
    message: str  # ≤ 80 chars, for the cashier
    payment: dict[str, str]  # protocol `payment` members (only those Paytm sent)


def payment_dict(details: PaymentDetails | None) -> dict[str, str]:
    """Protocol `payment` from Paytm's status fields; members Paytm did not send are left out."""
    if details is None:
        return {}
    pairs = {
        "method": details.method,
        "rrn": details.rrn,
        "auth_code": details.auth_code,
        "card": details.card,
        "scheme": details.scheme,
        "card_type": details.card_type,
        "bank": details.bank,
        "paytm_txn_id": details.acquirement_id,
    }
    return {k: v for k, v in pairs.items() if v}


def success_message(kind: Kind) -> str:
    return {Kind.SALE: "Approved", Kind.VOID: "Voided", Kind.PAYLINK: "Paid",
            Kind.REFUND: "Refunded"}[kind]


def failure_message(code: str, paytm_message: str) -> str:
    """The cashier's text for a failed status: Paytm's own reason when it gave one."""
    if paytm_message and code not in EDC_STATUS_CODES:
        return paytm_message[:MESSAGE_MAX]
    if paytm_message and EDC_STATUS_CODES[code].handling.value == "failed":
        return paytm_message[:MESSAGE_MAX]
    return cashier_message(EDC_STATUS_CODES, code, paytm_message)


def rejection_message(code: str, paytm_message: str) -> str:
    return cashier_message(EDC_REQUEST_CODES, code, paytm_message)


def request_fields(record: TxnRecord) -> dict[str, object]:
    try:
        value = json.loads(record.request)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def receipt_lines(
    record: TxnRecord, outcome: Outcome, config: Config, when: datetime
) -> tuple[str, ...]:
    request = request_fields(record)
    printed_raw = request.get("print_info", {})
    printed = tuple((str(k), str(v)) for k, v in printed_raw.items()) \
        if isinstance(printed_raw, dict) else ()
    pay = outcome.payment
    data = ReceiptData(
        kind=record.kind.value,
        status=outcome.status,
        when=when.astimezone(IST),
        mid=config.paytm.mid,
        tid=record.tid,
        txn=record.txn,
        amount=record.amount,
        message=outcome.message,
        reference=str(request.get("ref") or ""),
        rrn=pay.get("rrn", ""),
        auth_code=pay.get("auth_code", ""),
        card=pay.get("card", ""),
        scheme=pay.get("scheme", ""),
        method=pay.get("method", ""),
        bank=pay.get("bank", ""),
        paytm_txn_id=pay.get("paytm_txn_id", ""),
        parent=record.parent if record.parent != record.txn else "",
        printed=printed,
    )
    return build_receipt(data, width=config.receipt.width, header=config.receipt.header,
                         footer=config.receipt.footer)


def stored_result(result: Result, printed_at: datetime, *,
                  payment_in_row: bool = False) -> dict[str, Any]:
    """What the journal keeps of a result: the result as encoded, without receipt lines,
    plus when they were printed (`RECEIPT_AT`); without `payment` when the same commit
    writes it to the row's payment column (`payment_in_row`). `restore_result` gives
    both back."""
    value: dict[str, Any] = json.loads(encode(dataclasses.replace(result, receipt=())))
    value[RECEIPT_AT] = round(printed_at.timestamp(), 3)
    if payment_in_row and "payment" in value:
        del value["payment"]
        value[PAYMENT_IN_ROW] = True
    return value


def restore_result(stored: dict[str, Any], record: TxnRecord, config: Config) -> Result | None:
    """The result exactly as the register received it (receipt rebuilt when the journal
    kept none); None when `stored` is not a result (an error, or nothing)."""
    if stored.get("type") != "result":
        return None
    data = {k: v for k, v in stored.items() if k not in (RECEIPT_AT, PAYMENT_IN_ROW)}
    if stored.get(PAYMENT_IN_ROW) is True and record.payment:
        data["payment"] = json.loads(record.payment)
    reply = decode_reply(json.dumps(data, separators=(",", ":")).encode("ascii"))
    if not isinstance(reply, Result):
        return None
    printed_at = stored.get(RECEIPT_AT)
    if isinstance(printed_at, int | float) and not reply.receipt:
        payment = {k: str(v) for k, v in reply.payment.to_json().items()} \
            if reply.payment is not None else {}
        outcome = Outcome(str(reply.status), reply.code, reply.message, payment)
        when = datetime.fromtimestamp(float(printed_at), IST)
        reply = dataclasses.replace(reply, receipt=receipt_lines(record, outcome, config, when))
    return reply


def restored_json(text: str, record: TxnRecord, config: Config) -> dict[str, Any]:
    """A journaled reply or outbox payload as sent (the page shows it): parsed JSON, with
    the receipt rebuilt when the journal kept none; {} when unreadable."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    if RECEIPT_AT not in value:
        return value
    try:
        reply = restore_result(value, record, config)
    except (ValueError, MessageError):
        return value
    if reply is None:
        return value
    full: dict[str, Any] = json.loads(encode(reply))
    return full


def payload_bytes(payload: str, record: TxnRecord, config: Config) -> bytes:
    """The frame payload for a journaled result: its stored text, or with the receipt
    rebuilt (and trimmed to one frame exactly as the first time) when the journal kept none."""
    if RECEIPT_AT not in payload:
        return payload.encode("ascii")
    try:
        reply = restore_result(json.loads(payload), record, config)
    except (ValueError, MessageError):
        reply = None
    return encode(reply) if reply is not None else payload.encode("ascii")

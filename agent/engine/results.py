"""From Paytm's answers to what the register reads. Pure: records and answers in, data out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from agent.config import Config
from agent.journal import Kind, TxnRecord
from agent.paytm.clock import IST
from agent.paytm.codes import EDC_REQUEST_CODES, EDC_STATUS_CODES, cashier_message
from agent.paytm.edc import PaymentDetails
from agent.receipts import ReceiptData, build_receipt

NOT_RECEIVED_CODE = "0404"
NOT_RECEIVED_MESSAGE = "Not received by Paytm"  # protocol §5.6, verbatim
UNKNOWN_MESSAGE = "Status unknown: do not hand over goods, still checking"
MESSAGE_MAX = 80


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

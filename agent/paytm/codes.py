"""Paytm result codes as data: meaning, how the agent handles them, and what the cashier reads.

One table serves the client (classification), the emulator (what to answer) and
the engine (cashier messages). Sources: reference §4.4 (Sale/Void, Confirmed),
§5.3 (Status Enquiry, reported by integrators), §16 (refunds), §14 (PG status).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Handling(StrEnum):
    """What the agent does on seeing a code."""

    PROCEED = "proceed"  # accepted: start polling
    SUCCESS = "success"  # final success
    FAILED = "failed"  # final failure
    PENDING = "pending"  # not final: keep polling
    FIX_REQUEST = "fix_request"  # the request is wrong; retrying it unchanged cannot help
    OPERATOR = "operator"  # a person must act (terminal inactive, merchant blocked, config)
    BUSY = "busy"  # the terminal already has an open request
    RETRY_STATUS = "retry_status"  # Paytm-side error: ask for the status again later
    DUPLICATE = "duplicate"  # the id was used before: ask for its status
    NOT_FOUND = "not_found"  # Paytm does not know the id (yet)


@dataclass(frozen=True, slots=True)
class ResultCode:
    code: str
    name: str  # Paytm's own word for it
    meaning: str
    handling: Handling
    cashier: str  # ≤ 80 chars, for the register's `message`


def _table(*codes: ResultCode) -> dict[str, ResultCode]:
    return {c.code: c for c in codes}


# Sale and Void responses (`resultCodeId`), reference §4.4 — Confirmed.
EDC_REQUEST_CODES: dict[str, ResultCode] = _table(
    ResultCode("0009", "ACCEPTED_SUCCESS", "Request accepted and routed to terminal",
               Handling.PROCEED, "Sent to terminal"),
    ResultCode("0330", "FAIL", "Invalid checksum", Handling.OPERATOR,
               "Paytm rejected the signature: check the merchant key"),
    ResultCode("1809", "FAIL", "Sub-wallet amount greater than transaction amount",
               Handling.FIX_REQUEST, "Sub-wallet amount is above the sale amount"),
    ResultCode("1810", "FAIL", "Length of DisplayInfo Param Greater than Max Length",
               Handling.FIX_REQUEST, "Display text too long for the terminal"),
    ResultCode("0007", "FAIL", "Terminal is not in active state", Handling.OPERATOR,
               "Terminal is not active"),
    ResultCode("0333", "FAIL", "Multiple payment request not allowed for same terminal..!",
               Handling.BUSY, "Terminal is busy with another payment"),
    ResultCode("0002", "FAIL", "Request Parameters are not valid", Handling.FIX_REQUEST,
               "Paytm found the request invalid"),
    ResultCode("0012", "SYSTEM_ERROR", "Paytm system error", Handling.RETRY_STATUS,
               "Paytm system error, try again"),
    ResultCode("0022", "BLOCKED_MERCHANT", "Merchant is blocked", Handling.OPERATOR,
               "Merchant account blocked: call Paytm"),
    ResultCode("0029", "NOT_FOUND", "Merchant or terminal not found", Handling.OPERATOR,
               "Merchant or terminal unknown to Paytm: check MID/TID"),
    ResultCode("0233", "FAIL", "Duplicate Order Id..!", Handling.DUPLICATE,
               "Transaction id already used"),
    ResultCode("9001", "MERCHANT_CONFIGURATION_ERROR", "Merchant configuration error",
               Handling.OPERATOR, "Merchant set-up error at Paytm: call Paytm"),
    ResultCode("0902", "MERCHANT_BLOCKED", "Merchant is blocked", Handling.OPERATOR,
               "Merchant account blocked: call Paytm"),
    ResultCode("1825", "FAIL", "splitType is other than AT_TXN, POST_TXN", Handling.FIX_REQUEST,
               "Invalid split type"),
    ResultCode("1815", "FAIL", "Timeout config cannot be passed with split params",
               Handling.FIX_REQUEST, "Invalid request options"),
    ResultCode("1813", "FAIL", "Split params cannot be passed with POST_FACTO type",
               Handling.FIX_REQUEST, "Invalid request options"),
    ResultCode("1814", "FAIL", "Timeout config cannot be passed on along with AT_TXN time",
               Handling.FIX_REQUEST, "Invalid request options"),
)

# Status Enquiry (`resultCodeId`), reference §5.3 — reported by integrators, Unconfirmed.
EDC_STATUS_CODES: dict[str, ResultCode] = _table(
    ResultCode("0000", "SUCCESS", "Success", Handling.SUCCESS, "Approved"),
    ResultCode("0010", "PENDING", "Please check status on EDC machine", Handling.PENDING,
               "Waiting for the customer"),
    ResultCode("0030", "PENDING", "Please check status on EDC machine", Handling.PENDING,
               "Waiting for the customer"),
    ResultCode("0011", "FAIL", "Sale transaction failed", Handling.FAILED, "Payment failed"),
    ResultCode("0012", "SYSTEM_ERROR", "Paytm system error", Handling.RETRY_STATUS,
               "Paytm system error"),
    ResultCode("0404", "NOT_FOUND", "Merchant transaction id does not exist", Handling.NOT_FOUND,
               "Not received by Paytm"),
    ResultCode("0090", "FAIL", "ECR void failed", Handling.FAILED, "Void failed"),
    ResultCode("0180", "NOT_FOUND", "Void transaction not found", Handling.NOT_FOUND,
               "No void found for this sale"),
    ResultCode("0330", "FAIL", "Invalid checksum", Handling.OPERATOR,
               "Paytm rejected the signature: check the merchant key"),
)

# PG Transaction Status (`resultCode`), reference §14.
PG_STATUS_CODES: dict[str, ResultCode] = _table(
    ResultCode("01", "TXN_SUCCESS", "Txn Success", Handling.SUCCESS, "Paid"),
    ResultCode("227", "TXN_FAILURE", "Declined by the bank", Handling.FAILED,
               "Declined by the bank"),
    ResultCode("810", "TXN_FAILURE", "Transaction failed or closed", Handling.FAILED,
               "Payment link failed or closed"),
    ResultCode("400", "PENDING", "Transaction status not confirmed yet", Handling.PENDING,
               "Waiting for the customer"),
    ResultCode("402", "PENDING", "Payment not complete, confirming with bank", Handling.PENDING,
               "Confirming with the bank"),
    ResultCode("334", "NO_RECORD_FOUND", "Invalid order id", Handling.NOT_FOUND,
               "Not paid yet"),
)

# Refund and Refund Status (`resultCode`), reference §16 — Observed.
REFUND_CODES: dict[str, ResultCode] = _table(
    ResultCode("10", "TXN_SUCCESS", "Refund successful", Handling.SUCCESS, "Refunded"),
    ResultCode("601", "PENDING", "Refund raised, pending", Handling.PENDING, "Refund pending"),
    ResultCode("600", "TXN_FAILURE", "Invalid refund request", Handling.FIX_REQUEST,
               "Invalid refund request"),
    ResultCode("607", "TXN_FAILURE", "Cannot refund a cancelled transaction",
               Handling.FAILED, "Cannot refund a cancelled payment"),
    ResultCode("617", "TXN_FAILURE", "Refund already raised", Handling.DUPLICATE,
               "Refund already raised"),
    ResultCode("619", "TXN_FAILURE", "Invalid refund amount", Handling.FIX_REQUEST,
               "Refund amount is more than what is left"),
    ResultCode("620", "TXN_FAILURE", "Balance not enough", Handling.FAILED,
               "Not enough merchant balance for the refund"),
    ResultCode("626", "TXN_FAILURE", "Another refund on the same order in progress",
               Handling.BUSY, "Another refund on this order is in progress"),
    ResultCode("627", "TXN_FAILURE", "Order details mismatch", Handling.FIX_REQUEST,
               "Order details do not match"),
    ResultCode("628", "PENDING", "Pending at the bank", Handling.PENDING,
               "Refund pending at the bank"),
    ResultCode("629", "TXN_FAILURE", "Refund already successful", Handling.FAILED,
               "Already refunded"),
    ResultCode("631", "TXN_FAILURE", "Record not found", Handling.NOT_FOUND,
               "Refund not found"),
    ResultCode("635", "TXN_FAILURE", "Partial refund under Rs 1 not allowed",
               Handling.FIX_REQUEST, "Partial refunds under ₹1 are not allowed"),
    ResultCode("330", "TXN_FAILURE", "Invalid checksum", Handling.OPERATOR,
               "Paytm rejected the signature: check the merchant key"),
    ResultCode("501", "TXN_FAILURE", "System error", Handling.RETRY_STATUS,
               "Paytm system error"),
)


def cashier_message(table: dict[str, ResultCode], code: str, fallback: str) -> str:
    """The short text the cashier sees for `code`; Paytm's own text when we do not know it."""
    known = table.get(code)
    text = known.cashier if known is not None else (fallback or f"Paytm code {code}")
    return text[:80]

"""What Paytm's EDC APIs answer (reference §4.3, §5.2), as types. The parsers that build
them live with the client (`agent.paytm.edc`); the types live here so that the engine and
the technician page can name an answer without importing the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.paytm.codes import EDC_REQUEST_CODES, Handling, ResultCode


@dataclass(frozen=True, slots=True)
class ResultInfo:
    """`resultInfo` exactly as received ("" for a missing or non-string member)."""

    status: str  # resultStatus
    code: str  # resultCode
    code_id: str  # resultCodeId
    message: str  # resultMsg


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    """Paytm's synchronous answer to a Sale or Void: queued to the terminal, or refused."""

    accepted: bool  # True only means "routed to the terminal", never "paid"
    code: str  # resultCodeId ("" if Paytm sent none with a clear acceptance)
    message: str
    result: ResultInfo

    @property
    def known(self) -> ResultCode | None:
        return EDC_REQUEST_CODES.get(self.code)

    @property
    def handling(self) -> Handling | None:
        known = self.known
        return known.handling if known is not None else None


class StatusState(StrEnum):
    SUCCESS = "success"  # final: paid (or voided, for a void status)
    FAILED = "failed"  # final: Paytm clearly said F with a failure code
    PENDING = "pending"  # not final, or not understood: ask again
    NOT_FOUND = "not_found"  # Paytm does not know the id (yet)


@dataclass(frozen=True, slots=True)
class PaymentDetails:
    """Payment fields of a Status Enquiry answer (reference §5.2), as Paytm sent them."""

    method: str | None  # payMethod, or "CARD"/"UPI" derived from the fields present
    rrn: str | None  # retrievalReferenceNo
    auth_code: str | None
    card: str | None  # issuerMaskCardNo, e.g. 4111XXXX1111
    scheme: str | None  # cardScheme
    card_type: str | None
    bank: str | None  # issuingBankName
    acquirement_id: str | None  # Paytm's transaction id: needed for refunds
    txn_time: str | None  # transactionDateTime, as sent


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    state: StatusState
    code: str  # resultCodeId
    message: str
    result: ResultInfo
    payment: PaymentDetails | None  # None when Paytm sent no payment field at all
    amount: str | None  # transactionAmount echo, paise
    reference: str | None  # merchantReferenceNo echo

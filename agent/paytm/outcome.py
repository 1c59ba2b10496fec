"""What became of one call to Paytm, as a type: the money-critical distinction.

    NotSent   the request provably never reached Paytm (refused, DNS, TLS handshake,
              connect timeout): sending it again cannot double-charge.
    Unknown   it may have reached Paytm and we could not read a clear answer (read
              timeout, reset mid-response, 5xx, garbage): a Sale in this state may be
              charged and must be resolved by Status Enquiry, never re-sent or reported failed.
    Answered  Paytm answered in a form we understood; the answer type says what it meant.

Callers match on the class (`match outcome: case Answered(...)`); there is no status string.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeAlias, TypeVar

T = TypeVar("T")

# EDC: Sale, Status Enquiry, Void. PG: Send and Resend Payment Request, Transaction Status,
# Refund, Refund Status.
ApiName = Literal["sale", "status", "void",
                  "send_link", "resend_link", "pg_status", "refund_apply", "refund_status"]
OutcomeKind = Literal["answered", "not_sent", "unknown"]


@dataclass(frozen=True, slots=True)
class NotSent:
    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: str
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Answered(Generic[T]):
    response: T
    latency_s: float
    server_time: datetime | None  # Paytm's responseTimeStamp, IST; None if absent or unparseable


CallOutcome: TypeAlias = Answered[T] | NotSent | Unknown


def outcome_kind(outcome: CallOutcome[T]) -> OutcomeKind:
    match outcome:
        case Answered():
            return "answered"
        case NotSent():
            return "not_sent"
        case Unknown():
            return "unknown"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished call, for the diagnostics page (last latency, last result, clock skew)."""

    api: ApiName
    txn: str  # merchantTransactionId (EDC) or order id (PG) the call was about
    outcome: OutcomeKind
    code: str | None  # Paytm's resultCodeId (EDC) or resultCode (PG) when answered
    latency_s: float  # from just before the request to the end of the answer (or the failure)
    server_time: datetime | None  # Paytm's responseTimeStamp (IST), when answered
    wall_time: datetime  # our own clock, aware, when the call finished
    reason: str | None = None  # why it was not sent or is unknown

    @property
    def clock_skew_s(self) -> float | None:
        """Paytm's clock minus ours, to within the call's latency plus a second (Paytm's
        timestamps have whole seconds); None when Paytm gave no time."""
        if self.server_time is None:
            return None
        return (self.server_time - self.wall_time).total_seconds()

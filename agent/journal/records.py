"""Typed rows of the journal."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass


class Kind(enum.StrEnum):
    SALE = "sale"
    VOID = "void"
    PAYLINK = "paylink"
    REFUND = "refund"


class TxnState(enum.StrEnum):
    """architecture.md: received → sending → accepted → pending → success | failed;
    sending/pending → unknown when the agent stops waiting; unknown → success | failed later."""

    RECEIVED = "received"
    SENDING = "sending"  # written before the HTTP request leaves: "might have reached Paytm"
    ACCEPTED = "accepted"
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    UNKNOWN = "unknown"


FINAL_STATES = frozenset({TxnState.SUCCESS, TxnState.FAILED})
# States in which a sale or void holds its terminal (protocol §5.1, §5.5: unknown frees it).
HOLDING_STATES = frozenset(
    {TxnState.RECEIVED, TxnState.SENDING, TxnState.ACCEPTED, TxnState.PENDING}
)


@dataclass(frozen=True, slots=True)
class NotFoundRun:
    """Paytm's consecutive "not found" answers about a row (`txns.not_found_*`): when the
    first came on the row's money clock and how many came. What makes them evidence is
    the engine's rule (`agent.engine.clock`); the journal only keeps them across restarts."""

    first_s: float  # elapsed_s (monotonic seconds since `sending`) of the run's first answer
    count: int  # answers in the run, the first included (>= 1)


@dataclass(frozen=True, slots=True)
class TxnRecord:
    row_id: int
    kind: Kind
    txn: str  # merchant txn id; for a void the sale's id; for a refund the refund_id
    lane: str
    tid: str  # the terminal (sale/void); "" for payment links and refunds
    amount: str  # paise
    parent: str  # void/refund: the original txn; "" otherwise
    state: TxnState
    request: str  # the register's request, as validated JSON (for resume and display)
    txn_time: str  # transactionDateTime sent to Paytm (IST, yyyy-MM-dd HH:mm:ss)
    created_at: float  # wall clock
    updated_at: float
    sent_at: float | None  # wall clock when `sending` was committed
    code: str  # last Paytm code seen ("" when none)
    message: str
    reply: str  # the final reply sent to the register (result or error JSON without id/re)
    payment: str  # payment details JSON from Paytm ("" when none)
    not_sent: bool  # final only because the request provably never reached Paytm
    elapsed_s: float = 0.0  # monotonic seconds since `sending`, as of the last save
    not_found: NotFoundRun | None = None  # the current run of "not found" answers, if any

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def payment_details(self) -> dict[str, object]:
        """`payment` as an object ({} when none or unreadable)."""
        try:
            value = json.loads(self.payment) if self.payment else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class EventRecord:
    row_id: int
    txn_row: int
    at: float
    state: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class SweepRecord:
    """One reconciliation sweep of a day (issue 13): what was asked and what it found."""

    row_id: int
    day: str  # YYYY-MM-DD, IST
    trigger: str  # "close_at" (the daemon's schedule) or "page" (the Tools button, the API)
    started_at: float
    finished_at: float
    asked: int  # transactions Paytm was asked about
    changed: int  # of those, how many the journal now records differently
    disagreements: int  # journal and Paytm disagree: a person must act
    report: str  # JSON: {"changes": [...], "findings": [...]}


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A result waiting for (or having had) the register's ACK."""

    row_id: int
    txn_row: int
    lane: str
    payload: str  # the result message JSON without the per-send `id`
    created_at: float
    delivered_at: float | None
    superseded: bool



@dataclass(frozen=True, slots=True)
class ArchivedTxn:
    """A transaction retention moved to a month archive (`archived_txns`): enough to judge
    a repeated request without reading the archive; the rest is in `month`'s file."""

    kind: Kind
    txn: str
    month: str  # "YYYY-MM" (IST): the archive file that holds it
    state: TxnState  # final: success or failed
    amount: str  # paise
    tid: str  # the terminal ("" for payment links and refunds)


@dataclass(frozen=True, slots=True)
class ArchivedFamily:
    """An archived transaction read back from its archive, with what happened to it later
    (its void and refunds, archived with it or still in the journal). `record.row_id` is
    the row it had: no journal row has it any more, nothing may be written to it."""

    record: TxnRecord
    void: TxnRecord | None
    refunds: tuple[TxnRecord, ...]


# The one table of legal state moves; the journal refuses anything else (a JournalError,
# logged with the row) rather than write it. A move to the same non-final state records an
# event only (a status answer that changed nothing). `failed` is left only by a row that
# provably never reached Paytm (`not_sent`), which may then be sent under the same row.
TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    TxnState.RECEIVED: frozenset({TxnState.SENDING, TxnState.FAILED}),
    TxnState.SENDING: frozenset({TxnState.SENDING, TxnState.ACCEPTED, TxnState.PENDING,
                                 TxnState.SUCCESS, TxnState.FAILED, TxnState.UNKNOWN}),
    TxnState.ACCEPTED: frozenset({TxnState.ACCEPTED, TxnState.PENDING, TxnState.SUCCESS,
                                  TxnState.FAILED, TxnState.UNKNOWN}),
    TxnState.PENDING: frozenset({TxnState.PENDING, TxnState.SUCCESS, TxnState.FAILED,
                                 TxnState.UNKNOWN}),
    TxnState.UNKNOWN: frozenset({TxnState.UNKNOWN, TxnState.SUCCESS, TxnState.FAILED}),
    TxnState.SUCCESS: frozenset(),
    TxnState.FAILED: frozenset(),
}
NOT_SENT_RETRY = frozenset({TxnState.SENDING})  # from failed, only when not_sent


def transition_allowed(current: TxnState, target: TxnState, *, not_sent: bool) -> bool:
    if target in TRANSITIONS[current]:
        return True
    return current is TxnState.FAILED and not_sent and target in NOT_SENT_RETRY


def later_steps(void: TxnRecord | None, refunds: Iterable[TxnRecord]) -> tuple[bool, int]:
    """What later steps did to a sale or payment link: (a void succeeded, paise refunded by
    the successful refunds). The one reading of its void and refunds, for the register's
    `voided`/`refunded` and for the page."""
    voided = void is not None and void.state is TxnState.SUCCESS
    return voided, sum(int(r.amount) for r in refunds if r.state is TxnState.SUCCESS)

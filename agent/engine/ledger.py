"""The ledger: the one owner of the claims that earn the right to call Paytm.

Protocol §5's rules and where they are enforced:

- One in flight per terminal (§5.1): `claim` takes the terminal; `settle` frees it. Both
  are synchronous, and `claim` does every check and the taking in one call, with no
  `await` in it, so two requests can never both pass — this is enforced by the code's
  shape (a plain method), not by a comment asking callers to be careful.
- One opening per (kind, txn): while a claim for (kind, txn) has not yet committed its
  `sending` row, a second request for the same (kind, txn) waits for it (`settled`) and
  then finds the row in the journal (§5.2: answered from the journal, never sent again).
- Only a claim writes `sending` (`Claim.send`): the row that must be on disk before a
  request may reach Paytm. If that write fails, the claim is released and nothing is sent.
- Rules between kinds: a sale with a refund pending or successful cannot be voided; a
  refund is refused while a void of its sale is pending or successful, while another
  refund of it is pending (the seed's REFID rule), and past the amount left. In-flight
  claims count as pending: the journal cannot see them yet.
- Paytm's final status with another amount than asked: never `success` (`amount_warning`).

The ledger reads the journal; it writes only `sending` (through a claim). Everything
after that (results, releases) goes through `settle`, called by the reporter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.journal import FINAL_STATES, Journal, Kind, TxnRecord, TxnState, later_steps
from agent.receipts import rupees
from agent.register.messages import ErrorCode

log = logging.getLogger(__name__)

AMOUNT_MISMATCH_MESSAGE = "Paid amount differs: check with Paytm"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request may not go to Paytm; becomes the register's `error`."""

    code: ErrorCode
    message: str
    txn: str  # the txn the error names (for TERMINAL_BUSY: the holder)
    field: str | None = None
    holder: Kind | None = None  # TERMINAL_BUSY: the kind of the transaction holding it


class Claim:
    """The right to send one request (kind, txn) to Paytm. Only a claim writes `sending`."""

    def __init__(self, ledger: Ledger, kind: Kind, txn: str, tid: str, parent: str,
                 holds_terminal: bool) -> None:
        self._ledger = ledger
        self.kind = kind
        self.txn = txn
        self.tid = tid
        self.parent = parent
        self.holds_terminal = holds_terminal
        self._settled = asyncio.Event()
        self.record: TxnRecord | None = None

    async def send(self, journal: Journal, existing: TxnRecord | None, *, lane: str,
                   tid: str, amount: str, request: dict[str, Any],
                   txn_time: str) -> TxnRecord:
        """Commit `sending`. On failure the claim is released and nothing may be sent.

        `existing` is a row whose earlier attempt provably never reached Paytm (not_sent):
        this is then its first send, under the same row.
        """
        try:
            if existing is None:
                record = await journal.create(
                    kind=self.kind, txn=self.txn, lane=lane, tid=tid, amount=amount,
                    request=request, txn_time=txn_time, parent=self.parent,
                    states=(TxnState.RECEIVED, TxnState.SENDING))
            else:
                record = await journal.transition(
                    existing.row_id, TxnState.SENDING, not_sent=False, lane=lane,
                    detail="sent again after CLOUD_UNAVAILABLE")
        except BaseException:
            self.release()
            raise
        self.record = record
        if self._ledger._on_sent is not None:
            self._ledger._on_sent(record)
        # The journal now shows the row: the opening is over, the terminal stays held.
        self._ledger._opened(self)
        return record

    def release(self) -> None:
        """Give everything back (sending was never committed). Idempotent."""
        self._ledger._release(self)

    async def settled(self) -> None:
        await self._settled.wait()


class Ledger:
    def __init__(self, journal: Journal,
                 on_sent: Callable[[TxnRecord], None] | None = None) -> None:
        self._journal = journal
        self._on_sent = on_sent  # called once `sending` is committed (the money clock)
        self._terminals: dict[str, str] = {}  # terminal id → txn of the sale/void holding it
        self._holders: dict[str, Kind] = {}  # terminal id → the holder's kind
        self._opening: dict[tuple[Kind, str], Claim] = {}  # claims not yet `sending`

    # -- facts --------------------------------------------------------------------------

    def holder(self, tid: str) -> str | None:
        return self._terminals.get(tid)

    def busy_terminals(self) -> dict[str, str]:
        return dict(self._terminals)

    def opening(self, kind: Kind, txn: str) -> Claim | None:
        """A claim for (kind, txn) whose `sending` is not on disk yet."""
        return self._opening.get((kind, txn))

    async def wait_opened(self, kind: Kind, txn: str) -> None:
        """Wait until no claim for (kind, txn) is between its checks and its `sending` row:
        after that the journal answers every question about it. Take no `await` between
        this and `claim`."""
        while (claim := self._opening.get((kind, txn))) is not None:
            await claim.settled()

    # -- claims -------------------------------------------------------------------------

    def claim(self, kind: Kind, txn: str, *, tid: str = "", parent: str = "",
              amount: str = "", original_amount: str = "") -> Claim | Refusal:
        """Check every rule and take the claim, in one synchronous step."""
        if (kind, txn) in self._opening:
            # Callers wait for `opening()` first; two openings of one id are a bug.
            raise RuntimeError(f"{kind.value} {txn} is already being opened")
        holds = kind in (Kind.SALE, Kind.VOID)
        if holds:
            holder = self._terminals.get(tid)
            if holder is not None:
                return Refusal(ErrorCode.TERMINAL_BUSY, f"Terminal busy with {holder}", holder,
                               holder=self._holders[tid])
        refusal = self._between_kinds(kind, txn, parent, amount, original_amount)
        if refusal is not None:
            return refusal
        claim = Claim(self, kind, txn, tid, parent, holds)
        self._opening[(kind, txn)] = claim
        if holds:
            self._terminals[tid] = txn
            self._holders[tid] = kind
        return claim

    def hold(self, tid: str, txn: str, kind: Kind) -> None:
        """Recovery (or a sale Paytm has open that the journal lacked): the terminal is held."""
        if tid not in self._terminals:
            self._terminals[tid] = txn
            self._holders[tid] = kind

    def settle(self, record: TxnRecord) -> None:
        """The one place a terminal is freed: its sale or void is final, unknown, refused
        by Paytm or provably never sent."""
        if record.kind in (Kind.SALE, Kind.VOID) and self._terminals.get(record.tid) == record.txn:
            del self._terminals[record.tid]

    def _opened(self, claim: Claim) -> None:
        if self._opening.get((claim.kind, claim.txn)) is claim:
            del self._opening[(claim.kind, claim.txn)]
        claim._settled.set()

    def _release(self, claim: Claim) -> None:
        self._opened(claim)
        if claim.holds_terminal and self._terminals.get(claim.tid) == claim.txn:
            del self._terminals[claim.tid]

    # -- rules between kinds -------------------------------------------------------------

    def _between_kinds(self, kind: Kind, txn: str, parent: str, amount: str,
                       original_amount: str) -> Refusal | None:
        if kind is Kind.VOID:
            return self._void_rule(parent)
        if kind is Kind.REFUND:
            return self._refund_rule(txn, parent, amount, original_amount)
        return None

    def _in_flight(self, kind: Kind, parent: str) -> Iterator[Claim]:
        return (c for c in self._opening.values() if c.kind is kind and c.parent == parent)

    def _void_rule(self, sale: str) -> Refusal | None:
        claim = next(self._in_flight(Kind.REFUND, sale), None)
        if claim is not None:
            return Refusal(ErrorCode.NOT_ALLOWED,
                           f"Refund {claim.txn} of this sale is pending: cannot void", sale)
        for refund in self._journal.children(Kind.REFUND, sale):
            if refund.state is TxnState.SUCCESS:
                return Refusal(ErrorCode.NOT_ALLOWED,
                               f"Sale was refunded ({refund.txn}): cannot void", sale)
            if _open(refund):
                return Refusal(ErrorCode.NOT_ALLOWED,
                               f"Refund {refund.txn} of this sale is pending: cannot void", sale)
        return None

    def _refund_rule(self, refund_id: str, original: str, amount: str,
                     original_amount: str) -> Refusal | None:
        if next(self._in_flight(Kind.VOID, original), None) is not None:
            return Refusal(ErrorCode.NOT_ALLOWED, "A void of this sale is pending: cannot "
                           "refund", original)
        void = self._journal.find(Kind.VOID, original)
        if void is not None and void.state is TxnState.SUCCESS:
            return Refusal(ErrorCode.NOT_ALLOWED, "This sale was voided: nothing to refund",
                           original)
        if void is not None and _open(void):
            return Refusal(ErrorCode.NOT_ALLOWED, "A void of this sale is pending: cannot "
                           "refund", original)
        claim = next(self._in_flight(Kind.REFUND, original), None)
        if claim is not None:
            return Refusal(ErrorCode.NOT_ALLOWED,
                           f"Refund {claim.txn} on this order is still pending", original)
        refunded = 0
        for other in self._journal.children(Kind.REFUND, original):
            if other.txn == refund_id:
                continue
            if _open(other):
                # REFID rule: a pending refund must not be retried or doubled up.
                return Refusal(ErrorCode.NOT_ALLOWED,
                               f"Refund {other.txn} on this order is still pending", original)
            if other.state is TxnState.SUCCESS:
                refunded += int(other.amount)
        if original_amount and amount:
            left = int(original_amount) - refunded
            if int(amount) > left:
                return Refusal(ErrorCode.NOT_ALLOWED,
                               f"Refund above what is left ({rupees(left)})", original,
                               field="amount")
        return None

    # -- what later steps did to a sale ---------------------------------------------------

    def history(self, record: TxnRecord) -> tuple[bool, str | None]:
        """(voided, refunded paise or None) for a sale or payment link."""
        if record.kind not in (Kind.SALE, Kind.PAYLINK):
            return False, None
        void = self._journal.find(Kind.VOID, record.txn) if record.kind is Kind.SALE else None
        voided, refunded = later_steps(void, self._journal.children(Kind.REFUND, record.txn))
        return voided, str(refunded) if refunded else None


def amount_warning(record: TxnRecord, reported: str | None) -> str | None:
    """One rule for EDC and payment links: a final answer for another amount than asked
    is not a success. Returns the warning, or None when the amounts agree (or Paytm gave
    none)."""
    if reported and reported != record.amount:
        return f"Paytm reports amount {reported} paise, asked {record.amount}"
    return None


def _open(record: TxnRecord) -> bool:
    """Not final (unknown included): it might still move money."""
    return record.state not in FINAL_STATES

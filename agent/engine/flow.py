"""What both flows (sales and voids; links and refunds) are built on: the same collaborators,
and the one rule for the moment after `sending` is on disk."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from agent.config import Config
from agent.engine.clock import not_found_answered
from agent.engine.ledger import Claim, Ledger, Refusal
from agent.engine.reporter import LanePort, Reporter
from agent.journal import ArchivedTxn, Journal, JournalError, Kind, TxnRecord
from agent.paytm.outcome import Answered, NotSent, Unknown
from agent.register.messages import ErrorCode

log = logging.getLogger(__name__)

Answer = TypeVar("Answer")


@dataclass(frozen=True, slots=True)
class FlowParts:
    """What a flow receives: never the engine itself (no flow reaches back into it)."""

    config: Config
    journal: Journal
    ledger: Ledger
    reporter: Reporter
    now: Callable[[], datetime]
    elapsed: Callable[[TxnRecord], float]
    follow: Callable[[TxnRecord], None]  # start (or wake) the status poller of a row


class Flow:
    def __init__(self, parts: FlowParts) -> None:
        self._config = parts.config
        self._journal = parts.journal
        self._ledger = parts.ledger
        self._reporter = parts.reporter
        self._now = parts.now
        self._elapsed = parts.elapsed
        self._follow = parts.follow

    async def _not_found_evidence(self, record: TxnRecord) -> bool:
        """Paytm said "not found" about `record` (as the poller just read it from the
        journal): True when the run of such answers is now evidence that the request never
        reached Paytm (§5.6). The run with this answer is committed first — journal before
        act — so the failure it may enable, and a restart, see it."""
        elapsed = self._elapsed(record)
        run, evidence = not_found_answered(record.not_found, elapsed,
                                           self._config.polling.not_found_grace_s)
        await self._journal.save_not_found(record.row_id, run, elapsed)
        return evidence

    async def _answered_other(self, record: TxnRecord) -> None:
        """Paytm gave another answer than "not found": the run is over (journaled only
        when there was one: most answers write nothing here)."""
        if record.not_found is not None:
            await self._journal.save_not_found(record.row_id, None, self._elapsed(record))

    async def _send(
        self, lane: LanePort, request_id: str, txn: str, claim: Claim,
        existing: TxnRecord | None, *, tid: str, amount: str, request: dict[str, Any],
        txn_time: str, call: Callable[[], Awaitable[Answered[Answer] | NotSent | Unknown]],
        answered: Callable[[LanePort, str, TxnRecord, Answer], Awaitable[None]],
        nothing_happened: str,
    ) -> None:
        """Commit `sending` for `claim`, then make the call (`_follow_through`). Nothing
        leaves for Paytm unless `sending` is on disk: a journal that cannot take it is
        `journal_down` for `txn` (the id the register knows the request by)."""
        try:
            record = await claim.send(self._journal, existing, lane=lane.name, tid=tid,
                                      amount=amount, request=request, txn_time=txn_time)
        except JournalError as exc:
            await self._reporter.journal_down(lane, request_id, txn, exc)
            return
        # `sending` is on disk: from now on the request might reach Paytm.
        await self._follow_through(lane, request_id, record, call, answered,
                                   nothing_happened=nothing_happened)

    async def _follow_through(
        self, lane: LanePort, request_id: str, record: TxnRecord,
        call: Callable[[], Awaitable[Answered[Answer] | NotSent | Unknown]],
        answered: Callable[[LanePort, str, TxnRecord, Answer], Awaitable[None]],
        *, nothing_happened: str,
    ) -> None:
        """`sending` is on disk: make the call and report it, the same for every kind.

        Provably not sent (`NotSent`): `CLOUD_UNAVAILABLE` with `nothing_happened`, and the
        same request may come again. No answer (`Unknown`): it may have reached Paytm (a
        charge, an SMS), so it is followed by status and never sent again. An answer goes to
        `answered`. Whatever goes wrong meanwhile (a bug, an answer nobody expected) is
        followed by status too — `accepted` and a poller, never `INTERNAL`, never a held
        terminal without a poller."""
        try:
            match await call():
                case NotSent(reason=reason):
                    await self._reporter.not_sent(lane, request_id, record, reason,
                                                  nothing_happened)
                case Unknown(reason=reason):
                    await self._reporter.follow_unknown(lane, request_id, record, reason)
                case Answered(response=answer):
                    await answered(lane, request_id, record, answer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s %s: unexpected error after sending; following it by status",
                          record.kind.value, record.txn, extra={"lane": lane.name})
            await self._reporter.follow_unknown(lane, request_id, record,
                                                f"agent error after sending: {exc!r}"[:200])

    async def _repeat_of_archived(
        self, lane: LanePort, request_id: str, kind: Kind, txn: str, *, other: Kind,
        other_message: str, mismatch: str, same: Callable[[ArchivedTxn], bool],
        same_request: Callable[[TxnRecord], bool] | None = None,
    ) -> bool:
        """The repeat check (§5.2) for a txn retention moved out, after the journal's own
        rows knew nothing of it: its key says it was (kind, txn) once, so it is never sent
        again. Used by the other kind → DUPLICATE_TXN; another amount or terminal (`same`,
        from the key; `same_request`, from the archived row) → DUPLICATE_TXN; the same →
        the stored result, from the archive. True when the request was answered.

        Called with no `await` between the journal's `find` and here, and none from here
        to the claim when it answers False: the key and the row change places in one
        commit, so the two reads together always see the txn if it exists."""
        if self._journal.find_archived(other, txn) is not None:
            await self._reporter.refuse(lane, request_id, kind.value, txn, Refusal(
                ErrorCode.DUPLICATE_TXN, other_message, txn))
            return True
        archived = self._journal.find_archived(kind, txn)
        if archived is None:
            return False
        duplicate = Refusal(ErrorCode.DUPLICATE_TXN, mismatch, txn)
        if not same(archived):
            await self._reporter.refuse(lane, request_id, kind.value, txn, duplicate)
            return True

        def check(record: TxnRecord) -> Refusal | None:
            return None if same_request is None or same_request(record) else duplicate

        await self._reporter.replay_archived(lane, request_id, archived, check=check)
        return True

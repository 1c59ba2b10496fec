"""What both flows (sales and voids; links and refunds) are built on: the same collaborators,
and the one rule for the moment after `sending` is on disk."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from agent.config import Config
from agent.engine.clock import NotFoundRuns
from agent.engine.ledger import Ledger
from agent.engine.reporter import LanePort, Reporter
from agent.journal import Journal, TxnRecord
from agent.paytm.outcome import Answered, NotSent, Unknown

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
        self._not_found = NotFoundRuns()

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

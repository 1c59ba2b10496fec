"""The web package's view of the agent: exactly what the pages, the API, /metrics and the
Tools read or call, as Protocols (style rule 11). `agent.app.Agent` and its lanes satisfy
them structurally; mypy checks it where the agent is handed to `start_web`. Nothing here
imports agent.app, so the arrow runs one way: the agent starts the page, the page never
names the agent's class.

Members are read-only properties where the page only reads, so that the agent may keep a
narrower type (a `list[Lane]` is a `Sequence[LaneView]`) and the page cannot assign.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agent.bundle import ReportHook
    from agent.capture import Capture
    from agent.config import Config, LaneConfig
    from agent.engine.clock import ClockWatch
    from agent.journal import Journal, OutboxRecord, RetentionReport, SweepRecord
    from agent.link.layer import Link
    from agent.listener import FdBudget
    from agent.paytm.edc_answers import StatusAnswer
    from agent.paytm.outcome import Answered, CallRecord, NotSent, Unknown
    from agent.paytm.pg_models import PgStatusAnswer
    from drivers.base import Transport


class LaneView(Protocol):
    """One register lane: shown on the lanes page and in /metrics; the link test and a
    resend use its own entry points (`link.check`, `deliver`)."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> LaneConfig: ...

    @property
    def transport(self) -> Transport: ...

    @property
    def link(self) -> Link: ...

    @property
    def undelivered(self) -> int: ...  # results queued for the register

    @property
    def requests(self) -> int: ...

    def deliver(self, outbox: OutboxRecord) -> None: ...


class HealthView(Protocol):
    """Paytm's reachability as the last call found it."""

    @property
    def state(self) -> str: ...  # ok | down | unknown

    @property
    def last(self) -> CallRecord | None: ...


class EngineView(Protocol):
    """What the page reads of the engine, and the three things it may ask of it: a
    re-check now, and the two connectivity probes (the page never holds a Paytm client)."""

    @property
    def refusals(self) -> dict[str, int]: ...

    @property
    def clock_watch(self) -> ClockWatch: ...

    def busy_terminals(self) -> dict[str, str]: ...  # terminal id → the txn holding it

    def polling_count(self) -> int: ...

    def recheck(self, row_id: int) -> asyncio.Event: ...

    async def probe_status(self, tid: str, txn: str
                           ) -> Answered[StatusAnswer] | NotSent | Unknown: ...

    async def probe_pg_status(self, order_id: str
                              ) -> Answered[PgStatusAnswer] | NotSent | Unknown: ...


class SweeperView(Protocol):
    """The close-of-day reconciliation, run now from the Tools."""

    async def sweep(self, day: date | None, trigger: str) -> SweepRecord: ...


class AgentView(Protocol):
    @property
    def config(self) -> Config: ...

    @property
    def started_at(self) -> float: ...  # wall clock, epoch seconds

    @property
    def journal(self) -> Journal: ...

    @property
    def health(self) -> HealthView: ...

    @property
    def engine(self) -> EngineView | None: ...  # None until the agent has started

    @property
    def sweeper(self) -> SweeperView | None: ...

    @property
    def lanes(self) -> Sequence[LaneView]: ...

    @property
    def capture(self) -> Capture: ...  # the support bundle's last frames and calls

    @property
    def last_retention(self) -> RetentionReport | None: ...

    @property
    def bundle_report(self) -> ReportHook | None: ...

    def budget(self) -> FdBudget: ...  # how many connections the page may hold open

    def observe_calls(self, observer: Callable[[CallRecord], None]) -> Callable[[], None]: ...

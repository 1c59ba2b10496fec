"""The engine: requests in, the flows that handle them, the pollers that follow them.

Where protocol §5's rules live:

1. One in flight per terminal, one opening per (kind, txn), the rules between kinds:
   the ledger (`ledger.py`), whose claim is the only way to write `sending`.
2. Idempotent (§5.2): each flow answers a known `txn` from the journal (the reporter's
   `replay`), never sending it again; the only exception is a request that provably never
   reached Paytm (`NotSent`).
3. Unknown is not failure (§5.3): after `sending`, whatever happens becomes "follow by
   status"; `CLOUD_UNAVAILABLE` only for `NotSent`.
4. Results survive (§5.4): the reporter commits the result and its outbox row before the
   lane is asked to send it; the lane marks it delivered on the ACK.
5. `unknown` frees the terminal (§5.5): `Ledger.settle`; reconciliation goes on here.
6. "Not found" becomes evidence after `not_found_grace_s` (§5.6): the rule in `clock.py`,
   applied by the flows (`Flow._not_found_evidence`) to the run journaled with the row.

Ordering rule: every journal write is awaited *before* the action or report it enables
(the `sending` row before the HTTP request, the result row before the frame). Writes go
to the journal's writer thread, so one lane's slow fsync holds only that lane's step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, assert_never

from agent import __version__
from agent.config import Config
from agent.day.totals import day_report, message_figures, parse_day, x_report_lines
from agent.engine import polling
from agent.engine.clock import ClockWatch, MoneyClock
from agent.engine.edc_flows import EdcCalls, EdcFlows
from agent.engine.flow import FlowParts
from agent.engine.ledger import Ledger
from agent.engine.pg_flows import PgCalls, PgFlows
from agent.engine.reporter import LanePort, Reporter
from agent.engine.results import PaytmView
from agent.journal import HOLDING_STATES, Journal, JournalError, Kind, TxnRecord, TxnState
from agent.paytm.clock import IST, now_ist
from agent.paytm.edc import StatusRequest
from agent.paytm.edc_answers import StatusAnswer
from agent.paytm.outcome import Answered, CallRecord, NotSent, Unknown
from agent.paytm.pg_models import PgStatusAnswer
from agent.register import fields
from agent.register.codec import MessageTooLargeError, encode
from agent.register.messages import (
    Error,
    ErrorCode,
    Last,
    Paylink,
    Ping,
    Pong,
    Refund,
    Reply,
    Request,
    Resend,
    Sale,
    Status,
    Totals,
    TotalsReport,
    Void,
)

log = logging.getLogger(__name__)

CLOCK_TICK_S = 1.0  # how often the wall clock is compared with the monotonic clock
ELAPSED_SAVE_S = 30.0  # how often followed rows' elapsed times are saved (and at stop)

__all__ = ["CloudHealth", "Engine", "LanePort", "Reply"]


class _Flow(Protocol):
    async def next_delay(self, record: TxnRecord, checks: int) -> float | None: ...

    async def check(self, record: TxnRecord) -> bool: ...

    async def ask(self, record: TxnRecord) -> PaytmView: ...


@dataclass
class CloudHealth:
    """What the last calls to Paytm say about reachability (for `pong` and the web page)."""

    state: str = "unknown"  # ok | down | unknown
    last: CallRecord | None = None

    def observe(self, record: CallRecord) -> None:
        self.last = record
        self.state = {"answered": "ok", "not_sent": "down", "unknown": "unknown"}[record.outcome]


class Engine:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        edc: EdcCalls,
        *,
        pg: PgCalls | None = None,
        health: CloudHealth | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.journal = journal
        self.health = health if health is not None else CloudHealth()
        self._wall = wall
        self.money_clock = MoneyClock(mono)
        self.clock_watch = ClockWatch(wall, mono)
        self._ticker: asyncio.Task[None] | None = None
        self._lanes: dict[str, LanePort] = {}
        self._pollers: dict[int, asyncio.Task[None]] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._checked: dict[int, asyncio.Event] = {}  # set when a row's next check is done
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.ledger = Ledger(journal, on_sent=self._sent)
        self.reporter = Reporter(config, journal, self.ledger, self._lanes, self.now,
                                 self.start_poller)
        parts = FlowParts(config, journal, self.ledger, self.reporter, now=self.now,
                          elapsed=self.elapsed, follow=self.start_poller)
        self._edc = EdcFlows(parts, edc)
        self._pg = PgFlows(parts, pg)

    # -- lifecycle --------------------------------------------------------------------

    def _sent(self, record: TxnRecord) -> None:
        """`sending` is committed: the row's money clock starts now (again, if re-sent)."""
        self.money_clock.forget(record.row_id)
        self.money_clock.start(record.row_id)

    def start_ticker(self) -> None:
        """The clock watch and the periodic save of elapsed times (`Agent.start`)."""
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="clock watch")

    async def _tick(self) -> None:
        saved = 0.0
        while True:
            await asyncio.sleep(CLOCK_TICK_S)
            self.clock_watch.check()
            self.journal.check_identity()  # deleted or replaced: noticed without a write
            saved += CLOCK_TICK_S
            if saved >= ELAPSED_SAVE_S:
                saved = 0.0
                try:
                    await self.save_elapsed()
                except (JournalError, OSError) as exc:
                    log.error("cannot save the elapsed times of followed rows: %s", exc)

    async def save_elapsed(self) -> None:
        """Persist the monotonic elapsed time of every followed row (one commit)."""
        await self.journal.save_elapsed(self.money_clock.snapshot(list(self._pollers)))

    def attach(self, lane: LanePort) -> None:
        self._lanes[lane.name] = lane

    async def recover(self) -> None:
        """Resume everything the journal says is unfinished. Runs before lanes take work.

        `sending` might have reached Paytm: it is resolved by Status Enquiry, never by
        sending the Sale again. Undelivered results are queued for their lanes.
        """
        for record in self.journal.not_final():
            # Continue the row's money clock from what the last run saved (never from a
            # wall-clock difference: the PC's clock may have been set while stopped).
            self.money_clock.start(record.row_id, record.elapsed_s)
            if record.state is TxnState.RECEIVED:
                # Journaled but never marked sending: provably never left. Close it so the
                # register may send it again.
                await self.journal.transition(record.row_id, TxnState.FAILED, not_sent=True,
                                              detail="never sent (agent stopped first)")
                continue
            if record.state in HOLDING_STATES and record.kind in (Kind.SALE, Kind.VOID):
                self.ledger.hold(record.tid, record.txn, record.kind)
            log.info("resuming %s %s (%s)%s", record.kind.value, record.txn,
                     record.state.value, f" on terminal {record.tid}" if record.tid else "")
            self.start_poller(record)
        for outbox in self.journal.undelivered():
            lane = self._lanes.get(outbox.lane)
            if lane is None:
                log.warning("undelivered result %d for unknown lane %r kept in the journal",
                            outbox.row_id, outbox.lane)
                continue
            lane.deliver(outbox)

    async def stop(self) -> None:
        """Stop work; the journal holds everything needed to resume on the next start."""
        self._stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        try:
            await self.save_elapsed()  # the next start continues each row's clock from here
        except (JournalError, OSError) as exc:
            log.error("cannot save the elapsed times of followed rows: %s", exc)
        tasks = [*self._pollers.values(), *self._handlers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pollers.clear()
        self._handlers.clear()

    # -- facts for pong, the web page and metrics ---------------------------------------

    def now(self) -> datetime:
        """The engine's clock in IST (injectable through `wall` for tests)."""
        return datetime.fromtimestamp(self._wall(), IST)

    def busy_terminals(self) -> dict[str, str]:
        return self.ledger.busy_terminals()

    def polling_count(self) -> int:
        return len(self._pollers)

    @property
    def refusals(self) -> dict[str, int]:
        return dict(self.reporter.refusals)

    def elapsed(self, record: TxnRecord) -> float:
        """Seconds since `sending` on the monotonic clock (persisted across restarts)."""
        return self.money_clock.elapsed(record)

    # -- requests -------------------------------------------------------------------------

    def submit(self, lane: LanePort, request: Request,
               done: Callable[[], None] | None = None) -> None:
        """Handle a request in its own task so a slow Sale never blocks a `ping`."""
        task = asyncio.create_task(self.handle(lane, request), name=f"request {request.id}")
        self._handlers.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._handlers.discard(t)
            if done is not None:
                done()

        task.add_done_callback(finished)

    async def drain(self, timeout_s: float) -> None:
        """Let requests already being handled finish (a Sale awaiting Paytm's answer)."""
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=timeout_s)

    async def handle(self, lane: LanePort, request: Request) -> None:
        try:
            match request:
                case Sale():
                    await self._edc.sale(lane, request)
                case Void():
                    await self._edc.void(lane, request)
                case Status():
                    await self._status(lane, request)
                case Last():
                    await self._last(lane, request)
                case Ping():
                    await self._ping(lane, request)
                case Paylink():
                    await self._pg.paylink(lane, request)
                case Resend():
                    await self._pg.resend(lane, request)
                case Refund():
                    await self._pg.refund(lane, request)
                case Totals():
                    await self._totals(lane, request)
                case _:
                    assert_never(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Only before `sending` can this be reached (the flows follow everything after
            # it by status): nothing was sent.
            log.exception("request %s on lane %s failed", request.id, lane.name,
                          extra={"lane": lane.name})
            await lane.reply(Error(re=request.id, code=ErrorCode.INTERNAL,
                                   message="Internal error; the agent logged the cause"))

    async def _ping(self, lane: LanePort, request: Ping) -> None:
        tid = lane.config.tid
        await lane.reply(Pong(re=request.id, version=__version__, lane=lane.name, tid=tid,
                              busy=self.ledger.holder(tid) is not None,
                              cloud=fields.cloud(self.health.state), link=lane.link_version))

    async def _status(self, lane: LanePort, req: Status) -> None:
        kind = Kind(req.kind)
        record = self.journal.find(kind, req.txn)
        if record is None:
            archived = self.journal.find_archived(kind, req.txn)
            if archived is not None:  # retention moved it out: its archived result
                await self.reporter.replay_archived(lane, req.id, archived, status=True)
                return
        if record is None and kind is Kind.SALE \
                and self.journal.find(Kind.PAYLINK, req.txn) is None \
                and self.journal.find_archived(Kind.PAYLINK, req.txn) is None \
                and await self._edc.discover(lane, req):
            return
        if record is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_FOUND, txn=req.txn,
                                   message="Neither the agent nor Paytm knows this txn"))
            return
        await self.reporter.report(lane, req.id, record)

    async def _last(self, lane: LanePort, req: Last) -> None:
        record = self.journal.last_for_lane(lane.name)
        if record is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_FOUND,
                                   message="No transaction on this lane yet"))
            return
        await self.reporter.report(lane, req.id, record)

    async def _totals(self, lane: LanePort, req: Totals) -> None:
        """The lane's day so far (an X-report). A day's query runs on a reader of its own in
        a worker thread: it never sits between a lane and its next ACK."""
        day = parse_day(req.day) if req.day else self.now().date()
        tid = lane.config.tid

        def read() -> TotalsReport:
            reader = self.journal.reader()
            try:
                report = day_report(reader, day, lane=lane.name, tids={lane.name: tid})
            finally:
                reader.close()
            totals = report.lanes[0]
            lines = x_report_lines(day, totals, width=self.config.receipt.width,
                                   printed_at=self._wall(), header=self.config.receipt.header)
            return TotalsReport(
                re=req.id, day=day.isoformat(), lane=lane.name, tid=tid,
                figures=message_figures(totals.totals.figures),
                by_method=tuple((m, message_figures(f)) for m, f in totals.totals.by_method),
                receipt=lines)

        answer = await asyncio.to_thread(read)
        while answer.receipt:
            try:
                encode(answer)
                break
            except MessageTooLargeError:  # a long receipt header: keep what fits one frame
                answer = dataclasses.replace(answer, receipt=answer.receipt[:-1])
        await lane.reply(answer)

    async def probe_status(self, tid: str, txn: str
                           ) -> Answered[StatusAnswer] | NotSent | Unknown:
        """A Status Enquiry of no transaction (the page's Paytm test): the page names the
        terminal and a made-up id and never holds a Paytm client. FieldError, before any
        call, when Paytm would refuse either."""
        request = StatusRequest(tid=tid, txn=txn, txn_time=now_ist())
        return await self._edc.probe(request)

    async def probe_pg_status(self, order_id: str
                              ) -> Answered[PgStatusAnswer] | NotSent | Unknown:
        """The same for the payment-link (All-in-One) API: a Transaction Status of an
        order Paytm cannot know."""
        return await self._pg.probe(order_id)

    # -- polling --------------------------------------------------------------------------

    def _flow(self, kind: Kind) -> _Flow:
        return self._pg if kind in (Kind.PAYLINK, Kind.REFUND) else self._edc

    def start_poller(self, record: TxnRecord) -> None:
        """Follow a row by status until it is final (or wake its poller: ask now)."""
        if record.row_id in self._pollers:
            event = self._wake.get(record.row_id)
            if event is not None and record.state is TxnState.UNKNOWN:
                event.set()
            return
        if self._stopping:
            return
        wake = self._wake.setdefault(record.row_id, asyncio.Event())
        task = asyncio.create_task(self._poll(record.row_id, wake),
                                   name=f"poll {record.kind.value} {record.txn}")
        self._pollers[record.row_id] = task

        def done(t: asyncio.Task[None], row_id: int = record.row_id) -> None:
            self._pollers.pop(row_id, None)
            if not self._stopping:
                self.money_clock.forget(row_id)
            self._wake.pop(row_id, None)
            checked = self._checked.pop(row_id, None)
            if checked is not None:
                checked.set()
            if not t.cancelled() and t.exception() is not None:
                log.error("poller for row %d crashed", row_id, exc_info=t.exception())

        task.add_done_callback(done)

    def recheck(self, row_id: int) -> asyncio.Event:
        """Ask Paytm now rather than at the next scheduled check (status request, web tool).

        The event is set once that check's answer is journaled (or there is nothing to
        ask), so a caller can read the journal knowing it holds what Paytm said."""
        checked = self._checked.setdefault(row_id, asyncio.Event())
        event = self._wake.get(row_id)
        if event is not None:
            event.set()
        elif not self._stopping:
            record = self.journal.get(row_id)
            if record.state not in (TxnState.SUCCESS, TxnState.FAILED):
                self.start_poller(record)
                # A new poller first waits its schedule's delay (hours for an old unknown):
                # woken at once, it asks now.
                wake = self._wake.get(row_id)
                if wake is not None:
                    wake.set()
            else:
                checked.set()
        return checked

    async def ask(self, record: TxnRecord) -> PaytmView:
        """Ask Paytm about a row without acting on the answer (the close-of-day sweep's
        second opinion on what the journal already closed)."""
        return await self._flow(record.kind).ask(record)

    async def _poll(self, row_id: int, wake: asyncio.Event) -> None:
        """Ask Paytm about one transaction until it is final (or its schedule runs out).

        Never gives up on an error of its own: a journal that cannot be written (disk
        full) or an unexpected answer backs off and tries again, so the terminal it holds
        is freed as soon as the result can be journaled."""
        checks = 0
        failures = 0
        while True:
            try:
                record = self.journal.get(row_id)
                if record.is_final:
                    return
                flow = self._flow(record.kind)
                delay = await flow.next_delay(record, checks)
                if delay is None:
                    log.warning("%s %s still %s after Paytm's schedule ran out: a person must "
                                "settle it", record.kind.value, record.txn, record.state.value)
                    return
            except (JournalError, OSError) as exc:
                failures += 1
                delay = polling.error_backoff(self.config.polling.interval_s, failures - 1)
                log.error("row %d: %s; trying again in %.1f s", row_id, exc, delay)
                await asyncio.sleep(delay)
                continue
            if failures:
                delay = max(delay, polling.error_backoff(self.config.polling.interval_s,
                                                         failures - 1))
            if delay > 0:
                with contextlib.suppress(TimeoutError):  # the normal case: time to ask again
                    await asyncio.wait_for(wake.wait(), timeout=delay)
            wake.clear()
            try:
                record = self.journal.get(row_id)
                if record.is_final:
                    return
                checks += 1
                ok = await flow.check(record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("%s check of row %d failed: %r; trying again", "status", row_id, exc,
                          exc_info=not isinstance(exc, JournalError))
                ok = False
            failures = 0 if ok else failures + 1
            checked = self._checked.pop(row_id, None)
            if checked is not None:
                checked.set()

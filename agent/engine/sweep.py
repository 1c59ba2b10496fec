"""The close-of-day reconciliation sweep: ask Paytm once more about the day's loose ends.

Which transactions of the day (IST) are asked, and how:

- not final or `unknown`: through the engine's own poller (`Engine.recheck`), so an answer
  is journaled, the terminal settled and the result delivered to the register exactly as a
  scheduled check would; the sweep waits until that check is journaled;
- final but worth a second opinion — a success without Paytm's transaction id (seed
  checklist 5: needed for reconciliation and refunds), or a failure the agent concluded
  itself ("not received by Paytm", a link expired unpaid): `Engine.ask`, whose answer
  touches nothing; it is compared with the journal.

Every disagreement (journal `failed`, Paytm paid: money taken, bill not closed → refund,
seed checklist 8) is listed with what to do. The result is kept in the journal
(`sweeps`), so the day's report shows the last sweep after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from agent.day.totals import day_bounds, today
from agent.engine.results import NOT_RECEIVED_CODE, PaytmView
from agent.journal import (
    Journal,
    JournalError,
    Kind,
    SweepRecord,
    TxnRecord,
    TxnState,
)
from agent.paytm.clock import IST

log = logging.getLogger(__name__)

SWEEP_RECHECK_WAIT_S = 45.0  # one status check: Paytm's read timeout (30 s) and a margin
SWEEP_CONCURRENCY = 4  # transactions asked about at once: Paytm is not hammered at 23:45
SCHEDULE_TICK_S = 60.0  # the schedule re-reads the clock at least this often (NTP steps)
TRIGGER_SCHEDULE = "close_at"
TRIGGER_PAGE = "page"
# Failures the agent concluded itself, not from Paytm's word: worth asking again.
_INFERRED_FAILURE_MESSAGES = frozenset({"Payment link expired unpaid",
                                        "Refund not received by Paytm"})


class SweepEngine(Protocol):
    """What the sweep needs of the engine."""

    def recheck(self, row_id: int) -> asyncio.Event: ...

    async def ask(self, record: TxnRecord) -> PaytmView: ...


@dataclass(frozen=True, slots=True)
class _Checked:
    asked: bool
    changes: list[dict[str, Any]]
    findings: list[dict[str, Any]]


def needs_asking(record: TxnRecord) -> bool:
    if not record.is_final:
        return record.state is not TxnState.RECEIVED  # never sent: nothing to ask
    if record.state is TxnState.SUCCESS:
        # A void carries its sale's id; sales, links and refunds each have their own.
        return record.kind is not Kind.VOID and not paytm_txn_id(record)
    return inferred_failure(record)


def inferred_failure(record: TxnRecord) -> bool:
    return record.state is TxnState.FAILED and not record.not_sent and (
        record.code == NOT_RECEIVED_CODE or record.message in _INFERRED_FAILURE_MESSAGES)


def paytm_txn_id(record: TxnRecord) -> str:
    return str(record.payment_details().get("paytm_txn_id", ""))


def next_close(now: float, close_at: str) -> float:
    """The next `close_at` (HH:MM IST) strictly after `now`, in epoch seconds."""
    hours, minutes = (int(part) for part in close_at.split(":"))
    local = datetime.fromtimestamp(now, IST)
    target = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if target.timestamp() <= now:
        target += timedelta(days=1)
    return target.timestamp()


def _row(record: TxnRecord) -> dict[str, Any]:
    return {"row": record.row_id, "kind": record.kind.value, "txn": record.txn,
            "lane": record.lane, "amount": record.amount}


class Sweeper:
    def __init__(self, engine: SweepEngine, journal: Journal, *,
                 wall: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._journal = journal
        self._wall = wall
        self._lock = asyncio.Lock()  # one sweep at a time (the schedule and the page)
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[SweepRecord], None]] = []

    def subscribe(self, listener: Callable[[SweepRecord], None]) -> Callable[[], None]:
        """Call `listener(record)` after each sweep is journaled; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) \
            if listener in self._listeners else None

    # -- the daily schedule ------------------------------------------------------------

    def start(self, close_at: str) -> None:
        if close_at and self._task is None:
            self._task = asyncio.create_task(self._schedule(close_at), name="close-of-day")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _schedule(self, close_at: str) -> None:
        target = next_close(self._wall(), close_at)
        while True:
            left = target - self._wall()
            if left > 0:
                await asyncio.sleep(min(left, SCHEDULE_TICK_S))
                continue
            day = datetime.fromtimestamp(target, IST).date()
            target = next_close(target, close_at)
            try:
                await self.sweep(day, TRIGGER_SCHEDULE)
            except (JournalError, OSError) as exc:
                log.error("close-of-day sweep of %s failed: %s", day, exc)

    # -- one sweep -------------------------------------------------------------------------

    async def sweep(self, day: date | None = None, trigger: str = TRIGGER_PAGE) -> SweepRecord:
        day = day if day is not None else today(self._wall())
        async with self._lock:
            started = self._wall()
            rows = await asyncio.to_thread(self._day_rows, day)
            candidates = [r for r in rows if needs_asking(r)]
            log.info("reconciliation sweep of %s (%s): asking Paytm about %d of %d "
                     "transaction(s)", day, trigger, len(candidates), len(rows))
            limit = asyncio.Semaphore(SWEEP_CONCURRENCY)

            async def one(record: TxnRecord) -> _Checked:
                async with limit:
                    return await self._check(record)

            checked = await asyncio.gather(*(one(r) for r in candidates))
            changes = [c for result in checked for c in result.changes]
            findings = [f for result in checked for f in result.findings]
            disagreements = sum(1 for f in findings if f["type"] == "disagreement")
            record = await self._journal.record_sweep(
                day=day.isoformat(), trigger=trigger, started_at=started,
                asked=sum(1 for result in checked if result.asked), changed=len(changes),
                disagreements=disagreements,
                report={"changes": changes, "findings": findings})
            for listener in list(self._listeners):
                listener(record)
            level = logging.WARNING if findings else logging.INFO
            log.log(level, "reconciliation sweep of %s: asked %d, changed %d, %d finding(s), "
                    "%d disagreement(s)", day, record.asked, record.changed, len(findings),
                    disagreements)
            for finding in findings:
                log.warning("reconciliation: %s %s on lane %s: %s → %s", finding["kind"],
                            finding["txn"], finding["lane"], finding["problem"],
                            finding["action"])
            return record

    def _day_rows(self, day: date) -> list[TxnRecord]:
        reader = self._journal.reader()  # its own connection, in a worker thread
        try:
            return reader.day_rows(*day_bounds(day))
        finally:
            reader.close()

    async def _check(self, record: TxnRecord) -> _Checked:
        if record.is_final:
            return await self._second_opinion(record)
        after = await self._recheck(record)
        view = None
        if not after.is_final:
            # Paytm's own word for the list (this answer changes nothing; the poller acts
            # on answers). Paytm final, the journal not: Paytm settled it since the poller's
            # check, so the poller asks once more; still open then, it no longer asks.
            view = await self._engine.ask(after)
            if view.state in ("success", "failed"):
                after = await self._recheck(after)
        changes = []
        if after.state is not record.state:
            changes.append({**_row(after), "from": record.state.value,
                            "to": after.state.value, "code": after.code})
        findings = []
        if not after.is_final and view is not None:
            settled = view.state in ("success", "failed")
            findings.append({
                **_row(after), "type": "disagreement" if settled else "unresolved",
                "journal": after.state.value, "paytm": view.state,
                "paytm_txn_id": view.paytm_txn_id,
                "problem": (f"journal {after.state.value}, Paytm {view.state}: the agent no "
                            "longer asks on its own" if settled else
                            f"still {after.state.value} after asking Paytm again"),
                "action": (_settled_action(after, view.state) if settled
                           else _unresolved_action(after))})
        return _Checked(asked=True, changes=changes, findings=findings)

    async def _recheck(self, record: TxnRecord) -> TxnRecord:
        """Have the engine's poller ask Paytm now; the row once that answer is journaled."""
        checked = self._engine.recheck(record.row_id)
        try:
            await asyncio.wait_for(checked.wait(), SWEEP_RECHECK_WAIT_S)
        except TimeoutError:
            log.warning("reconciliation: no answer for %s %s within %.0f s",
                        record.kind.value, record.txn, SWEEP_RECHECK_WAIT_S)
        return self._journal.get(record.row_id)

    async def _second_opinion(self, record: TxnRecord) -> _Checked:
        view = await self._engine.ask(record)
        if view.state == "unreachable":
            return _Checked(asked=False, changes=[], findings=[{
                **_row(record), "type": "unreachable", "journal": record.state.value,
                "paytm": "", "problem": f"Paytm could not be asked: {view.message}"[:200],
                "action": "run the reconciliation again from the Tools page"}])
        fills_id = record.state is TxnState.SUCCESS and view.state == "success" \
            and bool(view.paytm_txn_id) and not paytm_txn_id(record)
        with contextlib.suppress(JournalError):  # the sweep's own record still tells it
            if fills_id:
                # Seed checklist 5: Paytm's id is what reconciliation and refunds need.
                await self._journal.add_payment_fields(
                    record.row_id, {"paytm_txn_id": view.paytm_txn_id},
                    f"reconciliation: Paytm's transaction id {view.paytm_txn_id}")
            else:
                await self._journal.note(record.row_id,
                                         f"reconciliation: Paytm says {view.state}", view.code)
        changes: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []
        facts = {**_row(record), "journal": record.state.value, "paytm": view.state,
                 "paytm_txn_id": view.paytm_txn_id, "paytm_amount": view.amount or ""}
        if record.state is TxnState.SUCCESS:
            if fills_id:
                changes.append({**_row(record), "from": "success", "to": "success",
                                "paytm_txn_id": view.paytm_txn_id})
            if view.state == "success" and view.amount and view.amount != record.amount:
                findings.append({**facts, "type": "disagreement",
                                 "problem": f"Paytm has {view.amount} paise, the journal "
                                            f"{record.amount}",
                                 "action": "check the bill against Paytm's settlement"})
            elif view.state in ("failed", "not_found"):
                findings.append({**facts, "type": "disagreement",
                                 "problem": f"journal success, Paytm says {view.state}",
                                 "action": _unpaid_action(record)})
        elif view.state == "success":
            findings.append({**facts, "type": "disagreement",
                             "problem": "journal failed, Paytm success: "
                                        + ("money returned, refund not recorded"
                                           if record.kind in (Kind.VOID, Kind.REFUND)
                                           else "money taken, bill not closed"),
                             "action": _taken_action(record)})
        return _Checked(asked=True, changes=changes, findings=findings)


def _unresolved_action(record: TxnRecord) -> str:
    if record.kind in (Kind.SALE, Kind.PAYLINK):
        return ("do not hand over goods; the agent keeps asking Paytm; if Paytm's settlement "
                "shows it paid, close the bill, else take payment again")
    return "the agent keeps asking Paytm; do not repeat the " + record.kind.value


def _settled_action(record: TxnRecord, paytm: str) -> str:
    if record.kind in (Kind.SALE, Kind.PAYLINK):
        return ("Paytm has the payment: close the bill as paid (or refund the customer)"
                if paytm == "success" else "not paid at Paytm: take payment again")
    outcome = "went through" if paytm == "success" else "failed"
    return f"Paytm says the {record.kind.value} {outcome}"


def _unpaid_action(record: TxnRecord) -> str:
    if record.kind in (Kind.SALE, Kind.PAYLINK):
        return "the customer may not have paid: check Paytm's settlement before the bill stands"
    return f"the {record.kind.value} may not have happened: check with Paytm"


def _taken_action(record: TxnRecord) -> str:
    if record.kind in (Kind.SALE, Kind.PAYLINK):
        return "refund the customer, or close the bill as paid (seed checklist 8)"
    return f"the {record.kind.value} went through at Paytm: do not repeat it"

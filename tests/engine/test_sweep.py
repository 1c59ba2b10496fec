"""The sweep: when it runs, which rows it asks about, and on the engine alone (a fake lane,
the emulator over loopback) what it lists when Paytm has no answer yet. A whole day with
the register on a pty is in tests/day; the page's button in tests/web/test_day.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from agent.engine.edc_flows import EdcCalls, EdcOutcome, StatusOutcome
from agent.engine.results import NOT_RECEIVED_CODE, PaytmView
from agent.engine.sweep import Sweeper, needs_asking, next_close
from agent.journal import Journal, Kind, SweepRecord, TxnRecord, TxnState
from agent.paytm.clock import IST
from agent.paytm.edc import EdcClient, SaleRequest, StatusRequest, VoidRequest
from agent.paytm.outcome import Answered
from agent.register.messages import Sale
from devtools.stack import WAIT_S
from tests.engine.money import money_engine

ROW = TxnRecord(row_id=1, kind=Kind.SALE, txn="T1", lane="till-1", tid="12345678",
                amount="100", parent="", state=TxnState.SUCCESS, request="{}",
                txn_time="2026-03-14 10:00:00", created_at=0.0, updated_at=0.0, sent_at=0.0,
                code="0000", message="Approved", reply="", payment='{"paytm_txn_id":"P1"}',
                not_sent=False)


def _ist(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=IST).timestamp()


def test_next_close_is_today_or_tomorrow_in_ist() -> None:
    assert next_close(_ist("2026-03-14 10:00"), "23:45") == _ist("2026-03-14 23:45")
    assert next_close(_ist("2026-03-14 23:45"), "23:45") == _ist("2026-03-15 23:45")
    assert next_close(_ist("2026-03-14 23:50"), "00:05") == _ist("2026-03-15 00:05")


def test_which_rows_are_asked_again() -> None:
    assert not needs_asking(ROW)  # a success with Paytm's id: settled
    assert needs_asking(replace(ROW, payment=""))  # checklist 5: Paytm's id missing
    assert not needs_asking(replace(ROW, kind=Kind.VOID, payment=""))  # the sale's id
    for state in (TxnState.SENDING, TxnState.ACCEPTED, TxnState.PENDING, TxnState.UNKNOWN):
        assert needs_asking(replace(ROW, state=state))
    assert not needs_asking(replace(ROW, state=TxnState.RECEIVED))  # never sent
    declined = replace(ROW, state=TxnState.FAILED, code="0005", message="Declined")
    assert not needs_asking(declined)  # Paytm's own word
    lost = replace(declined, code=NOT_RECEIVED_CODE)
    assert needs_asking(lost)  # the agent's conclusion: asked again
    assert not needs_asking(replace(lost, not_sent=True))  # provably never reached Paytm


class _NoPaytm:
    """A day with nothing to ask: the engine is never called."""

    def recheck(self, row_id: int) -> asyncio.Event:
        raise AssertionError("nothing to re-check")

    async def ask(self, record: TxnRecord) -> PaytmView:
        raise AssertionError("nothing to ask")


async def test_the_daily_schedule_sweeps_the_day_that_closes(tmp_path: Path) -> None:
    close = _ist("2026-03-14 23:45")
    times = iter([close - 0.01])  # the first reading: just before close_at, then after it

    def wall() -> float:
        return next(times, close + 1)

    journal = Journal(tmp_path / "journal.db")
    sweeper = Sweeper(_NoPaytm(), journal, wall=wall)
    swept: asyncio.Future[SweepRecord] = asyncio.get_running_loop().create_future()

    def on_sweep(record: SweepRecord) -> None:
        if not swept.done():
            swept.set_result(record)

    sweeper.subscribe(on_sweep)
    sweeper.start("23:45")
    try:
        record = await asyncio.wait_for(swept, WAIT_S)
    finally:
        await sweeper.stop()
        await journal.aclose()
    assert (record.day, record.trigger, record.asked) == ("2026-03-14", "close_at", 0)
    assert record.disagreements == 0


async def test_a_sale_still_pending_at_paytm_is_listed_unresolved(tmp_path: Path) -> None:
    async with money_engine(tmp_path, polling={"unknown_after_s": 0.3}) as m:
        await m.ask(Sale(id="r1", txn="PEND00000001", amount="10002"))  # never paid
        unknown = await m.lane.result_for("PEND00000001")
        assert unknown.status == "unknown"
        sweeper = Sweeper(m.engine, m.journal)
        record = await sweeper.sweep()
        assert (record.asked, record.changed, record.disagreements) == (1, 0, 0)
        [finding] = json.loads(record.report)["findings"]
        assert finding["type"] == "unresolved" and finding["txn"] == "PEND00000001"
        assert (finding["journal"], finding["paytm"]) == ("unknown", "pending")
        assert "do not hand over goods" in finding["action"]
        row = m.journal.find(Kind.SALE, "PEND00000001")
        assert row is not None and row.state is TxnState.UNKNOWN
        # Asked once more by the sweep: one Status Enquiry through the poller, one to list.
        assert m.emulator.count("status", "PEND00000001") >= 2


class WithoutPaytmIds:
    """Paytm's status answers lack its transaction id until `hide` is switched off (a
    gateway that fills acquirementId in late)."""

    def __init__(self, inner: EdcClient) -> None:
        self._inner = inner
        self.hide = True

    async def sale(self, req: SaleRequest) -> EdcOutcome:
        return await self._inner.sale(req)

    async def status(self, req: StatusRequest) -> StatusOutcome:
        outcome = await self._inner.status(req)
        if self.hide and isinstance(outcome, Answered) \
                and outcome.response.payment is not None:
            payment = replace(outcome.response.payment, acquirement_id=None)
            return replace(outcome, response=replace(outcome.response, payment=payment))
        return outcome

    async def void(self, req: VoidRequest) -> EdcOutcome:
        return await self._inner.void(req)


async def test_a_success_without_paytms_id_gets_it(tmp_path: Path) -> None:
    wrapped: list[WithoutPaytmIds] = []

    def wrap(inner: EdcClient) -> EdcCalls:
        wrapped.append(WithoutPaytmIds(inner))
        return wrapped[-1]

    async with money_engine(tmp_path, edc=wrap) as m:
        await m.ask(Sale(id="r1", txn="NOID00000001", amount="100"))
        assert (await m.lane.result_for("NOID00000001")).status == "success"
        row = m.journal.find(Kind.SALE, "NOID00000001")
        assert row is not None and "paytm_txn_id" not in json.loads(row.payment)
        wrapped[0].hide = False
        record = await Sweeper(m.engine, m.journal).sweep()
        [change] = json.loads(record.report)["changes"]
        assert change["txn"] == "NOID00000001" and change["paytm_txn_id"]
        assert (record.asked, record.changed, record.disagreements) == (1, 1, 0)
        row = m.journal.find(Kind.SALE, "NOID00000001")
        assert row is not None and row.state is TxnState.SUCCESS
        assert json.loads(row.payment)["paytm_txn_id"] == change["paytm_txn_id"]
        assert json.loads(row.payment)["rrn"]  # what Paytm said first is kept
        again = await Sweeper(m.engine, m.journal).sweep()
        assert again.asked == 0  # nothing left to ask

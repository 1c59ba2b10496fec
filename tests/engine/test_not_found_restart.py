""""Not found" evidence survives a restart (register-protocol §5.6): the run of Paytm's
consecutive "not found" answers is journaled with its row, so an agent restarted in the
middle of one continues it on the same money clock — `failed 0404` comes once the grace
since the run's FIRST answer (before the restart) has passed with at least three answers,
not a full grace after the restart. A run another answer ended does not carry over.

The engine is driven directly with a fake monotonic clock (the money clock) and the real
EDC client against the emulator over loopback, on a real journal file. Every check is
asked for (`Engine.recheck`) and awaited: the pollers' own schedule is hours away."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent.config import Config
from agent.engine.edc_flows import EdcOutcome, StatusOutcome
from agent.engine.engine import Engine
from agent.journal import Journal, NotFoundRun, TxnRecord, TxnState
from agent.paytm.edc import EdcClient, SaleRequest, StatusRequest, VoidRequest
from agent.paytm.edc_answers import StatusState
from agent.paytm.http import make_session
from agent.paytm.outcome import Answered
from agent.register.messages import Accepted, Sale
from agent.sim.paytm import Emulator, EmulatorSettings
from devtools.config import CLIENT_DEMO_KEY
from devtools.stack import WAIT_S, agent_config
from tests.engine.money import FakeLane

GRACE_S = 60.0
# The emulator's magic amount ending 04: Status Enquiry says 0404 for this long after a
# Sale it did receive (a Paytm that keeps not finding it, for as long as any test takes).
NOT_FOUND_FOR_S = 1e6
# Only asked-for checks: the first scheduled one, and every later one, is far away.
POLLING = {"first_check_s": 3600, "interval_s": 3600, "slow_after_s": 1e6,
           "slow_interval_s": 3600, "unknown_after_s": 1e6, "not_found_grace_s": GRACE_S}


class Mono:
    """The engine's monotonic clock, moved by the test (each start has its own origin)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class PendingOnce:
    """The real EDC client; `pending_next` turns the next status answer into PENDING (the
    other answer that ends a run of "not found")."""

    def __init__(self, client: EdcClient) -> None:
        self._client = client
        self.pending_next = False

    async def sale(self, req: SaleRequest) -> EdcOutcome:
        return await self._client.sale(req)

    async def void(self, req: VoidRequest) -> EdcOutcome:
        return await self._client.void(req)

    async def status(self, req: StatusRequest) -> StatusOutcome:
        outcome = await self._client.status(req)
        if self.pending_next and isinstance(outcome, Answered):
            self.pending_next = False
            return dataclasses.replace(outcome, response=dataclasses.replace(
                outcome.response, state=StatusState.PENDING, code="0001"))
        return outcome


@dataclasses.dataclass
class Run:
    """One start of the agent on the journal file."""

    engine: Engine
    journal: Journal
    lane: FakeLane
    mono: Mono
    edc: PendingOnce

    def row(self, txn: str) -> TxnRecord:
        (record,) = self.journal.find_any(txn)
        return record

    async def answer(self, txn: str, after_s: float) -> TxnRecord:
        """`after_s` on the money clock, then one status check, journaled."""
        self.mono.t += after_s
        await _wait(self.engine.recheck(self.row(txn).row_id).wait())
        return self.row(txn)


async def _wait(awaitable: Awaitable[object]) -> None:
    await asyncio.wait_for(awaitable, WAIT_S)


@asynccontextmanager
async def start(config: Config, mono: Mono) -> AsyncIterator[Run]:
    """The agent's engine on `config`'s journal, recovered; stopped at the end (its elapsed
    times saved, as at every stop)."""
    journal = Journal(config.journal.path)
    session = make_session(config.paytm)
    edc = PendingOnce(EdcClient(session, config.paytm, CLIENT_DEMO_KEY))
    engine = Engine(config, journal, edc, mono=mono)
    lane = FakeLane(config.lanes[0])
    engine.attach(lane)
    await engine.recover()
    try:
        yield Run(engine, journal, lane, mono, edc)
    finally:
        await engine.stop()
        await journal.aclose()
        await session.close()  # its kept-alive connections' timers with it


@asynccontextmanager
async def paytm(tmp_path: Path) -> AsyncIterator[tuple[Emulator, Config]]:
    emulator = Emulator(EmulatorSettings(not_found_window_s=NOT_FOUND_FOR_S))
    async with emulator.serve() as url:
        yield emulator, agent_config(base_url=url, journal=tmp_path / "journal.db",
                                     link="tcp://127.0.0.1:7070", polling=POLLING)


async def _sold(run: Run, txn: str) -> None:
    before = len(run.lane.replies)
    await run.engine.handle(run.lane, Sale(id=f"r-{txn}", txn=txn, amount="10004"))
    assert isinstance(run.lane.replies[before], Accepted)


async def test_a_restart_continues_the_not_found_run_on_the_same_money_clock(
        tmp_path: Path) -> None:
    txn = "NFRS00000001"
    async with paytm(tmp_path) as (emulator, config):
        async with start(config, Mono(1000.0)) as first:
            await _sold(first, txn)
            assert (await first.answer(txn, 0.0)).not_found == NotFoundRun(0.0, 1)
            record = await first.answer(txn, 20.0)
            assert record.not_found == NotFoundRun(0.0, 2)
            assert record.elapsed_s == pytest.approx(20.0)  # saved with the answer
        # Another start, its monotonic clock elsewhere: the money clock goes on from 20 s.
        async with start(config, Mono(50_000.0)) as second:
            record = await second.answer(txn, 30.0)  # 50 s since the first: not yet
            assert record.not_found == NotFoundRun(0.0, 3)
            assert record.state is TxnState.ACCEPTED and not second.lane.delivered
            record = await second.answer(txn, 10.0)  # 60 s since the first, 40 s since start
            assert record.state is TxnState.FAILED
            result = await second.lane.result_for(txn)
            assert (result.status, result.code, result.message) == (
                "failed", "0404", "Not received by Paytm")
        assert emulator.count("sale", txn) == 1
        assert emulator.count("status", txn) == 4


async def test_a_run_another_answer_ended_does_not_carry_over_a_restart(
        tmp_path: Path) -> None:
    txn = "NFRS00000002"
    async with paytm(tmp_path) as (emulator, config):
        async with start(config, Mono(1000.0)) as first:
            await _sold(first, txn)
            await first.answer(txn, 0.0)
            assert (await first.answer(txn, 20.0)).not_found == NotFoundRun(0.0, 2)
            first.edc.pending_next = True
            record = await first.answer(txn, 5.0)  # PENDING: the run is over
            assert record.not_found is None and record.state is TxnState.PENDING
        async with start(config, Mono(7.0)) as second:
            # Had the run carried over, this would be its third answer, 60 s after its
            # first: a failure. It is the first of a new run.
            assert (await second.answer(txn, 35.0)).not_found == NotFoundRun(60.0, 1)
            record = await second.answer(txn, 30.0)
            assert record.not_found == NotFoundRun(60.0, 2)
            record = await second.answer(txn, 30.0)  # the third, the grace after its first
            assert record.state is TxnState.FAILED
            result = await second.lane.result_for(txn)
            assert (result.status, result.code) == ("failed", "0404")
        assert emulator.count("sale", txn) == 1

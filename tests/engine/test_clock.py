"""Money timing on the monotonic clock (issue 14, case 1): a wall-clock jump cannot turn a
charged sale into `failed`, "not found" is evidence only after several answers over the
whole grace, elapsed time survives a restart, and the jump is logged and shown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from agent.engine.clock import (
    NOT_FOUND_ANSWERS_MIN,
    ClockWatch,
    MoneyClock,
    not_found_answered,
)
from agent.journal import Journal, Kind, NotFoundRun, TxnState
from agent.register.messages import Accepted, Result, Sale
from agent.web.facts import attention_now
from devtools.stack import WAIT_S, Clock, stack, wait_for_request

JUMP_S = 300.0  # an NTP correction after a dead CMOS battery


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_forward_jump_while_paytm_says_not_found_is_not_failed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    async with stack(tmp_path, clock=clock) as s:
        # Amount ending 04: Paytm answers "not found" for a while, then success.
        request = asyncio.ensure_future(s.register.client.request(
            Sale(id="r-JUMP00000001", txn="JUMP00000001", amount="10004"), WAIT_S))
        await wait_for_request(s.emulator, lambda r: r.api == "status"
                               and r.txn == "JUMP00000001")
        clock.advance(JUMP_S)
        assert s.agent.engine is not None
        with caplog.at_level(logging.WARNING):
            jump = s.agent.engine.clock_watch.check()
        assert jump is not None and jump.delta_s == pytest.approx(JUMP_S, abs=1.0)
        assert any("wall clock jumped +300" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)
        assert any(a.kind == "clock" and "jumped +300 s" in a.text
                   for a in attention_now(s.agent))
        # More status calls after the jump: still "not found", still not final.
        seen = s.emulator.count("status", "JUMP00000001")
        await wait_for_request(s.emulator, lambda r: r.api == "status"
                               and r.txn == "JUMP00000001"
                               and s.emulator.count("status", "JUMP00000001") > seen + 3)
        assert not request.done()
        s.emulator.advance(60)  # Paytm now knows the payment
        exchange = await request
        assert isinstance(exchange.replies[0], Accepted)
        assert isinstance(exchange.final, Result) and exchange.final.status == "success"
        assert s.emulator.count("sale", "JUMP00000001") == 1


class Runs:
    """The flows' use of the rule, one row's run kept here as the journal keeps it."""

    def __init__(self) -> None:
        self.runs: dict[int, NotFoundRun] = {}

    def answered(self, row_id: int, elapsed_s: float, grace_s: float) -> bool:
        self.runs[row_id], evidence = not_found_answered(self.runs.get(row_id), elapsed_s,
                                                         grace_s)
        return evidence

    def other(self, row_id: int) -> None:
        self.runs.pop(row_id, None)


def test_one_not_found_past_the_grace_is_no_evidence() -> None:
    runs = Runs()
    # A single answer long after the grace (the old rule made this final).
    assert not runs.answered(1, 500.0, 60.0)
    assert not runs.answered(1, 510.0, 60.0)
    assert not runs.answered(1, 530.0, 60.0)  # three, but only 30 s apart
    assert runs.answered(1, 560.0, 60.0)  # spread over the whole grace
    # Another answer in between starts over.
    for at in (0.0, 30.0):
        assert not runs.answered(2, at, 60.0)
    runs.other(2)
    assert not runs.answered(2, 61.0, 60.0)
    assert NOT_FOUND_ANSWERS_MIN == 3


def test_a_run_is_its_first_answer_and_its_count() -> None:
    # What the journal keeps (txns.not_found_first_s, not_found_count) is all the rule needs.
    run, evidence = not_found_answered(None, 12.5, 60.0)
    assert (run, evidence) == (NotFoundRun(first_s=12.5, count=1), False)
    run, evidence = not_found_answered(NotFoundRun(first_s=12.5, count=1), 80.0, 60.0)
    assert (run, evidence) == (NotFoundRun(first_s=12.5, count=2), False)  # only two
    run, evidence = not_found_answered(run, 72.5, 60.0)
    assert (run, evidence) == (NotFoundRun(first_s=12.5, count=3), True)  # 60 s exactly
    # A clock restored behind the run's first answer (a crash before any save) only waits
    # longer: never evidence sooner than the truth.
    assert not not_found_answered(NotFoundRun(first_s=50.0, count=5), 40.0, 0.0)[1]


def test_clock_watch_ignores_drift_and_sees_jumps_both_ways() -> None:
    mono = Mono()
    wall = Clock()
    watch = ClockWatch(lambda: 1_700_000_000.0 + wall.offset + mono.t, mono)
    mono.t += 10
    wall.advance(0.5)  # slewing, not a jump
    assert watch.check() is None
    wall.advance(-120)
    jump = watch.check()
    assert jump is not None and jump.delta_s == pytest.approx(-119.5)
    assert watch.check() is None  # reported once
    assert list(watch.jumps) == [jump]


async def test_elapsed_survives_a_restart_without_wall_clock_differences(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    wall = Clock()
    journal = Journal(path, clock=wall)
    record = await journal.create(kind=Kind.SALE, txn="REST00000001", lane="till-1",
                                  tid="1", amount="100", request={}, txn_time="t",
                                  states=(TxnState.RECEIVED, TxnState.SENDING))
    mono = Mono()
    money = MoneyClock(mono)
    money.start(record.row_id)
    mono.t += 40
    await journal.save_elapsed(money.snapshot([record.row_id]))
    await journal.aclose()
    wall.advance(JUMP_S)  # the PC's clock was set while the agent was stopped
    journal = Journal(path, clock=wall)
    try:
        again = journal.get(record.row_id)
        assert again.elapsed_s == pytest.approx(40.0)
        later = MoneyClock(Mono())
        assert later.elapsed(again) == pytest.approx(40.0)  # not 340
    finally:
        await journal.aclose()

"""Crash safety: the daemon as a subprocess, SIGKILLed at each stage of a sale, restarted.

In every case exactly one Sale reaches the emulator and exactly one final result reaches
the register (a repeated frame suppressed by R7 is fine). Stages are reached by
watching the emulator's record and the register's transcript, never by timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.errors import UndeliveredError
from agent.link.codec import ETX, STX
from agent.link.layer import LinkClosedError
from agent.register.messages import Accepted, Paylink, Ping, Pong, Result, Sale
from agent.sim.paytm import (
    Emulator,
    EmulatorSettings,
    Fault,
    RecordedRequest,
)
from agent.sim.register.client import Received
from devtools.config import DEMO_KEY_TEXT, LaneSpec, process_config, write_key
from devtools.process import AgentProcess
from devtools.pty import Pty
from devtools.stack import TID, Register, register_on, wait_for_request

START_WAIT_S = 20.0  # a cold Python start with aiohttp on a loaded 2-core box
# Fast polling; a sale stays open (not `unknown`) for as long as any test takes.
POLLING = {"first_check_s": 0, "interval_s": 0.05, "slow_interval_s": 0.1,
           "unknown_after_s": 60, "not_found_grace_s": 30, "paylink_interval_s": 0.05}
PAYTM_TIMEOUTS = {"connect_timeout_s": 2, "read_timeout_s": 5}


async def _until_up(register: Register) -> None:
    """Ping until the agent answers: it is up, recovered and serving this lane."""
    async def ping() -> None:
        n = 0
        while True:
            n += 1
            with contextlib.suppress(UndeliveredError):
                exchange = await register.client.request(Ping(id=f"up{n}"), 2.0)
                if isinstance(exchange.final, Pong):
                    return

    await asyncio.wait_for(ping(), START_WAIT_S)


@dataclass
class Rig:
    emulator: Emulator
    daemon: AgentProcess
    pty: Pty


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, settings: EmulatorSettings | None = None) -> AsyncIterator[Rig]:
    emulator = Emulator(settings or EmulatorSettings())
    async with emulator.serve() as base_url:
        pty = Pty()
        config = process_config(
            base_url=base_url, journal=tmp_path / "journal.db", key_file=write_key(tmp_path),
            lanes=[LaneSpec("till-1", f"serial://{pty.path}", TID, pos_id="S1_1")],
            polling=POLLING, paytm=PAYTM_TIMEOUTS)
        # Up when it answers a ping (_until_up), as its register sees it: no wait for READY.
        daemon = AgentProcess(tmp_path, config, ready=False)
        try:
            await daemon.start()
            yield Rig(emulator, daemon, pty)
        finally:
            await daemon.stop()
            pty.close()


def _finals(register: Register, txn: str) -> list[Result]:
    """Final results the register saw for `txn`, counting a repeat in a new frame."""
    return [e.message for e in register.transcript
            if isinstance(e, Received) and isinstance(e.message, Result)
            and e.message.txn == txn and e.message.status != "unknown"]


async def _final(register: Register, txn: str) -> Result:
    reply = await register.wait_for(
        lambda m: isinstance(m, Result) and m.txn == txn and m.status != "unknown",
        START_WAIT_S)
    assert isinstance(reply, Result)
    return reply


def _sale_sent(txn: str) -> Callable[[RecordedRequest], bool]:
    return lambda r: r.api == "sale" and r.txn == txn


@pytest.mark.parametrize("stage", ["sending", "accepted", "polling"])
async def test_killed_mid_sale_resumes_without_a_second_sale(tmp_path: Path, stage: str) -> None:
    txn = f"CRASH{stage.upper():0<10}"[:20]
    async with rig(tmp_path) as r, register_on(r.pty.master) as register:
        await _until_up(register)
        if stage == "sending":
            # Paytm holds the answer: the agent has `sending` on disk and the Sale in flight.
            r.emulator.inject(Fault(api="sale", kind="delay", count=1, delay_s=60))
            amount = "15000"
        else:
            amount = "15002"  # the customer takes their time: the sale stays open
        request = asyncio.ensure_future(register.client.request(
            Sale(id="sale1", txn=txn, amount=amount), START_WAIT_S))
        await wait_for_request(r.emulator, _sale_sent(txn))
        if stage == "accepted":
            await register.wait_for(lambda m: isinstance(m, Accepted) and m.txn == txn)
        if stage == "polling":
            await wait_for_request(r.emulator, lambda q: q.api == "status" and q.txn == txn)
        await r.daemon.kill()
        await r.daemon.start()
        if stage != "sending":
            r.emulator.finish(txn, "success")
        result = await _final(register, txn)
        assert result.status == "success" and result.re == "sale1"
        assert r.emulator.count("sale", txn) == 1
        assert len(_finals(register, txn)) == 1
        with contextlib.suppress(LinkClosedError, UndeliveredError):
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)


async def test_killed_after_result_journaled_before_ack(tmp_path: Path) -> None:
    txn = "CRASHACK0001"
    async with rig(tmp_path) as r:
        async with register_on(r.pty.master) as register:
            await _until_up(register)
            exchange = await register.client.request(Sale(id="sale1", txn=txn,
                                                          amount="15002"), 2.0)
            assert isinstance(exchange.replies[0], Accepted)
        # The register stops answering: the result frame will never be ACKed.
        r.emulator.finish(txn, "success")
        frame = await _first_result_frame(r.pty.master, txn)
        await r.daemon.kill()
        await r.daemon.start()
        async with register_on(r.pty.master, name="register-2") as back:
            await _until_up(back)
            result = await _final(back, txn)
            assert result.status == "success" and result.re == "sale1"
            # Resent from the journal with the same message id: a register that had
            # read the first copy drops this one by R7.
            assert f'"id":"{result.id}"'.encode() in frame
            assert len(_finals(back, txn)) == 1
        assert r.emulator.count("sale", txn) == 1


async def _first_result_frame(fd: int, txn: str) -> bytes:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 4096)))
    buffer = b""
    try:
        while True:
            buffer += await asyncio.wait_for(queue.get(), START_WAIT_S)
            while STX in buffer:
                start = buffer.index(STX)
                end = buffer.find(ETX, start)
                if end < 0 or len(buffer) < end + 2:
                    break
                payload = buffer[start + 1:end]
                buffer = buffer[end + 2:]
                if b'"type":"result"' in payload and txn.encode() in payload:
                    return payload
    finally:
        loop.remove_reader(fd)


async def test_killed_while_a_payment_link_is_pending(tmp_path: Path) -> None:
    order = "CRASHLINK001"
    # The customer takes ten minutes (emulator time): the link stays open across the crash.
    async with rig(tmp_path, EmulatorSettings(customer_delay_s=600)) as r, \
            register_on(r.pty.master) as register:
        await _until_up(register)
        exchange = await register.client.request(
            Paylink(id="link1", txn=order, amount="25000", phone="9876543210"), 5.0)
        assert isinstance(exchange.replies[0], Accepted)
        await wait_for_request(r.emulator, lambda q: q.api == "pg_status" and q.txn == order)
        await r.daemon.kill()
        await r.daemon.start()
        await _until_up(register)
        r.emulator.pay(order)
        result = await _final(register, order)
        assert result.kind == "paylink" and result.status == "success"
        assert result.re == "link1"
        assert r.emulator.count("send_link", order) == 1
        assert len(_finals(register, order)) == 1
        assert DEMO_KEY_TEXT not in (tmp_path / "agent.log").read_text()

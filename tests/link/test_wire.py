"""The link layer over real byte pipes, as a register is wired to the agent:

- pty: the agent opens the slave by path through pyserial
  (drivers.serial_port.SerialTransport), the register holds the master
  (drivers.fd.FdTransport), as with a USB-serial cable to a till;
- tcp: the agent listens on loopback (drivers.tcp.TcpServerTransport), the
  register connects (drivers.tcp.TcpClientTransport).

Every test runs over both. Timing is asserted as the register sees it: from the
write of the frame's LRC to the read of the answer. The strict 100 ms figure (R1)
is checked on the median of many round trips, so one scheduling hiccup on a busy
machine does not fail the suite; bench/link.py measures it properly.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import pytest

from agent.errors import UndeliveredError
from agent.link.codec import ACK, ENQ, NAK, encode_frame, lrc
from agent.link.layer import ACK_DEADLINE_S, Link
from agent.link.timings import LinkTimings
from devtools.pty import open_pty
from drivers.base import Backoff, Transport, TransportState
from drivers.fd import FdTransport
from drivers.serial_port import SerialTransport
from drivers.tcp import TcpClientTransport, TcpServerTransport
from drivers.url import SerialSpec, TcpSpec

from .pipes import ByteWatcher, LineFaults, TappedTransport, drop_first
from .test_layer import json_id, msg
from .test_noisy import message, receive_n, send_all

# Short enough to keep the suite quick, long enough for a loaded 2-core CI machine.
FAST = LinkTimings(ack_timeout_s=0.3, retries=3, frame_gap_s=0.2)
UP_WITHIN_S = 5.0
WIRES = ["pty", "tcp"]


@dataclass
class Wire:
    agent: Transport
    register: Transport


async def until_up(*transports: Transport) -> None:
    async with asyncio.timeout(UP_WITHIN_S):
        for t in transports:
            await t.wait_state(TransportState.UP)


@asynccontextmanager
async def pty_wire() -> AsyncIterator[Wire]:
    master, slave, path = open_pty(raw=False)
    agent = SerialTransport(SerialSpec(path=path, baudrate=115200))
    register = FdTransport(master, f"pty-master:{path}")
    try:
        await agent.open()
        await register.open()
        await until_up(agent, register)
        yield Wire(agent, register)
    finally:
        await agent.close()
        await register.close()  # closes the master
        os.close(slave)  # held until now so the master never saw a hang-up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def tcp_wire() -> AsyncIterator[Wire]:
    spec = TcpSpec("127.0.0.1", free_port())
    agent = TcpServerTransport(spec)
    # The client may try before the listener is bound; let it retry at once.
    register = TcpClientTransport(spec, backoff=Backoff(initial_s=0.01, max_s=0.05))
    try:
        await agent.open()
        await register.open()
        await until_up(agent, register)
        yield Wire(agent, register)
    finally:
        await register.close()
        await agent.close()


@asynccontextmanager
async def wire_of(kind: str) -> AsyncIterator[Wire]:
    factory = pty_wire if kind == "pty" else tcp_wire
    async with factory() as wire:
        yield wire


@asynccontextmanager
async def started(link: Link) -> AsyncIterator[Link]:
    await link.start()
    try:
        yield link
    finally:
        await link.stop()


@pytest.mark.parametrize("kind", WIRES)
async def test_ack_nak_and_enq_answers_and_timing(kind: str) -> None:
    async with wire_of(kind) as wire, started(
        Link(wire.agent, FAST, name="agent", id_of=json_id)
    ) as agent, ByteWatcher(wire.register) as seen:
        delays: list[float] = []
        for i in range(30):
            before = len(seen.data)
            t0 = time.monotonic()
            await wire.register.write(encode_frame(msg(f"t{i}")))
            await seen.wait_len(before + 1)
            delays.append(time.monotonic() - t0)
            assert await asyncio.wait_for(agent.receive(), 5) == msg(f"t{i}")
        assert bytes(seen.data) == bytes([ACK]) * 30
        assert statistics.median(delays) < ACK_DEADLINE_S
        assert max(delays) < FAST.ack_timeout_s * 10  # one hiccup tolerated, not a stall

        bad = msg("bad")
        await wire.register.write(b"\x02" + bad + bytes([0x03, lrc(bad) ^ 0x55]))
        await seen.wait_len(31)
        await wire.register.write(bytes([ENQ]))
        await seen.wait_len(32)
        assert bytes(seen.data)[30:] == bytes([NAK, ACK])
        assert agent.queued == 0
        assert agent.counters.rejected == 1


@pytest.mark.parametrize("kind", WIRES)
async def test_undelivered_after_four_sends(kind: str) -> None:
    async with wire_of(kind) as wire, started(
        Link(wire.agent, FAST, name="agent")
    ) as agent, ByteWatcher(wire.register) as seen:
        payload = msg("nobody-answers")
        with pytest.raises(UndeliveredError):
            await asyncio.wait_for(agent.send(payload), 5)
        frame = encode_frame(payload)
        await seen.wait_len(4 * len(frame))
        assert bytes(seen.data) == frame * 4
        assert agent.down
        waiting = asyncio.create_task(agent.wait_up())
        await wire.register.write(b"\x04")
        await asyncio.wait_for(waiting, 5)
        assert not agent.down


@asynccontextmanager
async def two_links(
    kind: str,
    agent_tap: Callable[[bytes], bytes] | None = None,
    register_tap: Callable[[bytes], bytes] | None = None,
    timings: LinkTimings = FAST,
) -> AsyncIterator[tuple[Link, Link]]:
    async with AsyncExitStack() as stack:
        wire = await stack.enter_async_context(wire_of(kind))
        agent_t: Transport = wire.agent if agent_tap is None else TappedTransport(wire.agent,
                                                                                agent_tap)
        register_t: Transport = (wire.register if register_tap is None
                                 else TappedTransport(wire.register, register_tap))
        agent = await stack.enter_async_context(
            started(Link(agent_t, timings, name="agent", id_of=json_id)))
        register = await stack.enter_async_context(
            started(Link(register_t, timings, name="register", id_of=json_id)))
        yield agent, register


@pytest.mark.parametrize("kind", WIRES)
async def test_lost_ack_retransmission_and_duplicate_suppression(kind: str) -> None:
    async with two_links(kind, agent_tap=drop_first(ACK)) as (agent, register):
        await asyncio.wait_for(register.send(msg("sale-1")), 5)
        await asyncio.wait_for(register.send(msg("sale-2")), 5)
        assert await asyncio.wait_for(agent.receive(), 5) == msg("sale-1")
        assert await asyncio.wait_for(agent.receive(), 5) == msg("sale-2")
        assert register.counters.retransmissions == 1
        assert agent.counters.duplicates == 1


@pytest.mark.parametrize("kind", WIRES)
async def test_both_directions_and_link_check(kind: str) -> None:
    async with two_links(kind) as (agent, register):
        rtt = await agent.check(timeout_s=5.0)
        assert rtt < 5.0
        to_reg = [msg(f"a{i}") for i in range(50)]
        to_agent = [msg(f"r{i}") for i in range(50)]
        got = await asyncio.wait_for(asyncio.gather(
            send_all(agent, to_reg), send_all(register, to_agent),
            receive_n(register, 50), receive_n(agent, 50)), 20)
        assert got[2] == to_reg and got[3] == to_agent


@pytest.mark.parametrize("kind", WIRES)
async def test_noisy_line_delivers_exactly_once(kind: str) -> None:
    n = 40
    agent_faults = LineFaults(11, flip=0.005, drop=0.005, max_per_write=1, detectable_only=True)
    register_faults = LineFaults(12, flip=0.005, drop=0.005, max_per_write=1,
                                 detectable_only=True)
    async with two_links(kind, agent_faults, register_faults) as (agent, register):
        to_reg = [message("a", i) for i in range(n)]
        to_agent = [message("r", i) for i in range(n)]
        got = await asyncio.wait_for(asyncio.gather(
            send_all(agent, to_reg), send_all(register, to_agent),
            receive_n(register, n), receive_n(agent, n)), 30)
        assert got[2] == to_reg and got[3] == to_agent
        assert agent.queued == 0 and register.queued == 0
        assert agent_faults.flipped + agent_faults.dropped + register_faults.flipped + \
            register_faults.dropped > 0

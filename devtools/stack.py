"""An agent, the Paytm emulator and a register on a real pty, all in this process
(what the engine, day, journal, web and service tests drive).

    RegisterClient ─ Link ─ FdTransport(pty master) ══ pty ══ SerialTransport(slave) ─ Agent
    Agent ─ aiohttp ─ loopback ─ Emulator

Nothing is faked: real frames over a real tty, a real SQLite journal file, real HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.app import Agent
from agent.config import Config, config_from_dict
from agent.journal import Journal
from agent.link.layer import Link
from agent.link.spec import LinkSpec
from agent.link.timings import LinkProtocol, LinkTimings
from agent.register.codec import message_id
from agent.register.messages import Reply, Result
from agent.sim.paytm import Emulator, EmulatorSettings, RecordedRequest
from agent.sim.register.client import Received, RegisterClient, TranscriptEvent
from devtools import config as config_data
from devtools.config import CLIENT_DEMO_KEY
from devtools.pty import Pty
from drivers.base import Transport
from drivers.fd import FdTransport
from drivers.serial_port import SerialTransport
from drivers.url import SerialSpec

TID = "12345678"
WAIT_S = 10.0  # safety net for awaits that should complete in milliseconds


def agent_config(
    *,
    base_url: str,
    journal: Path,
    link: str,
    polling: dict[str, float] | None = None,
    extra_lanes: list[dict[str, Any]] | None = None,
    tid: str = TID,
    webhook: bool = False,
) -> Config:
    """The in-process agent's config: one lane `till-1` on `link`, fast polling, the key
    given to Agent() directly (the file is never read)."""
    return config_from_dict(config_data.agent_config(
        base_url=base_url, journal=journal, key_file="/unused",
        lanes=[config_data.LaneSpec("till-1", link, tid, pos_id="S1_1"), *(extra_lanes or [])],
        polling={"first_check_s": 0, "interval_s": 0.02, "slow_after_s": 60,
                 "slow_interval_s": 0.05, "unknown_after_s": 30, "not_found_grace_s": 30,
                 **(polling or {})},
        paytm={"connect_timeout_s": 2, "read_timeout_s": 2},
        webhook={"enabled": webhook, "listen": "127.0.0.1:0"},
        receipt={"width": 32, "header": ["Test Store"]}))


@dataclass
class Register:
    """The register side of one pty: a client plus everything it saw."""

    client: RegisterClient
    link: Link
    transcript: list[TranscriptEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, event: TranscriptEvent) -> None:
        self.transcript.append(event)
        self.changed.set()

    async def wait_for(self, predicate: Callable[[Reply], bool],
                       timeout_s: float = WAIT_S) -> Reply:
        """The first reply (so far or to come) matching `predicate`."""
        async def find() -> Reply:
            while True:
                self.changed.clear()
                for event in self.transcript:
                    if isinstance(event, Received) and event.message is not None \
                            and predicate(event.message):
                        return event.message
                await self.changed.wait()

        return await asyncio.wait_for(find(), timeout_s)

    def results(self, txn: str | None = None) -> list[Result]:
        return [e.message for e in self.transcript
                if isinstance(e, Received) and isinstance(e.message, Result)
                and (txn is None or e.message.txn == txn)]


def serial_only(spec: LinkSpec) -> Transport:
    assert isinstance(spec.target, SerialSpec)
    return SerialTransport(spec.target, url=spec.url)


@asynccontextmanager
async def register_on(fd: int, name: str = "register",
                      timings: LinkTimings | None = None,
                      protocol: LinkProtocol = LinkProtocol.V1) -> AsyncIterator[Register]:
    # A register of before link v2 unless a test asks for another.
    transport = FdTransport(fd, name, close_fd=False)
    await transport.open()
    link = Link(transport, timings or LinkTimings(ack_timeout_s=0.3), name=name,
                id_of=message_id, protocol=protocol)
    await link.start()
    register = Register(client=RegisterClient(link), link=link)
    register.client = RegisterClient(link, transcript=register.record)
    await register.client.start()
    try:
        yield register
    finally:
        await register.client.stop()
        await link.stop()
        await transport.close()


async def wait_for_request(emulator: Emulator, predicate: Callable[[RecordedRequest], bool],
                           timeout_s: float = WAIT_S) -> RecordedRequest:
    """The first recorded request matching `predicate`, awaiting the emulator's record."""
    async def find() -> RecordedRequest:
        while True:
            for request in emulator.requests:
                if predicate(request):
                    return request
            await emulator.recorded()

    return await asyncio.wait_for(find(), timeout_s)


async def until_delivered(journal: Journal, row_id: int, timeout_s: float = WAIT_S) -> None:
    """Wait until the register has ACKed a result of transaction row `row_id`."""
    def delivered() -> bool:
        return any(o.delivered_at is not None for o in journal.outbox_for(row_id))

    if delivered():
        return
    event = asyncio.Event()
    unsubscribe = journal.subscribe(
        lambda what, row: event.set() if what == "delivered" and row == row_id else None)
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    finally:
        unsubscribe()
    assert delivered()


@dataclass
class Stack:
    emulator: Emulator
    agent: Agent
    register: Register
    pty: Pty
    config: Config


class Clock:
    """The agent's wall clock, movable by tests (the emulator has its own `advance`)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@asynccontextmanager
async def stack(tmp_path: Path, settings: EmulatorSettings | None = None,
                polling: dict[str, float] | None = None, clock: Clock | None = None,
                webhook: bool = False, lane_query: str = "",
                register_protocol: LinkProtocol = LinkProtocol.V1) -> AsyncIterator[Stack]:
    emulator = Emulator(settings or EmulatorSettings())
    async with emulator.serve() as base_url:
        pty = Pty()
        config = agent_config(base_url=base_url, journal=tmp_path / "journal.db",
                              link=f"serial://{pty.path}{lane_query}", polling=polling,
                              webhook=webhook)
        agent = Agent(config, CLIENT_DEMO_KEY, transport_factory=serial_only,
                      wall=clock if clock is not None else time.time)
        await agent.start()
        try:
            async with register_on(pty.master, protocol=register_protocol) as register:
                yield Stack(emulator=emulator, agent=agent, register=register, pty=pty,
                            config=config)
        finally:
            await agent.stop()
            pty.close()

"""The register side of many lanes, lean enough that the bench is not the bottleneck.

    tills = Tills.make(pty=2, tcp=2)        # ptys opened, tcp ports chosen
    config: tills.lane_specs()              # the [[lanes]] of the agent's config
    async with tills.connected():           # after the agent is READY
        timing = await tills[0].sale("ORDER0001", "100")

Each till speaks the register protocol on the wire as the real thing does: it writes
a `sale` frame (STX payload ETX LRC), ACKs every frame the agent sends at once (the
protocol wants it within 100 ms, R1), answers ENQ with ACK and resends its frame on a
NAK. It does not run the asyncio Link layer or RegisterClient: at 256 lanes the bench
process would otherwise compete with the agent for the two cores. Frames are decoded
with the agent's own pure FrameDecoder.

Times (time.monotonic, CLOCK_MONOTONIC, comparable across processes) are taken just
before the frame is written and just after the read that completed the agent's
`result` frame.

ptys: the bench holds the master and keeps the slave open too (so the pty outlives
the agent closing it); the agent opens the slave by path (serial:///dev/pts/N).
TCP: the agent listens (tcp://127.0.0.1:PORT); the till connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bench.common import ensure_path, free_tcp_ports

ensure_path()

from agent.link.codec import (  # noqa: E402
    ACK,
    ENQ,
    NAK,
    ControlReceived,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    encode_frame,
)
from agent.register.codec import encode  # noqa: E402
from agent.register.messages import Sale  # noqa: E402
from agent.sim.paytm import demo_bench_tid  # noqa: E402
from devtools.config import LaneSpec  # noqa: E402
from devtools.emulator import Call, EmulatorRecord  # noqa: E402
from devtools.pty import open_pty  # noqa: E402

CONNECT_TIMEOUT_S = 15.0
SALE_TIMEOUT_S = 20.0
ACK_TIMEOUT_S = 0.5
RETRIES = 3
_ACK = bytes((ACK,))
_NAK = bytes((NAK,))


@dataclass(slots=True)
class SaleTiming:
    lane: str
    txn: str
    sent: float  # just before the sale frame was written
    request_frame_bytes: int
    accepted: float | None = None  # the `accepted` frame was read
    result: float | None = None  # the `result` frame was read
    result_frame_bytes: int = 0
    status: str = ""
    code: str = ""


@dataclass
class Till:
    name: str
    tid: str
    link: str  # what the agent's config says for this lane
    write: Callable[[bytes], None] = field(default=lambda data: None, repr=False)
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    waiting: dict[str, tuple[SaleTiming, asyncio.Future[SaleTiming]]] = field(
        default_factory=dict)
    last_frame: bytes = b""
    frames_in: int = 0
    enqs_in: int = 0
    bytes_in: int = 0
    broken: str = ""  # why the connection ended, if it did
    resends: int = 0  # frames written again after no ACK (S2) or a NAK
    # Called with the read time of every ACK the agent sends (bench/slowdisk.py times
    # ENQ → ACK with it).
    on_ack: Callable[[float], None] | None = field(default=None, repr=False)
    _acked: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def sale(self, txn: str, amount: str = "100", *, msg_id: str | None = None,
                   timeout_s: float = SALE_TIMEOUT_S) -> SaleTiming:
        """Send one sale and wait for its result frame."""
        payload = encode(Sale(id=msg_id or f"q{txn}", txn=txn, amount=amount,
                              ref=f"INV{txn[-12:]}"))
        frame = encode_frame(payload)
        future: asyncio.Future[SaleTiming] = asyncio.get_running_loop().create_future()
        timing = SaleTiming(lane=self.name, txn=txn, sent=0.0, request_frame_bytes=len(frame))
        self.waiting[txn] = (timing, future)
        self.last_frame = frame
        try:
            self._acked.clear()
            timing.sent = time.monotonic()
            self.write(frame)
            # S2: no ACK within ACK_TIMEOUT_S → the same frame again (the agent drops a
            # repeat by its id, R7). Matters only at start: the agent's serial driver
            # may flush the pty when it opens it, just after READY=1.
            for _ in range(RETRIES):
                try:
                    await asyncio.wait_for(self._acked.wait(), ACK_TIMEOUT_S)
                    break
                except TimeoutError:
                    if future.done():
                        break
                    self.resends += 1
                    self.write(frame)
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self.waiting.pop(txn, None)

    def on_data(self, data: bytes, now: float) -> None:
        self.bytes_in += len(data)
        for event in self.decoder.feed(data, now):
            if isinstance(event, FrameReceived):
                self.write(_ACK)  # R1: at once, before looking inside
                self.frames_in += 1
                self._on_payload(event.payload, now)
            elif isinstance(event, FrameRejected):
                self.write(_NAK)
            elif isinstance(event, ControlReceived):
                if event.byte == ENQ:
                    self.enqs_in += 1
                    self.write(_ACK)
                elif event.byte == ACK:
                    self._acked.set()
                    if self.on_ack is not None:
                        self.on_ack(now)
                elif event.byte == NAK and self.last_frame:
                    self.resends += 1
                    self.write(self.last_frame)  # S2: the agent wants it again

    def _on_payload(self, payload: bytes, now: float) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        txn = message.get("txn")
        entry = self.waiting.get(txn) if isinstance(txn, str) else None
        if entry is None:
            return
        timing, future = entry
        if kind == "accepted" and timing.accepted is None:
            timing.accepted = now
        elif kind in ("result", "error") and not future.done():
            timing.result = now
            timing.result_frame_bytes = len(payload) + 3  # STX, ETX, LRC
            timing.status = str(message.get("status", kind))
            timing.code = str(message.get("code", ""))
            future.set_result(timing)

    def on_lost(self, why: str) -> None:
        self.broken = why or "closed"
        for _, future in list(self.waiting.values()):
            if not future.done():
                future.set_exception(ConnectionError(f"{self.name}: {self.broken}"))


class _PtyTill:
    def __init__(self, till: Till) -> None:
        self.till = till
        self.master, self.slave, self.path = open_pty()
        os.set_blocking(self.master, False)
        till.link = f"serial://{self.path}"

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        master = self.master

        def write(data: bytes) -> None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(master, view):]
                except BlockingIOError:  # a full pty buffer: the agent is not reading
                    time.sleep(0.0005)

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                return
            except OSError as exc:
                loop.remove_reader(master)
                self.till.on_lost(str(exc))
                return
            self.till.on_data(data, time.monotonic())

        self.till.write = write
        loop.add_reader(master, readable)

    def close(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is not None:
            with contextlib.suppress(Exception):
                loop.remove_reader(self.master)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class _TcpTill(asyncio.Protocol):
    def __init__(self, till: Till, port: int) -> None:
        self.till = till
        self.port = port
        self.transport: asyncio.Transport | None = None
        till.link = f"tcp://127.0.0.1:{port}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.till.write = transport.write

    def data_received(self, data: bytes) -> None:
        self.till.on_data(data, time.monotonic())

    def connection_lost(self, exc: Exception | None) -> None:
        self.till.on_lost(str(exc) if exc else "connection closed by the agent")

    async def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                await loop.create_connection(lambda: self, "127.0.0.1", self.port)
                return
            except OSError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)  # the agent's listener may still be coming up

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Tills:
    """N lanes' register ends: `pty` over ptys, `tcp` over loopback TCP."""

    def __init__(self, ptys: list[_PtyTill], tcps: list[_TcpTill]) -> None:
        self._ptys = ptys
        self._tcps = tcps
        self.tills = [p.till for p in ptys] + [t.till for t in tcps]
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def make(cls, *, pty: int = 0, tcp: int = 0, first_tid: int = 1) -> Tills:
        ptys: list[_PtyTill] = []
        tcps: list[_TcpTill] = []
        try:
            for i in range(pty):
                n = first_tid + i
                ptys.append(_PtyTill(Till(f"lane-{n}", demo_bench_tid(n), "")))
            for i, port in enumerate(free_tcp_ports(tcp)):
                n = first_tid + pty + i
                tcps.append(_TcpTill(Till(f"lane-{n}", demo_bench_tid(n), ""), port))
        except BaseException:
            for p in ptys:
                p.close(None)
            raise
        return cls(ptys, tcps)

    def __len__(self) -> int:
        return len(self.tills)

    def __getitem__(self, index: int) -> Till:
        return self.tills[index]

    def __iter__(self) -> Iterator[Till]:
        return iter(self.tills)

    def lane_specs(self) -> list[LaneSpec]:
        return [LaneSpec(t.name, t.link, t.tid) for t in self.tills]

    @property
    def kinds(self) -> str:
        return f"{len(self._ptys)} pty + {len(self._tcps)} tcp"

    @asynccontextmanager
    async def connected(self) -> AsyncIterator[Tills]:
        """Attach the ptys and connect the TCP tills (the agent is already listening)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            for p in self._ptys:
                p.attach(loop)
            await asyncio.gather(*(t.connect() for t in self._tcps))
            yield self
        finally:
            for t in self._tcps:
                t.close()

    def close(self) -> None:
        """Close every pty (call after the agent has stopped)."""
        for p in self._ptys:
            p.close(self._loop)
        for t in self._tcps:
            t.close()

    def __enter__(self) -> Tills:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Legs:
    """The agent's share of each sale, from the register's and the emulator's times."""

    leg1: list[float]  # sale frame written → Sale request in at the emulator
    leg2: list[float]  # final status answer out of the emulator → result frame read
    round_trip: list[float]  # sale frame written → result frame read
    emulator: list[float]  # time inside the emulator's handlers for that sale's calls
    sales_at_emulator: dict[str, int]  # Sale requests per txn (must be 1 each)
    missing: list[str]  # txns with no result, or no Sale/status at the emulator

    @property
    def added(self) -> list[float]:
        """leg 1 + leg 2 of each sale: everything the agent adds to the checkout's wire path."""
        return [a + b for a, b in zip(self.leg1, self.leg2, strict=True)]


def sale_legs(timings: list[SaleTiming], record: EmulatorRecord) -> Legs:
    sales: dict[str, int] = {}
    first_sale: dict[str, Call] = {}
    last_status: dict[str, Call] = {}
    spent: dict[str, float] = {}
    for call in record.calls:
        spent[call.txn] = spent.get(call.txn, 0.0) + (call.answered - call.at)
        if call.api == "sale":
            sales[call.txn] = sales.get(call.txn, 0) + 1
            first_sale.setdefault(call.txn, call)
        elif call.api == "status":
            last_status[call.txn] = call
    leg1: list[float] = []
    leg2: list[float] = []
    round_trip: list[float] = []
    emulator: list[float] = []
    missing: list[str] = []
    for t in timings:
        sale = first_sale.get(t.txn)
        status = last_status.get(t.txn)
        if t.result is None or sale is None or status is None:
            missing.append(t.txn)
            continue
        leg1.append(sale.at - t.sent)
        leg2.append(t.result - status.answered)
        round_trip.append(t.result - t.sent)
        emulator.append(spent.get(t.txn, 0.0))
    return Legs(leg1, leg2, round_trip, emulator,
                {t.txn: sales.get(t.txn, 0) for t in timings}, missing)


"""In-memory byte pipes for link tests: a connected pair of `Transport`s.

Bytes written on one end arrive on the other, optionally through `LineFaults`
(a seeded RNG that flips bits and drops bytes, like a noisy RS-232 cable) and
through a `tap` that a test uses to drop or watch particular bytes. Reads return
whatever is buffered, at most `read_max` bytes, so frames arrive split and
merged as they do from a UART.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable

from drivers.base import Transport, TransportState, TransportStatus
from drivers.errors import TransportClosedError, TransportDownError

Tap = Callable[[bytes], bytes]

_FRAMING_AND_CONTROL = frozenset({0x02, 0x03, 0x04, 0x05, 0x06, 0x15})
# One bit apart and both symbols (SOH included): the flips a one-byte symbol cannot
# survive, e.g. STX <-> ACK (0x02 ^ 0x04), NAK -> ENQ (0x15 ^ 0x10), SOH -> ENQ (0x01 ^ 0x04).
_SYMBOLS = frozenset({0x01, *_FRAMING_AND_CONTROL})
CONFUSIONS: dict[int, tuple[int, ...]] = {
    byte: tuple(byte ^ (1 << bit) for bit in range(8) if byte ^ (1 << bit) in _SYMBOLS)
    for byte in sorted(_SYMBOLS)
}


class LineFaults:
    """Flips one bit of a byte with probability `flip`, drops a byte with probability `drop`.

    Some damage no receiver can detect, whatever the link does; it is a limit of
    the protocol's one-byte symbols and one-byte XOR LRC:
    - one bit turns STX into ACK (0x02 ^ 0x04), or NAK into ENQ (0x15 ^ 0x10, which
      the peer answers with ACK): a forged ACK for whatever frame is outstanding;
    - one bit turns a payload '"' into STX (0x22 ^ 0x20): R4 restarts the frame and
      the tail passes the LRC in 1 case out of 256;
    - two faults in one frame can cancel out in the LRC.
    Tests that demand exactly-once delivery therefore set `max_per_write=1` (one
    fault per frame or per ACK) and `detectable_only=True`: a bit flip hits only a
    payload byte (0x20..0x7E) and never makes STX, ETX or a control byte; any
    byte may still be dropped (a lost STX, ETX, LRC, ACK or NAK is detectable as
    long as LRCs are not control bytes, which the noisy test arranges).
    """

    def __init__(
        self,
        seed: int,
        *,
        flip: float = 0.0,
        drop: float = 0.0,
        max_per_write: int | None = None,
        detectable_only: bool = False,
        confuse: float = 0.0,
    ) -> None:
        self._rng = random.Random(seed)
        self.flip = flip
        self.drop = drop
        self.max_per_write = max_per_write
        self.detectable_only = detectable_only
        # Probability that a symbol byte becomes another symbol one bit away (CONFUSIONS):
        # rare on a real cable, frequent here so that tests meet it.
        self.confuse = confuse
        self.flipped = 0
        self.dropped = 0
        self.confused = 0  # symbol bytes turned into another symbol

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        rng = self._rng
        budget = len(data) if self.max_per_write is None else self.max_per_write
        for original in data:
            byte = original
            if self.confuse and byte in CONFUSIONS and rng.random() < self.confuse:
                self.confused += 1
                out.append(rng.choice(CONFUSIONS[byte]))
                continue
            r = rng.random()
            if budget and r < self.drop:
                budget -= 1
                self.dropped += 1
                continue
            if budget and r < self.drop + self.flip:
                flipped = byte ^ (1 << rng.randrange(8))
                if not self.detectable_only or (
                    0x20 <= byte <= 0x7E and flipped not in _FRAMING_AND_CONTROL
                ):
                    budget -= 1
                    self.flipped += 1
                    byte = flipped
            out.append(byte)
        return bytes(out)


class MemoryTransport(Transport):
    """One end of an in-memory pipe. Make pairs with `pipe_pair()`."""

    def __init__(self, name: str, read_max: int = 4096) -> None:
        self.status = TransportStatus(url=f"memory://{name}", kind="memory")
        self.peer: MemoryTransport | None = None
        self.tap: Tap | None = None  # applied to what this end writes, before faults
        self.faults: Tap | None = None
        self.read_max = read_max
        self.written = bytearray()  # everything this end wrote (before tap and faults)
        self.write_failed = asyncio.Event()  # set when a write is refused (pipe down)
        self.drained = asyncio.Event()  # set when a read() took the last buffered byte
        self._chunks: collections.deque[bytes] = collections.deque()
        self._readable = asyncio.Event()
        self._closed = False

    async def open(self) -> None:
        if self._closed:
            raise TransportClosedError("pipe closed")
        self.status.set_state(TransportState.UP)

    def set_down(self, error: str = "unplugged") -> None:
        self.status.set_state(TransportState.RECONNECTING, error)

    def set_up(self) -> None:
        self.status.set_state(TransportState.UP)

    async def read(self) -> bytes:
        while not self._chunks:
            if self._closed:
                raise TransportClosedError("pipe closed")
            self._readable.clear()
            await self._readable.wait()
        if self._closed:
            raise TransportClosedError("pipe closed")
        out = bytearray()
        while self._chunks and len(out) < self.read_max:
            chunk = self._chunks.popleft()
            room = self.read_max - len(out)
            if len(chunk) > room:
                self._chunks.appendleft(chunk[room:])
                chunk = chunk[:room]
            out += chunk
        self.status.bytes_in += len(out)
        if not self._chunks:
            self.drained.set()
        return bytes(out)

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosedError("pipe closed")
        if not self.is_up:
            self.write_failed.set()
            raise TransportDownError(f"{self.status.url} is down")
        self.written += data
        self.status.bytes_out += len(data)
        if self.tap is not None:
            data = self.tap(data)
        if self.faults is not None:
            data = self.faults(data)
        if data and self.peer is not None:
            self.peer.inject(data)

    def inject(self, data: bytes) -> None:
        """Make `data` readable on this end, as if the peer had written it."""
        if data:
            self._chunks.append(data)
            self.drained.clear()
            self._readable.set()

    @property
    def pending(self) -> int:
        return sum(map(len, self._chunks))

    async def close(self) -> None:
        self._closed = True
        self.status.set_state(TransportState.DOWN)
        self._readable.set()


def pipe_pair(read_max: int = 4096) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected ends, both up."""
    a = MemoryTransport("a", read_max)
    b = MemoryTransport("b", read_max)
    a.peer, b.peer = b, a
    for end in (a, b):
        end.status.set_state(TransportState.UP)
    return a, b


def noisy_pair(
    seed: int,
    *,
    flip: float,
    drop: float,
    max_per_write: int | None = None,
    detectable_only: bool = False,
    confuse: float = 0.0,
    read_max: int = 16,
) -> tuple[MemoryTransport, MemoryTransport]:
    """A pair whose line flips and drops bytes both ways (independent seeded RNGs).

    A small `read_max` makes frames arrive in pieces, as from a UART.
    """
    a, b = pipe_pair(read_max)
    for end, end_seed in ((a, seed), (b, seed + 1)):
        end.faults = LineFaults(end_seed, flip=flip, drop=drop, max_per_write=max_per_write,
                                detectable_only=detectable_only, confuse=confuse)
    return a, b


class ByteWatcher:
    """Collects what arrives on an end that no Link reads; tests await conditions on it."""

    def __init__(self, end: Transport) -> None:
        self.end = end
        self.data = bytearray()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ByteWatcher:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="byte-watcher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                self.data += await self.end.read()
                self._changed.set()
        except TransportClosedError:
            return

    async def wait_for(self, predicate: Callable[[bytes], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(bytes(self.data)):
                self._changed.clear()
                await self._changed.wait()

    async def wait_len(self, n: int, timeout_s: float = 5.0) -> bytes:
        await self.wait_for(lambda d: len(d) >= n, timeout_s)
        return bytes(self.data)


class TappedTransport(Transport):
    """Wraps a real transport so a test can drop or damage what one side writes."""

    def __init__(self, inner: Transport, tap: Tap) -> None:
        self.inner = inner
        self.tap = tap
        self.status = inner.status

    async def open(self) -> None:
        await self.inner.open()

    async def read(self) -> bytes:
        return await self.inner.read()

    async def write(self, data: bytes) -> None:
        # The inner transport refuses first (down/closed), as it would unwrapped.
        if not self.inner.is_up:
            await self.inner.write(data)
            return
        data = self.tap(data)
        if data:
            await self.inner.write(data)

    async def close(self) -> None:
        await self.inner.close()


def drop_first(byte: int, count: int = 1) -> Callable[[bytes], bytes]:
    """A tap that swallows the first `count` writes consisting of exactly `byte`."""
    left = count

    def tap(data: bytes) -> bytes:
        nonlocal left
        if left and data == bytes([byte]):
            left -= 1
            return b""
        return data

    return tap

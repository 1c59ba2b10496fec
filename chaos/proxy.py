"""The wire of one lane, with a byte-level fault injector in the middle.

    register ─ FdTransport ─ socketpair ══ LaneProxy ══ pty master ─ pty ─ slave path ─ agent
                                          (chaos.line: detectable faults both ways)

The agent opens the pty's slave by path with its serial driver, as it would a real
USB-serial adapter, and reopens it after every restart. The campaign keeps its own
descriptor of the slave open for the whole run, so the master never reads EIO while
the agent is dead; what the register sends meanwhile waits in the tty, and the agent's
serial driver discards it when it opens the port (pyserial flushes input on open) —
like bytes sent down a cable to a switched-off PC.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Callable
from typing import Final

from chaos.line import DetectableFaults, FaultCounts, FrameSplitter, QuietGate, RawFaults

FLUSH_S: Final = 0.25  # a partial frame silent this long is passed on as it is
WRITE_WAIT_S: Final = 1.0  # a destination that takes nothing this long loses the bytes
BUFFER_MAX: Final = 256 * 1024  # unread bytes kept per direction; more are lost
READ_CHUNK: Final = 64 * 1024


class FdEnd:
    """A non-blocking descriptor: a reader callback buffers what arrives; writes wait a bit."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._readable = asyncio.Event()
        self.lost = 0  # bytes lost: buffer overflow, or a destination that took nothing
        self.gone = False  # the descriptor failed (EIO, hang-up)
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.gone = True
            self._loop.remove_reader(self.fd)
            self._readable.set()
            return
        room = BUFFER_MAX - len(self._buffer)
        self.lost += max(0, len(data) - room)
        self._buffer += data[:room]
        self._readable.set()

    async def read(self, timeout_s: float | None) -> bytes | None:
        """What arrived (may be b"" when the descriptor is gone); None on timeout."""
        if not self._buffer and not self.gone:
            self._readable.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._readable.wait()
            except TimeoutError:
                return None
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EPIPE, errno.ECONNRESET):
                    raise
                self.lost += len(view)
                return
            view = view[n:]
            if view and not await self._writable():
                self.lost += len(view)
                return

    async def _writable(self) -> bool:
        ready = self._loop.create_future()

        def on_ready() -> None:
            if not ready.done():
                ready.set_result(None)

        self._loop.add_writer(self.fd, on_ready)
        try:
            async with asyncio.timeout(WRITE_WAIT_S):
                await ready
            return True
        except TimeoutError:
            return False
        finally:
            self._loop.remove_writer(self.fd)

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        self._loop.remove_writer(self.fd)


class LaneProxy:
    """Forwards both ways between the register's socket and the agent's pty, spoiling
    units by the detectable fault model (chaos.line)."""

    def __init__(self, name: str, register_fd: int, agent_fd: int, *, seed: int,
                 rate: float, quiet_s: float, raw: bool = False, confuse: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.gate = QuietGate(quiet_s)
        self.counts = FaultCounts()
        self._register = FdEnd(register_fd, f"{name}:register")
        self._agent = FdEnd(agent_fd, f"{name}:agent")
        model = RawFaults if raw else DetectableFaults
        self._to_agent = model(seed * 2, rate, self.gate, self.counts, confuse)
        self._to_register = model(seed * 2 + 1, rate, self.gate, self.counts, confuse)
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def lost(self) -> int:
        """Bytes lost because nobody took them (the agent dead and its tty full)."""
        return self._register.lost + self._agent.lost

    def quiet(self) -> None:
        """No more faults from now on (the end of the run is checked on a clean line)."""
        self.gate.enabled = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._pump(self._register, self._agent, self._to_agent),
                             name=f"proxy:{self.name}:to-agent"),
            loop.create_task(self._pump(self._agent, self._register, self._to_register),
                             name=f"proxy:{self.name}:to-register"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._register.close()
        self._agent.close()

    async def _pump(self, source: FdEnd, sink: FdEnd, faults: DetectableFaults) -> None:
        splitter = FrameSplitter()
        while True:
            data = await source.read(FLUSH_S if splitter.partial else None)
            if data is None:  # the sender stopped mid-frame (killed): pass the stub on
                await sink.write(splitter.flush())
                continue
            if not data:
                if source.gone:
                    return
                continue
            now = self._clock()
            out = b"".join(faults.apply(unit, now) for unit in splitter.feed(data))
            if out:
                await sink.write(out)


def socket_pair() -> tuple[int, int]:
    """Two connected stream descriptors (AF_UNIX: no network), detached from their sockets."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()

"""A pipe over a raw file descriptor, and the event-driven fd plumbing the serial driver shares.

`FdTransport` wraps a descriptor somebody else opened: the master side of a
pty (`os.openpty()`) for the register console, the demo's virtual register and
tests. Reads are driven by `loop.add_reader` (no polling, no threads); writes
are non-blocking and wait for writability with `loop.add_writer`.

A descriptor cannot be reopened, so "reconnecting" here means: the other end
hung up (a pty master whose slave nobody holds reads EIO and polls POLLHUP);
wait with backoff and look again, because the other end may come back (the
agent reopens the slave by its path).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
from collections.abc import Callable

from drivers.base import Backoff, TransportStatus
from drivers.errors import TransportDownError, TransportError
from drivers.pipe import PipeTransport

# One os.read() takes at most this much; a tty hands over far less at a time.
READ_CHUNK = 64 * 1024

# A write that makes no progress for this long fails: the other end is not
# reading (a pty nobody drains, a serial line held by flow control we do not
# use). Progress, not total time, so a 4 KiB frame at 9600 baud is fine.
WRITE_STALL_S = 5.0


class FdPump:
    """add_reader/add_writer plumbing for one non-blocking descriptor.

    `on_data` gets every chunk read; `on_lost` gets a reason once, when a read
    or write says the device or the other end is gone (EIO, ENXIO, end of file).
    """

    def __init__(
        self,
        fd: int,
        name: str,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[str], None],
        count_out: Callable[[int], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd = fd
        self._name = name
        self._on_data = on_data
        self._on_lost = on_lost
        self._count_out = count_out
        self._reading = False
        self._stopped = False
        self._writable: asyncio.Future[None] | None = None

    def start(self) -> None:
        os.set_blocking(self._fd, False)
        self.resume_reading()

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._stopped:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def stop(self, reason: str = "closed") -> None:
        """Detach from the loop (the descriptor stays open); a pending write fails."""
        self.pause_reading()
        self._stopped = True
        if self._writable is not None:
            # Unregister now, not when the waiting write resumes: the owner may
            # close the descriptor first, and a closed fd left in the selector
            # breaks the next registration of the same number.
            self._loop.remove_writer(self._fd)
            if not self._writable.done():
                self._writable.set_exception(TransportDownError(f"{self._name}: {reason}"))

    def _lost(self, reason: str) -> None:
        # Detach first: a hung-up tty stays "readable" forever and would spin the loop.
        self.stop(reason)
        self._on_lost(reason)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"read failed: {_oserror_text(exc)}")
            return
        if not data:
            # A tty whose other side is gone (pty master closed, USB-serial
            # adapter unplugged) reads end of file instead of EIO.
            self._lost("hung up (end of file)")
            return
        self._on_data(data)

    async def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stopped:
                raise TransportDownError(f"{self._name}: not connected")
            try:
                n = os.write(self._fd, view)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                reason = f"write failed: {_oserror_text(exc)}"
                self._lost(reason)
                raise TransportDownError(f"{self._name}: {reason}") from exc
            if n:
                self._count_out(n)
                view = view[n:]
            if view:
                await self._wait_writable()

    async def _wait_writable(self) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        self._writable = fut

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        self._loop.add_writer(self._fd, ready)
        try:
            async with asyncio.timeout(WRITE_STALL_S):
                await fut
        except TimeoutError:
            raise TransportDownError(
                f"{self._name}: write stalled for {WRITE_STALL_S:g} s (the other end is not "
                "reading)"
            ) from None
        finally:
            self._writable = None
            if not self._stopped:  # stop() already unregistered; the fd may be closed now
                self._loop.remove_writer(self._fd)


def _oserror_text(exc: OSError) -> str:
    """'Input/output error (EIO)': the words for the technician, the code for a search."""
    if exc.errno is None:
        return str(exc)
    code = errno.errorcode.get(exc.errno, str(exc.errno))
    return f"{exc.strerror or os.strerror(exc.errno)} ({code})"


class PumpedTransport(PipeTransport):
    """A pipe whose bytes move through an `FdPump` while connected (a pty, a tty)."""

    _pump: FdPump | None = None
    _down_text = "not connected"  # the TransportDownError text while there is no pump

    async def _send(self, data: bytes) -> None:
        if self._pump is None:
            raise TransportDownError(self._down_text)
        await self._pump.write_all(data)

    def _pause_reading(self) -> None:
        if self._pump is not None:
            self._pump.pause_reading()

    def _resume_reading(self) -> None:
        if self._pump is not None:
            self._pump.resume_reading()


class FdTransport(PumpedTransport):
    """A pipe over an already-open descriptor (e.g. a pty master); closes it on `close()`
    unless `close_fd` is False."""

    def __init__(
        self,
        fd: int,
        name: str,
        close_fd: bool = True,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(TransportStatus(url=name, kind="fd", detail={"fd": str(fd)}), backoff)
        self._fd = fd
        self._name = name
        self._close_fd = close_fd
        self._pump = None
        self._down_text = f"{name}: not connected"
        self._fd_closed = False

    @property
    def fd(self) -> int:
        return self._fd

    async def _connect(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        events = 0
        for _, ev in poller.poll(0):
            events |= ev
        if events & select.POLLNVAL:
            raise TransportError(f"{self._name}: descriptor {self._fd} is not open")
        if events & select.POLLHUP and not events & select.POLLIN:
            # Nothing left to read and nobody on the other side yet.
            raise TransportDownError(f"{self._name}: the other end is closed")
        pump = FdPump(self._fd, self._name, self._feed, self._connection_lost, self._count_out)
        pump.start()
        self._pump = pump

    async def _disconnect(self) -> None:
        if self._pump is not None:
            self._pump.stop()
            self._pump = None

    async def close(self) -> None:
        await super().close()
        if self._close_fd and not self._fd_closed:
            self._fd_closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)

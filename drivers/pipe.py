"""What every driver shares: the reconnect supervisor and the receive buffer.

A concrete driver supplies four steps and nothing else:

- `_connect()`: get the device (open the tty, claim the USB interface, wait for
  the register's TCP connection). Raise a `TransportError` saying what is wrong
  in words a technician can act on; the supervisor retries with backoff.
- `_disconnect()`: release whatever `_connect()` got. Idempotent, never raises.
- `_send(data)`: write all of `data` while up; raise `TransportDownError` when
  the device goes away meanwhile.
- `_pause_reading()` / `_resume_reading()`: flow control for the receive buffer.

While connected, the driver hands bytes to `_feed()` and reports the loss of
the device with `_connection_lost(reason)`. Both run on the event loop thread.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time

from drivers.base import Backoff, Transport, TransportState, TransportStatus
from drivers.errors import TransportClosedError, TransportDownError, TransportError

logger = logging.getLogger(__name__)

# Reading stops above this many unread bytes and resumes once `read()` has
# taken them: a register that floods us cannot grow the agent's memory.
READ_BUFFER_HIGH = 256 * 1024

# A connection that breaks sooner than this after coming up does not reset the
# backoff, so a device that opens and dies at once is retried slowly, not in a
# tight loop.
STABLE_UP_S = 1.0


class PipeTransport(Transport):
    """A `Transport` that reconnects by itself; see the module docstring for the hooks."""

    def __init__(self, status: TransportStatus, backoff: Backoff | None = None) -> None:
        self.status = status
        self.last_exception: TransportError | None = None  # why the last attempt failed
        self._backoff = backoff if backoff is not None else Backoff()
        self._rx = bytearray()
        self._rx_ready = asyncio.Event()
        self._reading_paused = False
        self._write_lock = asyncio.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Future[str] | None = None
        self._logged_error: str | None = None

    # -- hooks for the concrete driver ---------------------------------------------

    @abc.abstractmethod
    async def _connect(self) -> None: ...

    @abc.abstractmethod
    async def _disconnect(self) -> None: ...

    @abc.abstractmethod
    async def _send(self, data: bytes) -> None: ...

    def _ready_again(self) -> bool:
        """True when the next `_connect()` will succeed at once (a TCP register already
        reconnected): no backoff then, the register's frames are ACKed within R1."""
        return False

    async def _backoff_pause(self, delay: float) -> None:
        """The pause after a connection that died at once; a driver that knows the next
        one is already there (`_ready_again`) may end it early."""
        await asyncio.sleep(delay)

    def _pause_reading(self) -> None:
        """Stop taking bytes from the device until `_resume_reading()`."""

    def _resume_reading(self) -> None:
        """Undo `_pause_reading()`."""

    def _feed(self, data: bytes) -> None:
        self._rx += data
        self.status.bytes_in += len(data)
        self._rx_ready.set()
        if not self._reading_paused and len(self._rx) >= READ_BUFFER_HIGH:
            self._reading_paused = True
            self._pause_reading()

    def _connection_lost(self, reason: str) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)

    def _count_out(self, n: int) -> None:
        self.status.bytes_out += n

    # -- the Transport interface ---------------------------------------------------

    async def open(self) -> None:
        if self._closed:
            raise TransportClosedError(f"{self.status.url} was closed")
        if self._task is not None:
            return
        self.status.set_state(TransportState.CONNECTING)
        self._task = asyncio.create_task(self._supervise(), name=f"transport {self.status.url}")

    async def read(self) -> bytes:
        while True:
            if self._closed:
                raise TransportClosedError(f"{self.status.url} was closed")
            if self._rx:
                data = bytes(self._rx)
                self._rx.clear()
                self._rx_ready.clear()
                if self._reading_paused:
                    self._reading_paused = False
                    self._resume_reading()
                return data
            self._rx_ready.clear()
            await self._rx_ready.wait()

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosedError(f"{self.status.url} was closed")
        if not data:
            return
        # One write at a time, so two frames never interleave on the wire.
        async with self._write_lock:
            if self._closed:
                raise TransportClosedError(f"{self.status.url} was closed")
            if self.status.state is not TransportState.UP:
                why = f": {self.status.last_error}" if self.status.last_error else ""
                raise TransportDownError(f"{self.status.url} is {self.status.state}{why}")
            await self._send(data)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._rx_ready.set()  # wake readers so they raise TransportClosedError
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # asyncio.wait, not `await task`: it never raises the task's
            # CancelledError here, yet a cancel of close() itself still propagates.
            await asyncio.wait([task])
        await self._release()
        self.status.set_state(TransportState.DOWN)
        logger.info("%s: closed", self.status.url)

    # -- the supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        been_up = False
        while True:
            self._lost = loop.create_future()
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._release()
                await self._failed(exc)
                continue
            if been_up:
                self.status.reconnects += 1
            been_up = True
            up_since = time.monotonic()
            self._logged_error = None
            self.last_exception = None
            self.status.set_state(TransportState.UP)
            logger.info("%s: up%s", self.status.url, _describe(self.status.detail))
            reason = await self._lost
            self.status.set_state(TransportState.RECONNECTING, reason)
            logger.warning("%s: lost: %s; reconnecting", self.status.url, reason)
            await self._release()
            if time.monotonic() - up_since >= STABLE_UP_S or self._ready_again():
                self._backoff.reset()
            else:
                await self._backoff_pause(self._backoff.next_delay())

    async def _release(self) -> None:
        # `_disconnect()` must not raise; if a driver's does anyway, the
        # supervisor logs it and carries on rather than dying silently.
        try:
            await self._disconnect()
        except Exception:
            logger.exception("%s: error while releasing the device", self.status.url)

    async def _failed(self, exc: Exception) -> None:
        if isinstance(exc, TransportError):
            error = exc
        else:
            # A bug or an OS surprise in a driver must not end the supervisor:
            # log it with its traceback once and keep retrying.
            error = TransportError(f"unexpected error: {exc!r}")
            if self._logged_error != str(error):
                logger.exception("%s: unexpected error while connecting", self.status.url)
        self.last_exception = error
        message = str(error)
        self.status.set_state(TransportState.RECONNECTING, message)
        delay = self._backoff.next_delay()
        # The same failure every few seconds for hours (a lane whose device is
        # unplugged) is logged once at WARNING, then at DEBUG.
        level = logging.DEBUG if message == self._logged_error else logging.WARNING
        self._logged_error = message
        logger.log(level, "%s: %s; retrying in %.3g s", self.status.url, message, delay)
        await asyncio.sleep(delay)


def _describe(detail: dict[str, str]) -> str:
    if not detail:
        return ""
    return " (" + ", ".join(f"{k}={v}" for k, v in detail.items()) + ")"


"""The one small interface every driver offers: open, read, write, close, and a state.

A driver is a pipe. It knows nothing of frames; it reconnects by itself when the
device disappears and returns, and reports what it is doing so the technician
page can show it.

Contract:
- `open()` starts the driver and returns at once, even if the device is missing:
  the driver keeps trying in the background (capped backoff) and reports
  `RECONNECTING` with the last error meanwhile.
- `read()` waits for the next chunk of bytes (at least one byte). While the pipe
  is down it simply waits; it raises `TransportClosedError` only after `close()`.
- `write(data)` writes all of `data` or raises `TransportDownError` when the
  pipe is not up at that moment (the link layer counts that as a failed send),
  and `TransportClosedError` after `close()`.
- `close()` stops everything; idempotent.
- `wait_state(*states)` waits until the pipe enters one of `states` (tests and
  the console use it instead of sleeping).
"""

from __future__ import annotations

import abc
import asyncio
import enum
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

# Reconnect backoff: the first retry is quick (a USB adapter re-enumerates in
# about a second), later ones slow down so a missing device costs nothing.
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 10.0
RECONNECT_FACTOR = 2.0


class TransportState(enum.StrEnum):
    DOWN = "down"  # not opened yet, or closed
    CONNECTING = "connecting"  # first attempt in progress
    UP = "up"
    RECONNECTING = "reconnecting"  # lost (or never had) the device; retrying


# wait_state(): the states a waiter wants, and the future it sleeps on.
_Waiter = tuple[frozenset[TransportState], "asyncio.Future[TransportState]"]


@dataclass
class TransportStatus:
    """What the diagnostics page shows for a pipe. Mutated only by its driver."""

    url: str
    kind: str  # "serial" | "usb" | "tcp" | "fd"
    state: TransportState = TransportState.DOWN
    last_error: str | None = None
    since: float = field(default_factory=time.time)  # wall clock of the last state change
    reconnects: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"baudrate": "115200"}

    def __post_init__(self) -> None:
        # Not a dataclass field on purpose: asdict()/repr() of a status (the
        # diagnostics page) must not see futures.
        self._waiters: list[_Waiter] = []

    def set_state(self, state: TransportState, error: str | None = None) -> None:
        """Record a state change. Call it from the event loop thread only."""
        if error is not None:
            self.last_error = error
        if state is not self.state:
            self.state = state
            self.since = time.time()
            # Wake waiters from here rather than letting them poll `state`: a
            # waiter for RECONNECTING must see the transition even if the
            # pipe is back UP before the waiter's task runs again.
            keep: list[_Waiter] = []
            for wanted, fut in self._waiters:
                if fut.done():
                    continue
                if state in wanted:
                    fut.set_result(state)
                else:
                    keep.append((wanted, fut))
            self._waiters = keep

    async def wait_state(self, *states: TransportState) -> TransportState:
        """Wait until the pipe is in (or next enters) one of `states`; returns that state."""
        if not states:
            raise ValueError("wait_state() needs at least one state")
        if self.state in states:
            return self.state
        fut: asyncio.Future[TransportState] = asyncio.get_running_loop().create_future()
        entry = (frozenset(states), fut)
        self._waiters.append(entry)
        try:
            return await fut
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)


class Backoff:
    """Capped exponential backoff; `reset()` after a success."""

    def __init__(
        self,
        initial_s: float = RECONNECT_INITIAL_S,
        max_s: float = RECONNECT_MAX_S,
        factor: float = RECONNECT_FACTOR,
    ) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._factor = factor
        self._next_s = initial_s

    def next_delay(self) -> float:
        delay = self._next_s
        self._next_s = min(self._next_s * self._factor, self._max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self._initial_s


class Transport(abc.ABC):
    """A byte pipe to one register."""

    status: TransportStatus

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def read(self) -> bytes: ...

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @property
    def is_up(self) -> bool:
        return self.status.state is TransportState.UP

    async def wait_state(self, *states: TransportState) -> TransportState:
        return await self.status.wait_state(*states)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

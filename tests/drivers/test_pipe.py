"""The shared supervisor and receive buffer (drivers.pipe), with a scripted driver."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.base import TransportState, TransportStatus
from drivers.errors import DeviceNotFoundError, TransportDownError, TransportError
from drivers.pipe import PipeTransport
from tests.drivers.helpers import WAIT_S, fast_backoff, read_exactly, wait_state


class Scripted(PipeTransport):
    """`_connect()` raises the scripted exceptions in turn, then succeeds."""

    def __init__(self, failures: list[Exception]) -> None:
        super().__init__(TransportStatus(url="scripted://1", kind="fd"), fast_backoff())
        self.failures = failures
        self.sent = bytearray()
        self.connects = 0
        self.disconnects = 0
        self.connected = asyncio.Event()

    async def _connect(self) -> None:
        self.connects += 1
        if self.failures:
            raise self.failures.pop(0)
        self.connected.set()

    async def _disconnect(self) -> None:
        self.disconnects += 1

    async def _send(self, data: bytes) -> None:
        self.sent += data
        self._count_out(len(data))

    def lose(self, reason: str) -> None:
        self.connected.clear()
        self._connection_lost(reason)


async def test_a_driver_bug_does_not_end_the_supervisor(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.pipe")
    t = Scripted([RuntimeError("oops"), RuntimeError("oops")])
    async with t:
        await wait_state(t, TransportState.UP)
        assert t.connects == 3
        assert t.status.last_error == "unexpected error: RuntimeError('oops')"
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1  # logged with its traceback once, not on every retry


async def test_same_failure_is_logged_once_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.pipe")
    gone = [DeviceNotFoundError("not there") for _ in range(4)]
    t = Scripted([*gone, TransportError("other")])
    async with t:
        await wait_state(t, TransportState.UP)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("not there" in m for m in warnings) == 1
    assert sum("other" in m for m in warnings) == 1


async def test_lost_then_back_counts_a_reconnect_and_keeps_unread_bytes() -> None:
    t = Scripted([])
    async with t:
        await wait_state(t, TransportState.UP)
        t._feed(b"before")
        t.lose("cable pulled")
        await wait_state(t, TransportState.RECONNECTING)
        assert t.status.last_error == "cable pulled"
        await wait_state(t, TransportState.UP)
        assert t.status.reconnects == 1
        assert t.disconnects >= 1
        assert await read_exactly(t, 6) == b"before"
        assert t.status.bytes_in == 6


async def test_write_needs_up_and_counts() -> None:
    t = Scripted([DeviceNotFoundError("absent")])
    with pytest.raises(TransportDownError, match="is down"):
        await t.write(b"x")  # not even opened
    async with t:
        await wait_state(t, TransportState.UP)
        await t.write(b"abc")
        await t.write(b"")
        assert t.sent == b"abc" and t.status.bytes_out == 3


async def test_reading_pauses_above_the_high_mark_and_resumes_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drivers import pipe

    monkeypatch.setattr(pipe, "READ_BUFFER_HIGH", 10)
    events: list[str] = []
    t = Scripted([])
    monkeypatch.setattr(t, "_pause_reading", lambda: events.append("pause"))
    monkeypatch.setattr(t, "_resume_reading", lambda: events.append("resume"))
    async with t:
        await wait_state(t, TransportState.UP)
        t._feed(b"12345")
        assert events == []
        t._feed(b"67890")
        t._feed(b"x")  # already paused: no second pause
        assert events == ["pause"]
        async with asyncio.timeout(WAIT_S):
            assert await t.read() == b"1234567890x"
        assert events == ["pause", "resume"]

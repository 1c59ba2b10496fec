"""FdTransport over real ptys: event-driven both ways, hang-up and return of the other end."""

from __future__ import annotations

import asyncio
import os

import pytest

from devtools.pty import open_pty
from drivers.base import TransportState
from drivers.errors import TransportClosedError, TransportDownError
from drivers.fd import FdTransport
from tests.drivers.helpers import fast_backoff, read_exactly, wait_state


async def test_bytes_both_ways_and_counters() -> None:
    master, slave, _ = open_pty()
    async with (
        FdTransport(master, "master", backoff=fast_backoff()) as a,
        FdTransport(slave, "slave", backoff=fast_backoff()) as b,
    ):
        await wait_state(a, TransportState.UP)
        await wait_state(b, TransportState.UP)
        await a.write(b"\x02hello\x03")
        assert await read_exactly(b, 7) == b"\x02hello\x03"
        big = bytes(range(256)) * 400  # more than a pty buffer: partial writes + add_writer
        await b.write(big)
        assert await read_exactly(a, len(big)) == big
        assert a.status.bytes_out == 7 and b.status.bytes_in == 7
        assert b.status.bytes_out == len(big) and a.status.bytes_in == len(big)
        assert a.status.kind == "fd" and a.status.url == "master"


async def test_master_waits_while_slave_is_closed_and_resumes_when_reopened() -> None:
    master, slave, path = open_pty()
    async with FdTransport(master, "master", backoff=fast_backoff()) as a:
        await wait_state(a, TransportState.UP)
        os.close(slave)  # nobody holds the slave now: the master reads EIO
        await wait_state(a, TransportState.RECONNECTING)
        assert a.status.last_error is not None
        with pytest.raises(TransportDownError):
            await a.write(b"x")
        again = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            await wait_state(a, TransportState.UP)
            assert a.status.reconnects == 1
            os.write(again, b"back")
            assert await read_exactly(a, 4) == b"back"
        finally:
            os.close(again)


async def test_starts_reconnecting_when_the_other_end_is_not_there_yet() -> None:
    master, slave, path = open_pty()
    os.close(slave)
    async with FdTransport(master, "master", backoff=fast_backoff()) as a:
        await wait_state(a, TransportState.RECONNECTING)
        assert a.status.last_error == "master: the other end is closed"
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            await wait_state(a, TransportState.UP)
            assert a.status.reconnects == 0  # never was up before
        finally:
            os.close(fd)


async def test_close_wakes_a_pending_read_and_is_idempotent() -> None:
    master, slave, _ = open_pty()
    a = FdTransport(master, "master", backoff=fast_backoff())
    await a.open()
    await wait_state(a, TransportState.UP)
    reader = asyncio.create_task(a.read())
    await asyncio.sleep(0)  # the reader is now waiting (ordering only)
    await a.close()
    await a.close()
    with pytest.raises(TransportClosedError):
        await reader
    with pytest.raises(TransportClosedError):
        await a.write(b"x")
    with pytest.raises(TransportClosedError):
        await a.open()
    assert a.status.state is TransportState.DOWN
    with pytest.raises(OSError):
        os.fstat(master)  # close_fd=True closed it
    os.close(slave)


async def test_close_fd_false_leaves_the_descriptor_open() -> None:
    master, slave, _ = open_pty()
    async with FdTransport(master, "master", close_fd=False, backoff=fast_backoff()) as a:
        await wait_state(a, TransportState.UP)
    os.fstat(master)
    os.close(master)
    os.close(slave)


async def test_bytes_read_before_a_hangup_are_still_delivered() -> None:
    master, slave, _ = open_pty()
    async with FdTransport(master, "master", backoff=fast_backoff()) as a:
        await wait_state(a, TransportState.UP)
        os.write(slave, b"last words")
        os.close(slave)
        await wait_state(a, TransportState.RECONNECTING)
        assert await read_exactly(a, 10) == b"last words"


async def test_write_to_an_end_nobody_reads_fails_after_the_stall_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drivers import fd

    monkeypatch.setattr(fd, "WRITE_STALL_S", 0.05)  # the timeout under test, shortened
    master, slave, _ = open_pty()
    async with FdTransport(master, "master", backoff=fast_backoff()) as a:
        await wait_state(a, TransportState.UP)
        with pytest.raises(TransportDownError, match="write stalled"):
            await a.write(b"x" * (1024 * 1024))  # far beyond the pty buffer; nobody reads
        assert 0 < a.status.bytes_out < 1024 * 1024
    os.close(slave)


async def test_pending_write_fails_when_the_other_end_goes() -> None:
    master, slave, _ = open_pty()
    async with FdTransport(slave, "slave", backoff=fast_backoff()) as b:
        await wait_state(b, TransportState.UP)
        writing = asyncio.create_task(b.write(b"y" * (1024 * 1024)))
        # One turn of the loop: the write puts what fits into the pty and parks
        # waiting for writability (ordering only, not timing).
        await asyncio.sleep(0)
        assert 0 < b.status.bytes_out < 1024 * 1024
        os.close(master)  # hang up: the read side sees it, the pending write fails
        with pytest.raises(TransportDownError):
            await writing
        await wait_state(b, TransportState.RECONNECTING)

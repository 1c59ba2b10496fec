"""SerialTransport over real ptys, opened by path through pyserial."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from devtools.pty import open_pty
from drivers.base import TransportState
from drivers.errors import DeviceNotFoundError, DevicePermissionError, TransportDownError
from drivers.fd import FdTransport
from drivers.serial_port import SerialTransport
from drivers.url import SerialSpec
from tests.drivers.helpers import fast_backoff, read_exactly, wait_state


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """(master fd, slave path); the test's own slave fd is closed at once."""
    master, slave, path = open_pty()
    os.close(slave)
    yield master, path
    # The master is usually handed to an FdTransport that closes it.
    with contextlib.suppress(OSError):
        os.close(master)


async def test_bytes_both_ways_status_and_detail(pty: tuple[int, str]) -> None:
    master, path = pty
    spec = SerialSpec(path, 9600)
    async with (
        SerialTransport(spec, backoff=fast_backoff()) as port,
        FdTransport(master, "register", close_fd=False, backoff=fast_backoff()) as register,
    ):
        await wait_state(port, TransportState.UP)
        await wait_state(register, TransportState.UP)
        await register.write(b"\x02{}\x03\x03")
        assert await read_exactly(port, 5) == b"\x02{}\x03\x03"
        await port.write(b"\x06")
        assert await read_exactly(register, 1) == b"\x06"
        status = port.status
        assert status.kind == "serial"
        assert status.url == f"serial://{path}?baudrate=9600"
        assert status.detail["baudrate"] == "9600"
        assert status.detail["path"] == path
        assert (status.bytes_in, status.bytes_out, status.reconnects) == (5, 1, 0)
        assert port.is_up


async def test_port_is_raw_8n1_binary_safe(pty: tuple[int, str]) -> None:
    master, path = pty
    every_byte = bytes(range(256))  # CR, LF, XON/XOFF, ^C, ^D... must all pass untouched
    async with (
        SerialTransport(SerialSpec(path, 115200), backoff=fast_backoff()) as port,
        FdTransport(master, "register", close_fd=False, backoff=fast_backoff()) as register,
    ):
        await wait_state(port, TransportState.UP)
        await register.write(every_byte)
        assert await read_exactly(port, 256) == every_byte
        await port.write(every_byte)
        assert await read_exactly(register, 256) == every_byte


async def test_reconnects_when_the_device_goes_and_a_new_one_appears_at_the_path(
    tmp_path: Path,
) -> None:
    link = tmp_path / "ttyREGISTER"
    master, slave, first = open_pty()
    os.close(slave)
    os.symlink(first, link)
    async with SerialTransport(SerialSpec(str(link)), backoff=fast_backoff()) as port:
        await wait_state(port, TransportState.UP)
        assert port.status.detail["device"] == first
        os.close(master)  # the "adapter" is unplugged: the slave hangs up
        await wait_state(port, TransportState.RECONNECTING)
        assert port.status.last_error is not None
        with pytest.raises(TransportDownError):
            await port.write(b"x")
        # Plugged back: a new pty, the symlink re-pointed (as udev re-points by-id names).
        master, slave, second = open_pty()
        os.close(slave)
        os.unlink(link)
        os.symlink(second, link)
        async with FdTransport(master, "register", backoff=fast_backoff()) as register:
            await wait_state(port, TransportState.UP)
            assert port.status.reconnects == 1
            assert port.status.detail["device"] == second
            await wait_state(register, TransportState.UP)
            await register.write(b"after")
            assert await read_exactly(port, 5) == b"after"
            await port.write(b"reply")
            assert await read_exactly(register, 5) == b"reply"


async def test_missing_device_is_reported_while_retrying_then_opened(tmp_path: Path) -> None:
    path = tmp_path / "ttyUSB9"
    async with SerialTransport(SerialSpec(str(path)), backoff=fast_backoff()) as port:
        await wait_state(port, TransportState.RECONNECTING)
        assert isinstance(port.last_exception, DeviceNotFoundError)
        assert port.status.last_error is not None
        assert f"{path} does not exist" in port.status.last_error
        assert "edc-agent ports" in port.status.last_error
        master, slave, real = open_pty()
        os.close(slave)
        try:
            os.symlink(real, path)  # the device appears
            await wait_state(port, TransportState.UP)
            assert port.last_exception is None
        finally:
            os.close(master)


async def test_permission_denied_names_the_dialout_group(
    pty: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, for whom EACCES never happens: make pyserial's open
    # fail exactly as it does for a user outside the dialout group.
    def denied(self: serial.Serial) -> None:
        raise serial.SerialException(
            errno.EACCES, f"could not open port {self.port}: [Errno 13] Permission denied"
        )

    monkeypatch.setattr(serial.Serial, "open", denied)
    _, path = pty
    async with SerialTransport(SerialSpec(path), backoff=fast_backoff()) as port:
        await wait_state(port, TransportState.RECONNECTING)
        assert isinstance(port.last_exception, DevicePermissionError)
        assert port.status.last_error is not None
        assert f"permission denied opening {path}" in port.status.last_error
        assert "add the agent's user to the dialout group" in port.status.last_error


async def test_second_opener_is_told_the_port_is_in_use(pty: tuple[int, str]) -> None:
    _, path = pty
    async with SerialTransport(SerialSpec(path), backoff=fast_backoff()) as first:
        await wait_state(first, TransportState.UP)
        async with SerialTransport(SerialSpec(path), backoff=fast_backoff()) as second:
            await wait_state(second, TransportState.RECONNECTING)
            assert second.status.last_error == (
                f"{path} is in use by another program (it holds the port's lock)"
            )


async def test_not_a_tty_is_said_plainly(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-port"
    plain.write_bytes(b"")
    async with SerialTransport(SerialSpec(str(plain)), backoff=fast_backoff()) as port:
        await wait_state(port, TransportState.RECONNECTING)
        assert port.status.last_error is not None
        assert str(plain) in port.status.last_error

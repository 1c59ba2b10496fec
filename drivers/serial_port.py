"""Serial driver: any tty (RS-232, /dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*, ptys).

pyserial opens and configures the port (8N1, no flow control, raw mode, an
exclusive lock); after that the bytes move through the descriptor with
`loop.add_reader`/`add_writer` (drivers.fd.FdPump), not through pyserial's
blocking read loop: the agent serves several lanes from one thread.

An unplugged USB-serial adapter (or a pty whose master was closed) makes the
descriptor read EIO or end of file. The driver then closes the port and opens
the same path again with backoff until the device is back, so a by-id path or a
symlink that is re-pointed to the new device is followed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import termios

import serial

from drivers.base import Backoff, TransportStatus
from drivers.errors import (
    DeviceNotFoundError,
    DevicePermissionError,
    TransportError,
)
from drivers.fd import FdPump, PumpedTransport
from drivers.url import SerialSpec

logger = logging.getLogger(__name__)

DIALOUT_HINT = (
    "add the agent's user to the dialout group (usermod -aG dialout USER), then restart it"
)


class SerialTransport(PumpedTransport):
    """A tty opened by path with pyserial; reopened by path after the device disappears."""

    def __init__(
        self,
        spec: SerialSpec,
        *,
        url: str | None = None,
        backoff: Backoff | None = None,
        exclusive: bool = True,
    ) -> None:
        status = TransportStatus(
            url=url or f"serial://{spec.path}?baudrate={spec.baudrate}",
            kind="serial",
            detail={"path": spec.path, "baudrate": str(spec.baudrate)},
        )
        super().__init__(status, backoff)
        self.spec = spec
        self._exclusive = exclusive
        self._port: serial.Serial | None = None
        self._pump = None
        self._down_text = f"{spec.path}: not open"

    async def _connect(self) -> None:
        # pyserial's open is a few quick syscalls (open with O_NONBLOCK, termios,
        # flock); it does not block, so it runs on the loop.
        port = open_serial(self.spec.path, self.spec.baudrate, exclusive=self._exclusive)
        self._port = port
        fd = port.fileno()
        device = _resolve(self.spec.path)
        if device != self.spec.path:
            self.status.detail["device"] = device
        else:
            self.status.detail.pop("device", None)
        pump = FdPump(fd, self.spec.path, self._feed, self._connection_lost, self._count_out)
        pump.start()
        self._pump = pump

    async def _disconnect(self) -> None:
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        port, self._port = self._port, None
        if port is not None:
            # Drop unsent output first: closing a tty waits for its output to
            # drain, which on a stuck line would block the event loop.
            # termios.error is not an OSError: a hung-up tty raises it from tcflush.
            with contextlib.suppress(OSError, termios.error, serial.SerialException):
                port.reset_output_buffer()
            with contextlib.suppress(OSError, termios.error, serial.SerialException):
                port.close()



def _resolve(path: str) -> str:
    # Where a by-id path or symlink points now: shown beside the configured path.
    return os.path.realpath(path)


def open_serial(path: str, baudrate: int, *, exclusive: bool = True) -> serial.Serial:
    """Open `path` 8N1 without flow control, non-blocking; failures become typed errors."""
    try:
        return serial.Serial(
            port=path,
            baudrate=baudrate,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            xonxoff=False,
            rtscts=False,
            dsrdtr=False,
            timeout=0,  # non-blocking: reads are driven by the event loop
            write_timeout=0,
            exclusive=exclusive,
        )
    except (serial.SerialException, OSError) as exc:
        raise serial_open_error(path, exc) from exc
    except termios.error as exc:  # a tty that vanished between open() and its setup
        raise TransportError(f"cannot configure {path}: {exc}") from exc
    except ValueError as exc:  # pyserial: a baud rate or setting the device refuses
        raise TransportError(f"cannot configure {path}: {exc}") from exc


def serial_open_error(path: str, exc: OSError) -> TransportError:
    """Say why a tty would not open, in words a technician can act on."""
    code = exc.errno
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        if os.path.islink(path):
            where = f"{path} points to {os.readlink(path)}, which is not there"
        else:
            where = f"{path} does not exist"
        return DeviceNotFoundError(
            f"serial device not found: {where} (unplugged, or the wrong path? "
            "`edc-agent ports` lists what this machine sees)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return DevicePermissionError(f"permission denied opening {path}: {DIALOUT_HINT}")
    if code in (errno.EAGAIN, errno.EBUSY):
        return TransportError(f"{path} is in use by another program (it holds the port's lock)")
    if code == errno.ENOTTY:
        return TransportError(f"{path} is not a serial port (not a tty)")
    return TransportError(f"cannot open {path}: {exc}")

"""systemd's notify protocol, written directly on $NOTIFY_SOCKET (no libsystemd needed).

    agent ── one AF_UNIX datagram per message ──► systemd (the path in $NOTIFY_SOCKET)
             b"READY=1\\nSTATUS=2 lanes up, 0 down; 0 in flight; 0 unknown"

A message is newline-separated KEY=VALUE assignments (sd_notify(3)). A path that
starts with `@` lives in Linux's abstract socket namespace: the `@` stands for a
leading NUL byte. Without $NOTIFY_SOCKET (not started by systemd, or not
Type=notify) every call does nothing, so the daemon runs the same from a shell.

Sending never blocks the event loop and never raises: the socket is non-blocking,
and a message systemd cannot take right now is dropped (the next heartbeat or
status refresh carries the news again).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

# sd_watchdog_enabled(3): "send WATCHDOG=1 at half the interval" leaves one lost or
# late heartbeat of slack before systemd kills the service.
WATCHDOG_FRACTION = 0.5


class Notifier:
    """Sends notify messages to one socket; a no-op when `address` is None."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._sock: socket.socket | None = None
        self._failed = False  # a send error is logged once, not on every heartbeat

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=VALUE` lines as one datagram; True when systemd took it."""
        if self.address is None:
            return False
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode("utf-8", "replace")
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(data, target)
        except BlockingIOError:
            log.debug("notify socket full; dropped %r", data)
            return False
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd on %s: %s", self.address, exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(environ: Mapping[str, str] | None = None,
                        pid: int | None = None) -> float | None:
    """How often to send WATCHDOG=1, or None when systemd is not watching this process.

    systemd sets WATCHDOG_USEC (WatchdogSec=) and WATCHDOG_PID; a process that merely
    inherited the variables from the watched one must not send heartbeats for it.
    """
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC", "")
    if not usec_text:
        return None
    try:
        usec = int(usec_text)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", usec_text)
        return None
    if usec <= 0:
        return None
    watched = env.get("WATCHDOG_PID", "")
    if watched:
        try:
            if int(watched) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000 * WATCHDOG_FRACTION

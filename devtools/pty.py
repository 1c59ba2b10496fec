"""A pty pair in raw mode, as every harness here needs one.

    master fd ── the register's side (a test's client, the chaos proxy, a bench till)
    slave path ─ what the agent opens by name through its serial driver (/dev/pts/N)
"""

from __future__ import annotations

import contextlib
import os
import tty


def open_pty(*, raw: bool = True) -> tuple[int, int, str]:
    """A pty pair: (master fd, slave fd, slave path).

    Raw by default: a cooked pty would echo the register's bytes back to it, and translate
    newlines, until the agent's serial driver opens (and configures) the slave. `raw=False`
    leaves it as the kernel makes it: for a terminal (readline), or to prove that the
    serial driver itself puts the line in raw mode."""
    master, slave = os.openpty()
    if raw:
        tty.setraw(slave)
    return master, slave, os.ttyname(slave)


class Pty:
    """A raw pty pair kept open until `close()`: the agent opens `path`, the register holds
    `master`. Holding the slave too means the master never reads EIO while the agent has
    the port closed (not started yet, or killed and not restarted)."""

    def __init__(self) -> None:
        self.master, self.slave, self.path = open_pty()

    def close(self) -> None:
        for fd in (self.slave, self.master):
            with contextlib.suppress(OSError):
                os.close(fd)

"""The register console (`python -m agent register`) on a terminal, driven as a person
would: type into a pty, read it (tests/sim/register and the README's console session).

The console runs as a process whose stdin/stdout/stderr are a pty's slave; the test
writes keystrokes to the master and waits (on the bytes arriving, never on a timer)
until the screen shows what a person would look for. The pty stays cooked, not raw:
readline needs a terminal that behaves as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from devtools.process import ROOT
from devtools.pty import open_pty

SCREEN_TIMEOUT_S = 20.0  # a console that never shows the text fails the test, not the suite
EXIT_TIMEOUT_S = 20.0
# Colour, cursor movement, bracketed paste and other escapes readline writes.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")
UP = "\x1b[A"
TAB = "\t"
ENTER = "\r"


class Terminal:
    """A pty with a process on its slave end; `screen` is everything shown, escapes removed."""

    def __init__(self, master: int, proc: asyncio.subprocess.Process) -> None:
        self.master = master
        self.proc = proc
        self.raw = ""
        self._changed = asyncio.Event()
        self._eof = False
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed its end
            data = b""
        if not data:
            self._eof = True
            asyncio.get_running_loop().remove_reader(self.master)
        self.raw += data.decode("utf-8", "replace")
        self._changed.set()

    @property
    def screen(self) -> str:
        return _ESCAPES.sub("", self.raw)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def shows(self, text: str, *, after: int = 0) -> int:
        """Wait until `text` is on the screen after position `after`; its end position."""
        try:
            async with asyncio.timeout(SCREEN_TIMEOUT_S):
                while (at := self.screen.find(text, after)) < 0:
                    if self._eof:
                        raise AssertionError(f"{text!r} never shown; screen:\n{self.screen}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{text!r} not shown within {SCREEN_TIMEOUT_S:g} s; "
                                 f"screen:\n{self.screen}") from None
        return at + len(text)

    async def exit_code(self) -> int:
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            return await self.proc.wait()


@contextlib.asynccontextmanager
async def console(url: str, home: Path, *args: str) -> AsyncIterator[Terminal]:
    master, slave, _ = open_pty(raw=False)  # a terminal: readline needs it cooked
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "HOME": str(home), "TERM": "xterm",
           "INPUTRC": "/dev/null"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "register", "--link", url, *args,
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env)
    os.close(slave)
    terminal = Terminal(master, proc)
    try:
        yield terminal
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        with contextlib.suppress(ValueError):
            asyncio.get_running_loop().remove_reader(master)
        os.close(master)

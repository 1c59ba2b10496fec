"""The register console on a terminal, driven as a person would: type into a pty, read it.

The console runs as a process whose stdin/stdout/stderr are a pty's slave; the test
writes keystrokes to the master and waits (on the bytes arriving, never on a timer)
until the screen shows what a person would look for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from drivers.base import TransportState
from drivers.tcp import TcpClientTransport
from drivers.url import TcpSpec
from tests.register.fake_agent import fake_agent_on_tcp

ROOT = Path(__file__).resolve().parents[3]
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
    master, slave = os.openpty()
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


async def test_prompt_did_you_mean_and_typing_while_a_sale_waits(tmp_path: Path) -> None:
    async with fake_agent_on_tcp() as (agent, url), \
            console(url, tmp_path, "--progress-s", "0.2") as term:
        at = await term.shows("Ctrl-D quits")
        at = await term.shows("> ", after=at)
        term.type("sael 150" + ENTER)
        at = await term.shows("unknown command 'sael': did you mean sale?", after=at)
        # ₹0.04: the fake agent accepts and the customer never pays.
        term.type("sale 0.04 --txn ORDER0001" + ENTER)
        at = await term.shows("register → agent: sale ORDER0001 ₹0.04", after=at)
        at = await term.shows("agent → register: accepted sale ORDER0001", after=at)
        at = await term.shows("… sale ORDER0001: waiting", after=at)
        # The prompt is back: a ping is answered while the sale still waits.
        term.type("ping" + ENTER)
        at = await term.shows("agent → register: pong lane=till-1", after=at)
        # Tab completes commands and options; Up recalls the last line.
        term.type("stat" + TAB)
        at = await term.shows("status ", after=at)
        term.type("ORDER0001 --ki" + TAB)
        at = await term.shows("--kind ", after=at)
        term.type("sa" + TAB + ENTER)
        at = await term.shows("register → agent: status ORDER0001", after=at)
        term.type(UP)
        at = await term.shows("status ORDER0001 --kind sale", after=at)
        term.type(ENTER)
        at = await term.shows("register → agent: status ORDER0001", after=at)
        term.type("quit" + ENTER)
        assert await term.exit_code() == 0
    sales = [r for r in agent.requests if getattr(r, "TYPE", "") == "sale"]
    assert [getattr(s, "txn", None) for s in sales] == ["ORDER0001"]
    assert (tmp_path / ".edc-agent-register-history").read_text().count("ORDER0001") >= 2


async def test_a_second_register_on_a_tcp_lane_is_told_why(tmp_path: Path) -> None:
    # takeover=never: the lane refuses the second register however long the first is
    # silent (with the default, a first register silent for 3 s would be taken over).
    async with fake_agent_on_tcp(takeover="never") as (agent, url):
        host, port = url.removeprefix("tcp://").split(":")
        first = TcpClientTransport(TcpSpec(host, int(port)))
        await first.open()
        try:
            # The lane serves the first register before the console tries.
            await agent.link.transport.wait_state(TransportState.UP)
            async with console(url, tmp_path) as term:
                await term.shows("another register (or console) is probably connected")
                assert await term.exit_code() == 1
        finally:
            await first.close()

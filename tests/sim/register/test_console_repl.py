"""The register console on a terminal, driven as a person would: type into a pty, read it.

The console runs as a process whose stdin/stdout/stderr are a pty's slave; the test
writes keystrokes to the master and waits (on the bytes arriving, never on a timer)
until the screen shows what a person would look for.
"""

from __future__ import annotations

from pathlib import Path

from devtools.console import ENTER, TAB, UP, console
from drivers.base import TransportState
from drivers.tcp import TcpClientTransport
from drivers.url import TcpSpec
from tests.sim.register.fake_agent import fake_agent_on_tcp


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

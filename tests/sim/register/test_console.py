"""The register console against a fake agent over a real pty (serial driver on the slave)."""

from __future__ import annotations

import io
import os
import re

import pytest

from agent.link.layer import Link
from agent.link.spec import LinkSpec, parse_link_url
from agent.link.timings import LinkProtocol
from agent.register.codec import message_id
from agent.register.ids import IdSource
from agent.register.messages import (
    Accepted,
    DayFigures,
    Ping,
    Pong,
    Result,
    Sale,
    Tally,
    Totals,
    TotalsReport,
)
from agent.sim.register.client import Received, RegisterClient, Sent, TranscriptEvent
from agent.sim.register.commands import CommandParser, parse_script
from agent.sim.register.console import (
    Transcript,
    describe_reply,
    describe_request,
    run_console,
    wait_connected,
)
from devtools.pty import open_pty
from drivers.base import Transport
from drivers.fd import FdTransport
from drivers.serial_port import SerialTransport
from drivers.url import SerialSpec
from tests.sim.register.fake_agent import fake_agent_on_pty

TXN = "T1234567"


def serial_transport(spec: LinkSpec) -> Transport:
    assert isinstance(spec.target, SerialSpec)
    return SerialTransport(spec.target)


async def run_script(path: str, script: str, *, wait_s: float = 10.0, query: str = "",
                     show_hex: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    parser = CommandParser(IdSource("reg"))
    commands = parse_script(script, parser)
    # The console's own transport factory: drivers.factory.make_peer_transport.
    code = await run_console(parse_link_url(f"serial://{path}{query}"),
                             Transcript(out, show_hex=show_hex, err=err), wait_s=wait_s,
                             script=commands, parser=parser)
    return code, out.getvalue(), err.getvalue()


async def test_script_transcript_of_every_request() -> None:
    script = "\n".join([
        "ping",
        "sale 150.00 --txn T1234567 --ref 'Bill 7'",
        "status T1234567",
        "last",
        "void T1234567",
        "sale 0.01 --txn T7654321",
        "void T7654321",
        "paylink 250 9999999999 --txn P1234567",
        "resend P1234567",
        "refund T1234567 R1234567 50",
        "status T0000000",
        'raw {"v":1,"type":"pay","id":"x1"}',
        'raw {"v":1,"type":"sale","id":"x2","txn":"T1234567","amount":"0"}',
        "raw not json",
        "quit",
        "ping",  # not reached
    ])
    async with fake_agent_on_pty() as (agent, path):
        code, out, err = await run_script(path, script)
    assert code == 0, err
    assert err == ""
    expected = [
        "register → agent: ping",
        "agent → register: pong lane=till-1 tid=12345678 busy=no cloud=ok version=0.1.0",
        "register → agent: sale T1234567 ₹150.00 ref 'Bill 7'",
        "agent → register: accepted sale T1234567",
        'agent → register: result success 0000 "Approved" (sale T1234567 ₹150.00)',
        "  payment: method=CARD rrn=123456789012 auth_code=A1B2C3 card=XXXX-1234",
        "  | MY STORE",
        "  | TXN T1234567",
        "  | AMOUNT 15000",
        "register → agent: status T1234567",
        'agent → register: result again success 0000 "Approved" (sale T1234567 ₹150.00)',
        "register → agent: last",
        'agent → register: result again success 0000 "Approved" (sale T1234567 ₹150.00)',
        "register → agent: void T1234567",
        "agent → register: accepted void T1234567",
        'agent → register: result success 0000 "Voided" (void T1234567 ₹150.00)',
        "  payment: method=CARD rrn=123456789012 auth_code=A1B2C3 card=XXXX-1234",
        "  | MY STORE",
        "  | TXN T1234567",
        "  | AMOUNT 15000",
        "register → agent: sale T7654321 ₹0.01",
        "agent → register: accepted sale T7654321",
        'agent → register: result failed 0007 "Declined" (sale T7654321 ₹0.01)',
        "register → agent: void T7654321",
        'agent → register: error NOT_FOUND "No such sale" txn=T7654321',
        "register → agent: paylink P1234567 ₹250.00 to 9999999999, expires in 900 s",
        "agent → register: accepted paylink P1234567",
        'agent → register: result success 0000 "Paid" (paylink P1234567 ₹250.00)',
        "  payment: method=CARD rrn=123456789012 auth_code=A1B2C3 card=XXXX-1234",
        "  | MY STORE",
        "  | TXN P1234567",
        "  | AMOUNT 25000",
        "register → agent: resend P1234567",
        "agent → register: accepted paylink P1234567",
        "register → agent: refund R1234567 of T1234567 ₹50.00",
        "agent → register: accepted refund T1234567",
        'agent → register: result success 0000 "Refunded" (refund R1234567 ₹50.00)',
        "  payment: method=CARD rrn=123456789012 auth_code=A1B2C3 card=XXXX-1234",
        "  | MY STORE",
        "  | TXN R1234567",
        "  | AMOUNT 5000",
        "register → agent: status T0000000",
        'agent → register: error NOT_FOUND "Unknown txn" txn=T0000000',
        'register → agent: raw {"v":1,"type":"pay","id":"x1"}',
        'agent → register: error UNKNOWN_TYPE "unknown type \'pay\'"',
        'register → agent: raw {"v":1,"type":"sale","id":"x2","txn":"T1234567","amount":"0"}',
        'agent → register: error INVALID_FIELD "amount must be paise: 1-12 digits without a '
        'leading zero" field=amount',
        "register → agent: raw not json",
        'agent → register: error INVALID_MESSAGE "payload is not JSON"',
    ]
    assert out.splitlines() == expected
    assert len(agent.requests) == 14  # quit stopped the script before the last ping


async def test_result_before_accepted_and_results_on_its_own() -> None:
    # The agent answers in order, so the pong comes after its repeated result.
    script = "sale 0.02 --txn T2222222\nsale 0.03 --txn T3333333\nwait\nping\nwait 0\n"
    async with fake_agent_on_pty() as (_, path):
        code, out, _ = await run_script(path, script)
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == [
        "register → agent: sale T2222222 ₹0.02",
        'agent → register: result success 0000 "Approved" (sale T2222222 ₹0.02)',
        "  payment: method=CARD rrn=123456789012 auth_code=A1B2C3 card=XXXX-1234",
    ]
    assert "agent → register: accepted sale T2222222 (late)" in lines
    unknown = ('agent → register: result unknown  "No answer from Paytm yet" '
               "(sale T3333333 ₹0.03)")
    assert unknown in lines
    own = 'agent → register: result success 0000 "Approved" (sale T3333333 ₹0.03) (on its own)'
    again = ('agent → register: result again success 0000 "Approved" (sale T3333333 ₹0.03) '
             "(on its own)")
    assert lines.index(unknown) < lines.index(own) < lines.index(again)
    assert "  waited for: result success (sale T3333333)" in lines
    # The repeat is shown ("again") but not handed to a second `wait`.
    assert lines[-1] == "  no result from the agent within 0 s"


async def test_no_final_answer_in_time_is_reported_not_fatal() -> None:
    async with fake_agent_on_pty() as (_, path):
        code, out, _ = await run_script(path, "sale 0.04 --txn T4444444\nping\n", wait_s=1.0)
    assert code == 0
    assert out.splitlines()[:5] == [
        "register → agent: sale T4444444 ₹0.04",
        "agent → register: accepted sale T4444444",
        "  no final answer within 1 s (got 1 other reply)",
        "register → agent: ping",
        "agent → register: pong lane=till-1 tid=12345678 busy=no cloud=ok version=0.1.0",
    ]


async def test_hex_shows_the_frames() -> None:
    async with fake_agent_on_pty() as (_, path):
        out = io.StringIO()
        parser = CommandParser(IdSource("p"))
        # The protocol's example frame: ping with id "p1".
        code = await run_console(parse_link_url(f"serial://{path}"),
                                 Transcript(out, show_hex=True), wait_s=5.0,
                                 script=parse_script("ping", parser), parser=parser,
                                 transport_factory=serial_transport)
    assert code == 0
    assert out.getvalue().splitlines()[:2] == [
        "register → agent: ping",
        "  hex: 02 7b 22 76 22 3a 31 2c 22 74 79 70 65 22 3a 22 70 69 6e 67 22 2c 22 69 64 22 "
        "3a 22 70 2d 31 22 7d 03 11",
    ]


async def test_undelivered_frame_exits_1_with_a_clear_message() -> None:
    # A pty whose master is read by nobody that answers: no ACK ever comes.
    master, slave, path = open_pty(raw=False)
    silent = FdTransport(master, "silent-master")
    await silent.open()
    try:
        code, out, err = await run_script(path, "ping\nping\n",
                                          query="?ack_timeout_s=0.05&retries=1")
    finally:
        await silent.close()
        os.close(slave)
    assert code == 1
    assert out.splitlines() == ["register → agent: ping"]
    assert err.startswith("edc-agent register: the agent did not acknowledge the frame after "
                          f"2 sends on serial://{path}")


async def test_missing_device_exits_1() -> None:
    code, out, err = await run_script("/dev/edc-agent-no-such-tty", "ping\n")
    assert code == 1
    assert out == ""
    assert "serial device not found: /dev/edc-agent-no-such-tty does not exist" in err


# ------------------------------------------------------------------- the client alone


async def test_client_exchanges_and_transcript_events() -> None:
    events: list[TranscriptEvent] = []
    async with fake_agent_on_pty() as (_, path):
        spec = parse_link_url(f"serial://{path}")
        transport = serial_transport(spec)
        await transport.open()
        await wait_connected(transport)  # else the first send waits out one ACK timeout
        link = Link(transport, spec.timings, name="register", id_of=message_id)
        await link.start()
        try:
            async with RegisterClient(link, transcript=events.append) as client:
                pong = await client.request(Ping("c1"), wait_s=10)
                sale = await client.request(Sale("c2", TXN, "15000"), wait_s=10)
                unknown = await client.request(Sale("c3", "T3333333", "3"), wait_s=10)
                final = await client.next_result(wait_s=10)
                await client.request(Ping("c4"), wait_s=10)  # after the repeat (in order)
                nothing = await client.next_result(wait_s=0)
        finally:
            await link.stop()
            await transport.close()
    assert isinstance(pong.final, Pong) and pong.final.re == "c1"
    assert [type(r) for r in sale.replies] == [Accepted, Result]
    assert isinstance(sale.final, Result) and sale.final.status == "success"
    assert isinstance(unknown.final, Result) and unknown.final.status == "unknown"
    assert isinstance(final, Result) and (final.re, final.status) == (None, "success")
    assert nothing is None
    sent = [e for e in events if isinstance(e, Sent)]
    assert [e.message for e in sent] == [Ping("c1"), Sale("c2", TXN, "15000"),
                                         Sale("c3", "T3333333", "3"), Ping("c4")]
    received = [e for e in events if isinstance(e, Received)]
    assert [(type(e.message).__name__, e.again, e.unsolicited) for e in received] == [
        ("Pong", False, False),
        ("Accepted", False, False), ("Result", False, False),
        ("Accepted", False, False), ("Result", False, False),
        ("Result", False, True), ("Result", True, True),
        ("Pong", False, False),
    ]


@pytest.mark.parametrize("url", ["serial://relative/path", "ftp://x", "tcp://host"])
def test_bad_link_url_exits_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    assert main(["register", "--link", url]) == 2
    assert re.search(r"edc-agent register: --link: ", capsys.readouterr().err)


def test_script_error_exits_2_naming_the_line(tmp_path: os.PathLike[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    script = os.path.join(tmp_path, "till.txt")
    with open(script, "w") as f:
        f.write("ping\nsale 1.234\n")
    assert main(["register", "--link", "serial:///dev/null", "--script", script]) == 2
    assert capsys.readouterr().err == (
        f"edc-agent register: {script}:2: amount '1.234' has more than 2 decimal places "
        "(paise are whole)\n")


# ------------------------------------------------------------------- link v2 (§6)


async def test_protocol_2_speaks_v2_to_a_v2_agent() -> None:
    async with fake_agent_on_pty(protocol=LinkProtocol.V2) as (agent, path):
        code, out, _ = await run_script(path, "ping\nsale 150.00 --txn T1234567\nquit\n",
                                        query="?protocol=2", show_hex=True)
        assert agent.link.counters.wrong_version == 0
        assert agent.link.counters.frames_in == 2
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == [
        "register → agent: ping",
        "  hex (v2 payload): 7b 22 76 22 3a 31 2c 22 74 79 70 65 22 3a 22 70 69 6e 67 22 2c 22 "
        "69 64 22 3a 22 72 65 67 2d 31 22 7d",
    ]
    assert 'agent → register: result success 0000 "Approved" (sale T1234567 ₹150.00)' in lines


async def test_auto_against_a_v2_only_agent_is_refused_and_says_so() -> None:
    # auto sends v1 until the agent sends v2; a protocol=2 agent NAKs v1 (bare NAK).
    async with fake_agent_on_pty(protocol=LinkProtocol.V2) as (agent, path):
        code, _, err = await run_script(path, "ping\n", query="?ack_timeout_s=0.05&retries=1")
        assert agent.link.counters.wrong_version >= 1
    assert code == 1
    assert "did not acknowledge the frame after 2 sends" in err


def test_protocol_flag_overrides_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    # A bad --protocol is argparse's business (exit 2); a good one parses.
    with pytest.raises(SystemExit) as info:
        main(["register", "--link", "serial:///dev/null", "--protocol", "3"])
    assert info.value.code == 2
    assert "--protocol" in capsys.readouterr().err


def test_pong_shows_the_link_version() -> None:
    out = io.StringIO()
    Transcript(out)(Received(b"{}", Pong("p1", "0.1.0", "till-1", "12345678", False, "ok",
                                         link=2)))
    assert out.getvalue() == (
        "agent → register: pong lane=till-1 tid=12345678 busy=no cloud=ok version=0.1.0 link=2\n")
def test_totals_and_its_x_report_read_plainly() -> None:
    assert describe_request(Totals(id="t1")) == "totals"
    assert describe_request(Totals(id="t1", day="2026-03-14")) == "totals 2026-03-14"
    zero = Tally(0, "0")
    figures = DayFigures(sales=Tally(2, "30000"), voids=zero, refunds=zero, net="30000",
                         failed=Tally(1, "100"), unknown=zero)
    lines = describe_reply(TotalsReport(re="t1", day="2026-03-14", lane="till-1",
                                        tid="12345678", figures=figures, by_method=(),
                                        receipt=("X-REPORT",)))
    assert lines == ["totals 2026-03-14 lane=till-1 tid=12345678 sales=2/₹300.00 net=30000 "
                     "failed=1 unknown=0", "  | X-REPORT"]

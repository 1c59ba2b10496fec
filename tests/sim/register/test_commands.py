"""Console command parsing: every command, rupee → paise conversion, errors naming the line."""

from __future__ import annotations

import re

import pytest

from agent.register.ids import IdSource
from agent.register.messages import (
    Last,
    Paylink,
    Ping,
    Refund,
    Resend,
    Sale,
    Status,
    Totals,
    Void,
)
from agent.sim.register.commands import (
    CommandError,
    CommandParser,
    Help,
    Quit,
    ScriptError,
    Send,
    SendRaw,
    Sleep,
    TxnSource,
    Wait,
    paise_to_rupees,
    parse_script,
    rupees_to_paise,
)

TXN = "T1234567"


def parser() -> CommandParser:
    counter = iter(range(1, 1000))
    return CommandParser(IdSource("c"), lambda: f"TGEN{next(counter):04d}")


@pytest.mark.parametrize("text, paise", [
    ("150", "15000"), ("150.00", "15000"), ("150.0", "15000"), ("150.", "15000"),
    ("0.5", "50"), (".5", "50"), ("0.01", "1"), ("1.99", "199"), ("0150.50", "15050"),
    ("9999999999.99", "999999999999"), ("0000000000001", "100"),
])
def test_rupees_to_paise(text: str, paise: str) -> None:
    assert rupees_to_paise(text) == paise


@pytest.mark.parametrize("text, why", [
    ("0.001", "more than 2 decimal places"),
    ("150.000", "more than 2 decimal places"),
    ("1.234", "more than 2 decimal places"),
    ("0", "more than zero"),
    ("0.00", "more than zero"),
    ("-5", "not a number"),
    ("+5", "not a number"),
    ("1e3", "not a number"),
    ("1,500", "not a number"),
    ("abc", "not a number"),
    ("", "not a number"),
    (".", "not a number"),
    ("\u0661", "not a number"),
    ("NaN", "not a number"),
    ("10000000000", "too large"),
    ("99999999999999999999999999999999", "too large"),
])
def test_rupees_to_paise_rejects(text: str, why: str) -> None:
    with pytest.raises(CommandError, match=why):
        rupees_to_paise(text)


def test_paise_to_rupees() -> None:
    assert paise_to_rupees("15000") == "\u20b9150.00"
    assert paise_to_rupees("5") == "\u20b90.05"
    assert paise_to_rupees("x") == "x"


@pytest.mark.parametrize("line, expected", [
    ("sale 150.00", Send(Sale("c-1", "TGEN0001", "15000"))),
    ("SALE 150 --txn T9999999", Send(Sale("c-1", "T9999999", "15000"))),
    ('sale 1 --txn T1234567 --ref "Bill 12" --mode card --tid 12345678',
     Send(Sale("c-1", TXN, "100", ref="Bill 12", mode="CARD", tid="12345678"))),
    ("sale 0.5 --mode QR", Send(Sale("c-1", "TGEN0001", "50", mode="QR"))),
    ("void T1234567", Send(Void("c-1", TXN))),
    ("status T1234567", Send(Status("c-1", TXN, "sale"))),
    ("status T1234567 --kind refund", Send(Status("c-1", TXN, "refund"))),
    ("last", Send(Last("c-1"))),
    ("ping", Send(Ping("c-1"))),
    ("  ping  ", Send(Ping("c-1"))),
    ("totals", Send(Totals("c-1"))),
    ("totals 2026-03-14", Send(Totals("c-1", day="2026-03-14"))),
    ("paylink 250.00 9999999999", Send(Paylink("c-1", "TGEN0001", "25000", "9999999999"))),
    ("paylink 250 9999999999 --txn T1234567 --expiry-s 60",
     Send(Paylink("c-1", TXN, "25000", "9999999999", 60))),
    ("resend T1234567", Send(Resend("c-1", TXN))),
    ("refund T1234567 R7654321 50.00", Send(Refund("c-1", TXN, "R7654321", "5000"))),
    ('raw {"v":1,"type":"ping","id":"x"}', SendRaw(b'{"v":1,"type":"ping","id":"x"}')),
    ("raw   not json at all  ", SendRaw(b"not json at all")),
    ("wait", Wait(None)),
    ("wait 2.5", Wait(2.5)),
    ("sleep 0.2", Sleep(0.2)),
    ("sleep 0", Sleep(0.0)),
    ("help", Help()),
    ("?", Help()),
    ("quit", Quit()),
    ("exit", Quit()),
    ("", None),
    ("   ", None),
    ("# a comment", None),
    ("   # indented comment", None),
])
def test_parse(line: str, expected: object) -> None:
    assert parser().parse(line) == expected


@pytest.mark.parametrize("line, message", [
    ("sael 150", "unknown command 'sael'"),
    ("sale", "sale: expected 1 argument(s): sale AMOUNT (got 0)"),
    ("sale 1 2", "sale: expected 1 argument(s): sale AMOUNT (got 2)"),
    ("sale 0.001", "amount '0.001' has more than 2 decimal places"),
    ("sale 150 --txn short", "sale: --txn must be 8-32 characters of A-Z a-z 0-9"),
    ("sale 150 --txn", "sale: --txn needs a value"),
    ("sale 150 --txn T1234567 --txn T1234568", "sale: --txn given twice"),
    ("sale 150 --colour red", "sale: unknown option --colour"),
    ("sale 150 --mode UPI", "sale: --mode must be one of ALL, CARD, QR"),
    ("sale 150 --tid 123456789", "sale: --tid must be a Paytm terminal id"),
    ("sale 150 --ref ''", "sale: --ref must be 1-32 printable ASCII characters"),
    ('sale 150 --ref "unclosed', "sale: No closing quotation"),
    ("void", "void: expected 1 argument(s): void TXN"),
    ("void T12", "void: TXN must be 8-32"),
    ("status T1234567-", "status: TXN must be 8-32"),
    ("refund T1 R1234567 5", "refund: TXN must be 8-32"),
    ("status T1234567 --kind x", "status: --kind must be one of sale, void, paylink, refund"),
    ("paylink 250 12345", "paylink: PHONE must be 10 digits"),
    ("paylink 250", "paylink: expected 2 argument(s)"),
    ("paylink 250 9999999999 --expiry-s 59", "paylink: --expiry-s must be 60-86400 seconds"),
    ("paylink 250 9999999999 --expiry-s 1.5", "paylink: --expiry-s must be whole seconds"),
    ("paylink 250 9999999999 --expiry-s " + "9" * 5000,
     "paylink: --expiry-s must be whole seconds, 60-86400 (got '" + "9" * 20 + "')"),
    ("refund T1234567 R1 5", "refund: REFUND_ID must be 8-32 characters"),
    ("refund T1234567 R1234567 0", "amount '0' must be more than zero"),
    ("ping now", "ping: expected 0 argument(s)"),
    ("raw", "raw: give the JSON to send"),
    ("raw {\"x\":\"\u20b9\"}", "raw: only printable ASCII fits in a frame"),
    ("raw " + "x" * 4097, "raw: length must be 2..4096 bytes"),
    ("raw x", "raw: length must be 2..4096 bytes"),
    ("sleep", "sleep: expected 1 argument(s)"),
    ("sleep -1", "sleep: seconds must be zero or more"),
    ("sleep inf", "sleep: seconds must be zero or more"),
    ("sleep soon", "sleep: 'soon' is not a number of seconds"),
    ("wait 1 2", "wait: expected at most 1 argument"),
])
def test_parse_errors(line: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parser().parse(line)
    assert info.value.message.startswith(message) or message in info.value.message, (
        info.value.message)


def test_generated_txns_and_ids() -> None:
    p = CommandParser()
    a, b = p.parse("sale 1"), p.parse("sale 1")
    assert isinstance(a, Send) and isinstance(b, Send)
    assert isinstance(a.request, Sale) and isinstance(b.request, Sale)
    assert a.request.txn != b.request.txn
    assert a.request.id != b.request.id
    assert re.fullmatch(r"T[0-9]{12}[0-9A-Z]{3}[0-9]+", a.request.txn)


def test_txn_source_is_valid_and_unique() -> None:
    source = TxnSource(clock=lambda: 1_700_000_000.0, salt="ABC")
    txns = [source() for _ in range(2000)]
    assert len(set(txns)) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{8,32}", t) for t in txns)


def test_script_parses_every_line() -> None:
    script = "# till test\nping\n\nsale 150 --txn T1234567\nwait\nquit\n"
    commands = parse_script(script, parser())
    assert commands == [Send(Ping("c-1")), Send(Sale("c-2", TXN, "15000")), Wait(None), Quit()]


def test_script_error_names_the_line() -> None:
    script = "ping\n# comment\n\nsale 0.001\nping\n"
    with pytest.raises(ScriptError) as info:
        parse_script(script, parser(), source="till.txt")
    assert info.value.line == 4
    assert str(info.value) == ("till.txt:4: amount '0.001' has more than 2 decimal places "
                               "(paise are whole)")

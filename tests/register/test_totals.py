"""`totals` (an addition to protocol v1): the request and its answer, byte for byte."""

from __future__ import annotations

import json

import pytest

from agent.errors import FieldError
from agent.register.codec import decode_reply, decode_request, encode
from agent.register.messages import DayFigures, Error, ErrorCode, Tally, Totals, TotalsReport

ZERO = Tally(count=0, amount="0")
FIGURES = DayFigures(sales=Tally(3, "45000"), voids=Tally(1, "10000"), refunds=ZERO,
                     net="35000", failed=Tally(1, "5001"), unknown=ZERO)


def test_request_with_and_without_a_day() -> None:
    assert decode_request(b'{"v":1,"type":"totals","id":"t1"}') == Totals(id="t1")
    assert decode_request(b'{"v":1,"type":"totals","id":"t1","day":"2026-03-14"}') == \
        Totals(id="t1", day="2026-03-14")
    for bad in (b'"2026-3-14"', b'"2026-02-30"', b'20260314', b'null'):
        error = decode_request(b'{"v":1,"type":"totals","id":"t1","day":' + bad + b"}")
        assert isinstance(error, Error) and error.code is ErrorCode.INVALID_FIELD
        assert error.field == "day"


def test_answer_round_trips() -> None:
    report = TotalsReport(re="t1", day="2026-03-14", lane="till-1", tid="12345678",
                          figures=FIGURES, by_method=(("card", FIGURES),),
                          receipt=("X-REPORT", "NET   ₹350.00"), id="a1")
    payload = encode(report)
    body = json.loads(payload)
    assert body["type"] == "totals" and body["re"] == "t1" and body["net"] == "35000"
    assert body["sales"] == {"count": 3, "amount": "45000"}
    assert body["by_method"]["card"]["voids"] == {"count": 1, "amount": "10000"}
    assert decode_reply(payload) == report


def test_figures_are_checked() -> None:
    assert DayFigures(sales=ZERO, voids=ZERO, refunds=Tally(1, "500"), net="-500",
                      failed=ZERO, unknown=ZERO).net == "-500"  # refunds of yesterday
    with pytest.raises(FieldError):
        Tally(count=-1, amount="0")
    with pytest.raises(FieldError):
        Tally(count=1, amount="-5")
    with pytest.raises(FieldError):
        DayFigures(sales=ZERO, voids=ZERO, refunds=ZERO, net="01", failed=ZERO,
                   unknown=ZERO)

"""Messages read, write and check themselves by one declaration per field (messages.Wire)."""

from __future__ import annotations

import json

import pytest

from agent.errors import FieldError
from agent.register.codec import MessageError, decode_reply, decode_request
from agent.register.messages import DayFigures, Gst, Sale, Tally, TotalsReport

TXN = "TXN0000001"
ZERO = Tally(0, "0")
FIGURES = DayFigures(sales=ZERO, voids=ZERO, refunds=ZERO, net="0", failed=ZERO, unknown=ZERO)


def _reply(**body: object) -> bytes:
    return json.dumps({"v": 1, "id": "a1", **body}).encode()


def test_a_decoded_message_is_the_one_built_in_code() -> None:
    gst = {"gstIn": "G", "gstBrkUp": "B", "invoiceNo": "I1", "invoiceDate": "20240101120000"}
    decoded = decode_request(json.dumps({
        "v": 1, "type": "sale", "id": "r1", "txn": TXN, "amount": "100",
        "display": {"a": "b"}, "gst": gst}).encode())
    built = Sale("r1", TXN, "100", display=(("a", "b"),),
                 gst=Gst("G", "B", "I1", "20240101120000"))
    assert decoded == built and hash(decoded) == hash(built)
    assert decoded.to_json() == {"txn": TXN, "amount": "100", "mode": "ALL",
                                 "display": {"a": "b"}, "gst": gst}


def test_a_reply_names_its_first_bad_member_in_table_order() -> None:
    # `version` is checked whole (1-64 characters) where it stands, before `busy`.
    with pytest.raises(MessageError) as info:
        decode_reply(_reply(type="pong", re="r1", version="", lane="l", tid="T1",
                            busy="yes", cloud="ok"))
    assert info.value.field == "version"
    with pytest.raises(MessageError) as info:
        decode_reply(_reply(type="totals", day="2024-01-01"))
    assert info.value.field == "re"


def test_nested_members_are_named_where_they_sit() -> None:
    body = {"re": "r1", "day": "2024-01-01", "lane": "l", "tid": "T1", **FIGURES.to_json(),
            "by_method": {"card": {**FIGURES.to_json(), "voids": {"count": -1, "amount": "0"}}},
            "receipt": []}
    with pytest.raises(MessageError) as info:
        decode_reply(_reply(type="totals", **body))
    assert info.value.field == "by_method.card.voids.count"
    with pytest.raises(FieldError) as caught:
        Gst("G", "B", "I1", "20240230120000")  # no 30 February
    assert caught.value.field == "gst.invoiceDate"


def test_figures_built_in_code_are_checked_too() -> None:
    with pytest.raises(FieldError):
        DayFigures(sales="3", voids=ZERO, refunds=ZERO, net="0",  # type: ignore[arg-type]
                   failed=ZERO, unknown=ZERO)
    with pytest.raises(FieldError):
        TotalsReport(re="r1", day="2024-01-01", lane="l", tid="T1", figures=FIGURES,
                     by_method=(("cash", FIGURES),))

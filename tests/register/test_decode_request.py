"""decode_request: every rule of protocol §3/§3.1, with the exact error code, field and `re`."""

from __future__ import annotations

import json

import pytest

from agent.register.codec import decode_request, message_id
from agent.register.messages import (
    Error,
    ErrorCode,
    Gst,
    Last,
    Paylink,
    Ping,
    Refund,
    Resend,
    Sale,
    Status,
    Void,
)

TXN = "T1234567"
GST = {"gstIn": "29ABCDE1234F1Z5", "gstBrkUp": "CGST:9|SGST:9", "invoiceNo": "INV-1",
       "invoiceDate": "20240131235959"}


def msg(type_: str = "ping", id_: object = "r1", **fields: object) -> bytes:
    body: dict[str, object] = {"v": 1, "type": type_, "id": id_}
    body.update(fields)
    return json.dumps(body).encode()


def error_of(payload: bytes) -> Error:
    decoded = decode_request(payload)
    assert isinstance(decoded, Error), decoded
    return decoded


# ------------------------------------------------------------------- INVALID_MESSAGE


@pytest.mark.parametrize("payload", [
    b"",
    b"{",
    b"not json",
    b"[]",
    b'"text"',
    b"1",
    b"null",
    b"true",
    b'[{"v":1,"type":"ping","id":"r1"}]',
    b"\xff\xfe",
    '{"v":1,"type":"ping","id":"r1","x":"é"}'.encode(),  # raw UTF-8: not ASCII
    b'{"v":1,"type":"ping","id":"r1","x":NaN}',  # NaN/Infinity are not JSON
    b'{"v":1,"type":"ping","id":"r1","x":Infinity}',
    b'{"v":1,"type":"ping","id":"r1"} x',  # trailing garbage
    b"[" * 5000 + b"]" * 5000,  # deeper than the parser's recursion limit
    b'{"v":1,"type":"ping","id":"r1","x":' + b"9" * 5000 + b"}",  # beyond int digit limit
], ids=lambda p: repr(p[:30]))
def test_unreadable_payload_is_invalid_message_without_re(payload: bytes) -> None:
    err = error_of(payload)
    assert err.code is ErrorCode.INVALID_MESSAGE
    assert err.re is None
    assert err.field is None


@pytest.mark.parametrize("body", [
    {"type": "ping", "id": "r1"},  # v missing
    {"v": 2, "type": "ping", "id": "r1"},
    {"v": 0, "type": "ping", "id": "r1"},
    {"v": "1", "type": "ping", "id": "r1"},
    {"v": True, "type": "ping", "id": "r1"},  # JSON true is not the integer 1
    {"v": 1.0, "type": "ping", "id": "r1"},
    {"v": None, "type": "ping", "id": "r1"},
    {"v": [1], "type": "ping", "id": "r1"},
    {"v": 1, "id": "r1"},  # type missing
    {"v": 1, "type": 5, "id": "r1"},
    {"v": 1, "type": None, "id": "r1"},
    {"v": 1, "type": ["ping"], "id": "r1"},
    {"v": 2, "type": "nonsense", "id": "r1"},  # envelope beats UNKNOWN_TYPE
    {"v": 2, "type": "sale", "id": "r1", "amount": "0"},  # ... and INVALID_FIELD
], ids=str)
def test_envelope_errors_with_readable_id_carry_re(body: dict[str, object]) -> None:
    err = error_of(json.dumps(body).encode())
    assert err.code is ErrorCode.INVALID_MESSAGE
    assert err.re == "r1"
    assert err.field is None


@pytest.mark.parametrize("id_", [
    "", "a" * 37, "a b", "a.b", "a/b", "é", "r1\n", 5, 1.5, True, None, ["r1"], {"id": "r1"},
], ids=repr)
def test_bad_id_is_invalid_message_without_re(id_: object) -> None:
    err = error_of(msg("ping", id_))
    assert err.code is ErrorCode.INVALID_MESSAGE
    assert err.re is None


def test_missing_id_is_invalid_message_without_re() -> None:
    err = error_of(b'{"v":1,"type":"ping"}')
    assert err.code is ErrorCode.INVALID_MESSAGE
    assert err.re is None


@pytest.mark.parametrize("id_", ["a", "A" * 36, "a-b_C9", "-", "_"])
def test_valid_ids(id_: str) -> None:
    assert decode_request(msg("ping", id_)) == Ping(id_)


def test_bad_id_and_bad_v_together_has_no_re() -> None:
    err = error_of(msg("ping", "bad id", v=2))
    assert (err.code, err.re) == (ErrorCode.INVALID_MESSAGE, None)


# ------------------------------------------------------------------- UNKNOWN_TYPE


@pytest.mark.parametrize("type_", [
    "", "Sale", "SALE", "pong", "result", "accepted", "error", "state", "refund_status", "x" * 500,
])
def test_unknown_type(type_: str) -> None:
    err = error_of(msg(type_, "r9", txn="bad", amount=0))  # bad fields: type wins
    assert err.code is ErrorCode.UNKNOWN_TYPE
    assert err.re == "r9"
    assert err.field is None
    assert len(err.message) <= 80


# ------------------------------------------------------------------- valid requests


def test_sale_minimal_defaults() -> None:
    assert decode_request(msg("sale", txn=TXN, amount="15000")) == Sale(
        id="r1", txn=TXN, amount="15000", ref=None, tid=None, mode="ALL", auto_accept=None,
        display=None, print=None, extend=None, gst=None)


def test_sale_every_field() -> None:
    decoded = decode_request(msg(
        "sale", txn="A" * 32, amount="999999999999", ref=" ~" * 16, tid="12345678",
        mode="QR", auto_accept=False, display={"a": "1", "b": "2", "c": "3"},
        print={f"k{i}": "v" for i in range(10)}, extend={"x": ""}, gst=GST,
        unknown_field={"ignored": [1, 2]}))
    assert decoded == Sale(
        id="r1", txn="A" * 32, amount="999999999999", ref=" ~" * 16, tid="12345678",
        mode="QR", auto_accept=False, display=(("a", "1"), ("b", "2"), ("c", "3")),
        print=tuple((f"k{i}", "v") for i in range(10)), extend=(("x", ""),),
        gst=Gst("29ABCDE1234F1Z5", "CGST:9|SGST:9", "INV-1", "20240131235959"))


@pytest.mark.parametrize("payload, expected", [
    (msg("void", txn=TXN), Void("r1", TXN)),
    (msg("paylink", txn=TXN, amount="25000", phone="9999999999"),
     Paylink("r1", TXN, "25000", "9999999999", 900)),
    (msg("paylink", txn=TXN, amount="1", phone="0000000000", expiry_s=60),
     Paylink("r1", TXN, "1", "0000000000", 60)),
    (msg("paylink", txn=TXN, amount="1", phone="0123456789", expiry_s=86400),
     Paylink("r1", TXN, "1", "0123456789", 86400)),
    (msg("resend", txn=TXN), Resend("r1", TXN)),
    (msg("refund", txn=TXN, refund_id="R1234567", amount="5000"),
     Refund("r1", TXN, "R1234567", "5000")),
    (msg("status", txn=TXN), Status("r1", TXN, "sale")),
    (msg("status", txn=TXN, kind="refund"), Status("r1", TXN, "refund")),
    (msg("status", txn=TXN, kind="void"), Status("r1", TXN, "void")),
    (msg("status", txn=TXN, kind="paylink"), Status("r1", TXN, "paylink")),
    (msg("last", extra=1), Last("r1")),
    (msg("ping", txn="ignored", amount=0), Ping("r1")),
    (msg("sale", txn=TXN, amount="1", gst={}), Sale("r1", TXN, "1")),  # {}: none of four
    (msg("sale", txn=TXN, amount="1", display={}), Sale("r1", TXN, "1", display=())),
    (msg("sale", txn=TXN, amount="1", ref=" "), Sale("r1", TXN, "1", ref=" ")),
    (msg("sale", txn=TXN, amount="1", auto_accept=True), Sale("r1", TXN, "1", auto_accept=True)),
    (msg("sale", txn=TXN, amount="1", mode="CARD"), Sale("r1", TXN, "1", mode="CARD")),
    (msg("sale", txn=TXN, amount="1", tid="A"), Sale("r1", TXN, "1", tid="A")),
], ids=lambda v: v[:40] if isinstance(v, bytes) else type(v).__name__)
def test_valid_requests(payload: bytes, expected: object) -> None:
    assert decode_request(payload) == expected


@pytest.mark.parametrize(("payload", "key"), [
    (b'{"v":1,"type":"sale","id":"r1","txn":"T1234567","amount":"100","amount":"999999"}',
     "amount"),
    (b'{"v":1,"type":"void","id":"r1","txn":"bad","txn":"T1234567"}', "txn"),
    (b'{"v":1,"type":"sale","id":"r1","txn":"T1234567","amount":"1",'
     b'"display":{"msg":"a","msg":"b"}}', "msg"),  # nested objects too
    (b'{"v":1,"v":1,"type":"ping","id":"r1"}', "v"),
])
def test_duplicate_key_is_invalid_message_naming_it(payload: bytes, key: str) -> None:
    error = decode_request(payload)
    assert isinstance(error, Error)
    assert error.code is ErrorCode.INVALID_MESSAGE
    assert f"key '{key}' appears twice" in error.message
    assert error.re == "r1"
    assert message_id(payload) == "r1"


def test_duplicate_id_is_not_echoed() -> None:
    payload = b'{"v":1,"type":"ping","id":"r1","id":"r2"}'
    error = decode_request(payload)
    assert isinstance(error, Error) and error.code is ErrorCode.INVALID_MESSAGE
    assert error.re is None and "'id'" in error.message
    assert message_id(payload) is None


def test_whitespace_around_json_is_fine() -> None:
    assert decode_request(b' { "v" : 1 , "type" : "ping" , "id" : "r1" } ') == Ping("r1")


def test_escaped_non_ascii_in_free_text_is_kept() -> None:
    payload = b'{"v":1,"type":"sale","id":"r1","txn":"T1234567","amount":"1",' \
              b'"display":{"msg":"\\u20b9 150"}}'
    decoded = decode_request(payload)
    assert isinstance(decoded, Sale)
    assert decoded.display == (("msg", "\u20b9 150"),)


# ------------------------------------------------------------------- INVALID_FIELD

BASE = {
    "sale": {"txn": TXN, "amount": "15000"},
    "void": {"txn": TXN},
    "paylink": {"txn": TXN, "amount": "15000", "phone": "9999999999"},
    "resend": {"txn": TXN},
    "refund": {"txn": TXN, "refund_id": "R1234567", "amount": "100"},
    "status": {"txn": TXN},
}

MISSING = object()

BAD_TXNS = ["T123456", "T" * 33, "T123456-", "T1234567 ", "T123456_", "", 12345678, None,
            True, ["T1234567"], "T12345\u00e97"]
BAD_AMOUNTS = ["0", "00", "015000", "1234567890123", "12.50", "1e5", "-1", "+1", " 1", "1 ",
               "", "\uff11", "\u0661", 15000, 150.0, None, True, ["1"]]
BAD_FIELDS: list[tuple[str, str, object]] = [
    *[("sale", "txn", v) for v in BAD_TXNS],
    *[("sale", "amount", v) for v in BAD_AMOUNTS],
    ("sale", "ref", ""), ("sale", "ref", "x" * 33), ("sale", "ref", "caf\u00e9"),
    ("sale", "ref", "a\nb"), ("sale", "ref", "a\x7fb"), ("sale", "ref", 5), ("sale", "ref", None),
    ("sale", "tid", ""), ("sale", "tid", "123456789"), ("sale", "tid", "1234-678"),
    ("sale", "tid", 12345678), ("sale", "tid", None),
    ("sale", "mode", "card"), ("sale", "mode", "UPI"), ("sale", "mode", ""), ("sale", "mode", 1),
    ("sale", "mode", None),
    ("sale", "auto_accept", "true"), ("sale", "auto_accept", 1), ("sale", "auto_accept", 0),
    ("sale", "auto_accept", None),
    ("sale", "display", {"a": "1", "b": "2", "c": "3", "d": "4"}),
    ("sale", "display", {"a": 1}), ("sale", "display", {"a": None}),
    ("sale", "display", {"a": {"b": "c"}}), ("sale", "display", ["a"]),
    ("sale", "display", "a"), ("sale", "display", None),
    ("sale", "print", {"a": 1}), ("sale", "print", ["a"]), ("sale", "print", "a"),
    ("sale", "print", None),
    ("sale", "extend", {"a": True}), ("sale", "extend", []), ("sale", "extend", None),
    ("sale", "gst", "x"), ("sale", "gst", []), ("sale", "gst", None), ("sale", "gst", 1),
    *[("void", "txn", v) for v in BAD_TXNS],
    *[("paylink", "txn", v) for v in BAD_TXNS],
    *[("paylink", "amount", v) for v in BAD_AMOUNTS],
    ("paylink", "phone", "999999999"), ("paylink", "phone", "99999999999"),
    ("paylink", "phone", 9999999999), ("paylink", "phone", "99999 9999"),
    ("paylink", "phone", "+919999999"), ("paylink", "phone", "\u0669" * 10),
    ("paylink", "phone", None),
    ("paylink", "expiry_s", 59), ("paylink", "expiry_s", 86401), ("paylink", "expiry_s", 0),
    ("paylink", "expiry_s", -900), ("paylink", "expiry_s", "900"), ("paylink", "expiry_s", 900.0),
    ("paylink", "expiry_s", 900.5), ("paylink", "expiry_s", True), ("paylink", "expiry_s", None),
    *[("resend", "txn", v) for v in BAD_TXNS],
    *[("refund", "txn", v) for v in BAD_TXNS],
    *[("refund", "refund_id", v) for v in BAD_TXNS],
    *[("refund", "amount", v) for v in BAD_AMOUNTS],
    *[("status", "txn", v) for v in BAD_TXNS],
    ("status", "kind", "SALE"), ("status", "kind", "x"), ("status", "kind", ""),
    ("status", "kind", 1), ("status", "kind", None), ("status", "kind", "resend"),
]


@pytest.mark.parametrize("type_, field, value", BAD_FIELDS, ids=repr)
def test_bad_field_is_invalid_field_naming_it(type_: str, field: str, value: object) -> None:
    fields: dict[str, object] = dict(BASE[type_])
    fields[field] = value
    err = error_of(msg(type_, "r7", **fields))
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.field == field
    assert err.re == "r7"
    assert err.message and len(err.message) <= 80


@pytest.mark.parametrize("type_, field", [
    (t, f) for t, base in BASE.items() for f in base
], ids=repr)
def test_missing_mandatory_field_is_invalid_field(type_: str, field: str) -> None:
    fields = dict(BASE[type_])
    del fields[field]
    err = error_of(msg(type_, "r7", **fields))
    assert (err.code, err.field, err.re) == (ErrorCode.INVALID_FIELD, field, "r7")


def test_first_bad_field_in_table_order_is_named() -> None:
    err = error_of(msg("sale", txn="short", amount="0", mode="x"))
    assert err.field == "txn"
    err = error_of(msg("sale", txn=TXN, amount="0", mode="x"))
    assert err.field == "amount"
    err = error_of(msg("refund", txn=TXN, amount="0", refund_id="x"))
    assert err.field == "refund_id"
    err = error_of(msg("paylink", amount="1", phone="1"))
    assert err.field == "txn"


@pytest.mark.parametrize("gst, field", [
    ({k: v for k, v in GST.items() if k != "invoiceDate"}, "gst.invoiceDate"),
    ({"gstIn": "X"}, "gst.gstBrkUp"),
    ({"invoiceNo": "1"}, "gst.gstIn"),
    ({**GST, "gstIn": 5}, "gst.gstIn"),
    ({**GST, "gstIn": ""}, "gst.gstIn"),
    ({**GST, "gstBrkUp": None}, "gst.gstBrkUp"),
    ({**GST, "invoiceNo": "1" * 21}, "gst.invoiceNo"),
    ({**GST, "invoiceNo": ""}, "gst.invoiceNo"),
    ({**GST, "invoiceNo": 1}, "gst.invoiceNo"),
    ({**GST, "invoiceDate": "2024013123595"}, "gst.invoiceDate"),  # 13 digits
    ({**GST, "invoiceDate": "202401312359590"}, "gst.invoiceDate"),
    ({**GST, "invoiceDate": "20240230120000"}, "gst.invoiceDate"),  # 30 February
    ({**GST, "invoiceDate": "20230229120000"}, "gst.invoiceDate"),  # not a leap year
    ({**GST, "invoiceDate": "20240131240000"}, "gst.invoiceDate"),
    ({**GST, "invoiceDate": "20240131236000"}, "gst.invoiceDate"),
    ({**GST, "invoiceDate": "20240131235960"}, "gst.invoiceDate"),
    ({**GST, "invoiceDate": "00000101000000"}, "gst.invoiceDate"),
    ({**GST, "invoiceDate": "2024-01-31 23:5"}, "gst.invoiceDate"),
    ({**GST, "invoiceDate": 20240131235959}, "gst.invoiceDate"),
], ids=repr)
def test_gst_members(gst: dict[str, object], field: str) -> None:
    err = error_of(msg("sale", txn=TXN, amount="1", gst=gst))
    assert (err.code, err.field, err.re) == (ErrorCode.INVALID_FIELD, field, "r1")


def test_gst_leap_day_and_twenty_char_invoice_are_fine() -> None:
    decoded = decode_request(msg("sale", txn=TXN, amount="1",
                                 gst={**GST, "invoiceDate": "20240229000000",
                                      "invoiceNo": "N" * 20}))
    assert isinstance(decoded, Sale) and decoded.gst is not None
    assert decoded.gst.invoice_date == "20240229000000"


@pytest.mark.parametrize("amount", ["1", "9", "10", "15000", "100000000000", "999999999999"])
def test_valid_amounts(amount: str) -> None:
    assert decode_request(msg("void", txn=TXN)) == Void("r1", TXN)
    assert decode_request(msg("sale", txn=TXN, amount=amount)) == Sale("r1", TXN, amount)


def test_error_replies_are_ready_to_send() -> None:
    err = error_of(msg("sale", "r5", txn=TXN, amount="0"))
    assert err.id and err.id != "r5"
    assert err.txn is None and err.paytm_code is None
    other = error_of(msg("sale", "r5", txn=TXN, amount="0"))
    assert other.id != err.id  # each reply has its own id

"""encode, fit, decode_reply, message_id, IdSource: exact bytes, omitted optionals, frame limit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from agent.errors import FieldError
from agent.register.codec import (
    MAX_PAYLOAD,
    MessageError,
    MessageTooLargeError,
    decode_reply,
    decode_request,
    encode,
    fit,
    message_id,
)
from agent.register.ids import IdSource
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Gst,
    Last,
    Message,
    Paylink,
    Payment,
    Ping,
    Pong,
    Refund,
    Reply,
    Resend,
    Result,
    Sale,
    State,
    Status,
    Void,
)

TXN = "T1234567"
PRINTABLE = re.compile(rb"[\x20-\x7e]*")


def result(**kw: object) -> Result:
    args: dict[str, object] = dict(re="r1", txn=TXN, kind="sale", status="success",
                                   code="0000", message="Approved", amount="15000", id="a1")
    args.update(kw)
    return Result(**args)  # type: ignore[arg-type]  # test helper: fields vary per case


# ------------------------------------------------------------------- exact bytes


@pytest.mark.parametrize("message, expected", [
    (Ping("p1"), b'{"v":1,"type":"ping","id":"p1"}'),  # the example of protocol §2
    (Last("l1"), b'{"v":1,"type":"last","id":"l1"}'),
    (Void("r1", TXN), b'{"v":1,"type":"void","id":"r1","txn":"T1234567"}'),
    (Resend("r1", TXN), b'{"v":1,"type":"resend","id":"r1","txn":"T1234567"}'),
    (Status("r1", TXN), b'{"v":1,"type":"status","id":"r1","txn":"T1234567","kind":"sale"}'),
    (Refund("r1", TXN, "R1234567", "500"),
     b'{"v":1,"type":"refund","id":"r1","txn":"T1234567","refund_id":"R1234567",'
     b'"amount":"500"}'),
    (Paylink("r1", TXN, "25000", "9999999999"),
     b'{"v":1,"type":"paylink","id":"r1","txn":"T1234567","amount":"25000",'
     b'"phone":"9999999999","expiry_s":900}'),
    (Sale("r1", TXN, "15000"),
     b'{"v":1,"type":"sale","id":"r1","txn":"T1234567","amount":"15000","mode":"ALL"}'),
    (Sale("r1", TXN, "15000", ref="B 1", tid="12345678", mode="CARD", auto_accept=True,
          display=(("a", "b"),), print=(), extend=(("x", "y"),),
          gst=Gst("G", "B", "I", "20240101000000")),
     b'{"v":1,"type":"sale","id":"r1","txn":"T1234567","amount":"15000","ref":"B 1",'
     b'"tid":"12345678","mode":"CARD","auto_accept":true,"display":{"a":"b"},"print":{},'
     b'"extend":{"x":"y"},"gst":{"gstIn":"G","gstBrkUp":"B","invoiceNo":"I",'
     b'"invoiceDate":"20240101000000"}}'),
    (Accepted("r1", TXN, "sale", id="a1"),
     b'{"v":1,"type":"accepted","id":"a1","re":"r1","txn":"T1234567","kind":"sale"}'),
    (State("r1", TXN, "void", id="a1"),
     b'{"v":1,"type":"state","id":"a1","re":"r1","txn":"T1234567","kind":"void",'
     b'"state":"pending"}'),
    (result(),
     b'{"v":1,"type":"result","id":"a1","re":"r1","txn":"T1234567","kind":"sale",'
     b'"status":"success","code":"0000","message":"Approved","amount":"15000","receipt":[]}'),
    (result(re=None, status="unknown", code="", receipt=("A", "B"), warnings=("w",),
            payment=Payment(method="CARD", rrn="123", card="XXXX1234")),
     b'{"v":1,"type":"result","id":"a1","txn":"T1234567","kind":"sale","status":"unknown",'
     b'"code":"","message":"Approved","amount":"15000","payment":{"method":"CARD",'
     b'"rrn":"123","card":"XXXX1234"},"receipt":["A","B"],"warnings":["w"]}'),
    (Error(None, ErrorCode.INVALID_MESSAGE, "not JSON", id="e1"),
     b'{"v":1,"type":"error","id":"e1","code":"INVALID_MESSAGE","message":"not JSON"}'),
    (Error("r1", ErrorCode.REJECTED, "Declined", field=None, txn=TXN, paytm_code="0007",
           id="e1"),
     b'{"v":1,"type":"error","id":"e1","re":"r1","code":"REJECTED","message":"Declined",'
     b'"txn":"T1234567","paytm_code":"0007"}'),
    (Error("r1", ErrorCode.INVALID_FIELD, "amount bad", field="amount", id="e1"),
     b'{"v":1,"type":"error","id":"e1","re":"r1","code":"INVALID_FIELD",'
     b'"message":"amount bad","field":"amount"}'),
    (Pong("p1", "0.1.0", "till-1", "12345678", False, "ok", id="a1"),
     b'{"v":1,"type":"pong","id":"a1","re":"p1","version":"0.1.0","lane":"till-1",'
     b'"tid":"12345678","busy":false,"cloud":"ok"}'),
    (Pong("p1", "0.1.0", "till-1", "12345678", False, "ok", link=2, id="a1"),
     b'{"v":1,"type":"pong","id":"a1","re":"p1","version":"0.1.0","lane":"till-1",'
     b'"tid":"12345678","busy":false,"cloud":"ok","link":2}'),
], ids=lambda v: type(v).__name__ if not isinstance(v, bytes) else "")
def test_exact_bytes(message: Message, expected: bytes) -> None:
    assert encode(message) == expected


def test_non_ascii_is_escaped_and_every_byte_is_printable() -> None:
    payload = encode(result(message="\u20b9 150 ok\n\t\x00\x7f\U0001f600",
                            receipt=("Caf\u00e9",)))
    assert b'"message":"\\u20b9 150 ok\\n\\t\\u0000\\u007f\\ud83d\\ude00"' in payload
    assert b'"receipt":["Caf\\u00e9"]' in payload
    assert PRINTABLE.fullmatch(payload)
    back = decode_reply(payload)
    assert isinstance(back, Result) and back.receipt == ("Caf\u00e9",)


def test_messages_are_clipped_to_80_characters() -> None:
    long = "x" * 200
    assert len(result(message=long).message) == 80
    assert result(message=long).message.endswith("...")
    assert len(Error("r1", ErrorCode.INTERNAL, long).message) == 80
    assert result(message="y" * 80).message == "y" * 80


def test_payment_members_are_clipped() -> None:
    assert Payment(bank="b" * 100).bank == "b" * 61 + "..."


# ------------------------------------------------------------------- the frame limit


def test_huge_receipt_is_trimmed_to_fit_with_a_warning() -> None:
    lines = tuple(f"line {i:04d} " + "=" * 28 for i in range(500))
    big = result(receipt=lines, warnings=("keep me",))
    payload = encode(big)
    assert len(payload) <= MAX_PAYLOAD
    back = decode_reply(payload)
    assert isinstance(back, Result)
    kept = len(back.receipt)
    assert 0 < kept < 500 and back.receipt == lines[:kept]
    assert back.warnings == ("keep me",
                             f"trimmed to fit one frame: receipt {kept}/500 lines, warnings 1/1")
    # As many lines as possible: one more would not fit.
    assert len(encode(back)) > MAX_PAYLOAD - 45
    assert fit(big) == back


def test_long_warnings_are_clipped_before_receipt_lines_go() -> None:
    lines = tuple("r" * 40 for _ in range(40))  # fits alone
    big = result(receipt=lines, warnings=tuple("w" * 500 for _ in range(10)))
    back = decode_reply(encode(big))
    assert isinstance(back, Result)
    assert back.receipt == lines
    assert back.warnings[:10] == ("w" * 77 + "...",) * 10
    assert back.warnings[10] == ("trimmed to fit one frame: receipt 40/40 lines, warnings 10/10"
                                 " (clipped to 80 characters)")


def test_many_warnings_go_after_every_receipt_line() -> None:
    big = result(receipt=("r",) * 10, warnings=tuple("w" * 80 for _ in range(100)))
    back = decode_reply(encode(big))
    assert isinstance(back, Result)
    assert back.receipt == ()
    kept = len(back.warnings) - 1
    assert 0 < kept < 100
    assert back.warnings[-1] == f"trimmed to fit one frame: receipt 0/10 lines, warnings {kept}/100"


def test_one_giant_warning_and_giant_lines() -> None:
    big = result(receipt=("\u20b9" * 5000,), warnings=("w" * 10_000,),
                 payment=Payment(*["\u20b9" * 100] * 8))
    payload = encode(big)
    assert len(payload) <= MAX_PAYLOAD
    back = decode_reply(payload)
    assert isinstance(back, Result)
    assert back.receipt == ()
    assert back.warnings == ("w" * 77 + "...", "trimmed to fit one frame: receipt 0/1 lines, "
                             "warnings 1/1 (clipped to 80 characters)")


def test_fit_leaves_a_small_result_alone() -> None:
    small = result(receipt=("a",))
    assert fit(small) is small


def test_oversized_request_raises() -> None:
    sale = Sale("r1", TXN, "1", print=tuple((f"k{i}", "v" * 100) for i in range(50)))
    with pytest.raises(MessageTooLargeError):
        encode(sale)


def test_worst_case_bounded_replies_fit() -> None:
    worst: list[Message] = [
        Error("i" * 36, ErrorCode.INVALID_FIELD, "\u20b9" * 100, field="\u20b9" * 64,
              txn="T" * 32, paytm_code="\u20b9" * 16, id="j" * 36),
        Pong("i" * 36, "\u20b9" * 64, "\u20b9" * 64, "12345678", True, "unknown", id="j" * 36),
        Accepted("i" * 36, "T" * 32, "paylink", id="j" * 36),
    ]
    for message in worst:
        assert len(encode(message)) <= MAX_PAYLOAD


# ------------------------------------------------------------------- construction checks


@pytest.mark.parametrize("build", [
    lambda: Sale("bad id", TXN, "1"),
    lambda: Sale("r1", "short", "1"),
    lambda: Sale("r1", TXN, "0"),
    lambda: Sale("r1", TXN, "1", display=(("a", "1"),) * 4),
    lambda: Paylink("r1", TXN, "1", "123"),
    lambda: Accepted("r1", TXN, "resend"),  # type: ignore[arg-type]  # the point of the test
    lambda: State("r1", TXN, "sale", "done"),
    lambda: result(status="ok"),
    lambda: result(code="0" * 17),
    lambda: result(amount="0"),
    lambda: Error("r1", "NOPE", "x"),  # type: ignore[arg-type]  # the point of the test
    lambda: Pong("r1", "1", "lane", "123456789", False, "ok"),
    lambda: Pong("r1", "1", "lane", "1", 0, "ok"),  # type: ignore[arg-type]  # ditto
    lambda: Pong("r1", "1", "lane", "1", False, "ok", link=3),
    lambda: Pong("r1", "1", "lane", "1", False, "ok", link=True),  # bool is not 1
    lambda: Gst("", "b", "c", "20240101000000"),
])
def test_messages_cannot_be_built_invalid(build: Callable[[], object]) -> None:
    with pytest.raises(FieldError):
        build()


def test_error_code_from_string_is_enum() -> None:
    err = Error("r1", "NOT_FOUND", "x")  # type: ignore[arg-type]  # from the wire
    assert err.code is ErrorCode.NOT_FOUND


# ------------------------------------------------------------------- decode_reply


@pytest.mark.parametrize("message", [
    Accepted("r1", TXN, "refund"),
    State("r1", TXN, "paylink"),
    result(),
    result(re=None, payment=Payment(paytm_txn_id="2024"), receipt=("a", ""), warnings=("w",)),
    Error(None, ErrorCode.INVALID_MESSAGE, "x"),
    Error("r1", ErrorCode.TERMINAL_BUSY, "busy", txn=TXN),
    Pong("r1", "0.1.0", "till-1", "1", True, "down"),
    Pong("r1", "0.1.0", "till-1", "1", True, "down", link=1),
], ids=lambda m: type(m).__name__)
def test_reply_round_trip(message: Reply) -> None:
    assert decode_reply(encode(message)) == message


@pytest.mark.parametrize("payload, code, field", [
    (b"nope", ErrorCode.INVALID_MESSAGE, None),
    (b'{"v":1,"type":"sale","id":"a1","txn":"T1234567","amount":"1"}',
     ErrorCode.UNKNOWN_TYPE, None),  # a request is not a reply
    (b'{"v":1,"type":"accepted","id":"a1","re":"r1","txn":"T1234567"}',
     ErrorCode.INVALID_FIELD, "kind"),
    (b'{"v":1,"type":"result","id":"a1","txn":"T1234567","kind":"sale","status":"success",'
     b'"code":"0000","message":"m","amount":"1"}', ErrorCode.INVALID_FIELD, "receipt"),
    (b'{"v":1,"type":"result","id":"a1","txn":"T1234567","kind":"sale","status":"success",'
     b'"code":"0000","message":"m","amount":"1","receipt":[],"payment":{"rrn":1}}',
     ErrorCode.INVALID_FIELD, "payment.rrn"),
    (b'{"v":1,"type":"error","id":"a1","code":"SOMETHING","message":"m"}',
     ErrorCode.INVALID_FIELD, "code"),
    (b'{"v":1,"type":"pong","id":"a1","re":"r1","version":"1","lane":"l","tid":"1",'
     b'"busy":"no","cloud":"ok"}', ErrorCode.INVALID_FIELD, "busy"),
    (b'{"v":1,"type":"pong","id":"a1","re":"r1","version":"1","lane":"l","tid":"1",'
     b'"busy":false,"cloud":"ok","link":"2"}', ErrorCode.INVALID_FIELD, "link"),
    (b'{"v":1,"type":"pong","id":"a1","re":"r1","version":"1","lane":"l","tid":"1",'
     b'"busy":false,"cloud":"ok","link":0}', ErrorCode.INVALID_FIELD, "link"),
])
def test_invalid_replies(payload: bytes, code: ErrorCode, field: str | None) -> None:
    with pytest.raises(MessageError) as info:
        decode_reply(payload)
    assert (info.value.code, info.value.field) == (code, field)


# ------------------------------------------------------------------- message_id


@pytest.mark.parametrize("payload, expected", [
    (b'{"v":1,"type":"ping","id":"p1"}', "p1"),
    (b'{"id":"p1"}', "p1"),  # any JSON object with a valid id: R7 needs nothing more
    (b'{"v":2,"type":"nonsense","id":"p1"}', "p1"),
    (b'{"id":"p1","id":"p2"}', None),  # as decode_request reads it
    (b'{"id":"bad id"}', None),
    (b'{"id":5}', None),
    (b'{"x":{"id":"p1"}}', None),
    (b'[{"id":"p1"}]', None),
    (b"", None),
    (b"\xff", None),
    (b"[" * 10_000, None),
    (b'{"id":"p1","n":' + b"1" * 5000 + b"}", None),
])
def test_message_id(payload: bytes, expected: str | None) -> None:
    assert message_id(payload) == expected


def test_message_id_agrees_with_decode_request() -> None:
    payload = b'{"v":1,"type":"ping","id":"a","id":"b"}'
    assert message_id(payload) is None
    error = decode_request(payload)
    assert isinstance(error, Error) and error.re is None
    payload = b'{"v":1,"type":"ping","id":"a","x":1,"x":2}'
    assert message_id(payload) == "a"
    error = decode_request(payload)
    assert isinstance(error, Error) and error.re == "a"


# ------------------------------------------------------------------- ids


def test_id_source_unique_and_valid() -> None:
    ids = IdSource()
    seen = {ids() for _ in range(1000)}
    assert len(seen) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,36}", i) for i in seen)
    assert IdSource().prefix != IdSource().prefix


def test_id_source_prefix_rules() -> None:
    assert IdSource("agent")() == "agent-1"
    for bad in ["", "a b", "x" * 19]:
        with pytest.raises(ValueError):
            IdSource(bad)


def test_replies_get_distinct_ids_by_default() -> None:
    a, b = Accepted("r1", TXN, "sale"), Accepted("r1", TXN, "sale")
    assert a.id != b.id
    assert json.loads(encode(a))["id"] == a.id

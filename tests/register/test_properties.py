"""Property tests (hypothesis): decoding never raises, replies always fit, requests round trip."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.register.codec import (
    MAX_PAYLOAD,
    decode_reply,
    decode_request,
    encode,
    message_id,
)
from agent.register.messages import (
    REQUEST_TYPES,
    Error,
    Gst,
    Last,
    Paylink,
    Payment,
    Ping,
    Refund,
    Request,
    Resend,
    Result,
    Sale,
    Status,
    Void,
)

PRINTABLE = re.compile(rb"[\x20-\x7e]*")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=10,
)
known_keys = st.sampled_from(["v", "type", "id", "txn", "amount", "ref", "tid", "mode",
                              "auto_accept", "display", "print", "extend", "gst", "phone",
                              "expiry_s", "refund_id", "kind"])
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(1), json_values),
        "type": st.one_of(st.sampled_from(sorted(REQUEST_TYPES)), json_values),
        "id": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,36}", fullmatch=True), json_values),
    },
)
objects = st.tuples(envelopes, st.dictionaries(known_keys, json_values, max_size=8)).map(
    lambda pair: {**pair[1], **pair[0]})


def check_answer(payload: bytes) -> None:
    decoded = decode_request(payload)
    assert isinstance(decoded, (*REQUEST_TYPES.values(), Error))
    out = encode(decoded)
    assert 2 <= len(out) <= MAX_PAYLOAD
    assert PRINTABLE.fullmatch(out)
    if isinstance(decoded, Error):
        assert decode_reply(out) == decoded
        assert decoded.re is None or decoded.re == message_id(payload)
    else:
        assert decode_request(out) == decoded


@settings(deadline=None)  # 2 shared cores: time limits would flake
@given(st.binary(max_size=600))
def test_arbitrary_bytes(payload: bytes) -> None:
    check_answer(payload)
    message_id(payload)


@settings(max_examples=150, deadline=None)
@given(objects)
def test_arbitrary_json_objects(obj: dict[str, object]) -> None:
    check_answer(json.dumps(obj).encode())


@settings(deadline=None)  # 2 shared cores: time limits would flake
@given(json_values)
def test_arbitrary_json_values(value: object) -> None:
    check_answer(json.dumps(value).encode())


@settings(deadline=None)  # 2 shared cores: time limits would flake
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=300))
def test_arbitrary_ascii_text(text: str) -> None:
    check_answer(text.encode("ascii"))


# ------------------------------------------------------------------- round trips

ids = st.from_regex(r"[A-Za-z0-9_-]{1,36}", fullmatch=True)
txns = st.from_regex(r"[A-Za-z0-9]{8,32}", fullmatch=True)
amounts = st.integers(1, 10**12 - 1).map(str)
entries = st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=5).map(
    lambda d: tuple(d.items()))
kinds = st.sampled_from(["sale", "void", "paylink", "refund"])
gsts = st.builds(
    Gst,
    st.text(min_size=1, max_size=15), st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=20),
    st.datetimes().filter(lambda d: d.year >= 1000).map(lambda d: d.strftime("%Y%m%d%H%M%S")),
)
requests: st.SearchStrategy[Request] = st.one_of(
    st.builds(
        Sale, ids, txns, amounts,
        ref=st.none() | st.from_regex(r"[\x20-\x7e]{1,32}", fullmatch=True),
        tid=st.none() | st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True),
        mode=st.sampled_from(["ALL", "CARD", "QR"]),
        auto_accept=st.none() | st.booleans(),
        display=st.none() | entries.map(lambda e: e[:3]),
        print=st.none() | entries, extend=st.none() | entries, gst=st.none() | gsts,
    ),
    st.builds(Void, ids, txns),
    st.builds(Paylink, ids, txns, amounts, st.from_regex(r"[0-9]{10}", fullmatch=True),
              st.integers(60, 86400)),
    st.builds(Resend, ids, txns),
    st.builds(Refund, ids, txns, txns, amounts),
    st.builds(Status, ids, txns, kinds),
    st.builds(Last, ids),
    st.builds(Ping, ids),
)


@settings(deadline=None)  # 2 shared cores: time limits would flake
@given(requests)
def test_request_round_trip(request: Request) -> None:
    payload = encode(request)
    assert PRINTABLE.fullmatch(payload)
    assert decode_request(payload) == request
    assert message_id(payload) == request.id


results = st.builds(
    Result,
    re=st.none() | ids, txn=txns, kind=kinds,
    status=st.sampled_from(["success", "failed", "unknown"]),
    code=st.text(max_size=16), message=st.text(max_size=200), amount=amounts,
    payment=st.none() | st.builds(Payment, *[st.none() | st.text(max_size=100)] * 8),
    receipt=st.lists(st.text(max_size=120), max_size=150).map(tuple),
    warnings=st.lists(st.text(max_size=300), max_size=30).map(tuple),
    id=ids,
)


@settings(max_examples=100, deadline=None)
@given(results)
def test_any_result_fits_one_frame_and_decodes(result: Result) -> None:
    payload = encode(result)
    assert len(payload) <= MAX_PAYLOAD
    assert PRINTABLE.fullmatch(payload)
    back = decode_reply(payload)
    assert isinstance(back, Result)
    if len(back.receipt) < len(result.receipt) or back.warnings[-1:] != result.warnings[-1:]:
        assert back.warnings[-1].startswith("trimmed to fit one frame")
    assert back.receipt == result.receipt[: len(back.receipt)]
    assert (back.txn, back.status, back.amount, back.message) == (
        result.txn, result.status, result.amount, result.message)

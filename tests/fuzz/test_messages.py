"""Fuzzing the register message codec (agent/register/codec.py) from valid messages.

Beyond tests/register/test_properties.py (random bytes and random JSON objects): here
every request and reply type, with every optional field, is damaged byte by byte and
member by member, so most inputs get deep into the field checks before something breaks.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.register.codec import encode
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
    Resend,
    Result,
    Sale,
    State,
    Status,
    Void,
)
from tests.fuzz.budget import budget
from tests.fuzz.oracles import check_reply_payload, check_request_payload
from tests.fuzz.strategies import compact, mutated_bytes, mutated_document

REQUESTS: list[Message] = [
    Sale(id="s1", txn="ORDER0001", amount="15000", ref="INV-1 ~x", tid="12345678",
         mode="CARD", auto_accept=True, display=(("Item", "Tea"),),
         print=(("Line", "x" * 40),), extend=(("k", "v"),),
         gst=Gst("22AAAAA0000A1Z5", "CGST:9|SGST:9", "INV1", "20240101120000")),
    Sale(id="s2", txn="ORDER0002", amount="1"),
    Void(id="v1", txn="ORDER0001"),
    Paylink(id="p1", txn="LINK0001", amount="25000", phone="9876543210", expiry_s=900),
    Resend(id="r1", txn="LINK0001"),
    Refund(id="f1", txn="ORDER0001", refund_id="REF00001", amount="500"),
    Status(id="q1", txn="ORDER0001", kind="refund"),
    Last(id="l1"),
    Ping(id="g1"),
]
REPLIES: list[Message] = [
    Accepted(re="s1", txn="ORDER0001", kind="sale", id="a1"),
    State(re="q1", txn="ORDER0001", kind="sale", id="a2"),
    Result(re="s1", txn="ORDER0001", kind="sale", status="success", code="0000",
           message="Paid", amount="15000",
           payment=Payment(method="CARD", rrn="123456789012", auth_code="123456",
                           card="4111XXXXXXXX1111", scheme="VISA", card_type="CREDIT_CARD",
                           bank="HDFC Bank", paytm_txn_id="2024" + "0" * 31),
           receipt=("Test Store", "SALE  150.00"), warnings=("display trimmed",), id="a3"),
    Error(re="s1", code=ErrorCode.INVALID_FIELD, message="amount bad", field="amount",
          txn="ORDER0001", paytm_code="0002", id="a4"),
    Pong(re="g1", version="1.0", lane="till-1", tid="12345678", busy=False, cloud="ok",
         id="a5"),
]


def _objects(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        value = json.loads(encode(message))
        assert isinstance(value, dict)
        out.append(value)
    return out


request_bytes = st.sampled_from([encode(m) for m in REQUESTS])
request_docs = st.sampled_from(_objects(REQUESTS))
reply_bytes = st.sampled_from([encode(m) for m in REPLIES])
reply_docs = st.sampled_from(_objects(REPLIES))


@budget(200)
@given(request_bytes.flatmap(mutated_bytes))
def test_damaged_request_bytes(payload: bytes) -> None:
    check_request_payload(payload)


@budget(200)
@given(request_docs.flatmap(mutated_document).map(compact))
def test_damaged_request_members(payload: bytes) -> None:
    check_request_payload(payload)


@budget(150)
@given(st.one_of(reply_bytes.flatmap(mutated_bytes),
                 reply_docs.flatmap(mutated_document).map(compact)))
def test_damaged_replies(payload: bytes) -> None:
    check_reply_payload(payload)

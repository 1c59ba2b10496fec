"""Fuzzing the webhook parser (agent/paytm/webhook.py) with signed callbacks, damaged.

A correctly signed callback (form or JSON, as the emulator sends them) is damaged byte
by byte or member by member; whatever the parser then accepts must say what the signed
original said about the order (id, MID, status): the agent confirms exactly that order by
Transaction Status, so that is what a forger would want to change.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from agent.paytm.checksum import MerchantKey, generate, generate_params
from agent.paytm.webhook import Callback, parse_callback
from tests.fuzz.budget import budget
from tests.fuzz.oracles import check_callback, meaning
from tests.fuzz.strategies import mutated_bytes, mutated_document

KEY = MerchantKey(b"ABCDEFGHIJKLMNOP")
MID = "TESTMID00000000000001"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SALT = "ab1Z"  # fixed: the same bytes on every run

FIELDS = [
    {"ORDERID": "ORD1001", "MID": MID, "TXNID": "2024" + "3" * 31, "TXNAMOUNT": "1303.00",
     "CURRENCY": "INR", "PAYMENTMODE": "UPI", "TXNDATE": "2024-01-01 10:00:05.0",
     "STATUS": "TXN_SUCCESS", "RESPCODE": "01", "RESPMSG": "Txn Success",
     "GATEWAYNAME": "PPBLC", "BANKTXNID": "123456789012", "BANKNAME": "State Bank"},
    {"ORDERID": "ORD1002", "MID": MID, "TXNID": "", "TXNAMOUNT": "10.00", "CURRENCY": "INR",
     "PAYMENTMODE": "", "TXNDATE": "", "STATUS": "TXN_FAILURE", "RESPCODE": "810",
     "RESPMSG": "Link expired", "GATEWAYNAME": "", "BANKTXNID": "", "BANKNAME": ""},
]


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode({**fields, "CHECKSUMHASH": generate_params(fields, KEY, SALT)}).encode()


def json_body(fields: dict[str, str]) -> bytes:
    body = json.dumps({"orderId": fields["ORDERID"], "mid": fields["MID"],
                       "txnId": fields["TXNID"], "txnAmount": fields["TXNAMOUNT"],
                       "resultInfo": {"resultStatus": fields["STATUS"],
                                      "resultCode": fields["RESPCODE"],
                                      "resultMsg": fields["RESPMSG"]}})
    head = json.dumps({"version": "v1", "signature": generate(body, KEY, SALT)})
    return f'{{"head": {head}, "body": {body}}}'.encode()


SIGNED: list[tuple[bytes, str]] = [(form_body(f), FORM) for f in FIELDS] + [
    (json_body(f), JSON) for f in FIELDS]


def _original(body: bytes, content_type: str) -> Callback:
    callback = parse_callback(body, content_type, KEY, MID)
    assert isinstance(callback, Callback)
    return callback


def test_the_signed_seeds_are_accepted() -> None:
    for body, content_type in SIGNED:
        _original(body, content_type)


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, str, tuple[str, str, str]]:
    body, content_type = draw(st.sampled_from(SIGNED))
    original = _original(body, content_type)
    if content_type == JSON and draw(st.booleans()):
        document: Any = json.loads(body)
        spoiled = json.dumps(draw(mutated_document(document))).encode()
    else:
        spoiled = draw(mutated_bytes(body))
    sent_as = draw(st.sampled_from([content_type, "", "text/plain", JSON + "; charset=utf-8",
                                    FORM]))
    return spoiled, sent_as, meaning(original)


@budget(250)
@given(damaged(), st.sampled_from([MID, None, "OTHERMID"]))
def test_damaged_callbacks_never_say_something_else(
        case: tuple[bytes, str, tuple[str, str, str]], mid: str | None) -> None:
    body, content_type, original = case
    check_callback(body, content_type, KEY, mid, original)


@budget(150)
@given(st.binary(max_size=400), st.sampled_from([FORM, JSON, ""]))
def test_unsigned_bytes_are_never_a_callback(body: bytes, content_type: str) -> None:
    check_callback(body, content_type, KEY, MID, None)

"""Garbage in never crashes the emulator: Paytm-style 0002 answers, no 5xx, no traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.paytm.checksum import generate_params
from agent.sim.paytm import DEMO_MID, Emulator, EmulatorSettings
from agent.sim.paytm.clock import Instant
from agent.sim.paytm.edc import EdcService
from agent.sim.paytm.state import EdcState
from devtools.config import CLIENT_DEMO_KEY
from tests.sim.paytm.raw import STAMP, TID, RawPaytm

SYSTEM_ERROR = "0012"  # what the emulator answers if one of its own checks crashed

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=8,
)
FIELDS = ["paytmMid", "paytmTid", "transactionDateTime", "merchantTransactionId",
          "transactionAmount", "merchantReferenceNo", "merchantExtendedInfo", "displayInfo",
          "printInfo", "gstInformation", "subWalletInfo", "splitType", "splitInfo",
          "timeoutConfig", "retryCount", "extendInfo", "paymentMode", "autoAccept", "event"]
NOW = Instant(1000.0, 1_704_100_000.0)


@pytest.mark.parametrize(("data", "content_type"), [
    (b"", "application/json"),
    (b"   ", "application/json"),
    (b"not json", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b"42", "application/json"),
    (b'"text"', "application/json"),
    (b"{", "application/json"),
    (b'{"head": {}}', "application/json"),
    (b'{"body": {}}', "application/json"),
    (b'{"head": [], "body": {}}', "application/json"),
    (b'{"head": {}, "body": "x"}', "application/json"),
    (b'{"head": {"checksum": 1}, "body": {"paytmMid": ["x"]}}', "application/json"),
    (b'{"head": {}, "body": {"paytmMid": NaN}}', "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b"[" * 50_000, "application/json"),  # deep nesting: RecursionError inside json
    (b'{"head": {}, "body": {}}', "text/plain"),
    (b"paytmMid=X&paytmTid=Y", "application/x-www-form-urlencoded"),
])
@pytest.mark.parametrize("api", ["sale", "status", "void"])
async def test_garbage_is_answered_with_0002(paytm: RawPaytm, api: str, data: bytes,
                                             content_type: str) -> None:
    answer = await paytm.post_raw(api, data, content_type)
    assert answer.status == 200, answer.text
    assert answer.content_type == "application/json"
    assert (answer.letter, answer.code) == ("F", "0002")
    assert answer.msg == "Request Parameters are not valid" and answer.detail
    assert "Traceback" not in answer.text


async def test_valid_request_with_wrong_content_type_is_0002(paytm: RawPaytm) -> None:
    answer = await paytm.post_raw("sale", paytm.signed(paytm.sale_body("ORDER0001")),
                                  "text/plain")
    assert answer.code == "0002" and "Content-Type" in answer.detail


async def test_huge_body_is_413_with_a_paytm_style_answer(paytm: RawPaytm) -> None:
    answer = await paytm.post_raw("sale", b"{" + b" " * (70 * 1024) + b"}")
    assert answer.status == 413
    assert answer.code == "0002" and "larger than" in answer.detail
    assert "Traceback" not in answer.text


async def test_wrong_method_and_path_are_plain_http_errors(emulator: Emulator,
                                                           paytm: RawPaytm) -> None:
    async with paytm.session.get(emulator.base_url + "/ecr/payment/request") as response:
        assert response.status == 405
    async with paytm.session.post(emulator.base_url + "/ecr/nothing", data=b"{}") as response:
        assert response.status == 404


def _service() -> EdcService:
    s = EmulatorSettings(wall_clock=lambda: NOW.wall, clock=lambda: NOW.t)
    return EdcService(s, EdcState(s))


def _assert_sane(api: str, raw: bytes, content_type: str = "application/json") -> None:
    reply = _service().handle(api, raw, content_type, NOW)
    assert reply.status == 200
    assert reply.result_code not in (None, SYSTEM_ERROR)
    json.dumps(reply.body)  # always serialisable


@settings(max_examples=100, deadline=None)
@given(api=st.sampled_from(["sale", "status", "void"]), document=json_values)
def test_any_json_document_gets_a_paytm_answer(api: str, document: Any) -> None:
    _assert_sane(api, json.dumps(document).encode())


@settings(max_examples=100, deadline=None)
@given(api=st.sampled_from(["sale", "status", "void"]),
       head=st.dictionaries(st.sampled_from(["requestTimeStamp", "channelId", "version",
                                             "checksum"]), json_values),
       body=st.dictionaries(st.sampled_from(FIELDS), json_values))
def test_any_envelope_gets_a_paytm_answer(api: str, head: dict[str, Any],
                                          body: dict[str, Any]) -> None:
    _assert_sane(api, json.dumps({"head": head, "body": body}).encode())


@settings(max_examples=200, deadline=None)
@given(api=st.sampled_from(["sale", "status", "void"]),
       changes=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_signed_requests_with_any_field_values_get_a_paytm_answer(
        api: str, changes: dict[str, Any]) -> None:
    # Correctly signed, so the fuzzing reaches field validation and the state machine.
    body: dict[str, Any] = {"paytmMid": DEMO_MID, "paytmTid": TID,
                            "transactionDateTime": STAMP,
                            "merchantTransactionId": "ORDER0001", "transactionAmount": "100"}
    body.update(changes)
    strings = {k: v for k, v in body.items() if isinstance(v, str)}
    head = {"requestTimeStamp": STAMP, "channelId": "EDC",
            "checksum": generate_params(strings, CLIENT_DEMO_KEY)}
    _assert_sane(api, json.dumps({"head": head, "body": body}).encode())


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_any_bytes_get_a_paytm_answer(raw: bytes) -> None:
    _assert_sane("sale", raw)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
       api=st.sampled_from(["sale", "status", "void"]))
async def test_any_bytes_over_http_never_5xx(paytm: RawPaytm, raw: bytes, api: str) -> None:
    answer = await paytm.post_raw(api, raw)
    assert answer.status == 200
    assert answer.code != SYSTEM_ERROR
    assert "Traceback" not in answer.text


async def test_a_bug_inside_becomes_0012_not_a_traceback(paytm: RawPaytm,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("emulator bug")

    monkeypatch.setattr(EdcState, "start_sale", broken)
    answer = await paytm.sale("ORDER0001")
    assert (answer.status, answer.letter, answer.code) == (200, "F", "0012")
    assert "emulator bug" not in answer.text and "Traceback" not in answer.text
    assert "emulator failed on a sale request" in caplog.text

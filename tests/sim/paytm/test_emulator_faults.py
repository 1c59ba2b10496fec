"""Injected faults as a client sees them, and the /_emulator/ control API."""

from __future__ import annotations

import json

import aiohttp
import pytest

from agent.sim.paytm import Emulator, Fault, FaultError, FaultKind
from tests.sim.paytm.raw import RawPaytm

# What a client library sees when the server closes the socket without answering.
DISCONNECTED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


async def test_drop_before_read_registers_nothing(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="sale", kind="drop_before_read"))
    with pytest.raises(DISCONNECTED):
        await paytm.sale("ORDER0001")
    assert emulator.transactions() == []
    [record] = emulator.requests
    assert (record.fault, record.dropped, record.status, record.txn) == (
        "drop_before_read", True, None, None)
    # Nothing happened at "Paytm": the same id is still free.
    assert (await paytm.sale("ORDER0001")).code == "0009"


@pytest.mark.parametrize("kind", ["drop_after_read", "lose_response"])
async def test_drop_after_read_registers_the_sale(emulator: Emulator, paytm: RawPaytm,
                                                  kind: str) -> None:
    emulator.inject(Fault(api="sale", kind=kind))
    with pytest.raises(DISCONNECTED):
        await paytm.sale("ORDER0001")
    assert emulator.count("sale", "ORDER0001") == 1
    assert emulator.requests[0].result_code == "0009" and emulator.requests[0].dropped
    assert (await paytm.status("ORDER0001")).code == "0000"
    assert (await paytm.sale("ORDER0001")).code == "0233"


async def test_http_500_after_the_sale_landed(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="sale", kind=FaultKind.HTTP_500))
    answer = await paytm.sale("ORDER0001")
    assert answer.status == 500
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)
    assert "Traceback" not in answer.text
    assert emulator.requests[0].status == 500
    assert (await paytm.status("ORDER0001")).code == "0000"


async def test_html_error_page(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="status", kind="html"))
    await paytm.sale("ORDER0001")
    answer = await paytm.status("ORDER0001")
    assert answer.status == 200
    assert answer.content_type == "text/html"
    assert answer.text.startswith("<!DOCTYPE html>")


async def test_malformed_json(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="any", kind="malformed_json"))
    answer = await paytm.sale("ORDER0001")
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert answer.text.startswith('{"head": ')
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)
    assert emulator.transactions()[0]["txn"] == "ORDER0001"


async def test_delay_past_the_client_timeout(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="sale", kind="delay", delay_s=30))
    timeout = aiohttp.ClientTimeout(total=0.2)
    text = paytm.signed(paytm.sale_body("ORDER0001"))
    with pytest.raises(TimeoutError):
        async with paytm.session.post(emulator.base_url + "/ecr/payment/request", data=text,
                                      headers={"Content-Type": "application/json"},
                                      timeout=timeout) as response:
            await response.read()
    # The sale was registered before the answer was held back. Leaving the fixture ends
    # the held handler at once (shutdown wakes every injected delay).
    assert emulator.count("sale", "ORDER0001") == 1
    assert emulator.transactions()[0]["status"] == "success"


async def test_short_delay_then_normal_answer(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="sale", kind="delay", delay_s=0.01))
    answer = await paytm.sale("ORDER0001")
    assert answer.code == "0009"
    assert emulator.requests[0].fault == "delay"


async def test_count_and_api_matching(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="status", kind="http_500", count=2))
    assert (await paytm.sale("ORDER0001")).code == "0009"  # not a status call
    assert (await paytm.status("ORDER0001")).status == 500
    assert (await paytm.status("ORDER0001")).status == 500
    assert (await paytm.status("ORDER0001")).code == "0000"
    assert emulator.faults == []


async def test_faults_apply_in_injection_order(emulator: Emulator, paytm: RawPaytm) -> None:
    emulator.inject(Fault(api="any", kind="html"))
    emulator.inject(Fault(api="sale", kind="http_500"))
    assert (await paytm.sale("ORDER0001")).content_type == "text/html"
    assert (await paytm.sale("ORDER0002", tid="87654321")).status == 500


def test_bad_faults_are_refused() -> None:
    with pytest.raises(FaultError):
        Fault(kind="explode")
    with pytest.raises(FaultError):
        Fault(kind="delay", count=0)
    with pytest.raises(FaultError):
        Fault(kind="delay", delay_s=-1)
    with pytest.raises(FaultError):
        Fault(kind="delay", delay_s=float("nan"))
    emu = Emulator()
    with pytest.raises(FaultError):
        emu.inject(Fault(kind="delay", api="refund"))


# ---------------------------------------------------------------------------
# The control API over HTTP


async def _control(session: aiohttp.ClientSession, emulator: Emulator, method: str, path: str,
                   data: object = None) -> tuple[int, dict[str, object]]:
    async with session.request(method, emulator.base_url + "/_emulator/" + path,
                               json=data) as response:
        body = await response.json()
        assert isinstance(body, dict)
        return response.status, body


async def test_control_api_faults_and_record(emulator: Emulator, paytm: RawPaytm) -> None:
    s = paytm.session
    status, body = await _control(s, emulator, "POST", "faults",
                                  {"api": "sale", "kind": "drop_after_read", "count": 1})
    assert status == 200 and body["faults"] == [
        {"api": "sale", "kind": "drop_after_read", "count": 1, "delay_s": 0.0}]
    with pytest.raises(DISCONNECTED):
        await paytm.sale("ORDER0001")
    await paytm.status("ORDER0001")
    status, body = await _control(s, emulator, "GET", "requests?api=sale&txn=ORDER0001")
    requests = body["requests"]
    assert isinstance(requests, list) and len(requests) == 1
    assert requests[0]["dropped"] is True and requests[0]["result_code"] == "0009"
    status, body = await _control(s, emulator, "GET", "requests")
    assert isinstance(body["requests"], list) and len(body["requests"]) == 2

    await _control(s, emulator, "POST", "faults", {"kind": "html"})
    status, body = await _control(s, emulator, "GET", "faults")
    assert body["faults"] == [{"api": "any", "kind": "html", "count": 1, "delay_s": 0.0}]
    await _control(s, emulator, "DELETE", "faults")
    assert emulator.faults == []


@pytest.mark.parametrize("fault", [
    {"kind": "explode"}, {"kind": "delay", "count": 0}, {"kind": "delay", "api": "refund"},
    {"kind": "delay", "delay_s": "soon"}, {"api": "sale"}, {"kind": "html", "extra": 1}, [1],
])
async def test_control_api_refuses_bad_faults(emulator: Emulator, paytm: RawPaytm,
                                              fault: object) -> None:
    status, body = await _control(paytm.session, emulator, "POST", "faults", fault)
    assert status == 400 and body["ok"] is False and body["error"]


async def test_control_api_clock_finish_terminals_reset(emulator: Emulator,
                                                        paytm: RawPaytm) -> None:
    s = paytm.session
    await paytm.sale("ORDER0001", amount="1002")
    status, body = await _control(s, emulator, "POST", "advance", {"seconds": 59})
    assert status == 200 and body["offset_s"] == 59
    assert (await paytm.status("ORDER0001")).code == "0010"
    status, body = await _control(s, emulator, "POST", "finish",
                                  {"txn": "ORDER0001", "outcome": "rejected"})
    assert status == 200
    assert isinstance(body["transaction"], dict) and body["transaction"]["status"] == "failed"
    assert (await paytm.status("ORDER0001")).msg == "Transaction rejected on terminal"
    status, body = await _control(s, emulator, "POST", "finish",
                                  {"txn": "ORDER0001", "outcome": "success"})
    assert status == 409
    status, body = await _control(s, emulator, "POST", "finish",
                                  {"txn": "NOSUCHID1", "outcome": "success"})
    assert status == 404
    status, body = await _control(s, emulator, "GET", "transactions")
    transactions = body["transactions"]
    assert isinstance(transactions, list) and transactions[0]["outcome"] == "rejected"

    status, _ = await _control(s, emulator, "POST", "terminals/12345678", {"active": False})
    assert status == 200
    assert (await paytm.sale("ORDER0002")).code == "0007"
    status, _ = await _control(s, emulator, "POST", "terminals/55555555", {"active": True})
    assert status == 404
    status, _ = await _control(s, emulator, "POST", "terminals/12345678", {"active": "yes"})
    assert status == 400

    status, _ = await _control(s, emulator, "POST", "reset")
    assert status == 200
    assert emulator.requests == [] and emulator.transactions() == []
    assert (await paytm.sale("ORDER0001")).code == "0009"  # terminal active again, id free


@pytest.mark.parametrize("seconds", [-1, "10", None, True])
async def test_control_api_refuses_bad_advance(emulator: Emulator, paytm: RawPaytm,
                                               seconds: object) -> None:
    status, body = await _control(paytm.session, emulator, "POST", "advance",
                                  {"seconds": seconds})
    assert status == 400 and body["ok"] is False


async def test_control_api_refuses_non_json(emulator: Emulator, paytm: RawPaytm) -> None:
    async with paytm.session.post(emulator.base_url + "/_emulator/advance",
                                  data=b"\xff{") as response:
        assert response.status == 400
        assert (await response.json())["ok"] is False

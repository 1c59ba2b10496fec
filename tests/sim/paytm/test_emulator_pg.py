"""The emulator's PG endpoints, driven by hand-signed requests (independent of the agent's
client): signature checks, field checks naming the problem, signed answers, garbage that
never becomes a 5xx, and the control API for links, refunds and webhooks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import paytmchecksum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.paytm.checksum import MerchantKey, generate
from agent.paytm.jsontext import member_text
from agent.sim.paytm import DEMO_KEY, DEMO_MID, Emulator, EmulatorSettings, Fault
from agent.sim.paytm.clock import Instant
from agent.sim.paytm.pg import PgService, pg_paths
from agent.sim.paytm.pg_state import PgState
from agent.sim.paytm.state import EdcState
from devtools.config import CLIENT_DEMO_KEY

DEMO_KEY_TEXT = DEMO_KEY.secret_bytes.decode()
PATHS = pg_paths()
SYSTEM_ERROR = "501"
NOW = Instant(1000.0, 1_704_100_000.0)  # 2024-01-01 14:36:40 IST


def send_body(order_id: str = "RAW00001", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"mid": DEMO_MID, "merchantOrderId": order_id,
                               "amount": "1303.00", "posId": "S12_1",
                               "userPhoneNo": "9876543210", "expiry": "2099-01-01 10:00:00"}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


HEAD = {"clientId": "C11", "version": "v1", "requestTimestamp": "1704083400",
        "channelId": "WEB"}


def document(body: Mapping[str, object], head: Mapping[str, object] | None = None,
             key: MerchantKey = CLIENT_DEMO_KEY, sign_text: str | None = None) -> str:
    body_text = json.dumps(body)
    full_head: dict[str, object] = {**HEAD, "signature": generate(sign_text or body_text, key)}
    if head is not None:
        full_head.update(head)
        full_head = {k: v for k, v in full_head.items() if v is not None}
    return '{"head": ' + json.dumps(full_head) + ', "body": ' + body_text + "}"


class Answer:
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        self.json: dict[str, Any] = json.loads(text)
        self.body: dict[str, Any] = self.json["body"]
        self.info: dict[str, str] = self.body["resultInfo"]
        self.code = self.info["resultCode"]
        self.word = self.info["resultStatus"]
        self.msg = self.info["resultMsg"]

    def signed_correctly(self) -> bool:
        signature = self.json["head"].get("signature")
        body_text = member_text(self.text, "body")
        return signature is not None and bool(
            paytmchecksum.verifySignature(body_text, DEMO_KEY_TEXT, signature))


class RawPg:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def post_raw(self, api: str, data: bytes | str,
                       content_type: str = "application/json") -> Answer:
        raw = data.encode() if isinstance(data, str) else data
        async with self.session.post(self.base_url + PATHS.get(api, api), data=raw,
                                     headers={"Content-Type": content_type}) as response:
            return Answer(response.status, await response.text())

    async def post(self, api: str, body: Mapping[str, object],
                   head: Mapping[str, object] | None = None, **kw: Any) -> Answer:
        return await self.post_raw(api, document(body, head, **kw))


@pytest.fixture
async def raw(emulator: Emulator) -> AsyncIterator[RawPg]:
    async with aiohttp.ClientSession() as session:
        yield RawPg(session, emulator.base_url)


# -- requests ---------------------------------------------------------------------------------


async def test_send_is_accepted_and_every_answer_is_signed(emulator: Emulator,
                                                           raw: RawPg) -> None:
    answer = await raw.post("send_link", send_body(displayName="Demo Shop"))
    assert (answer.status, answer.word, answer.code) == (200, "S", "0000")
    assert answer.signed_correctly()
    assert answer.body["merchantOrderId"] == "RAW00001"
    assert answer.json["head"]["responseTimestamp"].isdigit()
    refused = await raw.post("send_link", send_body())  # the same order id again
    assert (refused.word, refused.code) == ("F", "325") and refused.signed_correctly()
    [link] = emulator.links()
    assert (link["order_id"], link["amount_paise"], link["display_name"]) == (
        "RAW00001", 130300, "Demo Shop")
    [record, _] = emulator.requests
    assert (record.api, record.txn, record.mid, record.result_code) == (
        "send_link", "RAW00001", DEMO_MID, "0000")


@pytest.mark.parametrize(("head", "sign_text", "key"), [
    ({"signature": None}, None, CLIENT_DEMO_KEY),
    ({"signature": 42}, None, CLIENT_DEMO_KEY),
    ({"signature": "x" * 108}, None, CLIENT_DEMO_KEY),
    (None, json.dumps(send_body(amount="1.00")), CLIENT_DEMO_KEY),  # tampered after signing
    (None, None, MerchantKey(b"WRONGKEY12345678")),
])
async def test_bad_signatures_are_330_unsigned(emulator: Emulator, raw: RawPg,
                                               head: dict[str, object] | None,
                                               sign_text: str | None,
                                               key: MerchantKey) -> None:
    answer = await raw.post("send_link", send_body(), head, sign_text=sign_text, key=key)
    assert (answer.word, answer.code) == ("F", "330")
    assert "signature" not in answer.json["head"]
    assert emulator.links() == []


async def test_signature_covers_the_exact_text(raw: RawPg) -> None:
    body = send_body()
    compact = json.dumps(body, separators=(",", ":"))
    text = '{"head":' + json.dumps({**HEAD, "signature": generate(compact, CLIENT_DEMO_KEY)}) \
        + ',"body":' + compact + "}"
    assert (await raw.post_raw("send_link", text)).code == "0000"
    # The same document signed over a re-serialised (spaced) copy fails.
    text = '{"head":' + json.dumps({**HEAD, "signature": generate(json.dumps(body),
                                                                  CLIENT_DEMO_KEY)}) \
        + ',"body":' + compact.replace("RAW00001", "RAW00002") + "}"
    assert (await raw.post_raw("send_link", text)).code == "330"


@pytest.mark.parametrize(("body", "head", "code", "named"), [
    (send_body(merchantOrderId="bad id"), None, "1001", "merchantOrderId"),
    (send_body(merchantOrderId=None), None, "1001", "merchantOrderId"),
    (send_body(amount="1,303.00"), None, "2007", "amount"),
    (send_body(amount="1303.001"), None, "2007", "amount"),
    (send_body(amount="0.00"), None, "2007", "amount"),
    (send_body(amount=1303), None, "2007", "amount"),
    (send_body(amount="100001.00"), None, "2007", "limit"),
    (send_body(userPhoneNo="12345"), None, "2008", "userPhoneNo"),
    (send_body(userPhoneNo="0123456789"), None, "2008", "userPhoneNo"),
    (send_body(posId="S12-1"), None, "1001", "posId"),
    (send_body(posId=None), None, "1001", "posId"),
    (send_body(expiry="2099-02-30 10:00:00"), None, "1001", "expiry"),
    (send_body(expiry="2000-01-01 10:00:00"), None, "1001", "future"),
    (send_body(expiry=None), None, "1001", "expiry"),
    (send_body(displayName="x" * 51), None, "1001", "displayName"),
    (send_body(), {"clientId": "C1234"}, "1001", "head.clientId"),
    (send_body(), {"channelId": "POS"}, "1001", "head.channelId"),
    (send_body(), {"version": "v1.0.0"}, "1001", "head.version"),
    (send_body(mid="UNKNOWNMID1"), None, "335", "Mid"),
    (send_body(mid="bad mid!"), None, "1001", "mid"),
])
async def test_send_refusals_name_the_problem(emulator: Emulator, raw: RawPg,
                                              body: dict[str, object],
                                              head: dict[str, object] | None, code: str,
                                              named: str) -> None:
    answer = await raw.post("send_link", body, head)
    assert (answer.status, answer.word, answer.code) == (200, "F", code), answer.text
    assert named in answer.msg
    assert emulator.links() == []


@pytest.mark.parametrize("head", [
    {"clientId": None, "version": None, "channelId": None, "requestTimestamp": None},
    {"requestTimestamp": "2026-12-0206:01:38.123456"},  # paytm-pg: str(datetime.now())
    {"requestTimestamp": 1704083400},
    {"clientId": None},
])
async def test_send_accepts_a_head_of_optional_fields(raw: RawPg,
                                                      head: dict[str, object]) -> None:
    # Paytm's Python samples send a head with the signature alone; clientId only picks the
    # key of a merchant with several; requestTimestamp is optional and its form free.
    answer = await raw.post("send_link", send_body(), head)
    assert (answer.word, answer.code) == ("S", "0000"), answer.text
    assert answer.signed_correctly()


async def test_answers_are_compact_and_echo_the_version(raw: RawPg) -> None:
    answer = await raw.post("pg_status", {"mid": DEMO_MID, "orderId": "NOSUCH01"},
                            {"version": "v2"})
    assert answer.text.startswith('{"head":{') and ',"body":{' in answer.text
    assert ": " not in answer.text and ", " not in answer.text
    assert answer.json["head"]["version"] == "v2"
    assert answer.signed_correctly()


async def test_status_refund_and_refund_status_field_checks(raw: RawPg) -> None:
    status = await raw.post("pg_status", {"mid": DEMO_MID, "orderId": "bad id"})
    assert (status.word, status.code) == ("NO_RECORD_FOUND", "334")
    base = {"mid": DEMO_MID, "txnType": "REFUND", "orderId": "RAW00001", "refId": "REF1",
            "txnId": "123", "refundAmount": "1.00"}
    for change, code, named in (({"txnType": "SALE"}, "600", "txnType"),
                                ({"refId": ""}, "600", "refId"),
                                ({"txnId": "1" * 65}, "600", "txnId"),
                                ({"refundAmount": "1,00"}, "619", "amount"),
                                ({"comments": "c" * 501}, "600", "comments"),
                                ({}, "631", "RAW00001")):
        answer = await raw.post("refund_apply", {**base, **change})
        assert (answer.word, answer.code) == ("TXN_FAILURE", code), (change, answer.text)
        assert named in answer.msg and answer.signed_correctly()
    answer = await raw.post("refund_status", {"mid": DEMO_MID, "orderId": "RAW00001"})
    assert (answer.code, "refId" in answer.msg) == ("600", True)


async def test_refund_status_fields(emulator: Emulator, raw: RawPg) -> None:
    assert (await raw.post("send_link", send_body())).code == "0000"
    paid = await raw.post("pg_status", {"mid": DEMO_MID, "orderId": "RAW00001"})
    assert paid.code == "01" and paid.signed_correctly()
    assert set(paid.body) == {"txnId", "bankTxnId", "orderId", "txnAmount", "txnType",
                              "gatewayName", "bankName", "mid", "paymentMode", "refundAmt",
                              "txnDate", "resultInfo"}
    refund = {"mid": DEMO_MID, "txnType": "REFUND", "orderId": "RAW00001", "refId": "REF1",
              "txnId": paid.body["txnId"], "refundAmount": "3.00"}
    applied = await raw.post("refund_apply", refund)
    assert (applied.word, applied.code) == ("PENDING", "601")
    assert set(applied.body) == {"txnTimestamp", "orderId", "mid", "refId", "refundId",
                                 "txnId", "refundAmount", "resultInfo"}
    emulator.advance(emulator.settings.refund_delay_s)
    status = await raw.post("refund_status", {"mid": DEMO_MID, "orderId": "RAW00001",
                                              "refId": "REF1"})
    assert (status.word, status.code) == ("TXN_SUCCESS", "10") and status.signed_correctly()
    assert {"txnId", "orderId", "txnAmount", "txnTimestamp", "totalRefundAmount",
            "acceptRefundTimestamp", "refId", "refundId", "refundAmount",
            "merchantRefundRequestTimestamp", "userCreditInitiateTimestamp"} <= set(status.body)
    assert (status.body["totalRefundAmount"], status.body["txnAmount"]) == ("3.00", "1303.00")
    [row] = emulator.refunds()
    assert (row["ref_id"], row["status"], row["amount"]) == ("REF1", "success", "3.00")


# -- garbage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "content_type"), [
    (b"", "application/json"),
    (b"not json", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b'{"head": {}}', "application/json"),
    (b'{"head": [], "body": {}}', "application/json"),
    (b'{"head": {}, "body": {"mid": ["x"]}}', "application/json"),
    (b'{"head": {"signature": 1}, "body": {"mid": "TESTMID00000000000001"}}',
     "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b"[" * 50_000, "application/json"),
    (b'{"head": {}, "body": {}}', "text/plain"),
    (b"mid=X&orderId=Y", "application/x-www-form-urlencoded"),
])
@pytest.mark.parametrize("api", list(PATHS))
async def test_garbage_gets_a_paytm_style_failure(raw: RawPg, api: str, data: bytes,
                                                  content_type: str) -> None:
    answer = await raw.post_raw(api, data, content_type)
    assert answer.status == 200, answer.text
    assert answer.code in ("1001", "600", "330"), answer.text
    assert answer.word in ("F", "TXN_FAILURE")
    assert "Traceback" not in answer.text


async def test_huge_body_is_413_with_a_paytm_style_answer(raw: RawPg) -> None:
    answer = await raw.post_raw("refund_apply", b"{" + b" " * (70 * 1024) + b"}")
    assert (answer.status, answer.code) == (413, "600")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=8,
)
FIELDS = ["mid", "merchantOrderId", "orderId", "amount", "posId", "userPhoneNo", "expiry",
          "displayName", "txnType", "refId", "txnId", "refundAmount", "comments"]
VALUES = st.one_of(JSON_VALUES, st.sampled_from([
    DEMO_MID, "ORD1", "1303.00", "0.01", "S12_1", "9876543210", "2099-01-01 10:00:00",
    "REFUND", "REF1", "", "null"]))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PATHS)), st.dictionaries(st.sampled_from(FIELDS), VALUES,
                                                     max_size=8),
       st.dictionaries(st.sampled_from(["clientId", "version", "channelId",
                                        "requestTimestamp"]), VALUES, max_size=4),
       st.booleans())
def test_signed_random_requests_never_crash_the_service(api: str, body: dict[str, object],
                                                        head: dict[str, object],
                                                        sign: bool) -> None:
    settings_ = EmulatorSettings()
    service = PgService(settings_, PgState(settings_, EdcState(settings_)))
    body_text = json.dumps(body)
    full_head = {**head, "signature": generate(body_text, CLIENT_DEMO_KEY) if sign else "x"}
    text = '{"head": ' + json.dumps(full_head) + ', "body": ' + body_text + "}"
    reply = service.handle(api, text.encode(), "application/json", NOW)
    assert reply.status == 200 and reply.text is not None
    assert reply.result_code != SYSTEM_ERROR, reply.text
    json.loads(reply.text)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PATHS)), st.binary(max_size=200))
def test_random_bytes_never_crash_the_service(api: str, data: bytes) -> None:
    settings_ = EmulatorSettings()
    service = PgService(settings_, PgState(settings_, EdcState(settings_)))
    reply = service.handle(api, data, "application/json", NOW)
    assert reply.status == 200 and reply.result_code != SYSTEM_ERROR


async def test_a_bug_in_the_emulator_is_501_not_a_traceback(
        raw: RawPg, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")
    monkeypatch.setattr(PgState, "send", broken)
    answer = await raw.post("send_link", send_body())
    assert (answer.status, answer.code) == (200, SYSTEM_ERROR)
    assert "emulator failed on a send_link request" in caplog.text


# -- faults and the control API ---------------------------------------------------------------


async def test_faults_apply_to_pg_apis(emulator: Emulator, raw: RawPg) -> None:
    emulator.inject(Fault(api="send_link", kind="http_500"))
    async with raw.session.post(raw.base_url + PATHS["send_link"],
                                data=document(send_body()),
                                headers={"Content-Type": "application/json"}) as response:
        assert response.status == 500
    assert len(emulator.links()) == 1  # processed before the answer was spoiled
    assert emulator.count("/order/sendpaymentrequest", "RAW00001") == 1


async def _control(session: aiohttp.ClientSession, emulator: Emulator, method: str,
                   path: str, data: object = None) -> tuple[int, dict[str, Any]]:
    async with session.request(method, emulator.base_url + "/_emulator/" + path,
                               json=data) as response:
        body = await response.json()
        assert isinstance(body, dict)
        return response.status, body


async def test_control_api_over_http(emulator: Emulator, raw: RawPg) -> None:
    s = raw.session
    assert (await raw.post("send_link", send_body("CTL00001", amount="1303.11"))).code == "0000"
    status, body = await _control(s, emulator, "POST", "pay", {"order_id": "CTL00001"})
    assert status == 200 and body["link"]["status"] == "paid"
    assert (await _control(s, emulator, "POST", "pay", {"order_id": "CTL00001"}))[0] == 409
    assert (await _control(s, emulator, "POST", "pay", {"order_id": "NOPE"}))[0] == 404
    assert (await _control(s, emulator, "POST", "pay", {"order_id": 5}))[0] == 400
    assert (await _control(s, emulator, "POST", "pay",
                           {"order_id": "CTL00001", "outcome": "maybe"}))[0] == 409
    _, body = await _control(s, emulator, "GET", "links")
    [link] = body["links"]
    txn_id = link["payment"]["txn_id"]
    assert (await _control(s, emulator, "POST", "balance", {"low": True}))[0] == 200
    refund = {"mid": DEMO_MID, "txnType": "REFUND", "orderId": "CTL00001", "refId": "CTLREF1",
              "txnId": txn_id, "refundAmount": "1.00"}
    assert (await raw.post("refund_apply", refund)).code == "620"
    assert (await _control(s, emulator, "POST", "balance", {"low": "no"}))[0] == 400
    await _control(s, emulator, "POST", "balance", {"low": False})
    assert (await raw.post("refund_apply", {**refund, "refId": "CTLREF2",
                                            "refundAmount": "1.21"})).code == "601"
    status, body = await _control(s, emulator, "POST", "refunds/finish",
                                  {"ref_id": "CTLREF2", "outcome": "success"})
    assert status == 200 and body["refund"]["status"] == "success"
    assert (await _control(s, emulator, "POST", "refunds/finish",
                           {"ref_id": "CTLREF2", "outcome": "success"}))[0] == 409
    _, body = await _control(s, emulator, "GET", "refunds")
    assert [(r["ref_id"], r["code"]) for r in body["refunds"]] == [("CTLREF1", "620"),
                                                                   ("CTLREF2", "10")]
    _, body = await _control(s, emulator, "GET", "requests?api=refund_apply")
    assert len(body["requests"]) == 2
    # Webhooks: configure, deliver, redeliver, all over HTTP.
    status, body = await _control(s, emulator, "POST", "webhooks",
                                  {"url": "http://127.0.0.1:1/hook", "hold": True})
    assert status == 200 and body["options"]["hold"] is True
    assert (await _control(s, emulator, "POST", "webhooks", {"bogus": 1}))[0] == 400
    assert (await _control(s, emulator, "POST", "webhooks", {"duplicates": 99}))[0] == 400
    assert (await _control(s, emulator, "POST", "webhooks/redeliver",
                           {"order_id": "CTL00001"}))[0] == 200
    status, body = await _control(s, emulator, "POST", "webhooks/deliver")
    assert status == 200 and [d["order_id"] for d in body["deliveries"]] == ["CTL00001"]
    assert body["deliveries"][0]["error"]  # nobody listens on port 1
    _, body = await _control(s, emulator, "GET", "webhooks")
    assert len(body["deliveries"]) == 1
    assert (await _control(s, emulator, "POST", "reset"))[0] == 200
    assert emulator.links() == [] and emulator.refunds() == []
    assert emulator.webhook_deliveries == []


async def test_resend_path_setting_and_pay_errors() -> None:
    emulator = Emulator(EmulatorSettings(resend_path="/x/resend"))
    async with emulator.serve(), aiohttp.ClientSession() as session:
        raw = RawPg(session, emulator.base_url)
        assert (await raw.post("send_link", send_body("RSP00001", amount="13.11"))).code \
            == "0000"
        answer = await raw.post("/x/resend", {"mid": DEMO_MID, "merchantOrderId": "RSP00001"})
        assert answer.code == "0000" and answer.signed_correctly()
        emulator.pay("RSP00001", "pending")
        with pytest.raises(Exception, match="already pending"):
            emulator.pay("RSP00001", "pending")
        emulator.pay("RSP00001", "expired")
        assert emulator.link("RSP00001")["status"] == "expired"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="refund_delay_s"):
        EmulatorSettings(refund_delay_s=-1)
    with pytest.raises(ValueError, match="webhook_format"):
        EmulatorSettings(webhook_format="xml")
    with pytest.raises(ValueError, match="max_link_paise"):
        EmulatorSettings(max_link_paise=0)
    with pytest.raises(ValueError, match="resend_path"):
        EmulatorSettings(resend_path="resend")

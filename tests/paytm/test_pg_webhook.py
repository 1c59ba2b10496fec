"""S2S callbacks: the pure parser/verifier (agent.paytm.webhook) checked against Paytm's own
`paytmchecksum`, and the emulator's delivery of them to a receiver on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import paytmchecksum
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.paytm.checksum import MerchantKey, generate_params
from agent.paytm.clock import now_ist
from agent.paytm.outcome import Answered
from agent.paytm.pg import PgClient
from agent.paytm.pg_models import SendLinkRequest
from agent.paytm.settings import PaytmConfig
from agent.paytm.webhook import (
    Callback,
    InvalidCallback,
    parse_callback,
    parse_form,
    parse_form_callback,
    parse_json_callback,
    verify_form_callback,
)
from agent.sim.paytm import DEMO_MID, Emulator, EmulatorSettings
from devtools.config import CLIENT_DEMO_KEY

KEY_TEXT = "ABCDEFGHIJKLMNOP"
KEY = MerchantKey(KEY_TEXT.encode())
OTHER_KEY = MerchantKey(b"PONMLKJIHGFEDCBA")
MID = "TESTMID00000000000001"
FORM = "application/x-www-form-urlencoded"
FIELDS = {
    "ORDERID": "ORD1001", "MID": MID, "TXNID": "20240101111212800110168328631290118",
    "TXNAMOUNT": "1303.00", "CURRENCY": "INR", "PAYMENTMODE": "UPI",
    "TXNDATE": "2024-01-01 10:05:00.0", "STATUS": "TXN_SUCCESS", "RESPCODE": "01",
    "RESPMSG": "Txn Success", "GATEWAYNAME": "PPBLC", "BANKTXNID": "412345678901",
    "BANKNAME": "State Bank of India",
}


def form(fields: dict[str, str], *, key_text: str = KEY_TEXT,
         checksum: str | None = None) -> bytes:
    """Signed by Paytm's own library, the way Paytm's server would."""
    signature = checksum if checksum is not None else paytmchecksum.generateSignature(
        dict(fields), key_text)
    return urlencode({**fields, "CHECKSUMHASH": signature}).encode()


JSON_BODY = {"orderId": "ORD1001", "mid": MID, "txnId": "20240101111212800110168328631290118",
             "txnAmount": "1303.00", "paymentMode": "UPI", "txnDate": "2024-01-01 10:05:00.0",
             "bankTxnId": "412345678901", "bankName": "State Bank of India",
             "gatewayName": "PPBLC",
             "resultInfo": {"resultStatus": "TXN_SUCCESS", "resultCode": "01",
                            "resultMsg": "Txn Success"}}


def json_callback(body: object = JSON_BODY, *, key_text: str = KEY_TEXT,
                  separators: tuple[str, str] = (",", ":"),
                  sign_text: str | None = None) -> bytes:
    body_text = json.dumps(body, separators=separators)
    signature: str = paytmchecksum.generateSignature(sign_text or body_text, key_text)
    return ('{"head":{"version":"v1","signature":"' + signature + '"},"body":'
            + body_text + "}").encode()


# -- the pure parser --------------------------------------------------------------------------


def test_valid_form_callback() -> None:
    callback = parse_callback(form(FIELDS), FORM, KEY, MID)
    assert callback == Callback(
        order_id="ORD1001", mid=MID, txn_id=FIELDS["TXNID"], amount="1303.00",
        amount_paise=130300, status="TXN_SUCCESS", resp_code="01", resp_msg="Txn Success",
        payment_mode="UPI", bank_txn_id="412345678901", txn_date="2024-01-01 10:05:00.0",
        bank_name="State Bank of India", gateway="PPBLC", currency="INR", shape="form")


def test_failure_callback_and_unknown_fields_are_signed_too() -> None:
    fields = {**FIELDS, "STATUS": "TXN_FAILURE", "RESPCODE": "227", "RESPMSG": "Declined",
              "EXTRA": "something new", "BANKNAME": "null", "BANKTXNID": ""}
    callback = parse_callback(form(fields), FORM + "; charset=utf-8", KEY)
    assert isinstance(callback, Callback)
    assert (callback.status, callback.resp_code, callback.bank_txn_id) == (
        "TXN_FAILURE", "227", None)


def test_unencoded_plus_in_the_checksum_is_repaired() -> None:
    checksum = next(c for c in (generate_params(FIELDS, KEY) for _ in range(200)) if "+" in c)
    body = urlencode(FIELDS).encode() + b"&CHECKSUMHASH=" + checksum.encode()  # raw "+"
    assert isinstance(parse_callback(body, FORM, KEY), Callback)


def test_our_params_checksum_is_accepted_by_paytms_library() -> None:
    checksum = generate_params(FIELDS, KEY)
    assert paytmchecksum.verifySignature(dict(FIELDS), KEY_TEXT, checksum)
    assert isinstance(parse_callback(form(FIELDS, checksum=checksum), FORM, KEY), Callback)


@pytest.mark.parametrize(("body", "reason"), [
    (form(FIELDS, key_text="PONMLKJIHGFEDCBA"), "does not verify"),  # forged: another key
    (form(FIELDS).replace(b"TXNAMOUNT=1303.00", b"TXNAMOUNT=1.00"), "does not verify"),
    (form(FIELDS).replace(b"TXN_SUCCESS", b"TXN_FAILURE"), "does not verify"),
    (form(FIELDS) + b"&EXTRA=added", "does not verify"),  # a field added after signing
    (urlencode(FIELDS).encode(), "no CHECKSUMHASH"),
    (form(FIELDS, checksum=""), "no CHECKSUMHASH"),
    (form(FIELDS, checksum="A" * 108), "does not verify"),
    (form(FIELDS, checksum="%%%"), "does not verify"),
    (form(FIELDS) + b"&ORDERID=ORD9999", "more than once"),
    (form({**FIELDS, "STATUS": "PENDING"}), "not TXN_SUCCESS or TXN_FAILURE"),
    (form({k: v for k, v in FIELDS.items() if k != "ORDERID"}), "no order id"),
    (form({**FIELDS, "MID": "OTHERMID"}), "not ours"),
    (form({k: v for k, v in FIELDS.items() if k != "MID"}), "no MID"),
    (b"\xff\xfe", "not UTF-8"),
    (b"", "no CHECKSUMHASH"),
    (b"x" * 70_000, "larger than"),
])
def test_invalid_form_callbacks(body: bytes, reason: str) -> None:
    result = parse_callback(body, FORM, KEY, MID)
    assert isinstance(result, InvalidCallback), result
    assert reason in result.reason


def test_parse_form() -> None:
    assert parse_form(b"A=1&B=x+y&C=%E2%82%B9&D=&A=2") == {"A": "2", "B": "x y", "C": "₹",
                                                           "D": ""}
    assert parse_form(b"\xff") == {}
    assert parse_form(b"&".join([b"k%d=v" % i for i in range(500)])) == {}


def test_verify_form_callback_from_fields() -> None:
    fields = dict(FIELDS)
    fields["CHECKSUMHASH"] = generate_params(FIELDS, KEY)
    assert isinstance(verify_form_callback(fields, KEY, MID), Callback)
    assert isinstance(verify_form_callback(fields, OTHER_KEY, MID), InvalidCallback)


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_valid_json_callback(separators: tuple[str, str]) -> None:
    callback = parse_callback(json_callback(separators=separators), "application/json", KEY,
                              MID)
    assert isinstance(callback, Callback), callback
    assert (callback.order_id, callback.status, callback.resp_code, callback.amount_paise,
            callback.shape) == ("ORD1001", "TXN_SUCCESS", "01", 130300, "json")
    # Sniffed when the content type says nothing useful.
    assert isinstance(parse_callback(json_callback(), "", KEY), Callback)
    assert isinstance(parse_json_callback(json_callback(), KEY), Callback)


@pytest.mark.parametrize(("body", "reason"), [
    (json_callback(key_text="PONMLKJIHGFEDCBA"), "does not verify"),
    (json_callback(sign_text=json.dumps(JSON_BODY)), "does not verify"),  # other spacing
    (json_callback().replace(b"1303.00", b"1.00"), "does not verify"),
    (json_callback().replace(b'"signature"', b'"sig"'), "no head.signature"),
    (b'{"head": {}, "body": {}}', "no head.signature"),
    (b'{"body": {}}', "head and body"),
    (b"[]", "not an object"),
    (b"{", "not readable"),
    (json_callback({**JSON_BODY, "resultInfo": {"resultStatus": "PENDING"}}), "not TXN_"),
])
def test_invalid_json_callbacks(body: bytes, reason: str) -> None:
    result = parse_callback(body, "application/json", KEY, MID)
    assert isinstance(result, InvalidCallback), result
    assert reason in result.reason


def test_form_with_a_checksum_over_another_order_does_not_pass() -> None:
    # A replay of a genuine callback for order A, relabelled as order B.
    genuine = form(FIELDS)
    relabelled = genuine.replace(b"ORDERID=ORD1001", b"ORDERID=ORD2002")
    assert isinstance(parse_form_callback(relabelled, KEY), InvalidCallback)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["", FORM, "application/json", "text/plain",
                                                 "application/json; charset=utf-8"]))
def test_parser_never_raises_on_bytes(body: bytes, content_type: str) -> None:
    result = parse_callback(body, content_type, KEY, MID)
    assert isinstance(result, Callback | InvalidCallback)
    assert isinstance(result, InvalidCallback)  # nothing random carries a valid signature
    parse_form(body)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([*FIELDS, "X", "CHECKSUMHASH"]),
                       st.text(max_size=20), max_size=16), st.booleans())
def test_signed_random_fields_never_raise(fields: dict[str, str], sign: bool) -> None:
    if sign:
        fields = {**fields, "CHECKSUMHASH": generate_params(fields, KEY)}
    result = parse_callback(urlencode(fields).encode(), FORM, KEY)
    assert isinstance(result, Callback | InvalidCallback)
    if isinstance(result, Callback):
        assert sign and result.status in ("TXN_SUCCESS", "TXN_FAILURE")


# -- the emulator delivers them ---------------------------------------------------------------


@dataclass
class Received:
    content_type: str
    body: bytes


class Receiver:
    """The agent's side of the webhook, on loopback: records, verifies, answers 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.hang = False
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(request.headers.get("Content-Type", ""),
                                      await request.read()))
        self.arrived.set()
        if self.hang:
            await self.release.wait()
        return web.Response(text="OK")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/paytm/webhook", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/paytm/webhook"
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def callbacks(self) -> list[Callback | InvalidCallback]:
        return [parse_callback(r.body, r.content_type, CLIENT_DEMO_KEY, DEMO_MID)
                for r in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def _send(client: PgClient, order_id: str, amount: str = "130300",
                lifetime_s: float = 900) -> None:
    outcome = await client.send_link(SendLinkRequest(
        order_id=order_id, amount_paise=amount, pos_id="S12_1", phone="9876543210",
        expiry=now_ist() + dt.timedelta(seconds=lifetime_s)))
    assert isinstance(outcome, Answered) and outcome.response.queued, outcome


async def _client(session: aiohttp.ClientSession, emulator: Emulator) -> PgClient:
    return PgClient(session, PaytmConfig(mid=DEMO_MID, pg_base_url=emulator.base_url),
                    CLIENT_DEMO_KEY)


async def test_paid_link_is_called_back_once(receiver: Receiver) -> None:
    emulator = Emulator(EmulatorSettings(webhook_url=receiver.url, customer_delay_s=10))
    async with emulator.serve(), aiohttp.ClientSession() as session:
        client = await _client(session, emulator)
        await _send(client, "HOOK0001")
        assert await emulator.deliver_webhooks() == []  # not paid yet
        emulator.advance(10)
        status = await client.status("HOOK0001")  # settles: the delivery starts
        assert isinstance(status, Answered)
        await emulator.deliver_webhooks()  # waits for that delivery; sends nothing twice
        assert [d.http_status for d in emulator.webhook_deliveries] == [200]
        [callback] = receiver.callbacks()
        assert isinstance(callback, Callback), callback
        assert (callback.order_id, callback.status, callback.resp_code, callback.amount) == (
            "HOOK0001", "TXN_SUCCESS", "01", "1303.00")
        assert callback.txn_id == status.response.txn_id
        assert callback.bank_txn_id == status.response.bank_txn_id
        assert receiver.received[0].content_type == FORM


async def test_failed_and_expired_links_are_called_back(receiver: Receiver) -> None:
    emulator = Emulator(EmulatorSettings(webhook_url=receiver.url))
    async with emulator.serve(), aiohttp.ClientSession() as session:
        client = await _client(session, emulator)
        await _send(client, "HOOKFAIL", "130313")
        await _send(client, "HOOKEXPD", "130311", lifetime_s=60)
        emulator.advance(60)
        await emulator.deliver_webhooks()
        got = {c.order_id: (c.status, c.resp_code) for c in receiver.callbacks()
               if isinstance(c, Callback)}
        assert got == {"HOOKFAIL": ("TXN_FAILURE", "227"), "HOOKEXPD": ("TXN_FAILURE", "810")}


async def test_duplicates_out_of_order_and_held(receiver: Receiver) -> None:
    emulator = Emulator(EmulatorSettings())
    async with emulator.serve(), aiohttp.ClientSession() as session:
        emulator.configure_webhooks(url=receiver.url, duplicates=1, reverse=True, hold=True)
        client = await _client(session, emulator)
        for order in ("HOOKA001", "HOOKB001"):
            await _send(client, order, "130311")
        emulator.pay("HOOKA001")
        emulator.pay("HOOKB001", "failed")
        await client.status("HOOKA001")
        assert receiver.received == []  # held
        sent = await emulator.deliver_webhooks()
        assert [(d.order_id, d.copy) for d in sent] == [
            ("HOOKB001", 0), ("HOOKA001", 0), ("HOOKB001", 1), ("HOOKA001", 1)]
        callbacks = receiver.callbacks()
        assert all(isinstance(c, Callback) for c in callbacks)
        assert [c.order_id for c in callbacks if isinstance(c, Callback)] == [
            "HOOKB001", "HOOKA001", "HOOKB001", "HOOKA001"]


async def test_redelivery_and_tampering(receiver: Receiver) -> None:
    emulator = Emulator(EmulatorSettings(webhook_url=receiver.url))
    async with emulator.serve(), aiohttp.ClientSession() as session:
        client = await _client(session, emulator)
        await _send(client, "HOOKFAIL", "130313")
        await emulator.deliver_webhooks()
        emulator.redeliver_webhook("HOOKFAIL")
        emulator.redeliver_webhook("HOOKFAIL", tamper=True)
        await emulator.deliver_webhooks()
        first, again, forged = receiver.callbacks()
        assert isinstance(first, Callback) and first == again
        assert isinstance(forged, InvalidCallback)  # a failure turned into a success
        assert b"TXN_SUCCESS" in receiver.received[2].body
        assert [d.tampered for d in emulator.webhook_deliveries] == [False, False, True]


async def test_json_callbacks(receiver: Receiver) -> None:
    emulator = Emulator(EmulatorSettings(webhook_url=receiver.url, webhook_format="json"))
    async with emulator.serve(), aiohttp.ClientSession() as session:
        client = await _client(session, emulator)
        await _send(client, "HOOKJSON")
        await emulator.deliver_webhooks()
        emulator.redeliver_webhook("HOOKJSON", tamper=True)
        await emulator.deliver_webhooks()
        good, forged = receiver.callbacks()
        assert isinstance(good, Callback) and good.shape == "json"
        assert (good.order_id, good.status, good.amount) == ("HOOKJSON", "TXN_SUCCESS",
                                                             "1303.00")
        assert isinstance(forged, InvalidCallback)
        assert receiver.received[0].content_type == "application/json"


async def test_unreachable_receiver_is_recorded_not_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emulator = Emulator(EmulatorSettings(webhook_url=f"http://127.0.0.1:{port}/hook"))
    async with emulator.serve(), aiohttp.ClientSession() as session:
        client = await _client(session, emulator)
        await _send(client, "HOOKDOWN")
        [delivery] = await emulator.deliver_webhooks()
        assert delivery.http_status is None and delivery.error


async def test_off_by_default_and_shutdown_cancels_a_delivery(receiver: Receiver) -> None:
    emulator = Emulator(EmulatorSettings())
    async with emulator.serve(), aiohttp.ClientSession() as session:
        client = await _client(session, emulator)
        await _send(client, "HOOKOFF1")
        assert await emulator.deliver_webhooks() == []
        emulator.configure_webhooks(url=receiver.url)
        receiver.hang = True
        await _send(client, "HOOKHANG")
        await client.status("HOOKHANG")  # starts a delivery that will not end by itself
        await receiver.arrived.wait()
    # serve() has ended: the hanging delivery was cancelled (the lingering-task check of
    # tests/conftest.py would fail this test otherwise) and never finished.
    assert len(receiver.received) == 1 and emulator.webhook_deliveries == []

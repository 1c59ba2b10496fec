"""The PG client against small purpose-built servers on loopback, and its pure parts.

The fake server answers whatever document (and signature) a test gives it, so every
classification of reference §12–§17, every signature case (valid, tampered, wrong key,
absent) and every delivery outcome (NotSent, Unknown) is reached through the real
aiohttp stack. Requests are checked with Paytm's own `paytmchecksum`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import paytmchecksum
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import FieldError
from agent.paytm.checksum import MerchantKey, generate
from agent.paytm.clock import IST
from agent.paytm.http import make_session
from agent.paytm.jsontext import member_text
from agent.paytm.outcome import Answered, CallOutcome, CallRecord, NotSent, Unknown
from agent.paytm.pg import PgClient, check_response_signature
from agent.paytm.pg_models import (
    LinkAnswer,
    PgStatusAnswer,
    PgStatusState,
    RefundAnswer,
    RefundRequest,
    RefundState,
    RefundStatusAnswer,
    SendLinkRequest,
    paise_to_rupees,
    parse_link_answer,
    parse_pg_status_answer,
    parse_refund_answer,
    parse_refund_status_answer,
    pg_response_time,
    rupees_to_paise,
)
from agent.paytm.settings import PaytmConfig

MID = "TESTMID00000000000001"
KEY_TEXT = "ABCDEFGHIJKLMNOP"
KEY = MerchantKey(KEY_TEXT.encode())
OTHER_KEY = MerchantKey(b"PONMLKJIHGFEDCBA")
ORDER = "ORD1001"
EXPIRY = dt.datetime(2024, 1, 1, 10, 15, 0, tzinfo=IST)
FAST_S = 0.3

# -- fake Paytm -------------------------------------------------------------------------------


@dataclass
class Captured:
    path: str
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.decode()

    @property
    def head(self) -> dict[str, Any]:
        head: dict[str, Any] = json.loads(self.raw)["head"]
        return head

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.raw)["body"]
        return body

    def verified(self) -> bool:
        """String mode over the body text as posted, checked with Paytm's own library."""
        body_text = member_text(self.text, "body")
        return bool(paytmchecksum.verifySignature(body_text, KEY_TEXT, self.head["signature"]))


def signed(body: object, key: MerchantKey | None = KEY, *, signature: object = ...,
           compact: bool = False, sign_text: str | None = None) -> str:
    """An answer document. signature=...: a valid one; any other value is sent as is."""
    separators = (",", ":") if compact else (", ", ": ")
    body_text = json.dumps(body, separators=separators)
    head: dict[str, object] = {"responseTimestamp": "1704083400000", "version": "v1",
                               "clientId": "C11"}
    if signature is ...:
        if key is not None:
            head["signature"] = generate(sign_text if sign_text is not None else body_text, key)
    else:
        head["signature"] = signature
    return '{"head":' + json.dumps(head) + ',"body":' + body_text + "}"


def info(status: str, code: str, msg: str = "message") -> dict[str, str]:
    return {"resultStatus": status, "resultCode": code, "resultMsg": msg}


Responder = Callable[[Captured], Awaitable[web.StreamResponse]]


class FakePaytm:
    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.release = asyncio.Event()
        self.responder: Responder = self.text(signed({"resultInfo": info("S", "0000")}))
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def text(text: str, status: int = 200, content_type: str = "application/json") -> Responder:
        async def respond(_: Captured) -> web.StreamResponse:
            return web.Response(text=text, status=status, content_type=content_type)
        return respond

    def answer(self, text: str, status: int = 200) -> None:
        self.responder = self.text(text, status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        captured = Captured(request.path, await request.read())
        self.requests.append(captured)
        return await self.responder(captured)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakePaytm]:
    server = FakePaytm()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


ClientFactory = Callable[..., PgClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    sessions: list[aiohttp.ClientSession] = []

    def factory(base_url: str, *, observer: Callable[[CallRecord], None] | None = None,
                key: MerchantKey = KEY, real_session: bool = False,
                **config: Any) -> PgClient:
        settings = {"mid": MID, "pg_base_url": base_url, "connect_timeout_s": 5.0,
                    "read_timeout_s": 5.0, **config}
        paytm = PaytmConfig(**settings)
        # The agent's own session loads the system CA store (slow); plain http to loopback
        # does not need it, so most tests use a bare session.
        session = make_session(paytm) if real_session else aiohttp.ClientSession()
        sessions.append(session)
        return PgClient(session, paytm, key, observer=observer)

    yield factory
    for session in sessions:
        await session.close()


def link(**overrides: Any) -> SendLinkRequest:
    fields: dict[str, Any] = {"order_id": ORDER, "amount_paise": "130300", "pos_id": "S12_123",
                              "phone": "9999999999", "expiry": EXPIRY}
    fields.update(overrides)
    return SendLinkRequest(**fields)


def refund(**overrides: Any) -> RefundRequest:
    fields: dict[str, Any] = {"order_id": ORDER, "ref_id": "REF1001",
                              "txn_id": "20240101111212800110168328631290118",
                              "amount_paise": "10000"}
    fields.update(overrides)
    return RefundRequest(**fields)


def answered(outcome: CallOutcome[Any]) -> Any:
    assert isinstance(outcome, Answered), outcome
    return outcome.response


# -- the requests on the wire -----------------------------------------------------------------


async def test_send_link_envelope_and_signature(fake: FakePaytm,
                                                make_client: ClientFactory) -> None:
    client = make_client(fake.base_url, display_name="My Store", real_session=True)
    answer = answered(await client.send_link(link()))
    assert isinstance(answer, LinkAnswer) and answer.queued and answer.code == "0000"
    [got] = fake.requests
    assert got.path == "/order/sendpaymentrequest"
    assert list(got.head) == ["clientId", "version", "requestTimestamp", "channelId",
                              "signature"]
    assert got.head["clientId"] == "C11" and got.head["version"] == "v1"
    assert got.head["channelId"] == "WEB"
    assert got.head["requestTimestamp"].isdigit() and len(got.head["requestTimestamp"]) == 10
    assert got.body == {"mid": MID, "merchantOrderId": ORDER, "amount": "1303.00",
                        "posId": "S12_123", "userPhoneNo": "9999999999",
                        "expiry": "2024-01-01 10:15:00", "displayName": "My Store"}
    assert list(got.body) == ["mid", "merchantOrderId", "amount", "posId", "userPhoneNo",
                              "expiry", "displayName"]
    # Signed over the exact body text that was posted, as Paytm's library checks it.
    assert got.verified()
    assert got.text.startswith('{"head": ') and got.text.endswith("}")


async def test_expiry_is_sent_in_ist_and_display_name_rules(fake: FakePaytm,
                                                            make_client: ClientFactory) -> None:
    utc_expiry = dt.datetime(2024, 1, 1, 4, 45, 0, tzinfo=dt.UTC)  # 10:15 IST
    await make_client(fake.base_url).send_link(link(expiry=utc_expiry))
    assert fake.requests[-1].body["expiry"] == "2024-01-01 10:15:00"
    assert "displayName" not in fake.requests[-1].body  # neither config nor request has one
    await make_client(fake.base_url, display_name="Config Name").send_link(
        link(display_name="Request Name"))
    assert fake.requests[-1].body["displayName"] == "Request Name"


async def test_other_request_bodies_and_paths(fake: FakePaytm,
                                              make_client: ClientFactory) -> None:
    client = make_client(fake.base_url, resend_path="/custom/resend", client_id="C12")
    await client.resend_link(ORDER)
    fake.answer(signed({"orderId": ORDER, "resultInfo": info("PENDING", "400")}))
    await client.status(ORDER)
    fake.answer(signed({"orderId": ORDER, "refId": "REF1001",
                        "resultInfo": info("PENDING", "601")}))
    await client.refund(refund(comments="damaged"))
    await client.refund_status(ORDER, "REF1001")
    paths = [(r.path, r.body) for r in fake.requests]
    assert paths == [
        ("/custom/resend", {"mid": MID, "merchantOrderId": ORDER}),
        ("/v3/order/status", {"mid": MID, "orderId": ORDER}),
        ("/refund/apply", {"mid": MID, "txnType": "REFUND", "orderId": ORDER,
                           "refId": "REF1001", "txnId": "20240101111212800110168328631290118",
                           "refundAmount": "100.00", "comments": "damaged"}),
        ("/v2/refund/status", {"mid": MID, "orderId": ORDER, "refId": "REF1001"}),
    ]
    assert all(r.verified() and r.head["clientId"] == "C12" for r in fake.requests)


RUPEE_CASES = [
    ("1", "0.01"), ("9", "0.09"), ("10", "0.10"), ("99", "0.99"), ("100", "1.00"),
    ("101", "1.01"), ("130300", "1303.00"), ("123456", "1234.56"),
    ("100000000000", "1000000000.00"), ("999999999999", "9999999999.99"),
]


async def test_rupees_on_the_wire_are_exact(fake: FakePaytm,
                                            make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    for paise, rupees in RUPEE_CASES:
        assert paise_to_rupees(paise) == rupees
        assert rupees_to_paise(rupees) == int(paise)
        await client.send_link(link(amount_paise=paise))
        await client.refund(refund(amount_paise=paise))
        assert fake.requests[-2].body["amount"] == rupees
        assert fake.requests[-1].body["refundAmount"] == rupees


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=999_999_999_999))
def test_rupee_conversion_round_trips(paise: int) -> None:
    rupees = paise_to_rupees(str(paise))
    whole, frac = rupees.split(".")
    assert len(frac) == 2 and whole.isdigit() and "," not in rupees
    assert rupees_to_paise(rupees) == paise


@pytest.mark.parametrize(("text", "paise"), [
    ("1303", 130300), ("1303.5", 130350), ("1303.50", 130350), ("0.01", 1), (" 1.00 ", 100),
    (1303, 130300), (1303.5, 130350), ("1,303.00", None), ("1303.001", None), ("-1.00", None),
    ("1e3", None), ("", None), ("₹10", None), (None, None), (True, None), ([], None),
    (float("nan"), None), (-5, None), ("١٢٣", None),
])
def test_rupees_to_paise(text: object, paise: int | None) -> None:
    assert rupees_to_paise(text) == paise


# -- requests refused before anything is sent -------------------------------------------------


@pytest.mark.parametrize(("make", "field"), [
    (lambda: link(order_id=""), "merchantOrderId"),
    (lambda: link(order_id="A" * 51), "merchantOrderId"),
    (lambda: link(order_id="bad id"), "merchantOrderId"),
    (lambda: link(order_id="ORD#1"), "merchantOrderId"),
    (lambda: link(amount_paise="0"), "amount"),
    (lambda: link(amount_paise="0100"), "amount"),
    (lambda: link(amount_paise="12.00"), "amount"),
    (lambda: link(amount_paise="1000000000000"), "amount"),
    (lambda: link(amount_paise=100), "amount"),
    (lambda: link(amount_paise="١٢٣"), "amount"),
    (lambda: link(phone="999999999"), "userPhoneNo"),
    (lambda: link(phone="99999999990"), "userPhoneNo"),
    (lambda: link(phone="99999a9999"), "userPhoneNo"),
    (lambda: link(phone=9999999999), "userPhoneNo"),
    (lambda: link(pos_id="S12-123"), "posId"),
    (lambda: link(pos_id="S12_"), "posId"),
    (lambda: link(pos_id=""), "posId"),
    (lambda: link(pos_id="S" * 47 + "_123"), "posId"),
    (lambda: link(expiry=dt.datetime(2024, 1, 1, 10, 15)), "expiry"),
    (lambda: link(expiry="2024-01-01 10:15:00"), "expiry"),
    (lambda: link(display_name="x" * 51), "displayName"),
    (lambda: refund(order_id=""), "orderId"),
    (lambda: refund(ref_id=""), "refId"),
    (lambda: refund(ref_id="R" * 51), "refId"),
    (lambda: refund(ref_id="REF 1"), "refId"),
    (lambda: refund(txn_id=""), "txnId"),
    (lambda: refund(txn_id="1" * 65), "txnId"),
    (lambda: refund(txn_id="12 34"), "txnId"),
    (lambda: refund(amount_paise="0"), "refundAmount"),
    (lambda: refund(amount_paise="1.00"), "refundAmount"),
    (lambda: refund(comments="c" * 501), "comments"),
])
def test_invalid_requests_raise_field_error(make: Callable[[], object], field: str) -> None:
    with pytest.raises(FieldError) as caught:
        make()
    assert caught.value.field == field


def test_limits_that_are_allowed() -> None:
    link(order_id="A" * 50)
    link(order_id="ord@shop-1_2.x")
    link(pos_id="S" * 45 + "_1234", display_name="x" * 50)
    refund(ref_id="R" * 50, txn_id="1" * 64, comments="c" * 500)


async def test_invalid_ids_in_plain_calls_send_nothing(fake: FakePaytm,
                                                       make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    for call, field in ((lambda: client.resend_link("bad id"), "merchantOrderId"),
                        (lambda: client.status(""), "orderId"),
                        (lambda: client.status("x" * 51), "orderId"),
                        (lambda: client.refund_status(ORDER, "bad ref"), "refId"),
                        (lambda: client.refund_status("", "REF1"), "orderId")):
        with pytest.raises(FieldError) as caught:
            await call()
        assert caught.value.field == field
    assert fake.requests == []


# -- classification ---------------------------------------------------------------------------


LINK_CASES: list[tuple[dict[str, str], object]] = [
    (info("S", "0000", "Success"), ("queued", "0000")),
    (info("SUCCESS", "", "ok"), ("queued", "")),
    (info("s", "200"), ("queued", "200")),
    (info("F", "325", "Duplicate"), ("refused", "325")),
    (info("FAILURE", "2007"), ("refused", "2007")),
    (info("TXN_FAILURE", "9999"), ("refused", "9999")),
    (info("F", ""), ("refused", "")),
    (info("F", "0000"), "unknown"),  # a failure with the success code: contradictory
    (info("S", "325"), "unknown"),  # success with a known refusal code: contradictory
    (info("PENDING", "400"), "unknown"),
    (info("", ""), "unknown"),
    (info("TXN_SUCCESS", "01"), ("queued", "01")),  # never read as "paid" though
]


# One server and client for a whole table: each case is a full HTTP round trip.
async def test_link_classification(fake: FakePaytm, make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    for result, expected in LINK_CASES:
        fake.answer(signed({"merchantOrderId": ORDER, "resultInfo": result}))
        outcome = await client.send_link(link())
        if expected == "unknown":
            assert isinstance(outcome, Unknown), (result, outcome)
            assert outcome.http_status == 200
            continue
        answer = answered(outcome)
        assert ("queued" if answer.queued else "refused", answer.code) == expected, result
        assert answer.message == result["resultMsg"]


async def test_link_answer_handling_comes_from_the_table(fake: FakePaytm,
                                                         make_client: ClientFactory) -> None:
    fake.answer(signed({"resultInfo": info("F", "325")}))
    answer = answered(await make_client(fake.base_url).send_link(link()))
    assert answer.known is not None and answer.handling is not None
    assert answer.handling.value == "duplicate"


STATUS_CASES: list[tuple[str, str, PgStatusState]] = [
    ("TXN_SUCCESS", "01", PgStatusState.SUCCESS),
    ("TXN_FAILURE", "227", PgStatusState.FAILED),
    ("TXN_FAILURE", "810", PgStatusState.FAILED),
    ("TXN_FAILURE", "141", PgStatusState.FAILED),  # any other failure code Paytm sends
    ("PENDING", "400", PgStatusState.PENDING),
    ("PENDING", "402", PgStatusState.PENDING),
    ("NO_RECORD_FOUND", "334", PgStatusState.NOT_FOUND),
    ("TXN_FAILURE", "334", PgStatusState.NOT_FOUND),  # decided by the code
    ("NO_RECORD_FOUND", "", PgStatusState.NOT_FOUND),
    ("NO_RECORD_FOUND", "999", PgStatusState.PENDING),
    ("TXN_SUCCESS", "", PgStatusState.PENDING),  # success needs 01
    ("TXN_SUCCESS", "227", PgStatusState.PENDING),
    ("TXN_FAILURE", "", PgStatusState.PENDING),  # failure needs a code
    ("TXN_FAILURE", "330", PgStatusState.PENDING),  # checksum: says nothing of the payment
    ("TXN_FAILURE", "335", PgStatusState.PENDING),
    ("TXN_FAILURE", "501", PgStatusState.PENDING),
    ("F", "1001", PgStatusState.PENDING),
    ("TXN_FAILURE", "400", PgStatusState.PENDING),
    ("SOMETHING", "01", PgStatusState.PENDING),
    ("", "", PgStatusState.PENDING),
]


async def test_status_classification(fake: FakePaytm, make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    for status, code, state in STATUS_CASES:
        fake.answer(signed({"orderId": ORDER, "resultInfo": info(status, code)}))
        answer = answered(await client.status(ORDER))
        assert isinstance(answer, PgStatusAnswer)
        assert (answer.state, answer.code) == (state, code), (status, code)


async def test_status_success_details_and_matching(fake: FakePaytm,
                                                   make_client: ClientFactory) -> None:
    txn_id = "2" * 64  # Paytm transaction ids may be 64 characters long (§11)
    fake.answer(signed({
        "txnId": txn_id, "bankTxnId": "412345678901", "orderId": ORDER, "txnAmount": "1303.00",
        "txnType": "SALE", "gatewayName": "PPBLC", "bankName": "State Bank of India",
        "mid": MID, "paymentMode": "UPI", "refundAmt": "0.00",
        "txnDate": "2024-01-01 10:05:00.0", "resultInfo": info("TXN_SUCCESS", "01")}))
    answer = answered(await make_client(fake.base_url).status(ORDER))
    assert answer.state is PgStatusState.SUCCESS
    assert (answer.txn_id, answer.bank_txn_id, answer.payment_mode) == (
        txn_id, "412345678901", "UPI")
    assert (answer.amount, answer.amount_paise) == ("1303.00", 130300)
    assert (answer.bank_name, answer.gateway, answer.refund_amount) == (
        "State Bank of India", "PPBLC", "0.00")
    assert answer.txn_time == dt.datetime(2024, 1, 1, 10, 5, tzinfo=IST)
    assert answer.known is not None and answer.known.name == "TXN_SUCCESS"
    assert answer.matches(ORDER, "130300") and answer.matches(ORDER, 130300)
    assert not answer.matches(ORDER, "130301")
    assert not answer.matches("ORD1002", "130300")
    assert not answer.matches(ORDER, "abc")


@pytest.mark.parametrize("body", [
    {"resultInfo": info("TXN_SUCCESS", "01")},  # no orderId, no amount
    {"orderId": ORDER, "resultInfo": info("TXN_SUCCESS", "01")},  # no amount
    {"orderId": ORDER, "txnAmount": "1,303.00", "resultInfo": info("TXN_SUCCESS", "01")},
    {"orderId": ORDER, "txnAmount": "1303.001", "resultInfo": info("TXN_SUCCESS", "01")},
])
async def test_success_without_a_matching_order_and_amount_does_not_match(
        fake: FakePaytm, make_client: ClientFactory, body: dict[str, object]) -> None:
    fake.answer(signed(body))
    answer = answered(await make_client(fake.base_url).status(ORDER))
    assert answer.state is PgStatusState.SUCCESS
    assert not answer.matches(ORDER, "130300")


REFUND_CASES: list[tuple[str, str, RefundState | None]] = [
    ("PENDING", "601", RefundState.PENDING),
    ("PENDING", "628", RefundState.PENDING),
    ("", "601", RefundState.PENDING),
    ("PENDING", "777", RefundState.PENDING),
    ("TXN_SUCCESS", "10", RefundState.SUCCESS),
    ("TXN_FAILURE", "617", RefundState.DUPLICATE),
    ("TXN_FAILURE", "626", RefundState.BUSY),
    ("TXN_FAILURE", "631", RefundState.NOT_FOUND),
    ("TXN_FAILURE", "619", RefundState.FAILED),
    ("TXN_FAILURE", "620", RefundState.FAILED),
    ("TXN_FAILURE", "629", RefundState.FAILED),
    ("TXN_FAILURE", "600", RefundState.FAILED),
    ("TXN_FAILURE", "607", RefundState.FAILED),
    ("TXN_FAILURE", "627", RefundState.FAILED),
    ("TXN_FAILURE", "635", RefundState.FAILED),
    ("TXN_FAILURE", "330", RefundState.FAILED),
    ("F", "620", RefundState.FAILED),
    ("TXN_FAILURE", "501", None),  # Paytm failed somewhere: registered or not is unknown
    ("TXN_FAILURE", "", None),
    ("TXN_FAILURE", "601", None),  # contradictory
    ("PENDING", "10", None),
    ("TXN_SUCCESS", "601", None),
    ("PENDING", "617", None),
    ("WHAT", "10", None),
    ("", "", None),
]


async def test_refund_classification(fake: FakePaytm, make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    for status, code, state in REFUND_CASES:
        fake.answer(signed({"orderId": ORDER, "refId": "REF1001", "refundId": "R99",
                            "refundAmount": "100.00", "resultInfo": info(status, code)}))
        outcome = await client.refund(refund())
        if state is None:
            assert isinstance(outcome, Unknown), (status, code, outcome)
            continue
        answer = answered(outcome)
        assert isinstance(answer, RefundAnswer)
        assert (answer.state, answer.code) == (state, code), (status, code)
        assert (answer.refund_id, answer.refund_amount_paise) == ("R99", 10000)


async def test_refund_handling_comes_from_reference_table(fake: FakePaytm,
                                                          make_client: ClientFactory) -> None:
    fake.answer(signed({"resultInfo": info("TXN_FAILURE", "620")}))
    answer = answered(await make_client(fake.base_url).refund(refund()))
    assert answer.known is not None and answer.handling is not None
    assert answer.known.code == "620"


REFUND_STATUS_CASES: list[tuple[str, str, RefundState]] = [
    ("TXN_SUCCESS", "10", RefundState.SUCCESS),
    ("TXN_SUCCESS", "", RefundState.SUCCESS),
    ("TXN_SUCCESS", "601", RefundState.PENDING),
    ("PENDING", "601", RefundState.PENDING),
    ("TXN_FAILURE", "620", RefundState.FAILED),
    ("TXN_FAILURE", "631", RefundState.NOT_FOUND),
    ("TXN_FAILURE", "330", RefundState.PENDING),
    ("TXN_FAILURE", "501", RefundState.PENDING),
    ("TXN_FAILURE", "600", RefundState.PENDING),
    ("TXN_FAILURE", "", RefundState.PENDING),
    ("TXN_FAILURE", "601", RefundState.PENDING),
    ("ODD", "10", RefundState.PENDING),
]


async def test_refund_status_classification(fake: FakePaytm,
                                            make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    for status, code, state in REFUND_STATUS_CASES:
        await _check_refund_status(fake, client, status, code, state)


async def _check_refund_status(fake: FakePaytm, client: PgClient, status: str, code: str,
                               state: RefundState) -> None:
    fake.answer(signed({
        "orderId": ORDER, "refId": "REF1001", "refundId": "R99", "txnId": "T1",
        "txnAmount": "1303.00", "refundAmount": "100.00", "totalRefundAmount": "300.00",
        "txnTimestamp": "2024-01-01 10:05:00.0",
        "acceptRefundTimestamp": "2024-01-01 11:00:00.0",
        "merchantRefundRequestTimestamp": "2024-01-01 11:00:00.0",
        "userCreditInitiateTimestamp": "2024-01-01 11:00:10.0",
        "resultInfo": info(status, code)}))
    answer = answered(await client.refund_status(ORDER, "REF1001"))
    assert isinstance(answer, RefundStatusAnswer)
    assert (answer.state, answer.code) == (state, code), (status, code)
    assert (answer.refund_amount_paise, answer.total_refund_paise) == (10000, 30000)
    assert answer.accept_refund_timestamp == "2024-01-01 11:00:00.0"
    assert answer.user_credit_initiate_timestamp == "2024-01-01 11:00:10.0"
    assert answer.txn_amount == "1303.00" and answer.refund_id == "R99"


@pytest.mark.parametrize(("call", "body"), [
    ("send", {"merchantOrderId": "ORD9", "resultInfo": info("S", "0000")}),
    ("status", {"orderId": "ORD9", "resultInfo": info("TXN_SUCCESS", "01")}),
    ("refund", {"orderId": ORDER, "refId": "OTHER", "resultInfo": info("PENDING", "601")}),
    ("refund_status", {"orderId": "ORD9", "refId": "REF1001",
                       "resultInfo": info("TXN_SUCCESS", "10")}),
])
async def test_answer_about_another_order_is_unknown(fake: FakePaytm, make_client: ClientFactory,
                                                     call: str, body: dict[str, object]) -> None:
    fake.answer(signed(body))
    client = make_client(fake.base_url)
    calls: dict[str, Callable[[], Awaitable[CallOutcome[Any]]]] = {
        "send": lambda: client.send_link(link()), "status": lambda: client.status(ORDER),
        "refund": lambda: client.refund(refund()),
        "refund_status": lambda: client.refund_status(ORDER, "REF1001")}
    outcome = await calls[call]()
    assert isinstance(outcome, Unknown) and "not" in outcome.reason


# -- response signatures ----------------------------------------------------------------------

PAID = {"orderId": ORDER, "txnAmount": "1303.00", "resultInfo": info("TXN_SUCCESS", "01")}


async def test_signature_valid_over_the_exact_text_received(fake: FakePaytm,
                                                            make_client: ClientFactory) -> None:
    fake.answer(signed(PAID, compact=True))  # no spaces: a re-serialised copy would differ
    assert answered(await make_client(fake.base_url).status(ORDER)).state \
        is PgStatusState.SUCCESS


@pytest.mark.parametrize(("text", "reason"), [
    (signed(PAID, sign_text=json.dumps({**PAID, "txnAmount": "1.00"})), "does not verify"),
    (signed(PAID, OTHER_KEY), "does not verify"),
    (signed(PAID, compact=True, sign_text=json.dumps(PAID)), "does not verify"),
    (signed(PAID, signature="A" * 108), "does not verify"),
    (signed(PAID, signature="not base64!"), "does not verify"),
    (signed(PAID, signature=12345), "not a string"),
    (signed(PAID, signature=["x"]), "not a string"),
])
async def test_bad_signature_is_unknown_and_logged(fake: FakePaytm, make_client: ClientFactory,
                                                   caplog: pytest.LogCaptureFixture, text: str,
                                                   reason: str) -> None:
    records: list[CallRecord] = []
    fake.answer(text)
    outcome = await make_client(fake.base_url, observer=records.append).status(ORDER)
    assert isinstance(outcome, Unknown), outcome
    assert reason in outcome.reason and outcome.http_status == 200
    assert "signature" in caplog.text and "WARNING" in caplog.text
    assert [(r.api, r.outcome) for r in records] == [("pg_status", "unknown")]


async def test_tampered_refusal_is_not_trusted_either(fake: FakePaytm,
                                                      make_client: ClientFactory) -> None:
    genuine = {"merchantOrderId": ORDER, "resultInfo": info("S", "0000")}
    forged = {"merchantOrderId": ORDER, "resultInfo": info("F", "325")}
    fake.answer(signed(forged, sign_text=json.dumps(genuine)))
    assert isinstance(await make_client(fake.base_url).send_link(link()), Unknown)


@pytest.mark.parametrize("signature", [None, ""])
async def test_absent_signature_is_accepted(fake: FakePaytm, make_client: ClientFactory,
                                            caplog: pytest.LogCaptureFixture,
                                            signature: object) -> None:
    caplog.set_level("DEBUG", logger="agent.paytm")
    fake.answer(signed(PAID, signature=signature))
    assert answered(await make_client(fake.base_url).status(ORDER)).state \
        is PgStatusState.SUCCESS
    fake.answer(signed(PAID, key=None))  # no signature member at all
    assert answered(await make_client(fake.base_url).status(ORDER)).state \
        is PgStatusState.SUCCESS
    assert "no signature" in caplog.text


async def test_signed_4xx_answer_is_answered(fake: FakePaytm,
                                             make_client: ClientFactory) -> None:
    fake.answer(signed({"resultInfo": info("F", "330", "Invalid checksum")}), status=400)
    answer = answered(await make_client(fake.base_url).send_link(link()))
    assert not answer.queued and answer.code == "330"


def test_check_response_signature_cases() -> None:
    text = signed(PAID)
    assert check_response_signature(text, json.loads(text), KEY) is None
    assert check_response_signature(text, json.loads(text), OTHER_KEY) is not None
    # Signature present but the body cannot be cut out of the text (a duplicate-free parse
    # of a document that is not an object is impossible; a missing body is the case).
    doc = '{"head": {"signature": "' + generate("{}", KEY) + '"}}'
    outcome = check_response_signature(doc, json.loads(doc), KEY)
    assert outcome is not None and "cannot be located" in outcome.reason


# -- NotSent and Unknown ----------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_not_sent(make_client: ClientFactory) -> None:
    records: list[CallRecord] = []
    client = make_client(f"http://127.0.0.1:{_closed_port()}", observer=records.append)
    for call in (lambda: client.send_link(link()), lambda: client.resend_link(ORDER),
                 lambda: client.status(ORDER), lambda: client.refund(refund()),
                 lambda: client.refund_status(ORDER, "REF1001")):
        outcome = await call()
        assert isinstance(outcome, NotSent), outcome
    assert [(r.api, r.outcome, r.txn) for r in records] == [
        (api, "not_sent", ORDER) for api in
        ("send_link", "resend_link", "pg_status", "refund_apply", "refund_status")]


async def test_connection_closed_after_reading_is_unknown(make_client: ClientFactory) -> None:
    received: list[bytes] = []

    async def close_after_reading(reader: asyncio.StreamReader,
                                  writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(close_after_reading, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        outcome = await make_client(f"http://127.0.0.1:{port}").send_link(link())
        assert isinstance(outcome, Unknown), outcome
        assert received and received[0].startswith(b"POST /order/sendpaymentrequest")
    finally:
        server.close()
        await server.wait_closed()


async def test_read_timeout_is_unknown(fake: FakePaytm, make_client: ClientFactory) -> None:
    async def hang(_: Captured) -> web.StreamResponse:
        await fake.release.wait()
        return web.Response(text="{}")
    fake.responder = hang
    outcome = await make_client(fake.base_url, read_timeout_s=FAST_S).refund(refund())
    assert isinstance(outcome, Unknown), outcome
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("text", "status", "content_type"), [
    (signed({"resultInfo": info("S", "0000")}), 500, "application/json"),
    (signed({"resultInfo": info("S", "0000")}), 503, "application/json"),
    ("<html>502 Bad Gateway</html>", 200, "text/html"),
    ('{"head": {}, "body": {"resultInfo": ', 200, "application/json"),
    ("[]", 200, "application/json"),
    ('{"head": {}, "body": {}}', 200, "application/json"),
    ('{"head": {}, "body": {"resultInfo": "S"}}', 200, "application/json"),
])
async def test_unusable_answers_are_unknown(fake: FakePaytm, make_client: ClientFactory,
                                            text: str, status: int, content_type: str) -> None:
    fake.responder = fake.text(text, status, content_type)
    outcome = await make_client(fake.base_url).send_link(link())
    assert isinstance(outcome, Unknown), outcome


async def test_observer_and_server_time(fake: FakePaytm, make_client: ClientFactory) -> None:
    records: list[CallRecord] = []
    fake.answer(signed(PAID))
    outcome = await make_client(fake.base_url, observer=records.append).status(ORDER)
    assert isinstance(outcome, Answered)
    assert outcome.server_time == dt.datetime(2024, 1, 1, 10, 0, tzinfo=IST)
    [record] = records
    assert (record.api, record.txn, record.outcome, record.code) == (
        "pg_status", ORDER, "answered", "01")


async def test_merchant_key_is_never_logged(fake: FakePaytm, make_client: ClientFactory,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="agent.paytm")
    await make_client(fake.base_url).send_link(link())
    assert "POST" in caplog.text and KEY_TEXT not in caplog.text


# -- parsers on arbitrary input ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELD_VALUES = st.one_of(st.none(), st.integers(), st.floats(), st.sampled_from(
    ["S", "F", "SUCCESS", "FAILURE", "TXN_SUCCESS", "TXN_FAILURE", "PENDING",
     "NO_RECORD_FOUND", "01", "227", "334", "400", "10", "601", "617", "620", "626", "631",
     "501", "330", "0000", "", "null", ORDER, "REF1001", "1303.00", "1,3"]), st.text())
PAYTM_SHAPED = st.fixed_dictionaries({
    "head": st.one_of(JSON_VALUES, st.fixed_dictionaries({"responseTimestamp": st.one_of(
        st.text(), st.just("1704083400000"), st.just("1704083400"), st.integers(),
        st.just("9" * 13))})),
    "body": st.dictionaries(
        st.sampled_from(["orderId", "merchantOrderId", "refId", "txnAmount", "refundAmount",
                         "totalRefundAmount", "txnId", "bankTxnId", "other"]),
        FIELD_VALUES, max_size=5).flatmap(lambda body: st.fixed_dictionaries({
            **{k: st.just(v) for k, v in body.items()},
            "resultInfo": st.one_of(JSON_VALUES, st.dictionaries(
                st.sampled_from(["resultStatus", "resultCode", "resultMsg"]),
                FIELD_VALUES, max_size=3)),
        })),
})


@settings(max_examples=150, deadline=None)
@given(st.one_of(JSON_VALUES, PAYTM_SHAPED), st.sampled_from([None, ORDER]))
def test_parsers_never_raise(doc: object, order_id: str | None) -> None:
    link_answer = parse_link_answer(doc, order_id)
    status = parse_pg_status_answer(doc, order_id)
    refund_answer = parse_refund_answer(doc, order_id, "REF1001")
    refund_status = parse_refund_status_answer(doc, order_id, "REF1001")
    pg_response_time(doc)
    assert isinstance(link_answer, LinkAnswer | Unknown)
    assert isinstance(status, PgStatusAnswer | Unknown)
    assert isinstance(refund_answer, RefundAnswer | Unknown)
    assert isinstance(refund_status, RefundStatusAnswer | Unknown)
    # The money-safety rules hold for whatever arrives.
    if isinstance(status, PgStatusAnswer) and status.state is PgStatusState.SUCCESS:
        assert status.code == "01" and status.result.status.strip().upper() == "TXN_SUCCESS"
    if isinstance(status, PgStatusAnswer) and status.state is PgStatusState.FAILED:
        assert status.code not in ("", "01", "334", "330", "335", "501", "400", "402")
    if isinstance(refund_answer, RefundAnswer) and refund_answer.state is RefundState.SUCCESS:
        assert refund_answer.code == "10"
    if isinstance(link_answer, LinkAnswer) and link_answer.queued:
        assert link_answer.result.status.strip().upper() in ("S", "SUCCESS", "TXN_SUCCESS")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_signature_check_never_raises(text: str) -> None:
    try:
        document: object = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    check_response_signature(text, document, KEY)
    check_response_signature(text, {"head": {"signature": text}, "body": {}}, KEY)

"""The EDC client against small purpose-built servers on loopback.

Each server does one thing (answers a given document, closes the connection after
reading the request, never answers...), so every outcome class is reached through
the real aiohttp stack: NotSent only when nothing could have reached Paytm, Unknown
whenever the request may have been written, Answered with the classification of
reference §4.3/§5.3 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import paytmchecksum
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ConfigError, FieldError
from agent.paytm.checksum import ChecksumMode, MerchantKey
from agent.paytm.clock import IST, format_paytm, parse_paytm
from agent.paytm.edc import (
    EdcClient,
    GstInfo,
    SaleRequest,
    StatusRequest,
    VoidRequest,
    decode_response,
    parse_request_answer,
    parse_status_answer,
    response_time,
)
from agent.paytm.edc_answers import PaymentDetails, RequestAnswer, StatusAnswer, StatusState
from agent.paytm.http import check_base_url, make_session
from agent.paytm.jsontext import member_text
from agent.paytm.outcome import Answered, CallOutcome, CallRecord, NotSent, Unknown
from agent.paytm.settings import PaytmConfig
from agent.paytm.tls import ssl_context

MID = "TESTMID00000000000001"
KEY_TEXT = "ABCDEFGHIJKLMNOP"
KEY = MerchantKey(KEY_TEXT.encode())
TID = "12345678"
TXN = "ORDER0001"
TXN_TIME = dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=IST)
FAST_S = 0.3  # timeouts in tests that wait for one to expire

# -- fake Paytm -------------------------------------------------------------------------------


@dataclass
class Captured:
    path: str
    headers: Mapping[str, str]
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.decode()

    @property
    def document(self) -> Any:
        return json.loads(self.raw)

    @property
    def head(self) -> dict[str, Any]:
        head: dict[str, Any] = self.document["head"]
        return head

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.document["body"]
        return body

    def verified(self, mode: ChecksumMode) -> bool:
        """Checked with Paytm's own library, the way Paytm's server would."""
        checksum = self.head["checksum"]
        if mode is ChecksumMode.JSON:
            body_text = member_text(self.text, "body")
            return bool(paytmchecksum.verifySignature(body_text, KEY_TEXT, checksum))
        params = {k: v for k, v in self.body.items() if isinstance(v, str)}
        return bool(paytmchecksum.verifySignature(params, KEY_TEXT, checksum))


Responder = Callable[[Captured], Awaitable[web.StreamResponse]]


def info(status: str, code: str, code_id: str, msg: str = "message") -> dict[str, str]:
    return {"resultStatus": status, "resultCode": code, "resultCodeId": code_id,
            "resultMsg": msg}


def document(result_info: object, **body: object) -> dict[str, object]:
    return {"head": {"responseTimeStamp": "2024-01-01 10:00:01", "channelId": "EDC",
                     "version": "3.1"},
            "body": {"merchantTransactionId": TXN, "paytmMid": MID, "paytmTid": TID,
                     **body, "resultInfo": result_info}}


ACCEPTED = document(info("A", "ACCEPTED_SUCCESS", "0009", "ACCEPTED_SUCCESS"))


class FakePaytm:
    """An aiohttp app on 127.0.0.1 that records every request and answers via `responder`."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.release = asyncio.Event()  # set at teardown: frees handlers told to hang
        self.responder: Responder = self.reply_json(ACCEPTED)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply_json(self, doc: object, status: int = 200) -> Responder:
        async def respond(_: Captured) -> web.StreamResponse:
            return web.json_response(doc, status=status)
        return respond

    def reply_text(self, text: str, status: int = 200,
                   content_type: str = "application/json") -> Responder:
        async def respond(_: Captured) -> web.StreamResponse:
            return web.Response(text=text, status=status, content_type=content_type)
        return respond

    def answer(self, doc: object, status: int = 200) -> None:
        self.responder = self.reply_json(doc, status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        captured = Captured(request.path, dict(request.headers), await request.read())
        self.requests.append(captured)
        return await self.responder(captured)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

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


ClientFactory = Callable[..., EdcClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    sessions: list[aiohttp.ClientSession] = []

    def factory(base_url: str, *, session: aiohttp.ClientSession | None = None,
                observer: Callable[[CallRecord], None] | None = None,
                **config: Any) -> EdcClient:
        settings = {"mid": MID, "edc_base_url": base_url, "connect_timeout_s": 5.0,
                    "read_timeout_s": 5.0, **config}
        paytm = PaytmConfig(**settings)
        if session is None:
            session = make_session(paytm)
        sessions.append(session)
        return EdcClient(session, paytm, KEY, observer=observer)

    yield factory
    for session in sessions:
        await session.close()


def sale(**overrides: Any) -> SaleRequest:
    fields: dict[str, Any] = {"tid": TID, "txn": TXN, "amount": "100", "txn_time": TXN_TIME}
    fields.update(overrides)
    return SaleRequest(**fields)


def status(void: bool = False) -> StatusRequest:
    return StatusRequest(tid=TID, txn=TXN, txn_time=TXN_TIME, void=void)


def answered(outcome: CallOutcome[Any]) -> Any:
    assert isinstance(outcome, Answered), outcome
    return outcome.response


# -- the request on the wire ------------------------------------------------------------------


async def test_sale_envelope_and_params_checksum(fake: FakePaytm,
                                                 make_client: ClientFactory) -> None:
    client = make_client(fake.base_url)
    req = sale(reference="INV42", payment_mode="CARD", auto_accept=True,
               display_info={"Bill": "INV42"}, print_info={"Till": "1"},
               extend_info={"lane": "till-1"},
               gst=GstInfo("29ABCDE1234F1Z5", "CGST:9|SGST:9", "INV42", "20240101100000"))
    answer = answered(await client.sale(req))
    assert answer.accepted and answer.code == "0009"
    [got] = fake.requests
    assert got.path == "/ecr/payment/request"
    assert got.headers["Content-Type"] == "application/json"
    assert set(got.document) == {"head", "body"}
    assert got.head["channelId"] == "EDC" and got.head["version"] == "3.1"
    assert len(got.head["checksum"]) == 108
    assert got.body == {
        "paytmMid": MID, "paytmTid": TID, "transactionDateTime": "2024-01-01 10:00:00",
        "merchantTransactionId": TXN, "merchantReferenceNo": "INV42",
        "transactionAmount": "100",
        "merchantExtendedInfo": {"paymentMode": "CARD", "autoAccept": "True"},
        "displayInfo": {"Bill": "INV42"}, "printInfo": {"Till": "1"},
        "extendInfo": {"lane": "till-1"},
        "gstInformation": {"gstIn": "29ABCDE1234F1Z5", "gstBrkUp": "CGST:9|SGST:9",
                           "invoiceNo": "INV42", "invoiceDate": "20240101100000"},
    }
    # Params mode signs the top-level strings only; the nested objects stay out.
    assert got.verified(ChecksumMode.PARAMS)
    assert not got.verified(ChecksumMode.JSON)


async def test_minimal_sale_sends_only_mandatory_fields(fake: FakePaytm,
                                                        make_client: ClientFactory) -> None:
    await make_client(fake.base_url).sale(sale(payment_mode="QR", auto_accept=False))
    body = fake.requests[0].body
    assert set(body) == {"paytmMid", "paytmTid", "transactionDateTime",
                         "merchantTransactionId", "transactionAmount", "merchantExtendedInfo"}
    assert body["merchantExtendedInfo"] == {"paymentMode": "QR"}


async def test_json_checksum_covers_the_exact_body_text(fake: FakePaytm,
                                                        make_client: ClientFactory) -> None:
    client = make_client(fake.base_url, checksum_mode=ChecksumMode.JSON)
    await client.sale(sale(reference="₹ café", display_info={"Note": "naïve ✓"}))
    got = fake.requests[0]
    assert got.verified(ChecksumMode.JSON)
    assert not got.verified(ChecksumMode.PARAMS)
    assert got.body["merchantReferenceNo"] == "₹ café"


async def test_status_and_void_paths_and_bodies(fake: FakePaytm,
                                                make_client: ClientFactory) -> None:
    client = make_client(fake.base_url, void_path="/ecr/payment/void")
    fake.answer(document(info("S", "SUCCESS", "0000")))
    await client.status(status())
    await client.status(status(void=True))
    fake.answer(ACCEPTED)
    await client.void(VoidRequest(tid=TID, txn=TXN, txn_time=TXN_TIME))
    sale_status, void_status, void = fake.requests
    assert sale_status.path == "/ecr/V2/payment/status"
    assert "event" not in sale_status.body
    assert void_status.path == "/ecr/V2/payment/status"
    assert void_status.body["event"] == "VOID"
    assert void.path == "/ecr/payment/void"
    assert void.body == {"paytmMid": MID, "paytmTid": TID, "merchantTransactionId": TXN,
                         "transactionDateTime": "2024-01-01 10:00:00"}
    # `event` is a top-level string, so it is inside the params checksum.
    assert all(r.verified(ChecksumMode.PARAMS) for r in fake.requests)


@pytest.fixture
def tz_far_from_india() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("tz_far_from_india")
async def test_timestamps_are_ist_whatever_the_host_zone(fake: FakePaytm,
                                                         make_client: ClientFactory) -> None:
    txn_time = dt.datetime(2024, 1, 1, 4, 30, 0, tzinfo=dt.UTC)  # 10:00 IST
    await make_client(fake.base_url).sale(sale(txn_time=txn_time))
    got = fake.requests[0]
    assert got.body["transactionDateTime"] == "2024-01-01 10:00:00"
    sent = parse_paytm(got.head["requestTimeStamp"])
    assert sent is not None
    assert abs((dt.datetime.now(dt.UTC) - sent).total_seconds()) < 3
    expected = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5, minutes=30)).replace(tzinfo=None)
    assert abs((sent.replace(tzinfo=None) - expected).total_seconds()) < 3


# -- classification: Sale and Void ------------------------------------------------------------

# (resultInfo, accepted) — accepted None means the answer must be Unknown.
SALE_CASES: list[tuple[str, object, bool | None, str]] = [
    ("sale page layout", info("A", "ACCEPTED_SUCCESS", "0009"), True, "0009"),
    ("void page layout", info("ACCEPTED_SUCCESS", "A", "0009"), True, "0009"),
    ("letter only", {"resultCode": "A"}, True, ""),
    ("word only", {"resultStatus": "ACCEPTED_SUCCESS"}, True, ""),
    ("code only", {"resultCodeId": "0009"}, True, "0009"),
    ("letter in both", info("A", "A", "0009"), True, "0009"),
    ("refused, sale layout", info("F", "FAIL", "0333"), False, "0333"),
    ("refused, void layout", info("FAIL", "F", "0333"), False, "0333"),
    ("refused, word only", {"resultStatus": "FAIL", "resultCodeId": "0002"}, False, "0002"),
    ("refused, code only", {"resultCodeId": "0029"}, False, "0029"),
    ("system error word", info("F", "SYSTEM_ERROR", "0012"), False, "0012"),
    ("letter F, unknown code", info("F", "FAIL", "0999"), None, ""),
    ("letter F, no code", info("F", "FAIL", ""), None, ""),
    ("accepted letter, failure code", info("A", "ACCEPTED_SUCCESS", "0330"), None, ""),
    ("failure letter, accepted code", info("F", "FAIL", "0009"), None, ""),
    ("both letters disagree", info("A", "F", "0009"), None, ""),
    ("word disagrees with letter", info("A", "FAIL", "0009"), None, ""),
    ("status letter on a sale", info("S", "SUCCESS", "0000"), None, ""),
    ("pending on a sale", info("P", "PENDING", ""), None, ""),
    ("empty resultInfo", {}, None, ""),
    ("numbers instead of strings", {"resultCode": 1, "resultCodeId": 9}, None, ""),
    ("unknown word with A", info("A", "QUEUED_MAYBE", "0009"), None, ""),
    ("unknown word with F", info("F", "DECLINED", "0002"), None, ""),
]


@pytest.mark.parametrize(("name", "result_info", "accepted", "code"), SALE_CASES,
                         ids=[c[0] for c in SALE_CASES])
async def test_sale_classification(fake: FakePaytm, make_client: ClientFactory, name: str,
                                   result_info: object, accepted: bool | None,
                                   code: str) -> None:
    fake.answer(document(result_info))
    client = make_client(fake.base_url)
    for outcome in (await client.sale(sale()),
                    await client.void(VoidRequest(tid=TID, txn=TXN, txn_time=TXN_TIME))):
        if accepted is None:
            assert isinstance(outcome, Unknown), outcome
            assert outcome.http_status == 200
        else:
            answer = answered(outcome)
            assert isinstance(answer, RequestAnswer)
            assert answer.accepted is accepted
            assert answer.code == code


@pytest.mark.parametrize("code", ["0330", "1809", "1810", "0007", "0333", "0002", "0012",
                                  "0022", "0029", "0233", "9001", "0902", "1825", "1815",
                                  "1813", "1814"])
async def test_every_documented_refusal(fake: FakePaytm, make_client: ClientFactory,
                                        code: str) -> None:
    fake.answer(document(info("F", "FAIL", code, "refused")))
    answer = answered(await make_client(fake.base_url).sale(sale()))
    assert isinstance(answer, RequestAnswer)
    assert (answer.accepted, answer.code, answer.message) == (False, code, "refused")
    assert answer.known is not None and answer.handling is answer.known.handling


async def test_answer_about_another_transaction_is_unknown(fake: FakePaytm,
                                                           make_client: ClientFactory) -> None:
    fake.answer(document(info("A", "ACCEPTED_SUCCESS", "0009"),
                         merchantTransactionId="ORDER0002"))
    outcome = await make_client(fake.base_url).sale(sale())
    assert isinstance(outcome, Unknown) and "ORDER0002" in outcome.reason


async def test_4xx_with_a_paytm_answer_is_answered(fake: FakePaytm,
                                                   make_client: ClientFactory) -> None:
    fake.answer(document(info("F", "FAIL", "0002", "Request Parameters are not valid")), 400)
    answer = answered(await make_client(fake.base_url).sale(sale()))
    assert (answer.accepted, answer.code) == (False, "0002")


# -- classification: Status Enquiry -----------------------------------------------------------

STATUS_CASES: list[tuple[str, object, bool, StatusState]] = [
    ("success, letter in code", info("SUCCESS", "S", "0000"), False, StatusState.SUCCESS),
    ("success, letter in status", info("S", "SUCCESS", "0000"), False, StatusState.SUCCESS),
    ("success letter only", {"resultCode": "S"}, False, StatusState.SUCCESS),
    ("success code only", {"resultCodeId": "0000"}, False, StatusState.SUCCESS),
    ("failed, letter in code", info("FAIL", "F", "0011"), False, StatusState.FAILED),
    ("failed, letter in status", info("F", "FAILED", "0011"), False, StatusState.FAILED),
    ("failed word, no letter", {"resultStatus": "FAILED", "resultCodeId": "0011"}, False,
     StatusState.FAILED),
    ("pending", info("PENDING", "P", "0010"), False, StatusState.PENDING),
    ("pending 0030", info("P", "PENDING", "0030"), False, StatusState.PENDING),
    ("not found with F", info("FAIL", "F", "0404"), False, StatusState.NOT_FOUND),
    ("not found with P", info("P", "PENDING", "0404"), False, StatusState.NOT_FOUND),
    ("not found, void", info("FAIL", "F", "0404"), True, StatusState.NOT_FOUND),
    ("void not found", info("FAIL", "F", "0180"), True, StatusState.NOT_FOUND),
    ("void-not-found code on a sale", info("FAIL", "F", "0180"), False, StatusState.PENDING),
    ("void failed", info("FAIL", "F", "0090"), True, StatusState.FAILED),
    ("void-failed code on a sale", info("FAIL", "F", "0090"), False, StatusState.PENDING),
    ("sale-failed code on a void", info("FAIL", "F", "0011"), True, StatusState.PENDING),
    ("void success", info("SUCCESS", "S", "0000"), True, StatusState.SUCCESS),
    ("system error", info("FAIL", "F", "0012"), False, StatusState.PENDING),
    ("checksum error", info("FAIL", "F", "0330"), False, StatusState.PENDING),
    ("F without code", {"resultCode": "F"}, False, StatusState.PENDING),
    ("F with unknown code", info("FAIL", "F", "7777"), False, StatusState.PENDING),
    ("S with failure code", info("SUCCESS", "S", "0011"), False, StatusState.PENDING),
    ("S with unknown code", info("SUCCESS", "S", "7777"), False, StatusState.PENDING),
    ("letters disagree", info("S", "F", "0000"), False, StatusState.PENDING),
    ("odd letter", info("X", "WHATEVER", ""), False, StatusState.PENDING),
    ("empty resultInfo", {}, False, StatusState.PENDING),
    # A word we do not know is "not understood — ask again", whatever the letter says.
    ("unknown word with S", info("DECLINED", "S", "0000"), False, StatusState.PENDING),
    ("unknown word with S, no code", {"resultStatus": "DECLINED", "resultCode": "S"}, False,
     StatusState.PENDING),
    ("unknown word with F", info("F", "REVERSED", "0011"), False, StatusState.PENDING),
    ("unknown word on a void", info("VOIDED", "S", "0000"), True, StatusState.PENDING),
]


@pytest.mark.parametrize(("name", "result_info", "void", "state"), STATUS_CASES,
                         ids=[c[0] for c in STATUS_CASES])
async def test_status_classification(fake: FakePaytm, make_client: ClientFactory, name: str,
                                     result_info: object, void: bool,
                                     state: StatusState) -> None:
    fake.answer(document(result_info))
    answer = answered(await make_client(fake.base_url).status(status(void)))
    assert isinstance(answer, StatusAnswer)
    assert answer.state is state


async def test_card_success_details(fake: FakePaytm, make_client: ClientFactory) -> None:
    fake.answer(document(
        info("SUCCESS", "S", "0000", "Success"), transactionAmount="100",
        merchantReferenceNo="INV42", transactionDateTime="2024-01-01 10:00:00",
        acquirementId="20240101011610000000000000000000000", retrievalReferenceNo="512345678901",
        authCode="123456", issuerMaskCardNo="4111XXXX1111", cardType="CREDIT_CARD",
        cardScheme="VISA", issuingBankName="HDFC", payMethod=None))
    outcome = await make_client(fake.base_url).status(status())
    assert isinstance(outcome, Answered)
    assert outcome.server_time == dt.datetime(2024, 1, 1, 10, 0, 1, tzinfo=IST)
    answer = outcome.response
    assert answer.state is StatusState.SUCCESS
    assert (answer.code, answer.message, answer.amount, answer.reference) == (
        "0000", "Success", "100", "INV42")
    assert answer.payment == PaymentDetails(
        method="CARD", rrn="512345678901", auth_code="123456", card="4111XXXX1111",
        scheme="VISA", card_type="CREDIT_CARD", bank="HDFC",
        acquirement_id="20240101011610000000000000000000000", txn_time="2024-01-01 10:00:00")


async def test_upi_success_details(fake: FakePaytm, make_client: ClientFactory) -> None:
    doc = document(info("SUCCESS", "S", "0000"), retrievalReferenceNo="512345678901",
                   authCode=None, issuerMaskCardNo=None, issuingBankName="null",
                   acquirementId="2025060501161", merchantExtendedInfo=None)
    doc["head"] = {"responseTimestamp": "2025-06-05 14:40:00"}  # the §5.2 spelling
    fake.answer(doc)
    outcome = await make_client(fake.base_url).status(status())
    assert isinstance(outcome, Answered)
    assert outcome.server_time == dt.datetime(2025, 6, 5, 14, 40, tzinfo=IST)
    payment = outcome.response.payment
    assert payment is not None
    assert (payment.method, payment.rrn, payment.card, payment.auth_code, payment.bank) == (
        "UPI", "512345678901", None, None, None)


async def test_pay_method_is_taken_as_sent(fake: FakePaytm, make_client: ClientFactory) -> None:
    fake.answer(document(info("SUCCESS", "S", "0000"), payMethod="EMI",
                         issuerMaskCardNo="4111XXXX1111"))
    answer = answered(await make_client(fake.base_url).status(status()))
    assert answer.payment.method == "EMI"


async def test_pending_without_payment_fields(fake: FakePaytm,
                                              make_client: ClientFactory) -> None:
    fake.answer(document(info("PENDING", "P", "0010"), authCode=None, transactionAmount=100))
    answer = answered(await make_client(fake.base_url).status(status()))
    assert answer.payment is None
    assert answer.amount == "100"
    assert answer.reference is None


# -- Unknown: the request may have been received ----------------------------------------------


@pytest.mark.parametrize(("status_code", "body", "content_type"), [
    (500, json.dumps(ACCEPTED), "application/json"),  # even a clear answer: gateway failed
    (502, "<html><body>Bad Gateway</body></html>", "text/html"),
    (503, "", "text/plain"),
    (200, "<html><body>Maintenance</body></html>", "text/html"),
    (200, '{"head": {}, "body": {"resultInfo": ', "application/json"),
    (200, "", "application/json"),
    (200, "[1, 2, 3]", "application/json"),
    (200, '{"head": {}}', "application/json"),
    (200, '{"head": {}, "body": {"merchantTransactionId": "ORDER0001"}}', "application/json"),
    (200, '{"head": {}, "body": {"resultInfo": "A"}}', "application/json"),
    (200, '{"head": {}, "body": []}', "application/json"),
    (404, "<html>Not Found</html>", "text/html"),
    (302, "", "text/plain"),
    (204, "", "text/plain"),
])
async def test_unusable_answers_are_unknown(fake: FakePaytm, make_client: ClientFactory,
                                            status_code: int, body: str,
                                            content_type: str) -> None:
    fake.responder = fake.reply_text(body, status_code, content_type)
    client = make_client(fake.base_url)
    for outcome in (await client.sale(sale()), await client.status(status())):
        assert isinstance(outcome, Unknown), outcome
        assert outcome.http_status == status_code


async def test_redirect_is_not_followed(fake: FakePaytm, make_client: ClientFactory) -> None:
    async def redirect(_: Captured) -> web.StreamResponse:
        raise web.HTTPFound("/elsewhere")
    fake.responder = redirect
    outcome = await make_client(fake.base_url).sale(sale())
    assert isinstance(outcome, Unknown) and outcome.http_status == 302
    assert [r.path for r in fake.requests] == ["/ecr/payment/request"]


async def test_non_utf8_and_oversized_answers(fake: FakePaytm,
                                              make_client: ClientFactory) -> None:
    async def latin1(_: Captured) -> web.StreamResponse:
        return web.Response(body=b'{"x": "\xe9"}', content_type="application/json")
    fake.responder = latin1
    client = make_client(fake.base_url)
    outcome = await client.sale(sale())
    assert isinstance(outcome, Unknown) and "UTF-8" in outcome.reason
    fake.responder = fake.reply_text(" " * 300_000 + json.dumps(ACCEPTED))
    outcome = await client.sale(sale())
    assert isinstance(outcome, Unknown) and "larger" in outcome.reason


async def test_read_timeout_is_unknown(fake: FakePaytm, make_client: ClientFactory) -> None:
    async def hang(_: Captured) -> web.StreamResponse:
        await fake.release.wait()
        return web.json_response(ACCEPTED)
    fake.responder = hang
    outcome = await make_client(fake.base_url, read_timeout_s=FAST_S).sale(sale())
    assert isinstance(outcome, Unknown), outcome
    assert outcome.http_status is None
    assert len(fake.requests) == 1  # it did arrive: "unknown" is the truth


class RawServer:
    """A bare TCP server: reads one HTTP request, then does whatever `then` says."""

    def __init__(self, then: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.then = then
        self.requests: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.requests.append(head + await reader.readexactly(length))
            await self.then(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    # SO_LINGER 0: close() sends RST instead of FIN, a "connection reset by peer".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


async def _half_answer(writer: asyncio.StreamWriter) -> None:
    body = json.dumps(ACCEPTED).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[:20])
    await writer.drain()


async def _headers_only(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    await writer.drain()


async def _garbage(writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x00\x01garbage that is not HTTP\r\n\r\n")
    await writer.drain()


@pytest.mark.parametrize("then", [_close, _reset, _half_answer, _headers_only, _garbage],
                         ids=["closed after reading", "reset after reading",
                              "truncated body", "truncated headers", "not HTTP"])
async def test_connection_lost_after_request_is_unknown(
        make_client: ClientFactory,
        then: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
    async with RawServer(then) as server:
        client = make_client(server.base_url)
        outcome = await client.sale(sale())
        assert isinstance(outcome, Unknown), outcome
        # The request did reach the server: NotSent here would allow a double charge.
        assert len(server.requests) == 1
        assert server.requests[0].startswith(b"POST /ecr/payment/request HTTP/1.1")
        # aiohttp must not have resent the POST on a fresh connection.
        assert server.connections == 1


async def test_stale_pooled_connection_is_unknown_and_not_retried(
        make_client: ClientFactory) -> None:
    # First call answered with keep-alive; then the server closes that idle connection. The
    # next POST may go out on the dead connection: whatever happens, never NotSent, and
    # never a silent second copy.
    answers = 0

    async def answer_then_close(writer: asyncio.StreamWriter) -> None:
        nonlocal answers
        answers += 1
        body = json.dumps(ACCEPTED).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with RawServer(answer_then_close) as server:
        client = make_client(server.base_url)
        assert isinstance(await client.sale(sale()), Answered)
        second = await client.sale(sale(txn="ORDER0002"))
        assert not isinstance(second, NotSent)
        assert len(server.requests) == answers == 2 or isinstance(second, Unknown)


# -- NotSent: provably never reached Paytm ----------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_not_sent(make_client: ClientFactory) -> None:
    records: list[CallRecord] = []
    client = make_client(f"http://127.0.0.1:{_closed_port()}", observer=records.append)
    outcome = await client.sale(sale())
    assert isinstance(outcome, NotSent), outcome
    assert "ClientConnectorError" in outcome.reason
    assert [(r.api, r.outcome, r.code) for r in records] == [("sale", "not_sent", None)]


class _Resolver(AbstractResolver):
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.release = asyncio.Event()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if self.fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        await self.release.wait()
        return []

    async def close(self) -> None:
        self.release.set()


async def test_dns_failure_is_not_sent(make_client: ClientFactory) -> None:
    resolver = _Resolver(fail=True)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
    outcome = await make_client("https://paytm.test", session=session).sale(sale())
    assert isinstance(outcome, NotSent), outcome
    assert "DNS" in outcome.reason


async def test_connect_timeout_is_not_sent(make_client: ClientFactory) -> None:
    # A DNS lookup that never ends: the `connect` timeout covers it, before any byte is sent.
    resolver = _Resolver(fail=False)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
    client = make_client("https://paytm.test", session=session, connect_timeout_s=FAST_S)
    outcome = await client.sale(sale())
    assert isinstance(outcome, NotSent), outcome
    assert "connect timeout" in outcome.reason
    resolver.release.set()


async def test_tls_handshake_failure_is_not_sent(make_client: ClientFactory) -> None:
    received: list[bytes] = []

    async def not_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(1024))  # the ClientHello
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_tls, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        outcome = await make_client(f"https://127.0.0.1:{port}").sale(sale())
        assert isinstance(outcome, NotSent), outcome
        assert b"POST" not in b"".join(received)
    finally:
        server.close()
        await server.wait_closed()


async def test_closed_session_is_not_sent(make_client: ClientFactory) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    outcome = await make_client("http://127.0.0.1:1", session=session).sale(sale())
    assert isinstance(outcome, NotSent)


# -- TLS with a private CA --------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    crypto = pytest.importorskip("cryptography")
    del crypto
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paytm-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_with_ca_file_and_without(tmp_path: Path, make_client: ClientFactory) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    server = FakePaytm()
    await server.start(ssl_context=server_context)
    try:
        url = f"https://127.0.0.1:{server.port}"
        trusted = make_client(url, ca_file=str(cert_path))
        assert isinstance(await trusted.sale(sale()), Answered)
        # The system store does not know this CA: the handshake fails, nothing is sent.
        untrusted = make_client(url)
        outcome = await untrusted.sale(sale(txn="ORDER0002"))
        assert isinstance(outcome, NotSent), outcome
        assert "Certificate" in outcome.reason
        assert [r.body["merchantTransactionId"] for r in server.requests] == [TXN]
    finally:
        await server.stop()


def test_ssl_context_requires_tls_1_2() -> None:
    context = ssl_context(PaytmConfig())
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"paytm\.ca_file"):
        ssl_context(PaytmConfig(ca_file=str(tmp_path / "nope.pem")))


@pytest.mark.parametrize("url", ["http://securegw-stage.paytm.in", "http://10.0.0.1:8900",
                                 "ftp://127.0.0.1", "https://", "not a url",
                                 "https://host:99999"])
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"paytm\.edc_base_url"):
        check_base_url(url)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://securegw-stage.paytm.in/", "https://securegw-stage.paytm.in"),
    ("http://127.0.0.1:8900", "http://127.0.0.1:8900"),
    ("http://localhost:8900/", "http://localhost:8900"),
    ("http://[::1]:8900", "http://[::1]:8900"),
])
def test_base_url_accepted(url: str, expected: str) -> None:
    assert check_base_url(url) == expected


async def test_client_refuses_plain_http_to_a_remote_host() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError, match=r"paytm\.edc_base_url"):
            EdcClient(session, PaytmConfig(edc_base_url="http://paytm.example"), KEY)


# -- bad requests never leave -----------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "field_name"), [
    ({"amount": "0100"}, "transactionAmount"),
    ({"amount": "0"}, "transactionAmount"),
    ({"amount": "10.00"}, "transactionAmount"),
    ({"amount": "1234567890123"}, "transactionAmount"),
    ({"amount": ""}, "transactionAmount"),
    ({"amount": "١٢٣"}, "transactionAmount"),  # Arabic-Indic digits are not ASCII digits
    ({"amount": 100}, "transactionAmount"),
    ({"txn": "ORD1"}, "merchantTransactionId"),
    ({"txn": "ORDER-0001"}, "merchantTransactionId"),
    ({"txn": "A" * 33}, "merchantTransactionId"),
    ({"txn": "ORDÉR0001"}, "merchantTransactionId"),
    ({"tid": "123456789"}, "paytmTid"),
    ({"tid": ""}, "paytmTid"),
    ({"reference": "R" * 33}, "merchantReferenceNo"),
    ({"reference": ""}, "merchantReferenceNo"),
    ({"txn_time": dt.datetime(2024, 1, 1, 10, 0)}, "transactionDateTime"),  # naive
    ({"payment_mode": "CASH"}, "merchantExtendedInfo.paymentMode"),
    ({"display_info": {"a": "1", "b": "2", "c": "3", "d": "4"}}, "displayInfo"),
    ({"display_info": {"a": 1}}, "displayInfo.a"),
    ({"print_info": {"a": None}}, "printInfo.a"),
    ({"extend_info": {"k": ["v"]}}, "extendInfo.k"),
    ({"extend_info": {"k": "v" * 1000}}, "extendInfo"),
    ({"display_info": ["a"]}, "displayInfo"),
])
async def test_invalid_sale_raises_before_sending(fake: FakePaytm, overrides: dict[str, Any],
                                                  field_name: str) -> None:
    with pytest.raises(FieldError) as caught:
        sale(**overrides)
    assert caught.value.field == field_name
    assert fake.requests == []


@pytest.mark.parametrize(("gst", "field_name"), [
    ({"gst_in": "29ABCDE1234F1Z5"}, "gstInformation.gstBrkUp"),
    ({"gst_in": "29ABCDE1234F1Z5", "breakup": "CGST:9", "invoice_no": "1"},
     "gstInformation.invoiceDate"),
    ({"gst_in": "G", "breakup": "B", "invoice_no": "N" * 21, "invoice_date": "20240101100000"},
     "gstInformation.invoiceNo"),
    ({"gst_in": "G", "breakup": "B", "invoice_no": "1", "invoice_date": "2024-01-01"},
     "gstInformation.invoiceDate"),
    ({"gst_in": "G", "breakup": "B", "invoice_no": "1", "invoice_date": "20241301100000"},
     "gstInformation.invoiceDate"),
    ({}, "gstInformation.gstIn"),
])
def test_invalid_gst(gst: dict[str, str], field_name: str) -> None:
    with pytest.raises(FieldError) as caught:
        GstInfo(**gst)
    assert caught.value.field == field_name


@pytest.mark.parametrize(("make", "field_name"), [
    (lambda: StatusRequest(tid=TID, txn="short", txn_time=TXN_TIME), "merchantTransactionId"),
    (lambda: StatusRequest(tid="X" * 9, txn=TXN, txn_time=TXN_TIME), "paytmTid"),
    (lambda: VoidRequest(tid=TID, txn=TXN, txn_time=dt.datetime(2024, 1, 1)),
     "transactionDateTime"),
    (lambda: VoidRequest(tid=TID, txn="bad id!", txn_time=TXN_TIME), "merchantTransactionId"),
])
def test_invalid_status_and_void(make: Callable[[], object], field_name: str) -> None:
    with pytest.raises(FieldError) as caught:
        make()
    assert caught.value.field == field_name


def test_request_maps_are_private_copies() -> None:
    display = {"Bill": "1"}
    req = sale(display_info=display)
    display["Bill"] = "2"
    display["Extra"] = "x"
    assert dict(req.display_info) == {"Bill": "1"}
    with pytest.raises(TypeError):
        req.display_info["Bill"] = "3"  # type: ignore[index]


# -- observer ---------------------------------------------------------------------------------


async def test_observer_sees_every_call(fake: FakePaytm, make_client: ClientFactory) -> None:
    records: list[CallRecord] = []
    client = make_client(fake.base_url, observer=records.append)
    await client.sale(sale())
    fake.answer(document(info("SUCCESS", "S", "0000")))
    await client.status(status())
    fake.responder = fake.reply_text("oops", 500)
    await client.void(VoidRequest(tid=TID, txn=TXN, txn_time=TXN_TIME))
    assert [(r.api, r.txn, r.outcome, r.code) for r in records] == [
        ("sale", TXN, "answered", "0009"), ("status", TXN, "answered", "0000"),
        ("void", TXN, "unknown", None)]
    assert all(r.latency_s >= 0 and r.wall_time.tzinfo is not None for r in records)
    assert records[0].server_time == dt.datetime(2024, 1, 1, 10, 0, 1, tzinfo=IST)
    skew = records[0].clock_skew_s
    assert skew is not None and skew < 0  # the fake's clock is stuck in 2024
    assert records[2].reason is not None and "500" in records[2].reason
    assert records[2].clock_skew_s is None


async def test_failing_observer_does_not_break_the_call(fake: FakePaytm,
                                                        make_client: ClientFactory) -> None:
    def broken(_: CallRecord) -> None:
        raise RuntimeError("diagnostics bug")
    outcome = await make_client(fake.base_url, observer=broken).sale(sale())
    assert isinstance(outcome, Answered)


async def test_merchant_key_is_never_logged(fake: FakePaytm, make_client: ClientFactory,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="agent.paytm")
    await make_client(fake.base_url).sale(sale())
    assert "POST" in caplog.text  # the request body is logged at DEBUG ...
    assert KEY_TEXT not in caplog.text  # ... the key never


# -- parsers on arbitrary input ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELD_VALUES = st.one_of(st.none(), st.integers(), st.sampled_from(
    ["A", "F", "S", "P", "X", "", "ACCEPTED_SUCCESS", "SUCCESS", "FAIL", "FAILED", "PENDING",
     "0000", "0009", "0011", "0090", "0180", "0404", "0012", "0330", "null", "a"]), st.text())
PAYTM_SHAPED = st.fixed_dictionaries({
    "head": st.one_of(JSON_VALUES, st.fixed_dictionaries({"responseTimeStamp": st.one_of(
        st.text(), st.just("2024-01-01 10:00:00"), st.integers())})),
    "body": st.dictionaries(
        st.sampled_from(["merchantTransactionId", "transactionAmount", "authCode",
                         "issuerMaskCardNo", "payMethod", "retrievalReferenceNo", "other"]),
        FIELD_VALUES, max_size=5).flatmap(lambda body: st.fixed_dictionaries({
            **{k: st.just(v) for k, v in body.items()},
            "resultInfo": st.one_of(JSON_VALUES, st.dictionaries(
                st.sampled_from(["resultStatus", "resultCode", "resultCodeId", "resultMsg"]),
                FIELD_VALUES, max_size=4)),
        })),
})


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON_VALUES, PAYTM_SHAPED), st.booleans())
def test_parsers_never_raise(doc: object, void: bool) -> None:
    sale_answer = parse_request_answer(doc, TXN)
    status_answer = parse_status_answer(doc, void, TXN)
    response_time(doc)
    assert isinstance(sale_answer, RequestAnswer | Unknown)
    assert isinstance(status_answer, StatusAnswer | Unknown)
    # The money-safety rules hold for whatever Paytm sends.
    if isinstance(sale_answer, RequestAnswer) and not sale_answer.accepted:
        assert sale_answer.known is not None
    if isinstance(status_answer, StatusAnswer) and status_answer.state is StatusState.FAILED:
        assert status_answer.code == ("0090" if void else "0011")
    if isinstance(status_answer, StatusAnswer) and status_answer.state is StatusState.SUCCESS:
        assert status_answer.code in ("0000", "")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=100, max_value=599), st.binary(max_size=200))
def test_decode_never_raises(http_status: int, raw: bytes) -> None:
    decode_response(http_status, raw)


def test_deeply_nested_json_is_unknown() -> None:
    outcome = decode_response(200, b"[" * 100_000 + b"]" * 100_000)
    assert isinstance(outcome, Unknown)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-01 10:00:00", dt.datetime(2024, 1, 1, 10, tzinfo=IST)),
    ("2020-09-03 16:51:41.0", dt.datetime(2020, 9, 3, 16, 51, 41, tzinfo=IST)),
    (" 2024-01-01 10:00:00 ", dt.datetime(2024, 1, 1, 10, tzinfo=IST)),
    ("2024-02-30 10:00:00", None), ("2024-01-01T10:00:00", None), ("", None),
    ("２０２４-01-01 10:00:00", None), (None, None), (20240101, None),
])
def test_parse_paytm(text: object, expected: dt.datetime | None) -> None:
    assert parse_paytm(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parse_paytm_never_raises(text: str) -> None:
    parse_paytm(text)


def test_format_paytm_converts_to_ist_and_refuses_naive() -> None:
    assert format_paytm(dt.datetime(2024, 1, 1, 18, 30, tzinfo=dt.UTC)) == "2024-01-02 00:00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_paytm(dt.datetime(2024, 1, 1))

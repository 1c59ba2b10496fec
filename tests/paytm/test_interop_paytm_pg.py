"""Interop: Paytm's official PG SDK (`paytm-pg` on PyPI, installed by the test extra, not
copied) calls the emulator's Transaction Status, Refund and Refund Status and succeeds.

The SDK is strict where Paytm's real answers are: it cuts the body out of the raw answer by
looking for `"body":{` (compact JSON only) and verifies `head.signature` over exactly that
text; its own head sends `requestTimestamp` as `str(datetime.now())` without spaces and
`version` "v2". It is synchronous (`requests`), so it runs in a worker thread while the
emulator serves on this event loop's loopback socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from paytmpg.merchant.models.PaymentStatusDetail import PaymentStatusDetailBuilder
from paytmpg.merchant.models.RefundDetail import RefundDetailBuilder
from paytmpg.merchant.models.RefundStatusDetail import RefundStatusDetailBuilder
from paytmpg.pg.constants.LibraryConstants import LibraryConstants
from paytmpg.pg.constants.MerchantProperty import MerchantProperty
from paytmpg.pg.Payment import Payment
from paytmpg.pg.Refund import Refund

from agent.paytm.clock import now_ist
from agent.paytm.outcome import Answered
from agent.paytm.pg import PgClient
from agent.paytm.pg_models import SendLinkRequest
from agent.sim.paytm import DEMO_KEY, DEMO_MID, Emulator
from devtools.config import CLIENT_DEMO_KEY
from devtools.paytm import LINK_LIFETIME, POS, paytm_config

DEMO_KEY_TEXT = DEMO_KEY.secret_bytes.decode()
SDK_URLS = ("payment_status_url", "refund_url", "refund_status_url")


@pytest.fixture
def sdk(emulator: Emulator) -> Iterator[None]:
    """The SDK's merchant set-up (class-level state) pointed at the loopback emulator."""
    saved = {name: getattr(MerchantProperty, name) for name in
             (*SDK_URLS, "mid", "merchant_key", "client_id", "website", "environment",
              "is_initialized")}
    MerchantProperty.initialize(LibraryConstants.STAGING_ENVIRONMENT, DEMO_MID, DEMO_KEY_TEXT,
                                "C11", "WEBSTAGING")
    base = emulator.base_url
    MerchantProperty.payment_status_url = base + "/v3/order/status"
    MerchantProperty.refund_url = base + "/refund/apply"
    MerchantProperty.refund_status_url = base + "/v2/refund/status"
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(MerchantProperty, name, value)


@pytest.fixture
async def paid_link(emulator: Emulator) -> AsyncIterator[str]:
    """An order paid by UPI (sent with our client; the SDK has no Send Payment Request)."""
    async with aiohttp.ClientSession() as session:
        client = PgClient(session, paytm_config(emulator.base_url), CLIENT_DEMO_KEY)
        link = SendLinkRequest(order_id="SDKORDER01", amount_paise="130300", pos_id=POS,
                               phone="9876543210", expiry=now_ist() + LINK_LIFETIME)
        assert isinstance(await client.send_link(link), Answered)
    assert emulator.link("SDKORDER01")["status"] == "paid"  # customer_delay_s = 0: at once
    yield "SDKORDER01"


def _result(response: Any) -> tuple[str, str, str]:
    info = response.get_response_object().get_body().get_result_info()
    return info.get_result_status(), info.get_result_code(), info.get_result_msg()


async def test_sdk_transaction_status_of_a_paid_link(sdk: None, paid_link: str) -> None:
    detail = PaymentStatusDetailBuilder(paid_link).build()
    response = await asyncio.to_thread(Payment.getPaymentStatus, detail)
    assert _result(response) == ("TXN_SUCCESS", "01", "Txn Success")
    body = response.get_response_object().get_body()
    assert (body.get_order_id(), body.get_txn_amount(), body.get_payment_mode()) == (
        paid_link, "1303.00", "UPI")
    assert len(body.get_txn_id()) == 35


async def test_sdk_transaction_status_of_an_unknown_order(sdk: None) -> None:
    detail = PaymentStatusDetailBuilder("SDKNOSUCH1").build()
    response = await asyncio.to_thread(Payment.getPaymentStatus, detail)
    assert _result(response)[:2] == ("NO_RECORD_FOUND", "334")


async def test_sdk_refund_and_refund_status(emulator: Emulator, sdk: None,
                                            paid_link: str) -> None:
    payment = emulator.link(paid_link)["payment"]
    assert isinstance(payment, dict)
    txn_id = payment["txn_id"]
    refund = RefundDetailBuilder(paid_link, "SDKREF0001", txn_id, "REFUND", "100.00").build()
    applied = await asyncio.to_thread(Refund.doRefund, refund)
    assert _result(applied)[:2] == ("PENDING", "601"), applied.get_json_response()
    body = applied.get_response_object().get_body()
    assert (body.get_order_id(), body.get_ref_id(), body.get_refund_amount()) == (
        paid_link, "SDKREF0001", "100.00")

    builder = RefundStatusDetailBuilder()
    builder.set_order_id(paid_link)
    builder.set_ref_id("SDKREF0001")
    status_detail = builder.build()
    pending = await asyncio.to_thread(Refund.getRefundStatus, status_detail)
    assert _result(pending)[:2] == ("PENDING", "601")
    emulator.advance(emulator.settings.refund_delay_s)
    done = await asyncio.to_thread(Refund.getRefundStatus, status_detail)
    assert _result(done)[:2] == ("TXN_SUCCESS", "10"), done.get_json_response()
    assert done.get_response_object().get_body().get_total_refunded_amount() == "100.00"


async def test_sdk_refuses_an_answer_signed_with_another_key(sdk: None,
                                                             paid_link: str) -> None:
    # The SDK really verifies: with the wrong key the same success answer is refused.
    MerchantProperty.set_merchant_key("WRONGKEY12345678")
    detail = PaymentStatusDetailBuilder(paid_link).build()
    response = await asyncio.to_thread(Payment.getPaymentStatus, detail)
    status, _, message = _result(response)
    assert status != "TXN_SUCCESS", message

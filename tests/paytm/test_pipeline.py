"""The signed-call pipeline both clients share: one order of steps, and logs that never
carry a customer's phone number (the DEBUG request and answer traces mask it)."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from agent.paytm.clock import now_ist
from agent.paytm.edc import EdcClient, SaleRequest
from agent.paytm.outcome import Answered
from agent.paytm.pg import PgClient
from agent.paytm.pg_models import SendLinkRequest
from agent.paytm.pipeline import mask_phone, mask_phones
from agent.sim.paytm import DEMO_TIDS, Emulator
from devtools.config import CLIENT_DEMO_KEY
from devtools.paytm import LINK_LIFETIME, POS, paytm_config

PHONE = "9876543210"


def test_mask_phone_keeps_the_last_four_digits() -> None:
    assert mask_phone(PHONE) == "XXXXXX3210"
    assert mask_phone("123") == "XXX"
    assert mask_phones('{"userPhoneNo": "9876543210", "x": "9876543210"}') == (
        '{"userPhoneNo": "XXXXXX3210", "x": "9876543210"}')
    assert mask_phones('{"merchantExtendedInfo":{"phoneNumber":"9999912345"}}') == (
        '{"merchantExtendedInfo":{"phoneNumber":"XXXXXX2345"}}')


async def test_debug_logs_of_both_clients_mask_the_phone(emulator: Emulator,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.paytm")
    async with aiohttp.ClientSession() as session:
        cfg = paytm_config(emulator.base_url)
        pg = PgClient(session, cfg, CLIENT_DEMO_KEY)
        link = SendLinkRequest(order_id="MASKED0001", amount_paise="130300", pos_id=POS,
                               phone=PHONE, expiry=now_ist() + LINK_LIFETIME)
        assert isinstance(await pg.send_link(link), Answered)
        edc = EdcClient(session, cfg, CLIENT_DEMO_KEY)
        assert isinstance(await edc.sale(SaleRequest(tid=DEMO_TIDS[0], txn="MASKED0002",
                                                     amount="100", txn_time=now_ist())),
                          Answered)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST " in text and "HTTP 200" in text  # the request and answer traces ran
    assert PHONE not in text
    assert "XXXXXX3210" in text

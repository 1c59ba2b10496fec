"""Interop: EDC requests shaped as Odoo's `pos_paytm` sends them in production, signed with
Paytm's own `paytmchecksum` (PyPI), are accepted by the emulator.

Written from the published facts about that integration (reference §2.5, §3, §4.2, §5.1),
not from its code:
- the body's top-level fields are strings, including `paymentMode` and `autoAccept`, and
  the params-mode checksum is computed over exactly that flat dict;
- `merchantExtendedInfo` (an object) is added to the body *after* signing;
- a new attempt after a failure uses `<order>retry<n>` as merchantTransactionId;
- Status Enquiry sends the original sale's transactionDateTime; the one-letter result
  arrives in `resultCode`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import paytmchecksum

from agent.sim.paytm import DEMO_MID, DEMO_TIDS, Emulator
from devtools.config import DEMO_KEY_TEXT

IST = timezone(timedelta(hours=5, minutes=30))
TID = DEMO_TIDS[0]


def _ist_now() -> str:
    return datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")


async def _post(session: aiohttp.ClientSession, url: str, flat: dict[str, str],
                extended: dict[str, str] | None = None) -> dict[str, Any]:
    checksum = paytmchecksum.generateSignature(dict(flat), DEMO_KEY_TEXT)
    body: dict[str, object] = dict(flat)
    if extended is not None:
        body["merchantExtendedInfo"] = extended  # after signing, as Odoo does
    document = {"head": {"requestTimeStamp": _ist_now(), "channelId": "EDC",
                         "checksum": checksum},
                "body": body}
    async with session.post(url, data=json.dumps(document),
                            headers={"Content-Type": "application/json"}) as response:
        assert response.status == 200
        answer = await response.json()
        assert isinstance(answer, dict)
        return answer


def _sale(order: str, amount: str, mode: str, started: str) -> dict[str, str]:
    return {"paytmMid": DEMO_MID, "paytmTid": TID, "transactionDateTime": started,
            "merchantTransactionId": order, "merchantReferenceNo": order[:32],
            "transactionAmount": amount, "paymentMode": mode, "autoAccept": "True"}


def _status(order: str, started: str) -> dict[str, str]:
    return {"paytmMid": DEMO_MID, "paytmTid": TID, "transactionDateTime": started,
            "merchantTransactionId": order}


def _letter_and_code(answer: dict[str, Any]) -> tuple[str, str]:
    info = answer["body"]["resultInfo"]
    return info["resultCode"], info["resultCodeId"]


async def test_odoo_shaped_sale_declined_then_retried_and_paid_by_qr(emulator: Emulator) -> None:
    base = emulator.base_url
    async with aiohttp.ClientSession() as session:
        started = _ist_now()
        first = _sale("Order0000420001", "1001", "QR", started)  # ends in 01: declined
        sale = await _post(session, base + "/ecr/payment/request", first,
                           {"paymentMode": "QR", "autoAccept": "True"})
        assert _letter_and_code(sale) == ("A", "0009"), sale
        status = await _post(session, base + "/ecr/V2/payment/status",
                             _status("Order0000420001", started))
        assert _letter_and_code(status) == ("F", "0011"), status

        # The same order id again is a duplicate; Odoo's retry id is accepted.
        again = await _post(session, base + "/ecr/payment/request", first,
                            {"paymentMode": "QR", "autoAccept": "True"})
        assert _letter_and_code(again) == ("F", "0233")
        retry_started = _ist_now()
        retry = _sale("Order0000420001retry1", "1000", "QR", retry_started)
        accepted = await _post(session, base + "/ecr/payment/request", retry,
                               {"paymentMode": "QR", "autoAccept": "True"})
        assert _letter_and_code(accepted) == ("A", "0009"), accepted
        paid = await _post(session, base + "/ecr/V2/payment/status",
                           _status("Order0000420001retry1", retry_started))
    assert _letter_and_code(paid) == ("S", "0000"), paid
    body = paid["body"]
    # paymentMode QR honoured: a UPI payment, and the reference Odoo checks is echoed.
    assert (body["payMethod"], body["issuerMaskCardNo"]) == ("UPI", None)
    assert body["merchantReferenceNo"] == "Order0000420001retry1"
    assert body["transactionAmount"] == "1000"


async def test_odoo_shaped_card_sale_is_paid_by_card(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        started = _ist_now()
        sale = await _post(session, emulator.base_url + "/ecr/payment/request",
                           _sale("Order0000430001", "1006", "CARD", started),
                           {"paymentMode": "CARD", "autoAccept": "True"})
        assert _letter_and_code(sale) == ("A", "0009"), sale
        status = await _post(session, emulator.base_url + "/ecr/V2/payment/status",
                             _status("Order0000430001", started))
    assert _letter_and_code(status) == ("S", "0000")
    assert status["body"]["payMethod"] == "CARD"  # 06 would be UPI; CARD decides


async def test_signing_the_extended_info_too_is_refused(emulator: Emulator) -> None:
    # The other half of the evidence (§2.5): a checksum over a body that includes the
    # nested object does not match the emulator's params mode, as integrators report.
    flat = _sale("Order0000440001", "1000", "ALL", _ist_now())
    signed_with_object = {**flat, "merchantExtendedInfo": json.dumps({"paymentMode": "ALL"})}
    checksum = paytmchecksum.generateSignature(signed_with_object, DEMO_KEY_TEXT)
    document = {"head": {"requestTimeStamp": _ist_now(), "channelId": "EDC",
                         "checksum": checksum},
                "body": {**flat, "merchantExtendedInfo": {"paymentMode": "ALL"}}}
    async with aiohttp.ClientSession() as session, session.post(
            emulator.base_url + "/ecr/payment/request", data=json.dumps(document),
            headers={"Content-Type": "application/json"}) as response:
        answer = await response.json()
    assert _letter_and_code(answer) == ("F", "0330")

"""The emulator's EDC APIs over loopback HTTP, with requests signed by hand."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from agent.paytm.checksum import ChecksumMode, MerchantKey, generate
from agent.sim.paytm import (
    DEMO_INACTIVE_TID,
    DEMO_MID,
    Emulator,
    EmulatorSettings,
    Merchant,
    ResultStyle,
    StateError,
    Terminal,
    UnknownError,
    demo_bench_tid,
)
from agent.sim.paytm.signature import ChecksumMode as EmulatorMode
from agent.sim.paytm.signature import SimKey
from tests.sim.paytm.raw import STAMP, TID, TID2, Answer, RawPaytm, running

TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# Seed 003: 0002 reads exactly this; the emulator names the field in emulatorDetail.
PAYTM_INVALID = "Request Parameters are not valid"


def names(answer: Answer, field: str) -> bool:
    """A 0002 in Paytm's exact words whose emulator detail names `field`."""
    return answer.msg == PAYTM_INVALID and answer.detail.startswith(field)


# ---------------------------------------------------------------------------
# Sale: accepted, and the shape of the answer


async def test_sale_accepted_echoes_and_observed_style(paytm: RawPaytm) -> None:
    answer = await paytm.sale("ORDER0001")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    head = answer.json["head"]
    assert TIMESTAMP_RE.fullmatch(head["responseTimeStamp"])
    assert head["channelId"] == "EDC" and head["version"] == "3.1"
    assert answer.body["merchantTransactionId"] == "ORDER0001"
    assert answer.body["paytmMid"] == DEMO_MID and answer.body["paytmTid"] == TID
    assert answer.info == {"resultStatus": "ACCEPTED_SUCCESS", "resultCode": "A",
                           "resultCodeId": "0009", "resultMsg": "ACCEPTED_SUCCESS"}


async def test_documented_result_style_swaps_letter_and_word() -> None:
    async with running(EmulatorSettings(result_style=ResultStyle.DOCUMENTED)) as (_, paytm):
        sale = await paytm.sale("ORDER0001")
        assert sale.info["resultStatus"] == "A"
        assert sale.info["resultCode"] == "ACCEPTED_SUCCESS"
        status = await paytm.status("ORDER0001")
        assert (status.info["resultStatus"], status.info["resultCode"]) == ("S", "SUCCESS")
        refused = await paytm.sale("ORDER0001")
        assert (refused.info["resultStatus"], refused.code) == ("F", "0233")


async def test_response_timestamp_is_ist_whatever_the_host_zone() -> None:
    settings = EmulatorSettings(wall_clock=lambda: 0.0)  # 1970-01-01 00:00:00 UTC
    async with running(settings) as (emu, paytm):
        answer = await paytm.sale("ORDER0001")
        assert answer.json["head"]["responseTimeStamp"] == "1970-01-01 05:30:00"
        emu.advance(60)
        later = await paytm.status("ORDER0001")
        assert later.json["head"]["responseTimeStamp"] == "1970-01-01 05:31:00"


async def test_head_without_version_is_answered_without_version(paytm: RawPaytm) -> None:
    answer = await paytm.post("sale", paytm.sale_body("ORDER0001"), head={"version": None})
    assert answer.code == "0009"
    assert "version" not in answer.json["head"]


# ---------------------------------------------------------------------------
# Checksum, both modes


async def test_tampered_amount_is_invalid_checksum(paytm: RawPaytm) -> None:
    signed = paytm.sale_body("ORDER0001", amount="100")
    sent = paytm.sale_body("ORDER0001", amount="900")
    answer = await paytm.post("sale", sent, sign=signed)
    assert (answer.letter, answer.code, answer.msg) == ("F", "0330", "Invalid checksum")


@pytest.mark.parametrize("checksum", [None, "", "x" * 108, 12345])
async def test_missing_or_garbage_checksum_is_0330(paytm: RawPaytm, checksum: object) -> None:
    answer = await paytm.post("sale", paytm.sale_body("ORDER0001"), head={"checksum": checksum})
    assert answer.code == "0330"


async def test_wrong_key_is_0330(emulator: Emulator, paytm: RawPaytm) -> None:
    paytm.key = MerchantKey(b"WRONGKEY12345678")
    assert (await paytm.sale("ORDER0001")).code == "0330"
    assert (await paytm.status("ORDER0001")).code == "0330"
    assert (await paytm.void("ORDER0001")).code == "0330"
    assert emulator.transactions() == []


async def test_params_mode_leaves_nested_objects_unsigned(paytm: RawPaytm) -> None:
    # Reference §2.5: only top-level strings are signed, so a nested object may change.
    signed = paytm.sale_body("ORDER0001", merchantExtendedInfo={"paymentMode": "ALL"})
    sent = paytm.sale_body("ORDER0001", merchantExtendedInfo={"paymentMode": "CARD"})
    assert (await paytm.post("sale", sent, sign=signed)).code == "0009"


async def test_json_mode_signs_the_exact_body_text() -> None:
    async with running(EmulatorSettings(checksum_mode=EmulatorMode.JSON)) as (_, paytm):
        body = paytm.sale_body("ORDER0001", merchantExtendedInfo={"paymentMode": "ALL"})
        assert (await paytm.post("sale", body)).code == "0009"
        tampered = paytm.sale_body("ORDER0002", merchantExtendedInfo={"paymentMode": "QR"})
        signed = paytm.sale_body("ORDER0002", merchantExtendedInfo={"paymentMode": "ALL"})
        assert (await paytm.post("sale", tampered, sign=signed)).code == "0330"
        # A params-mode signature is not a json-mode one.
        paytm.mode = ChecksumMode.PARAMS
        assert (await paytm.sale("ORDER0003")).code == "0330"
        paytm.mode = ChecksumMode.JSON
        assert (await paytm.status("ORDER0001")).code == "0000"


async def test_json_mode_verifies_the_body_as_received_not_reserialised() -> None:
    async with running(EmulatorSettings(checksum_mode=EmulatorMode.JSON)) as (_, paytm):
        # Odd spacing on purpose: a re-serialised copy would not match this text.
        body_text = ('{ "paytmMid":"' + DEMO_MID + '",  "paytmTid":"' + TID
                     + '","transactionDateTime":"' + STAMP
                     + '","merchantTransactionId":"ORDER0001","transactionAmount":"100"}')
        checksum = generate(body_text, paytm.key)
        text = ('{"body": ' + body_text + ', "head": {"requestTimeStamp": "' + STAMP
                + '", "channelId": "EDC", "checksum": "' + checksum + '"}}')
        assert (await paytm.post_raw("sale", text)).code == "0009"


# ---------------------------------------------------------------------------
# Field validation: 0002 naming the field, and the option codes


@pytest.mark.parametrize(("field", "value"), [
    ("paytmTid", "123456789"),
    ("paytmTid", 12345678),
    ("merchantTransactionId", "SHORT01"),
    ("merchantTransactionId", "ORDER-0001"),
    ("merchantTransactionId", "A" * 33),
    ("transactionAmount", "0100"),
    ("transactionAmount", "10.00"),
    ("transactionAmount", "1234567890123"),
    ("transactionAmount", 100),
    ("transactionAmount", "١٠٠"),  # Arabic-Indic digits are not digits to Paytm
    ("transactionDateTime", "2024-01-01T10:00:00"),
    ("transactionDateTime", "2024-13-01 10:00:00"),
    ("merchantReferenceNo", "R" * 33),
    ("merchantExtendedInfo", ["ALL"]),
    ("paymentMode", "UPI"),
    ("autoAccept", "yes"),
    ("printInfo", {"line": 5}),
    ("retryCount", "1234"),
    ("timeoutConfig", "61"),
    ("subWalletInfo", "FOOD=50"),
])
async def test_invalid_field_is_0002_naming_it(paytm: RawPaytm, field: str, value: Any) -> None:
    body = paytm.sale_body("ORDER0001", **{field: value})
    answer = await paytm.post("sale", body)
    assert (answer.letter, answer.code) == ("F", "0002")
    assert names(answer, field), answer.msg


@pytest.mark.parametrize("missing", ["paytmMid", "paytmTid", "transactionDateTime",
                                     "merchantTransactionId", "transactionAmount"])
async def test_missing_mandatory_field_is_0002(paytm: RawPaytm, missing: str) -> None:
    body = paytm.sale_body("ORDER0001")
    del body[missing]
    answer = await paytm.post("sale", body)
    assert answer.code == "0002" and names(answer, missing)


@pytest.mark.parametrize(("head", "field"), [
    ({"requestTimeStamp": "01-01-2024 10:00:00"}, "requestTimeStamp"),
    ({"requestTimeStamp": None}, "requestTimeStamp"),
    ({"channelId": None}, "channelId"),
    ({"channelId": "C" * 33}, "channelId"),
    ({"version": "v" * 65}, "version"),
])
async def test_invalid_head_is_0002(paytm: RawPaytm, head: dict[str, object],
                                    field: str) -> None:
    answer = await paytm.post("sale", paytm.sale_body("ORDER0001"), head=head)
    assert answer.code == "0002" and names(answer, field), answer.msg


async def test_status_head_channel_is_optional(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001")
    answer = await paytm.post("status", paytm.status_body("ORDER0001"), head={"channelId": None})
    assert answer.code == "0000"


@pytest.mark.parametrize("extra", [
    {"merchantExtendedInfo": {"paymentMode": "card", "autoAccept": "True"}},
    {"merchantExtendedInfo": {"PaymentMode": "All"}},  # Paytm's own curl sample
    {"paymentMode": "QR", "autoAccept": "false"},  # Odoo's top-level copies
    {"merchantReferenceNo": "INV42", "extendInfo": {"till": "3"}},
    {"gstInformation": {"gstIn": "bad"}},  # partly filled: ignored, as documented
    {"gstInformation": {"gstIn": "27AAAPA1234A1Z5", "gstBrkUp": "CGST:9|SGST:9",
                        "invoiceNo": "INV42", "invoiceDate": "20240101100000"}},
    {"displayInfo": {"Order": "42", "Table": "7", "Guest": "Asha"}},
    {"printInfo": {"Bill": "INV42", "Cashier": "Ravi"}},
    {"subWalletInfo": "FOOD:50|GIFT:50"},
    {"splitType": "POST_FACTO"},
    {"timeoutConfig": "30"},
    {"retryCount": "1"},
])
async def test_valid_options_are_accepted(paytm: RawPaytm, extra: dict[str, object]) -> None:
    body = paytm.sale_body("ORDER0001") | extra
    assert (await paytm.post("sale", body)).code == "0009"


@pytest.mark.parametrize("field", ["gstIn", "gstBrkUp", "invoiceNo", "invoiceDate"])
async def test_complete_gst_information_is_validated(paytm: RawPaytm, field: str) -> None:
    gst = {"gstIn": "27AAAPA1234A1Z5", "gstBrkUp": "CGST:9|SGST:9", "invoiceNo": "INV42",
           "invoiceDate": "20240101100000"}
    gst[field] = {"gstIn": "27AAAPA", "gstBrkUp": "CGST=9", "invoiceNo": "I" * 21,
                  "invoiceDate": "20241301100000"}[field]
    answer = await paytm.sale("ORDER0001", gstInformation=gst)
    assert answer.code == "0002" and names(answer, "gstInformation." + field)


@pytest.mark.parametrize("display", [
    {"a": "1", "b": "2", "c": "3", "d": "4"},  # more than 3 entries
    {"Order": "V" * 21},  # value over 20
    {"K" * 11: "1"},  # key over 10
])
async def test_display_info_too_long_is_1810(paytm: RawPaytm, display: dict[str, str]) -> None:
    answer = await paytm.sale("ORDER0001", displayInfo=display)
    assert (answer.letter, answer.code) == ("F", "1810")


@pytest.mark.parametrize(("extra", "code"), [
    ({"subWalletInfo": "FOOD:60|GIFT:50"}, "1809"),
    ({"splitType": "LATER"}, "1825"),
    ({"splitType": "POST_FACTO", "splitInfo": {"splitMethod": "PERCENTAGE"}}, "1813"),
    ({"timeoutConfig": "30", "splitInfo": {"splitMethod": "PERCENTAGE"}}, "1815"),
    ({"timeoutConfig": "30", "splitType": "AT_TXN"}, "1814"),
])
async def test_option_conflicts_have_their_codes(paytm: RawPaytm, extra: dict[str, object],
                                                 code: str) -> None:
    body = paytm.sale_body("ORDER0001") | extra
    assert (await paytm.post("sale", body)).code == code


async def test_mid_of_21_characters_and_amount_of_12_digits_are_fine(paytm: RawPaytm) -> None:
    assert len(DEMO_MID) == 21
    assert (await paytm.sale("ORDER0001", amount="999999999999")).code == "0009"


# ---------------------------------------------------------------------------
# Merchants and terminals


async def test_unknown_mid_or_tid_is_0029(paytm: RawPaytm) -> None:
    paytm.mid = "OTHERMID0000000000001"
    assert (await paytm.sale("ORDER0001")).code == "0029"
    paytm.mid = DEMO_MID
    assert (await paytm.sale("ORDER0001", tid="11111111")).code == "0029"
    assert (await paytm.status("ORDER0001", tid="11111111")).code == "0029"


async def test_bench_terminals_are_a_range(paytm: RawPaytm) -> None:
    assert (await paytm.sale("BENCH0001", tid=demo_bench_tid(1))).code == "0009"
    assert (await paytm.sale("BENCH0999", tid=demo_bench_tid(999))).code == "0009"
    assert (await paytm.sale("BENCH1000", tid="70001000")).code == "0029"
    assert (await paytm.sale("BENCH0000", tid="70000000")).code == "0029"


async def test_inactive_terminal_is_0007(emulator: Emulator, paytm: RawPaytm) -> None:
    answer = await paytm.sale("ORDER0001", tid=DEMO_INACTIVE_TID)
    assert (answer.letter, answer.code) == ("F", "0007")
    emulator.set_terminal_active(TID, False)
    assert (await paytm.sale("ORDER0002")).code == "0007"
    emulator.set_terminal_active(TID, True)
    assert (await paytm.sale("ORDER0002")).code == "0009"
    with pytest.raises(UnknownError):
        emulator.set_terminal_active("55555555", True)


async def test_merchant_of_settings_with_its_own_key_and_terminals() -> None:
    key = MerchantKey(b"ABCDEFGHIJKLMNOP")
    merchant = Merchant("SHOPMID0001", SimKey(key.secret_bytes), (Terminal("T0000001"),))
    async with running(EmulatorSettings(merchants=(merchant,)), key=key,
                       mid="SHOPMID0001") as (_, paytm):
        assert (await paytm.sale("ORDER0001", tid="T0000001")).code == "0009"
        assert (await paytm.sale("ORDER0002", tid=TID)).code == "0029"
        paytm.mid = DEMO_MID
        assert (await paytm.sale("ORDER0003", tid="T0000001")).code == "0029"


# ---------------------------------------------------------------------------
# One open request per terminal, unique ids


async def test_busy_terminal_is_0333_until_the_first_sale_ends(emulator: Emulator,
                                                               paytm: RawPaytm) -> None:
    assert (await paytm.sale("ORDER0001", amount="102")).code == "0009"  # never pays
    busy = await paytm.sale("ORDER0002")
    assert (busy.letter, busy.code) == ("F", "0333")
    assert (await paytm.sale("ORDER0003", tid=TID2)).code == "0009"  # other terminal is free
    emulator.advance(60)  # the terminal gives up on the customer
    assert (await paytm.sale("ORDER0002")).code == "0009"


async def test_finished_sale_frees_the_terminal(paytm: RawPaytm) -> None:
    for n in range(3):
        assert (await paytm.sale(f"ORDER000{n}")).code == "0009"


async def test_reused_id_is_0233_even_on_another_terminal(paytm: RawPaytm) -> None:
    assert (await paytm.sale("ORDER0001")).code == "0009"
    again = await paytm.sale("ORDER0001")
    assert (again.letter, again.code, again.msg) == ("F", "0233", "Duplicate Order Id..!")
    assert (await paytm.sale("ORDER0001", tid=TID2)).code == "0233"


async def test_refused_sale_does_not_use_up_its_id(paytm: RawPaytm) -> None:
    assert (await paytm.sale("ORDER0001", tid=DEMO_INACTIVE_TID)).code == "0007"
    assert (await paytm.sale("ORDER0001")).code == "0009"


# ---------------------------------------------------------------------------
# Status Enquiry and the magic amounts


def _card_fields(body: dict[str, Any]) -> None:
    assert body["payMethod"] == "CARD"
    assert body["cardScheme"] in ("VISA", "RUPAY", "MASTERCARD")
    assert body["cardType"] in ("CREDIT_CARD", "DEBIT_CARD")
    assert re.fullmatch(r"\d{4}X{8}\d{4}", body["issuerMaskCardNo"])
    assert re.fullmatch(r"\d{12}", body["retrievalReferenceNo"])
    assert re.fullmatch(r"\d{35}", body["acquirementId"])
    assert body["issuingBankName"] and body["aid"].startswith("A0000")


async def test_card_success_has_realistic_fields(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="12399", merchantReferenceNo="INV42",
                     merchantExtendedInfo={"paymentMode": "ALL"}, extendInfo={"till": "3"})
    answer = await paytm.status("ORDER0001")
    assert (answer.letter, answer.code) == ("S", "0000")
    assert answer.info["resultStatus"] == "SUCCESS"
    body = answer.body
    _card_fields(body)
    assert re.fullmatch(r"\d{6}", body["authCode"])
    assert body["bankResponseCode"] == "00"
    assert body["merchantReferenceNo"] == "INV42"
    assert body["transactionAmount"] == "12399"
    assert body["transactionDateTime"] == STAMP
    assert body["merchantExtendedInfo"] == {"paymentMode": "ALL"}
    assert body["extendedInfo"] == {"till": "3"}
    assert (body["paytmMid"], body["paytmTid"], body["merchantTransactionId"]) == (
        DEMO_MID, TID, "ORDER0001")
    # Every field name of reference §5.2 is there.
    for name in ("acquirementId", "retrievalReferenceNo", "authCode", "issuerMaskCardNo",
                 "issuingBankName", "issuingBankId", "cardType", "cardScheme", "payMethod",
                 "aid", "bankResponseCode", "bankResponseMessage", "bankMid", "bankTid",
                 "acquiringBank", "merchantExtendedInfo", "extendedInfo"):
        assert name in body


async def test_01_declined_by_bank(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1001")
    answer = await paytm.status("ORDER0001")
    assert (answer.letter, answer.code) == ("F", "0011")
    assert answer.msg == "Transaction declined by bank"
    _card_fields(answer.body)
    assert answer.body["bankResponseCode"] == "05" and answer.body["authCode"] is None


async def test_02_never_pays_until_the_terminal_times_out(emulator: Emulator,
                                                          paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1002")
    pending = await paytm.status("ORDER0001")
    assert (pending.letter, pending.code) == ("P", "0010")
    assert pending.body["authCode"] is None
    emulator.advance(59.5)
    assert (await paytm.status("ORDER0001")).code == "0010"
    emulator.advance(0.5)
    failed = await paytm.status("ORDER0001")
    assert (failed.letter, failed.code, failed.msg) == (
        "F", "0011", "Transaction timed out on terminal")
    assert failed.body["retrievalReferenceNo"] is None


async def test_02_terminal_timeout_is_a_setting() -> None:
    async with running(EmulatorSettings(terminal_timeout_s=5)) as (emu, paytm):
        await paytm.sale("ORDER0001", amount="2")
        emu.advance(5)
        assert (await paytm.status("ORDER0001")).code == "0011"


async def test_03_rejected_on_terminal(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1003")
    answer = await paytm.status("ORDER0001")
    assert (answer.letter, answer.code, answer.msg) == (
        "F", "0011", "Transaction rejected on terminal")


async def test_04_not_found_for_the_first_seconds(emulator: Emulator, paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1004")
    early = await paytm.status("ORDER0001")
    assert (early.letter, early.code) == ("F", "0404")
    emulator.advance(2.9)
    assert (await paytm.status("ORDER0001")).code == "0404"
    emulator.advance(0.1)
    assert (await paytm.status("ORDER0001")).code == "0000"


async def test_05_sale_lands_but_its_answer_is_lost(emulator: Emulator,
                                                    paytm: RawPaytm) -> None:
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await paytm.sale("ORDER0001", amount="1005")
    assert emulator.count("sale", "ORDER0001") == 1
    assert emulator.requests[-1].dropped and emulator.requests[-1].status is None
    assert (await paytm.status("ORDER0001")).code == "0000"
    assert (await paytm.sale("ORDER0001", amount="1005")).code == "0233"


async def test_06_success_by_upi(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1006")
    body = (await paytm.status("ORDER0001")).body
    assert body["resultInfo"]["resultCodeId"] == "0000"
    assert body["payMethod"] == "UPI"
    assert body["authCode"] is None and body["issuerMaskCardNo"] is None
    assert re.fullmatch(r"\d{12}", body["retrievalReferenceNo"])


async def test_customer_delay_keeps_the_sale_pending() -> None:
    async with running(EmulatorSettings(customer_delay_s=5)) as (emu, paytm):
        await paytm.sale("ORDER0001", amount="1001")
        assert (await paytm.status("ORDER0001")).code == "0010"
        assert (await paytm.sale("ORDER0002")).code == "0333"
        emu.advance(5)
        assert (await paytm.status("ORDER0001")).code == "0011"
        assert (await paytm.sale("ORDER0002")).code == "0009"


async def test_status_of_unknown_id_is_0404_with_f(paytm: RawPaytm) -> None:
    answer = await paytm.status("NOSUCHID1")
    assert (answer.letter, answer.code) == ("F", "0404")
    assert answer.body["merchantTransactionId"] == "NOSUCHID1"


async def test_status_on_another_terminal_finds_nothing(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001")
    assert (await paytm.status("ORDER0001", tid=TID2)).code == "0404"


@pytest.mark.parametrize(("field", "value"), [
    ("merchantTransactionId", None), ("event", "REFUND"), ("event", 1),
    ("paytmTid", "12345678901234567"), ("transactionDateTime", "yesterday"),
])
async def test_status_fields_are_validated(paytm: RawPaytm, field: str, value: object) -> None:
    body = paytm.status_body("ORDER0001")
    body[field] = value
    body = {k: v for k, v in body.items() if v is not None}
    answer = await paytm.post("status", body)
    assert answer.code == "0002" and names(answer, field), answer.msg


async def test_finish_decides_a_pending_sale(emulator: Emulator, paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1002")
    emulator.finish("ORDER0001", "declined")
    assert (await paytm.status("ORDER0001")).msg == "Transaction declined by bank"
    with pytest.raises(StateError, match="nothing pending"):
        emulator.finish("ORDER0001", "success")
    with pytest.raises(UnknownError):
        emulator.finish("NOSUCHID1", "success")
    await paytm.sale("ORDER0002", amount="1002")
    with pytest.raises(StateError, match="outcome"):
        emulator.finish("ORDER0002", "maybe")
    emulator.finish("ORDER0002", "upi")
    assert (await paytm.status("ORDER0002")).body["payMethod"] == "UPI"


# ---------------------------------------------------------------------------
# Voids


async def test_void_of_a_successful_sale() -> None:
    async with running(EmulatorSettings(customer_delay_s=5)) as (emu, paytm):
        await paytm.sale("ORDER0001")
        emu.advance(5)
        assert (await paytm.status("ORDER0001")).code == "0000"
        accepted = await paytm.void("ORDER0001")
        assert (accepted.letter, accepted.code) == ("A", "0009")
        assert accepted.body["merchantTransactionId"] == "ORDER0001"
        pending = await paytm.status("ORDER0001", event="VOID")
        assert (pending.letter, pending.code) == ("P", "0010")
        assert (await paytm.sale("ORDER0002")).code == "0333"  # the void holds the terminal
        emu.advance(5)
        done = await paytm.status("ORDER0001", event="VOID")
        assert (done.letter, done.code) == ("S", "0000")
        assert done.body["merchantTransactionId"] == "ORDER0001"
        again = await paytm.void("ORDER0001")
        assert again.code == "0002" and "already voided" in again.detail
        assert (await paytm.sale("ORDER0002")).code == "0009"


async def test_void_status_without_void_is_0180(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001")
    answer = await paytm.status("ORDER0001", event="VOID")
    assert (answer.letter, answer.code, answer.msg) == ("F", "0180", "Void transaction not found")
    assert (await paytm.status("NOSUCHID1", event="VOID")).code == "0404"


@pytest.mark.parametrize(("amount", "reason"), [("1001", "not successful"),
                                                ("1003", "not successful"),
                                                ("1002", "still pending")])
async def test_void_of_a_sale_that_did_not_succeed_is_refused(paytm: RawPaytm, amount: str,
                                                              reason: str) -> None:
    await paytm.sale("ORDER0001", amount=amount)
    answer = await paytm.void("ORDER0001")
    assert (answer.letter, answer.code) == ("F", "0002")
    assert names(answer, "merchantTransactionId") and reason in answer.detail


async def test_void_of_unknown_sale_or_other_terminal_is_0002(paytm: RawPaytm) -> None:
    assert (await paytm.void("NOSUCHID1")).code == "0002"
    await paytm.sale("ORDER0001")
    assert (await paytm.void("ORDER0001", tid=TID2)).code == "0002"


async def test_void_on_the_next_ist_day_is_refused() -> None:
    # 23:59:50 IST: ten seconds before midnight in Kolkata.
    settings = EmulatorSettings(wall_clock=lambda: 1_704_133_790.0)
    async with running(settings) as (emu, paytm):
        await paytm.sale("ORDER0001")
        await paytm.sale("ORDER0002", tid=TID2)
        assert (await paytm.void("ORDER0001")).code == "0009"  # same day
        emu.advance(20)
        answer = await paytm.void("ORDER0002", tid=TID2)
        assert answer.code == "0002" and "not from today" in answer.detail


async def test_void_while_terminal_busy_is_0333(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001")
    await paytm.sale("ORDER0002", amount="1002")  # pending on the same terminal
    assert (await paytm.void("ORDER0001")).code == "0333"


async def test_void_that_fails_on_the_terminal_is_0090_and_may_be_retried() -> None:
    async with running(EmulatorSettings(customer_delay_s=5)) as (emu, paytm):
        await paytm.sale("ORDER0001")
        emu.advance(5)
        await paytm.void("ORDER0001")
        assert (await paytm.void("ORDER0001")).code == "0333"  # its own void is pending
        emu.finish("ORDER0001", "failed")
        failed = await paytm.status("ORDER0001", event="VOID")
        assert (failed.letter, failed.code) == ("F", "0090")
        assert (await paytm.void("ORDER0001")).code == "0009"
        emu.advance(5)
        assert (await paytm.status("ORDER0001", event="VOID")).code == "0000"


async def test_void_fields_are_validated(paytm: RawPaytm) -> None:
    body = paytm.void_body("ORDER0001")
    del body["transactionDateTime"]
    answer = await paytm.post("void", body)
    assert answer.code == "0002" and names(answer, "transactionDateTime")
    answer = await paytm.post("void", paytm.void_body("ORDER0001"), head={"channelId": None})
    assert answer.code == "0002" and names(answer, "channelId")


async def test_void_on_inactive_terminal_is_0007(emulator: Emulator, paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001")
    emulator.set_terminal_active(TID, False)
    assert (await paytm.void("ORDER0001")).code == "0007"
    # Status Enquiry still answers for an inactive terminal.
    assert (await paytm.status("ORDER0001")).code == "0000"


# ---------------------------------------------------------------------------
# The record


async def test_record_counts_by_api_and_path(emulator: Emulator, paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001")
    await paytm.status("ORDER0001")
    await paytm.status("ORDER0001")
    await paytm.sale("ORDER0002", tid=TID2)
    assert emulator.count("sale", "ORDER0001") == 1
    assert emulator.count("/ecr/payment/request", "ORDER0001") == 1
    assert emulator.count("status", "ORDER0001") == 2
    assert emulator.count("sale") == 2
    first = emulator.requests[0]
    assert (first.api, first.path, first.mid, first.tid, first.txn) == (
        "sale", "/ecr/payment/request", DEMO_MID, TID, "ORDER0001")
    assert (first.status, first.result_code, first.fault, first.dropped) == (
        200, "0009", None, False)
    assert isinstance(first.json, dict) and '"ORDER0001"' in first.raw
    emulator.reset()
    assert emulator.requests == [] and emulator.transactions() == []
    assert (await paytm.sale("ORDER0001")).code == "0009"  # the id is free again


async def test_transactions_snapshot(emulator: Emulator, paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", amount="1002")
    [pending] = emulator.transactions()
    assert (pending["txn"], pending["status"], pending["behaviour"]) == (
        "ORDER0001", "pending", "02")
    emulator.advance(60)
    snapshot = emulator.transaction("ORDER0001")
    assert (snapshot["status"], snapshot["outcome"]) == ("failed", "timeout")


# -- fidelity to Paytm's own documents (issue 12) --------------------------------------------

# Seed 003's "Response Codes & Messages", verbatim: code → (resultStatus word, resultMsg).
SEED_003_TABLE = {
    "0330": ("FAIL", "Invalid checksum"),
    "1809": ("FAIL", "Subwallet amount greater that transaction amount"),
    "1810": ("FAIL", "Length of DisplayInfo Param Greater than Max Length"),
    "0007": ("FAIL", "Terminal is not in active state"),
    "0029": ("FAIL", "NOT_FOUND"),
    "0233": ("FAIL", "Duplicate Order Id..!"),
    "1825": ("FAIL", "if splitType is other than AT_TXN, POST_TXN"),
    "1813": ("FAIL", "Split params cannot be passed with POST_FACTO type"),
}


async def test_refusals_read_as_seed_003s_table(paytm: RawPaytm) -> None:
    answers = {
        "0330": await paytm.post("sale", paytm.sale_body("ORDER0001"), head={"checksum": "x"}),
        "1809": await paytm.sale("ORDER0002", subWalletInfo="FOOD:60|GIFT:50"),
        "1810": await paytm.sale("ORDER0003", displayInfo={"a": "x" * 21}),
        "0007": await paytm.sale("ORDER0004", tid=DEMO_INACTIVE_TID),
        "0029": await paytm.sale("ORDER0005", tid="11111111"),
        "1825": await paytm.sale("ORDER0006", splitType="LATER"),
        "1813": await paytm.sale("ORDER0007", splitType="POST_FACTO", splitInfo={"a": "1"}),
    }
    await paytm.sale("ORDER0008")
    answers["0233"] = await paytm.sale("ORDER0008")
    for code, answer in answers.items():
        assert answer.code == code, answer.text
        assert (answer.info["resultStatus"], answer.msg) == SEED_003_TABLE[code]
        assert answer.info["resultCode"] == "F"


@pytest.mark.parametrize("split_type", ["AT_TXN", "POST_FACTO", "POST_TXN"])
async def test_every_split_type_the_seed_names_is_accepted(paytm: RawPaytm,
                                                           split_type: str) -> None:
    assert (await paytm.sale("ORDER0001", splitType=split_type)).code == "0009"


@pytest.mark.parametrize(("amount", "extra", "method"), [
    ("100", {"merchantExtendedInfo": {"paymentMode": "QR"}}, "UPI"),
    ("100", {"merchantExtendedInfo": {"PaymentMode": "qr"}}, "UPI"),  # Paytm's curl sample
    ("100", {"paymentMode": "QR"}, "UPI"),  # top level, as Odoo also sends it
    ("106", {"merchantExtendedInfo": {"paymentMode": "CARD"}}, "CARD"),
    ("106", {"merchantExtendedInfo": {"paymentMode": "ALL"}}, "UPI"),
    ("100", {}, "CARD"),
])
async def test_payment_mode_is_honoured(paytm: RawPaytm, amount: str,
                                        extra: dict[str, object], method: str) -> None:
    assert (await paytm.post("sale", {**paytm.sale_body("ORDER0001", amount), **extra})).code \
        == "0009"
    status = await paytm.status("ORDER0001")
    assert (status.code, status.body["payMethod"]) == ("0000", method)
    if method == "UPI":
        assert status.body["issuerMaskCardNo"] is None and status.body["authCode"] is None


async def test_a_qr_only_decline_carries_no_card(paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", "101", merchantExtendedInfo={"paymentMode": "QR"})
    status = await paytm.status("ORDER0001")
    assert (status.code, status.body["payMethod"], status.body["cardScheme"]) == (
        "0011", "UPI", None)


async def test_finish_cannot_contradict_the_payment_mode(emulator: Emulator,
                                                         paytm: RawPaytm) -> None:
    await paytm.sale("ORDER0001", "102", merchantExtendedInfo={"paymentMode": "QR"})
    with pytest.raises(StateError):
        emulator.finish("ORDER0001", "success")
    emulator.finish("ORDER0001", "upi")

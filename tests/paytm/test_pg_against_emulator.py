"""The PG client end to end against the Paytm emulator on loopback: payment links paid,
late, never, failed, unsent; resend; refunds of links and EDC sales with Paytm's codes.

Nothing sleeps: the simulated customer and refunds move with `emulator.advance()`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from agent.paytm.checksum import MerchantKey
from agent.paytm.clock import now_ist
from agent.paytm.edc import EdcClient, SaleRequest, StatusRequest, VoidRequest
from agent.paytm.outcome import Answered, CallOutcome, NotSent, Unknown
from agent.paytm.pg import PgClient
from agent.paytm.pg_models import (
    LinkAnswer,
    PgStatusAnswer,
    PgStatusState,
    RefundAnswer,
    RefundRequest,
    RefundState,
    RefundStatusAnswer,
    SendLinkRequest,
)
from agent.sim.paytm import DEMO_TIDS, Emulator, EmulatorSettings, Fault
from devtools.config import CLIENT_DEMO_KEY
from devtools.paytm import LINK_LIFETIME, POS, paytm_config

PHONE = "9876543210"

_ids = itertools.count(1)


def new_order() -> str:
    return f"LINK{next(_ids):08d}"


@asynccontextmanager
async def running(settings: EmulatorSettings | None = None, key: MerchantKey = CLIENT_DEMO_KEY,
                  **overrides: Any) -> AsyncIterator[tuple[Emulator, PgClient]]:
    emulator = Emulator(settings or EmulatorSettings())
    async with emulator.serve() as base_url, aiohttp.ClientSession() as session:
        yield emulator, PgClient(session, paytm_config(base_url, **overrides), key)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Emulator, PgClient]]:
    async with running() as both:
        yield both


def answered(outcome: CallOutcome[Any]) -> Any:
    assert isinstance(outcome, Answered), outcome
    return outcome.response


class Link:
    """One payment-link order and the calls about it."""

    def __init__(self, client: PgClient, amount: str = "130300", *, order_id: str | None = None,
                 pos_id: str = POS, phone: str = PHONE,
                 lifetime: dt.timedelta = LINK_LIFETIME) -> None:
        self.client = client
        self.order_id = order_id or new_order()
        self.amount = amount
        self.request = SendLinkRequest(order_id=self.order_id, amount_paise=amount,
                                       pos_id=pos_id, phone=phone,
                                       expiry=now_ist() + lifetime, display_name="Demo Shop")

    async def send(self) -> LinkAnswer:
        answer = answered(await self.client.send_link(self.request))
        assert isinstance(answer, LinkAnswer)
        return answer

    async def sent(self) -> None:
        answer = await self.send()
        assert answer.queued and answer.code == "0000", answer

    async def status(self) -> PgStatusAnswer:
        answer = answered(await self.client.status(self.order_id))
        assert isinstance(answer, PgStatusAnswer)
        return answer

    async def paid(self) -> PgStatusAnswer:
        answer = await self.status()
        assert (answer.state, answer.code) == (PgStatusState.SUCCESS, "01"), answer
        assert answer.matches(self.order_id, self.amount)
        return answer

    async def refund(self, ref_id: str, amount: str, txn_id: str | None = None) -> RefundAnswer:
        if txn_id is None:
            txn_id = (await self.paid()).txn_id
            assert txn_id is not None
        answer = answered(await self.client.refund(RefundRequest(
            order_id=self.order_id, ref_id=ref_id, txn_id=txn_id, amount_paise=amount)))
        assert isinstance(answer, RefundAnswer)
        return answer

    async def refund_status(self, ref_id: str) -> RefundStatusAnswer:
        answer = answered(await self.client.refund_status(self.order_id, ref_id))
        assert isinstance(answer, RefundStatusAnswer)
        return answer


# -- the simulated customer -------------------------------------------------------------------


async def test_link_sent_and_paid() -> None:
    async with running(EmulatorSettings(customer_delay_s=20)) as (emulator, client):
        link = Link(client)
        await link.sent()
        before = await link.status()
        assert (before.state, before.code) == (PgStatusState.NOT_FOUND, "334")
        emulator.advance(20)
        answer = await link.paid()
        assert answer.txn_id is not None and len(answer.txn_id) == 35
        assert answer.bank_txn_id is not None and len(answer.bank_txn_id) == 12
        assert answer.payment_mode == "UPI" and answer.gateway and answer.bank_name
        assert (answer.amount, answer.amount_paise, answer.refund_amount) == (
            "1303.00", 130300, "0.00")
        assert answer.txn_time is not None
        assert emulator.count("send_link", link.order_id) == 1
        assert emulator.count("pg_status", link.order_id) == 2
        assert emulator.link(link.order_id)["status"] == "paid"


async def test_never_paid_expires(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client, "130311")
    await link.sent()
    emulator.advance(LINK_LIFETIME.total_seconds() - 60)
    assert (await link.status()).state is PgStatusState.NOT_FOUND
    emulator.advance(61)
    answer = await link.status()
    assert (answer.state, answer.code) == (PgStatusState.FAILED, "810")
    assert answer.matches(link.order_id, link.amount)


async def test_paid_late_after_the_fast_polling_phase(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client, "130312")
    await link.sent()
    emulator.advance(119)
    assert (await link.status()).state is PgStatusState.NOT_FOUND
    emulator.advance(1)
    await link.paid()


async def test_late_payer_finds_an_expired_link(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client, "130312", lifetime=dt.timedelta(seconds=90))
    await link.sent()
    emulator.advance(200)
    assert (await link.status()).code == "810"


async def test_payment_fails(pair: tuple[Emulator, PgClient]) -> None:
    _, client = pair
    link = Link(client, "130313")
    await link.sent()
    answer = await link.status()
    assert (answer.state, answer.code) == (PgStatusState.FAILED, "227")
    assert answer.txn_id is not None and answer.payment_mode == "UPI"


async def test_sms_not_sent(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client, "130314")
    answer = await link.send()
    assert (answer.queued, answer.code) == (False, "3001")
    assert answer.handling is not None and "SMS" in answer.message
    # Not registered: resend knows nothing of it, and the id is still free.
    resend = answered(await client.resend_link(link.order_id))
    assert (resend.queued, resend.code) == (False, "334")
    await Link(client, "130300", order_id=link.order_id).sent()
    assert emulator.count("send_link", link.order_id) == 2


async def test_bank_pending_then_paid(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client, "130315")
    await link.sent()
    answer = await link.status()
    assert (answer.state, answer.code) == (PgStatusState.PENDING, "402")
    emulator.advance(emulator.settings.bank_pending_s)
    await link.paid()


async def test_pay_now_control(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    paid, failed = Link(client, "130311"), Link(client, "130311")
    await paid.sent()
    await failed.sent()
    emulator.pay(paid.order_id)
    emulator.pay(failed.order_id, "failed")
    await paid.paid()
    assert (await failed.status()).code == "227"


# -- resend -----------------------------------------------------------------------------------


async def test_resend(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    live, paid = Link(client, "130311"), Link(client)
    await live.sent()
    await paid.sent()
    answer = answered(await client.resend_link(live.order_id))
    assert (answer.queued, answer.code) == (True, "0000")
    assert emulator.link(live.order_id)["sms_count"] == 2
    answer = answered(await client.resend_link(paid.order_id))
    assert (answer.queued, answer.code) == (False, "3002")
    assert "paid" in answer.message
    emulator.advance(LINK_LIFETIME.total_seconds())
    answer = answered(await client.resend_link(live.order_id))
    assert (answer.queued, answer.code) == (False, "3002") and "expired" in answer.message
    assert emulator.count("resend_link") == 3


async def test_resend_path_comes_from_the_config() -> None:
    settings = EmulatorSettings(resend_path="/link/resend")
    async with running(settings, resend_path="/link/resend") as (emulator, client):
        link = Link(client, "130311")
        await link.sent()
        assert answered(await client.resend_link(link.order_id)).queued
        assert emulator.count("/link/resend", link.order_id) == 1


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "code", "named"), [
    ({"phone": "0123456789"}, "2008", "userPhoneNo"),
    ({"phone": "5555555555"}, "2008", "userPhoneNo"),
    ({"amount": "100000000000"}, "2007", "amount"),
    ({"amount": "10000001"}, "2007", "amount"),
    ({"lifetime": dt.timedelta(seconds=-5)}, "1001", "expiry"),
])
async def test_send_refusals_name_the_problem(pair: tuple[Emulator, PgClient],
                                              overrides: dict[str, Any], code: str,
                                              named: str) -> None:
    emulator, client = pair
    link = Link(client, **overrides)
    answer = await link.send()
    assert (answer.queued, answer.code) == (False, code), answer
    assert named in answer.message
    assert emulator.links() == []


async def test_order_ids_are_unique_per_mid_across_pos_ids(
        pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    first = Link(client, pos_id="S12_1")
    await first.sent()
    again = await Link(client, order_id=first.order_id, pos_id="S12_2").send()
    assert (again.queued, again.code) == (False, "325")
    assert again.handling is not None and again.handling.value == "duplicate"
    assert [link["pos_id"] for link in emulator.links()] == ["S12_1"]


async def test_order_id_of_an_edc_sale_is_taken(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    txn = "EDCSALE00000001"
    async with aiohttp.ClientSession() as session:
        edc = EdcClient(session, paytm_config(emulator.base_url), CLIENT_DEMO_KEY)
        assert answered(await edc.sale(SaleRequest(tid=DEMO_TIDS[0], txn=txn, amount="100",
                                                   txn_time=now_ist()))).accepted
    answer = await Link(client, order_id=txn).send()
    assert (answer.queued, answer.code) == (False, "325")


async def test_wrong_key_is_330_and_that_answer_is_unsigned() -> None:
    wrong = MerchantKey(b"WRONGKEY12345678")
    async with running(key=wrong) as (_, client):
        answer = await Link(client).send()
        assert (answer.queued, answer.code) == (False, "330")
        assert answer.handling is not None and answer.handling.value == "operator"


async def test_unknown_mid_is_335() -> None:
    async with running(mid="OTHERMID0001") as (_, client):
        answer = await Link(client).send()
        assert (answer.queued, answer.code) == (False, "335")
        status = answered(await client.status("ORD1"))
        assert status.state is PgStatusState.PENDING and status.code == "335"


async def test_status_of_an_unknown_order_is_not_found(pair: tuple[Emulator, PgClient]) -> None:
    _, client = pair
    answer = answered(await client.status("NEVERSENT1"))
    assert (answer.state, answer.code) == (PgStatusState.NOT_FOUND, "334")


# -- faults: NotSent vs Unknown ---------------------------------------------------------------


async def test_lost_answer_to_send_is_unknown_and_the_order_exists(
        pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    emulator.inject(Fault(api="send_link", kind="drop_after_read"))
    link = Link(client)
    assert isinstance(await client.send_link(link.request), Unknown)
    await link.paid()  # the status call resolves it
    assert emulator.count("send_link", link.order_id) == 1


async def test_faulty_answers_are_unknown(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client, "130311")
    await link.sent()
    for kind in ("http_500", "html", "malformed_json", "drop_before_read"):
        emulator.inject(Fault(api="pg_status", kind=kind))
        outcome = await client.status(link.order_id)
        assert isinstance(outcome, Unknown), (kind, outcome)
    assert (await link.status()).state is PgStatusState.NOT_FOUND


async def test_emulator_down_is_not_sent() -> None:
    emulator = Emulator()
    async with emulator.serve() as base_url:
        pass
    async with aiohttp.ClientSession() as session:
        client = PgClient(session, paytm_config(base_url), CLIENT_DEMO_KEY)
        assert isinstance(await client.send_link(Link(client).request), NotSent)


# -- refunds ----------------------------------------------------------------------------------


async def test_full_refund_pending_then_success(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    answer = await link.refund("REFFULL1", "130300")
    assert (answer.state, answer.code) == (RefundState.PENDING, "601")
    assert answer.refund_id and answer.refund_amount == "1303.00"
    status = await link.refund_status("REFFULL1")
    assert (status.state, status.code) == (RefundState.PENDING, "601")
    emulator.advance(emulator.settings.refund_delay_s)
    status = await link.refund_status("REFFULL1")
    assert (status.state, status.code) == (RefundState.SUCCESS, "10")
    assert (status.refund_amount, status.total_refund_amount, status.txn_amount) == (
        "1303.00", "1303.00", "1303.00")
    assert status.refund_id == answer.refund_id
    assert status.accept_refund_timestamp and status.user_credit_initiate_timestamp
    assert (await link.status()).refund_amount == "1303.00"
    again = await link.refund("REFFULL2", "100")
    assert (again.state, again.code) == (RefundState.FAILED, "629")


async def test_partial_refunds_track_what_is_left(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    for ref_id, amount in (("REFPART1", "30000"), ("REFPART2", "50000")):
        assert (await link.refund(ref_id, amount)).state is RefundState.PENDING
        emulator.advance(emulator.settings.refund_delay_s)
        assert (await link.refund_status(ref_id)).state is RefundState.SUCCESS
    assert (await link.refund_status("REFPART2")).total_refund_paise == 80000
    too_much = await link.refund("REFPART3", "50301")
    assert (too_much.state, too_much.code) == (RefundState.FAILED, "619")
    assert "503.00" in too_much.message
    under_1 = await link.refund("REFPART4", "99")
    assert (under_1.state, under_1.code) == (RefundState.FAILED, "635")
    rest = await link.refund("REFPART5", "50300")
    assert rest.state is RefundState.PENDING
    emulator.advance(emulator.settings.refund_delay_s)
    assert (await link.refund_status("REFPART5")).total_refund_amount == "1303.00"


async def test_second_refund_while_one_is_pending_is_626(
        pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    assert (await link.refund("REFBUSY1", "10000")).state is RefundState.PENDING
    busy = await link.refund("REFBUSY2", "10000")
    assert (busy.state, busy.code) == (RefundState.BUSY, "626")
    # A refusal does not use up the refId: once the first is done, the same id works.
    emulator.advance(emulator.settings.refund_delay_s)
    assert (await link.refund("REFBUSY2", "10000")).state is RefundState.PENDING


async def test_duplicate_ref_id_is_617(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    assert (await link.refund("REFDUP01", "10000")).state is RefundState.PENDING
    dup = await link.refund("REFDUP01", "10000")
    assert (dup.state, dup.code) == (RefundState.DUPLICATE, "617")
    emulator.advance(emulator.settings.refund_delay_s)
    assert (await link.refund("REFDUP01", "10000")).state is RefundState.DUPLICATE


async def test_insufficient_balance_then_retry_with_a_new_ref_id(
        pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    failed = await link.refund("REFLOW01", "10020")  # ends in 20: balance not enough
    assert (failed.state, failed.code) == (RefundState.FAILED, "620")
    status = await link.refund_status("REFLOW01")
    assert (status.state, status.code, status.reject_code) == (RefundState.FAILED, "620", "620")
    assert (await link.refund("REFLOW01", "10000")).state is RefundState.DUPLICATE
    retry = await link.refund("REFLOW02", "10000")
    assert retry.state is RefundState.PENDING
    emulator.advance(emulator.settings.refund_delay_s)
    assert (await link.refund_status("REFLOW02")).state is RefundState.SUCCESS


async def test_balance_switch(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    emulator.set_balance_low(True)
    assert (await link.refund("REFSW001", "10000")).code == "620"
    emulator.set_balance_low(False)
    assert (await link.refund("REFSW002", "10000")).state is RefundState.PENDING


async def test_refund_held_until_finished(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    assert (await link.refund("REFHOLD1", "10021")).state is RefundState.PENDING
    emulator.advance(3600)
    assert (await link.refund_status("REFHOLD1")).state is RefundState.PENDING
    emulator.finish_refund("REFHOLD1", "failed")
    status = await link.refund_status("REFHOLD1")
    assert (status.state, status.code) == (RefundState.FAILED, "620")


async def test_refund_refusals(pair: tuple[Emulator, PgClient]) -> None:
    _, client = pair
    link, unpaid = Link(client), Link(client, "130311")
    await link.sent()
    await unpaid.sent()
    mismatch = await link.refund("REFBAD01", "100", txn_id="1" * 35)
    assert (mismatch.state, mismatch.code) == (RefundState.FAILED, "627")
    not_paid = await unpaid.refund("REFBAD02", "100", txn_id="1" * 35)
    assert (not_paid.state, not_paid.code) == (RefundState.FAILED, "600")
    unknown = await Link(client).refund("REFBAD03", "100", txn_id="1" * 35)
    assert (unknown.state, unknown.code) == (RefundState.NOT_FOUND, "631")
    status = await link.refund_status("NOSUCHREF")
    assert (status.state, status.code) == (RefundState.NOT_FOUND, "631")


async def test_lost_refund_answer_is_unknown_and_status_finds_it(
        pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    link = Link(client)
    await link.sent()
    txn_id = (await link.paid()).txn_id
    assert txn_id is not None
    emulator.inject(Fault(api="refund_apply", kind="lose_response"))
    outcome = await client.refund(RefundRequest(order_id=link.order_id, ref_id="REFLOST1",
                                                txn_id=txn_id, amount_paise="10000"))
    assert isinstance(outcome, Unknown)
    assert (await link.refund_status("REFLOST1")).state is RefundState.PENDING


async def test_edc_sale_refund_via_acquirement_id(pair: tuple[Emulator, PgClient]) -> None:
    emulator, client = pair
    sold = [f"EDCREF{n:04d}" for n in (1, 2)]
    async with aiohttp.ClientSession() as session:
        edc = EdcClient(session, paytm_config(emulator.base_url), CLIENT_DEMO_KEY)
        acquirement: dict[str, str] = {}
        for txn in sold:
            txn_time = now_ist()
            assert answered(await edc.sale(SaleRequest(
                tid=DEMO_TIDS[0], txn=txn, amount="25000", txn_time=txn_time))).accepted
            status = answered(await edc.status(StatusRequest(tid=DEMO_TIDS[0], txn=txn,
                                                             txn_time=txn_time)))
            assert status.payment is not None and status.payment.acquirement_id
            acquirement[txn] = status.payment.acquirement_id
        # The second sale is voided the same day: a refund of it is 607.
        assert answered(await edc.void(VoidRequest(tid=DEMO_TIDS[0], txn=sold[1],
                                                   txn_time=now_ist()))).accepted
    refund = Link(client, "25000", order_id=sold[0])
    answer = await refund.refund("REFEDC01", "25000", txn_id=acquirement[sold[0]])
    assert (answer.state, answer.code) == (RefundState.PENDING, "601")
    emulator.advance(emulator.settings.refund_delay_s)
    status = await refund.refund_status("REFEDC01")
    assert (status.state, status.txn_amount, status.txn_id) == (
        RefundState.SUCCESS, "250.00", acquirement[sold[0]])
    voided = await Link(client, "25000", order_id=sold[1]).refund(
        "REFEDC02", "25000", txn_id=acquirement[sold[1]])
    assert (voided.state, voided.code) == (RefundState.FAILED, "607")
    wrong = await Link(client, order_id=sold[0]).refund("REFEDC03", "100", txn_id="999")
    assert wrong.code == "627"

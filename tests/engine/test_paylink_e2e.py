"""Payment links and refunds end to end: real pty, real journal, emulator over loopback.

Time-dependent paths (a late payment, an expired link, a pending refund) move the
emulator's clock with `advance` and the agent's with the harness `Clock`; nothing sleeps.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession

from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Paylink,
    Refund,
    Resend,
    Result,
    Sale,
    Status,
)
from agent.sim.paytm import EmulatorSettings
from devtools.stack import WAIT_S, Clock, stack, wait_for_request

PHONE = "9876543210"
FAST = EmulatorSettings(refund_delay_s=0)


def _link(txn: str, amount: str, rid: str | None = None, expiry_s: int = 900) -> Paylink:
    return Paylink(id=rid or f"l-{txn}", txn=txn, amount=amount, phone=PHONE,
                   expiry_s=expiry_s)


async def test_link_sent_and_paid(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=FAST) as s:
        exchange = await s.register.client.request(_link("LINK00000001", "25000"), WAIT_S)
        assert isinstance(exchange.replies[0], Accepted)
        assert exchange.replies[0].kind == "paylink"
        result = exchange.final
        assert isinstance(result, Result) and result.kind == "paylink"
        assert (result.status, result.amount) == ("success", "25000")
        assert result.payment is not None
        assert result.payment.method and result.payment.rrn and result.payment.paytm_txn_id
        text = "\n".join(result.receipt)
        assert "UPI PAYMENT LINK" in text and "PAID" in text and "₹250.00" in text
        assert s.emulator.count("send_link", "LINK00000001") == 1
        sent = next(r for r in s.emulator.requests if r.api == "send_link").json
        assert isinstance(sent, dict)
        assert sent["body"]["amount"] == "250.00" and sent["body"]["posId"] == "S1_1"
        status = (await s.register.client.request(
            Status(id="st", txn="LINK00000001", kind="paylink"), WAIT_S)).final
        assert isinstance(status, Result) and status.status == "success"


async def test_link_paid_late_after_the_fast_phase(tmp_path: Path) -> None:
    clock = Clock()
    async with stack(tmp_path, settings=FAST, clock=clock,
                     polling={"paylink_interval_s": 0.02}) as s:
        client = s.register.client
        # Amount ending 12: the customer pays 120 s (emulator time) after the SMS.
        exchange = await client.request(_link("LATE00000012", "30012", expiry_s=300), 1.0)
        assert isinstance(exchange.replies[0], Accepted)
        await wait_for_request(s.emulator, lambda r: r.api == "pg_status"
                               and r.txn == "LATE00000012")
        clock.advance(330)  # the agent is past the link's expiry: slow checks only
        s.emulator.advance(121)
        result = await client.next_result(WAIT_S)
        assert isinstance(result, Result) and result.txn == "LATE00000012"
        assert result.status == "success"
        assert s.emulator.count("send_link", "LATE00000012") == 1


async def test_link_never_paid_expires_and_fails(tmp_path: Path) -> None:
    clock = Clock()
    async with stack(tmp_path, settings=FAST, clock=clock,
                     polling={"paylink_interval_s": 0.02}) as s:
        client = s.register.client
        exchange = await client.request(_link("NEVR00000011", "40011", expiry_s=60), 1.0)
        assert isinstance(exchange.replies[0], Accepted)
        await wait_for_request(s.emulator, lambda r: r.api == "pg_status"
                               and r.txn == "NEVR00000011")
        clock.advance(200)
        s.emulator.advance(200)
        result = await client.next_result(WAIT_S)
        assert isinstance(result, Result) and result.status == "failed"
        assert any("NOT PAID" in line for line in result.receipt)
        # A closed link cannot be resent.
        resend = (await client.request(Resend(id="rs", txn="NEVR00000011"), WAIT_S)).final
        assert isinstance(resend, Error) and resend.code is ErrorCode.NOT_ALLOWED


async def test_bad_phone_amount_and_reused_order_id(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=FAST) as s:
        client = s.register.client
        bad_phone = (await client.request_raw(
            b'{"v":1,"type":"paylink","id":"b1","txn":"BADP00000001","amount":"100",'
            b'"phone":"12345"}', WAIT_S)).final
        assert isinstance(bad_phone, Error) and bad_phone.code is ErrorCode.INVALID_FIELD
        assert bad_phone.field == "phone"
        bad_amount = (await client.request_raw(
            b'{"v":1,"type":"paylink","id":"b2","txn":"BADA00000001","amount":"0",'
            b'"phone":"9876543210"}', WAIT_S)).final
        assert isinstance(bad_amount, Error) and bad_amount.field == "amount"
        # Paytm refuses a number it cannot text (the emulator wants a mobile prefix 6–9).
        refused = (await client.request(
            Paylink(id="b3", txn="BADN00000001", amount="100", phone="0123456789"),
            WAIT_S)).final
        assert isinstance(refused, Error) and refused.code is ErrorCode.REJECTED
        assert refused.paytm_code
        sale = (await client.request(Sale(id="s1", txn="USED00000001", amount="100"),
                                     WAIT_S)).final
        assert isinstance(sale, Result)
        reused = (await client.request(_link("USED00000001", "100"), WAIT_S)).final
        assert isinstance(reused, Error) and reused.code is ErrorCode.DUPLICATE_TXN
        assert s.emulator.count("send_link") == 1  # only the refused one reached Paytm


async def test_resend_and_idempotent_repeat(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=EmulatorSettings(customer_delay_s=600),
                     polling={"paylink_interval_s": 5}) as s:
        client = s.register.client
        first = await client.request(_link("RSND00000001", "5000"), 1.0)
        assert isinstance(first.replies[0], Accepted)
        again = await client.request(_link("RSND00000001", "5000", rid="l2"), 1.0)
        assert isinstance(again.replies[0], Accepted) and again.replies[0].re == "l2"
        other = (await client.request(_link("RSND00000001", "6000", rid="l3"), WAIT_S)).final
        assert isinstance(other, Error) and other.code is ErrorCode.DUPLICATE_TXN
        resent = (await client.request(Resend(id="r1", txn="RSND00000001"), WAIT_S)).final
        assert isinstance(resent, Accepted)
        assert s.emulator.count("send_link", "RSND00000001") == 1
        assert s.emulator.count("resend_link", "RSND00000001") == 1
        missing = (await client.request(Resend(id="r2", txn="NONE00000001"), WAIT_S)).final
        assert isinstance(missing, Error) and missing.code is ErrorCode.NOT_FOUND


async def test_refund_full_and_partial(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=FAST) as s:
        client = s.register.client
        sale = (await client.request(Sale(id="s1", txn="RFND00000001", amount="10000"),
                                     WAIT_S)).final
        assert isinstance(sale, Result) and sale.status == "success"
        part = await client.request(Refund(id="f1", txn="RFND00000001",
                                           refund_id="REF000000001", amount="4000"), WAIT_S)
        assert isinstance(part.replies[0], Accepted) and part.replies[0].kind == "refund"
        assert isinstance(part.final, Result) and part.final.status == "success"
        assert part.final.kind == "refund" and part.final.txn == "REF000000001"
        too_much = (await client.request(Refund(id="f2", txn="RFND00000001",
                                                refund_id="REF000000002", amount="6001"),
                                         WAIT_S)).final
        assert isinstance(too_much, Error) and too_much.code is ErrorCode.NOT_ALLOWED
        rest = (await client.request(Refund(id="f3", txn="RFND00000001",
                                            refund_id="REF000000003", amount="6000"),
                                     WAIT_S)).final
        assert isinstance(rest, Result) and rest.status == "success"
        status = (await client.request(Status(id="st", txn="REF000000003", kind="refund"),
                                       WAIT_S)).final
        assert isinstance(status, Result) and status.status == "success"
        # The refund request reached Paytm with the sale's Paytm id and rupees.
        body = next(r for r in s.emulator.requests if r.api == "refund_apply").json
        assert isinstance(body, dict)
        assert body["body"]["orderId"] == "RFND00000001"
        assert body["body"]["refundAmount"] == "40.00"
        assert body["body"]["txnId"] == sale.payment.paytm_txn_id  # type: ignore[union-attr]


async def test_refund_of_a_paid_link(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=FAST) as s:
        client = s.register.client
        paid = (await client.request(_link("LREF00000001", "25000"), WAIT_S)).final
        assert isinstance(paid, Result) and paid.status == "success"
        refund = (await client.request(Refund(id="f1", txn="LREF00000001",
                                              refund_id="LREFUND00001", amount="25000"),
                                       WAIT_S)).final
        assert isinstance(refund, Result) and refund.status == "success"


async def test_refund_pending_then_success_and_no_second_while_pending(
        tmp_path: Path) -> None:
    async with stack(tmp_path, settings=FAST) as s:
        client = s.register.client
        sale = (await client.request(Sale(id="s1", txn="PEND00000001", amount="10000"),
                                     WAIT_S)).final
        assert isinstance(sale, Result)
        # A refund amount ending 21 stays pending at Paytm until decided.
        first = await client.request(Refund(id="f1", txn="PEND00000001",
                                            refund_id="PENDREF00001", amount="1021"), 1.0)
        assert isinstance(first.replies[0], Accepted)
        second = (await client.request(Refund(id="f2", txn="PEND00000001",
                                              refund_id="PENDREF00002", amount="500"),
                                       WAIT_S)).final
        assert isinstance(second, Error) and second.code is ErrorCode.NOT_ALLOWED
        assert "pending" in second.message
        s.emulator.finish_refund("PENDREF00001", "success")
        result = await client.next_result(WAIT_S)
        assert isinstance(result, Result) and result.txn == "PENDREF00001"
        assert result.status == "success"
        assert s.emulator.count("refund_apply") == 1


async def test_insufficient_balance_then_retry_with_a_new_refund_id(tmp_path: Path) -> None:
    async with stack(tmp_path, settings=FAST) as s:
        client = s.register.client
        sale = (await client.request(Sale(id="s1", txn="BALN00000001", amount="10000"),
                                     WAIT_S)).final
        assert isinstance(sale, Result)
        s.emulator.set_balance_low(True)
        low = (await client.request(Refund(id="f1", txn="BALN00000001",
                                           refund_id="BALNREF00001", amount="10000"),
                                    WAIT_S)).final
        assert isinstance(low, Error) and low.code is ErrorCode.REJECTED
        assert low.paytm_code == "620"
        s.emulator.set_balance_low(False)
        # The same refund_id is answered from the journal (never sent again) ...
        same = (await client.request(Refund(id="f2", txn="BALN00000001",
                                            refund_id="BALNREF00001", amount="10000"),
                                     WAIT_S)).final
        assert isinstance(same, Error) and same.paytm_code == "620"
        # ... a new one goes through: the failed refund does not count against the amount.
        retry = (await client.request(Refund(id="f3", txn="BALN00000001",
                                             refund_id="BALNREF00002", amount="10000"),
                                      WAIT_S)).final
        assert isinstance(retry, Result) and retry.status == "success"
        assert s.emulator.count("refund_apply") == 2


async def test_webhook_valid_forged_duplicate_and_after_the_poll(tmp_path: Path) -> None:
    # The agent would poll only every 10 minutes: the webhook is what makes it ask now.
    async with stack(tmp_path, settings=FAST, webhook=True,
                     polling={"first_check_s": 600, "paylink_interval_s": 600,
                              "unknown_after_s": 1200}) as s:
        assert s.agent.webhook is not None
        s.emulator.configure_webhooks(url=s.agent.webhook.address, duplicates=1, hold=True)
        exchange = await s.register.client.request(_link("HOOK00000001", "25000"), 1.0)
        assert isinstance(exchange.replies[0], Accepted)
        assert s.emulator.count("pg_status", "HOOK00000001") == 0
        deliveries = await s.emulator.deliver_webhooks()
        assert deliveries
        result = await s.register.client.next_result(WAIT_S)
        assert isinstance(result, Result) and result.status == "success"
        # The bill closed on Transaction Status, which the webhook triggered.
        assert s.emulator.count("pg_status", "HOOK00000001") >= 1
        seen = s.agent.webhook.received
        # A forged callback is refused and changes nothing.
        async with ClientSession() as http:
            forged = await http.post(s.agent.webhook.address, data={
                "ORDERID": "HOOK00000001", "MID": "x", "STATUS": "TXN_FAILURE",
                "CHECKSUMHASH": "A" * 108})
            assert forged.status == 400
        s.emulator.redeliver_webhook("HOOK00000001", tamper=True)
        s.emulator.redeliver_webhook("HOOK00000001")  # after the poll: a duplicate
        await s.emulator.deliver_webhooks()
        assert s.agent.webhook.received >= seen + 2
        assert s.agent.webhook.refused >= 2
        status = (await s.register.client.request(
            Status(id="st", txn="HOOK00000001", kind="paylink"), WAIT_S)).final
        assert isinstance(status, Result) and status.status == "success"
        assert len(s.register.results("HOOK00000001")) == 2  # the result, then the status

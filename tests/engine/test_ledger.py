"""The ledger's rules through the engine: fake lane, real clients against the emulator,
real journal file. Each test would fail with the rule it names missing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from agent.engine.edc_flows import EdcCalls, EdcOutcome, StatusOutcome
from agent.engine.ledger import AMOUNT_MISMATCH_MESSAGE, Ledger, Refusal
from agent.engine.pg_flows import PgCalls
from agent.engine.reporter import JOURNAL_DOWN_MESSAGE
from agent.journal import Journal, JournalError, Kind, TxnState
from agent.paytm.edc import EdcClient, SaleRequest, StatusRequest, VoidRequest
from agent.paytm.outcome import Answered, NotSent, Unknown
from agent.paytm.pg import PgClient
from agent.paytm.pg_models import (
    LinkAnswer,
    PgStatusAnswer,
    RefundAnswer,
    RefundRequest,
    RefundStatusAnswer,
    SendLinkRequest,
)
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Paylink,
    Refund,
    Result,
    Sale,
    Status,
    Void,
)
from agent.sim.paytm import EmulatorSettings
from devtools.stack import TID
from tests.engine.money import Money, money_engine

SLOW = EmulatorSettings(customer_delay_s=3600)  # nothing settles until a test says so
FAST = EmulatorSettings(refund_delay_s=0)  # sales and refunds settle at once


async def _paid_sale(m: Money, txn: str, amount: str = "10000") -> Result:
    """A sale the customer pays at once (the emulator's default settings)."""
    assert isinstance(await m.ask(Sale(id=f"r-{txn}", txn=txn, amount=amount)), Accepted)
    return await m.lane.result_for(txn, "success")


# -- claims ---------------------------------------------------------------------------------


async def test_two_sales_at_once_on_one_terminal_only_one_reaches_paytm(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with money_engine(tmp_path, SLOW) as m:
        await asyncio.gather(m.engine.handle(m.lane, Sale(id="r-a", txn="ATONCE00001",
                                                          amount="100")),
                             m.engine.handle(m.lane, Sale(id="r-b", txn="ATONCE00002",
                                                          amount="100")))
        sent = m.emulator.count("sale", "ATONCE00001") + m.emulator.count("sale", "ATONCE00002")
        assert sent == 1
        busy = [r for r in m.lane.replies if isinstance(r, Error)]
        assert len(busy) == 1 and busy[0].code is ErrorCode.TERMINAL_BUSY
        holder = m.engine.busy_terminals()[TID]
        assert busy[0].txn == holder and holder in busy[0].message
        # The refusal leaves a trace: the log, the counter and the holder's journal row.
        assert m.engine.refusals == {"TERMINAL_BUSY": 1}
        assert f"refused: TERMINAL_BUSY Terminal busy with {holder}" in caplog.text
        row = m.journal.find(Kind.SALE, holder)
        assert row is not None
        assert any("refused sale" in e.detail for e in m.journal.events(row.row_id))


async def test_the_same_sale_twice_at_once_is_sent_once(tmp_path: Path) -> None:
    async with money_engine(tmp_path, SLOW) as m:
        await asyncio.gather(*(m.engine.handle(m.lane, Sale(id=f"r-{i}", txn="TWICE000001",
                                                            amount="100")) for i in range(3)))
        assert m.emulator.count("sale", "TWICE000001") == 1
        assert [type(r) for r in m.lane.replies] == [Accepted, Accepted, Accepted]
        assert m.engine.refusals == {}


async def test_claims_are_released_once_and_only_by_their_owner(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    ledger = Ledger(journal)
    claim = ledger.claim(Kind.SALE, "CLAIM000001", tid=TID)
    assert not isinstance(claim, Refusal)
    refused = ledger.claim(Kind.VOID, "OTHER000001", tid=TID, parent="OTHER000001")
    assert isinstance(refused, Refusal) and refused.code is ErrorCode.TERMINAL_BUSY
    with pytest.raises(RuntimeError):  # a second opening of one id is a bug, not a race
        ledger.claim(Kind.SALE, "CLAIM000001", tid="87654321")
    claim.release()
    claim.release()
    assert ledger.busy_terminals() == {} and ledger.opening(Kind.SALE, "CLAIM000001") is None
    await journal.aclose()


# -- after `sending` ------------------------------------------------------------------------


class RaisesAfterSale:
    """The Sale reaches Paytm, then the agent's own code fails (a bug, a parse error)."""

    def __init__(self, inner: EdcClient) -> None:
        self._inner = inner

    async def sale(self, req: SaleRequest) -> EdcOutcome:
        await self._inner.sale(req)
        raise RuntimeError("boom after the sale left")

    async def status(self, req: StatusRequest) -> StatusOutcome:
        return await self._inner.status(req)

    async def void(self, req: VoidRequest) -> EdcOutcome:
        return await self._inner.void(req)


async def test_an_exception_after_sending_is_followed_by_status(tmp_path: Path) -> None:
    wrap: type[EdcCalls] = RaisesAfterSale
    async with money_engine(tmp_path, edc=wrap) as m:
        reply = await m.ask(Sale(id="r-boom", txn="BOOM0000001", amount="100"))
        assert isinstance(reply, Accepted)  # never INTERNAL once it might be charged
        result = await m.lane.result_for("BOOM0000001")
        assert result.status == "success" and result.re == "r-boom"
        assert m.emulator.count("sale", "BOOM0000001") == 1
        assert m.engine.busy_terminals() == {}


async def test_sending_that_cannot_be_journaled_sends_nothing(tmp_path: Path) -> None:
    async with money_engine(tmp_path) as m:
        m.commits.armed = True
        reply = await m.ask(Sale(id="r-full", txn="FULL0000001", amount="100"))
        assert isinstance(reply, Error) and reply.code is ErrorCode.INTERNAL
        assert reply.message == JOURNAL_DOWN_MESSAGE
        assert m.emulator.count("sale") == 0
        assert m.engine.busy_terminals() == {}  # no phantom holder
        assert not m.journal.health.ok and "disk is full" in m.journal.health.error
        m.commits.armed = False
        # The same request again, once the disk has room: sold once, terminal free.
        assert isinstance(await m.ask(Sale(id="r-full2", txn="FULL0000001", amount="100")),
                          Accepted)
        assert (await m.lane.result_for("FULL0000001")).status == "success"
        assert m.journal.health.ok and m.emulator.count("sale", "FULL0000001") == 1


async def test_a_poller_outlives_a_full_disk_and_frees_the_terminal(tmp_path: Path) -> None:
    async with money_engine(tmp_path, SLOW, polling={"interval_s": 0.01}) as m:
        assert isinstance(await m.ask(Sale(id="r-p", txn="POLL0000001", amount="100")),
                          Accepted)
        m.commits.armed = True
        m.emulator.finish("POLL0000001", "success")
        row = m.journal.find(Kind.SALE, "POLL0000001")
        assert row is not None
        await m.engine.recheck(row.row_id).wait()  # Paytm said success; the journal could not
        assert m.engine.busy_terminals() == {TID: "POLL0000001"}  # not reported: still held
        assert m.lane.results("POLL0000001") == []
        busy = await m.ask(Sale(id="r-q", txn="POLL0000002", amount="100"))
        assert isinstance(busy, Error) and busy.txn == "POLL0000001"  # a txn the journal has
        m.commits.armed = False  # space is freed
        assert (await m.lane.result_for("POLL0000001")).status == "success"
        assert m.engine.busy_terminals() == {}
        assert m.engine.polling_count() == 0 or m.journal.get(row.row_id).is_final


# -- rules between kinds --------------------------------------------------------------------


async def test_a_refunded_sale_cannot_be_voided(tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "REFVOID0001")
        assert isinstance(await m.ask(Refund(id="r-rf", txn="REFVOID0001",
                                             refund_id="RFREFVOID01", amount="10000")),
                          Accepted)
        await m.lane.result_for("RFREFVOID01", "success")
        void = await m.ask(Void(id="r-v", txn="REFVOID0001"))
        assert isinstance(void, Error) and void.code is ErrorCode.NOT_ALLOWED
        assert "RFREFVOID01" in void.message
        assert m.emulator.count("void") == 0
        # Its own answer now says what happened to it.
        status = await m.ask(Status(id="r-s", txn="REFVOID0001"))
        assert isinstance(status, Result) and status.refunded == "10000"
        assert status.voided is None


async def test_a_sale_with_a_pending_refund_cannot_be_voided(tmp_path: Path) -> None:
    async with money_engine(tmp_path) as m:
        await _paid_sale(m, "PENDRF00001")
        # Refund amounts ending in 21 stay pending at the emulator until finished.
        assert isinstance(await m.ask(Refund(id="r-rf", txn="PENDRF00001",
                                             refund_id="RFPENDRF001", amount="121")), Accepted)
        void = await m.ask(Void(id="r-v", txn="PENDRF00001"))
        assert isinstance(void, Error) and void.code is ErrorCode.NOT_ALLOWED
        assert "RFPENDRF001" in void.message and "pending" in void.message
        assert m.emulator.count("void") == 0


async def test_a_voided_or_voiding_sale_cannot_be_refunded(tmp_path: Path) -> None:
    async with money_engine(tmp_path, SLOW) as m:
        assert isinstance(await m.ask(Sale(id="r-s", txn="VOIDRF00001", amount="5000")),
                          Accepted)
        m.emulator.finish("VOIDRF00001", "success")
        m.engine.recheck(m.journal.find(Kind.SALE, "VOIDRF00001").row_id)  # type: ignore[union-attr]
        await m.lane.result_for("VOIDRF00001", "success")
        assert isinstance(await m.ask(Void(id="r-v", txn="VOIDRF00001")), Accepted)
        pending = await m.ask(Refund(id="r-rf", txn="VOIDRF00001", refund_id="RFVOIDRF001",
                                     amount="100"))
        assert isinstance(pending, Error) and pending.code is ErrorCode.NOT_ALLOWED
        assert "void" in pending.message and "pending" in pending.message
        m.emulator.finish("VOIDRF00001", "success")  # the void completes
        m.engine.recheck(m.journal.find(Kind.VOID, "VOIDRF00001").row_id)  # type: ignore[union-attr]
        await asyncio.wait_for(_until_state(m, Kind.VOID, "VOIDRF00001", TxnState.SUCCESS), 10)
        done = await m.ask(Refund(id="r-rf2", txn="VOIDRF00001", refund_id="RFVOIDRF002",
                                  amount="100"))
        assert isinstance(done, Error) and "voided" in done.message
        assert m.emulator.count("refund_apply") == 0
        status = await m.ask(Status(id="r-st", txn="VOIDRF00001"))
        assert isinstance(status, Result) and status.voided is True


async def test_refunds_never_add_up_past_the_amount(tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "PARTIAL0001", amount="1000")
        for i, amount in enumerate(("600", "400")):
            assert isinstance(await m.ask(Refund(id=f"r-{i}", txn="PARTIAL0001",
                                                 refund_id=f"RFPART000{i}", amount=amount)),
                              Accepted)
            await m.lane.result_for(f"RFPART000{i}", "success")
        over = await m.ask(Refund(id="r-x", txn="PARTIAL0001", refund_id="RFPART0009",
                                  amount="1"))
        assert isinstance(over, Error) and over.code is ErrorCode.NOT_ALLOWED
        assert over.field == "amount"
        status = await m.ask(Status(id="r-st", txn="PARTIAL0001"))
        assert isinstance(status, Result) and status.refunded == "1000"


async def _until_state(m: Money, kind: Kind, txn: str, state: TxnState) -> None:
    event = asyncio.Event()
    unsubscribe = m.journal.subscribe(lambda what, row: event.set())
    try:
        while True:
            event.clear()
            record = m.journal.find(kind, txn)
            if record is not None and record.state is state:
                return
            await event.wait()
    finally:
        unsubscribe()


# -- one amount rule for both kinds ---------------------------------------------------------


class OtherAmountEdc:
    """Paytm's final status names another amount than the sale asked."""

    def __init__(self, inner: EdcClient) -> None:
        self._inner = inner

    async def sale(self, req: SaleRequest) -> EdcOutcome:
        return await self._inner.sale(req)

    async def status(self, req: StatusRequest) -> StatusOutcome:
        outcome = await self._inner.status(req)
        if isinstance(outcome, Answered) and outcome.response.amount:
            answer = dataclasses.replace(outcome.response, amount="99999")
            return dataclasses.replace(outcome, response=answer)
        return outcome

    async def void(self, req: VoidRequest) -> EdcOutcome:
        return await self._inner.void(req)


class OtherAmountPg:
    def __init__(self, inner: PgClient) -> None:
        self._inner = inner

    async def send_link(self, req: SendLinkRequest) -> Answered[LinkAnswer] | NotSent | Unknown:
        return await self._inner.send_link(req)

    async def resend_link(self, order_id: str) -> Answered[LinkAnswer] | NotSent | Unknown:
        return await self._inner.resend_link(order_id)

    async def status(self, order_id: str) -> Answered[PgStatusAnswer] | NotSent | Unknown:
        outcome = await self._inner.status(order_id)
        if isinstance(outcome, Answered) and outcome.response.amount_paise is not None:
            answer = dataclasses.replace(outcome.response, amount="999.99",
                                         amount_paise=99999)
            return dataclasses.replace(outcome, response=answer)
        return outcome

    async def refund(self, req: RefundRequest) -> Answered[RefundAnswer] | NotSent | Unknown:
        return await self._inner.refund(req)

    async def refund_status(self, order_id: str, ref_id: str
                            ) -> Answered[RefundStatusAnswer] | NotSent | Unknown:
        return await self._inner.refund_status(order_id, ref_id)


async def test_another_amount_is_unknown_for_a_card_sale(tmp_path: Path) -> None:
    wrap: type[EdcCalls] = OtherAmountEdc
    async with money_engine(tmp_path, edc=wrap) as m:
        assert isinstance(await m.ask(Sale(id="r-a", txn="AMOUNT00001", amount="100")),
                          Accepted)
        result = await m.lane.result_for("AMOUNT00001")
        assert result.status == "unknown" and result.message == AMOUNT_MISMATCH_MESSAGE
        assert any("99999" in w for w in result.warnings)
        assert m.engine.busy_terminals() == {}  # unknown frees the terminal (§5.5)


async def test_another_amount_is_unknown_for_a_payment_link(tmp_path: Path) -> None:
    wrap: type[PgCalls] = OtherAmountPg
    async with money_engine(tmp_path, pg=wrap) as m:
        assert isinstance(await m.ask(Paylink(id="r-l", txn="LINKAMT0001", amount="100",
                                              phone="9876543210")), Accepted)
        result = await m.lane.result_for("LINKAMT0001")
        assert result.status == "unknown" and result.message == AMOUNT_MISMATCH_MESSAGE
        assert any("99999" in w for w in result.warnings)
        # Asked again and again it stays unknown, without a new result each time.
        row = m.journal.find(Kind.PAYLINK, "LINKAMT0001")
        assert row is not None
        await m.engine.recheck(row.row_id).wait()
        assert len(m.lane.results("LINKAMT0001")) == 1


async def test_a_refused_transition_never_reaches_the_register(tmp_path: Path) -> None:
    async with money_engine(tmp_path) as m:
        result = await _paid_sale(m, "FINAL000001")
        row = m.journal.find(Kind.SALE, "FINAL000001")
        assert row is not None and result.status == "success"
        with pytest.raises(JournalError, match="success → pending"):
            await m.journal.transition(row.row_id, TxnState.PENDING)
        assert m.journal.get(row.row_id).state is TxnState.SUCCESS

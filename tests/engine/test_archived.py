"""Rule 1 after retention: a repeated request for a transaction retention moved to an
archive is answered from the archive, never sent to Paytm again. Real journal file, real
retention run, the engine against the emulator (which records every request it gets)."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

from agent.engine.reporter import (
    ARCHIVE_UNREADABLE_MESSAGE,
    ARCHIVED_NOT_SENT_MESSAGE,
)
from agent.journal import (
    ArchivedTxn,
    Journal,
    JournalError,
    Kind,
    RetentionReport,
    TxnState,
    key_archives,
    run_retention,
)
from agent.journal.retention import DAY_S, archive_files
from agent.journal.schema import SCHEMA_VERSION
from agent.paytm.outcome import NotSent
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
    Void,
)
from agent.sim.paytm import EmulatorSettings
from devtools.stack import TID
from tests.engine.money import Money, money_engine

FAST = EmulatorSettings(refund_delay_s=0)  # sales and refunds settle at once
PHONE = "9876543210"


async def _archive(m: Money) -> RetentionReport:
    """Every result delivered (the register ACKed it), then retention as if keep_days and
    two more had passed: every settled transaction moves to an archive."""
    for outbox in m.lane.delivered:
        await m.journal.mark_delivered(outbox.row_id)
    later = time.time() + (m.config.journal.keep_days + 2) * DAY_S
    return await run_retention(m.journal, m.config.journal.keep_days, now=later)


async def _paid_sale(m: Money, txn: str, amount: str) -> Result:
    assert isinstance(await m.ask(Sale(id=f"r-{txn}", txn=txn, amount=amount)), Accepted)
    return await m.lane.result_for(txn, "success")


async def test_a_repeated_archived_sale_is_answered_from_its_archive_never_sold_again(
        tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "ARCHSALE0001", "10000")
        # What a repeat gets while the sale is in the journal: the archive answers the same.
        live = await m.ask(Sale(id="r-live", txn="ARCHSALE0001", amount="10000"))
        assert isinstance(live, Result)
        report = await _archive(m)
        assert report.moved == 1
        assert m.journal.find(Kind.SALE, "ARCHSALE0001") is None
        assert m.journal.find_archived(Kind.SALE, "ARCHSALE0001") == ArchivedTxn(
            kind=Kind.SALE, txn="ARCHSALE0001", month=report.months[0],
            state=TxnState.SUCCESS, amount="10000", tid=TID)

        again = await m.ask(Sale(id="r-again", txn="ARCHSALE0001", amount="10000"))
        assert isinstance(again, Result) and again.re == "r-again"
        assert dataclasses.replace(again, re=live.re, id=live.id) == live
        assert again.status == "success" and again.payment is not None and again.receipt

        other = await m.ask(Sale(id="r-other", txn="ARCHSALE0001", amount="10001"))
        assert isinstance(other, Error) and other.code is ErrorCode.DUPLICATE_TXN
        link = await m.ask(Paylink(id="r-link", txn="ARCHSALE0001", amount="10000",
                                   phone=PHONE))
        assert isinstance(link, Error) and link.code is ErrorCode.DUPLICATE_TXN

        status = await m.ask(Status(id="r-st", txn="ARCHSALE0001"))
        assert isinstance(status, Result) and status.status == "success"
        assert status.re == "r-st"

        void = await m.ask(Void(id="r-v", txn="ARCHSALE0001"))
        assert isinstance(void, Error) and void.code is ErrorCode.NOT_FOUND
        assert "archived" in void.message
        refund = await m.ask(Refund(id="r-rf", txn="ARCHSALE0001", refund_id="RFARCH000001",
                                    amount="100"))
        assert isinstance(refund, Error) and refund.code is ErrorCode.NOT_FOUND
        assert "archived" in refund.message

        assert m.emulator.count("sale", "ARCHSALE0001") == 1
        assert m.emulator.count("void") == 0 and m.emulator.count("refund_apply") == 0
        assert m.emulator.count("send_link") == 0
        # Nothing new in the journal either: the archived row stays archived.
        assert m.journal.count() == 0


async def test_an_archived_sale_is_answered_with_its_refunds(tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "ARCHREFD0001", "1000")
        assert isinstance(await m.ask(Refund(id="r-rf", txn="ARCHREFD0001",
                                             refund_id="RFARCHREFD01", amount="400")),
                          Accepted)
        await m.lane.result_for("RFARCHREFD01", "success")
        assert (await _archive(m)).moved == 2
        again = await m.ask(Sale(id="r-again", txn="ARCHREFD0001", amount="1000"))
        assert isinstance(again, Result) and again.refunded == "400"
        # The refund id is archived too: a new refund under it is never sent.
        reused = await m.ask(Refund(id="r-rf2", txn="ARCHREFD0001", refund_id="RFARCHREFD01",
                                    amount="400"))
        assert isinstance(reused, Error) and reused.code is ErrorCode.NOT_FOUND
        assert m.emulator.count("sale", "ARCHREFD0001") == 1
        assert m.emulator.count("refund_apply") == 1


async def test_a_repeated_archived_payment_link_is_never_sent_again(tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        assert isinstance(await m.ask(Paylink(id="r-l", txn="ARCHLINK0001", amount="2500",
                                              phone=PHONE)), Accepted)
        await m.lane.result_for("ARCHLINK0001", "success")  # the customer pays at once
        live = await m.ask(Paylink(id="r-live", txn="ARCHLINK0001", amount="2500",
                                   phone=PHONE))
        assert isinstance(live, Result)
        assert (await _archive(m)).moved == 1

        again = await m.ask(Paylink(id="r-l2", txn="ARCHLINK0001", amount="2500",
                                    phone=PHONE))
        assert isinstance(again, Result) and again.re == "r-l2"
        assert dataclasses.replace(again, re=live.re, id=live.id) == live
        assert (again.kind, again.status) == ("paylink", "success")
        for other in (Paylink(id="r-l3", txn="ARCHLINK0001", amount="2501", phone=PHONE),
                      Paylink(id="r-l4", txn="ARCHLINK0001", amount="2500",
                              phone="9876500000"),
                      Sale(id="r-s", txn="ARCHLINK0001", amount="2500")):
            answer = await m.ask(other)
            assert isinstance(answer, Error) and answer.code is ErrorCode.DUPLICATE_TXN, other
        status = await m.ask(Status(id="r-st", txn="ARCHLINK0001", kind="paylink"))
        assert isinstance(status, Result) and status.status == "success"
        resend = await m.ask(Resend(id="r-rs", txn="ARCHLINK0001"))
        assert isinstance(resend, Error) and resend.code is ErrorCode.NOT_FOUND
        assert "archived" in resend.message
        assert m.emulator.count("send_link", "ARCHLINK0001") == 1
        assert m.emulator.count("sale") == 0


async def test_an_archived_sale_stays_known_after_a_restart(tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "ARCHRSTR0001", "5000")
        assert (await _archive(m)).moved == 1
    # A new agent on the same journal (and a Paytm that has seen nothing yet).
    async with money_engine(tmp_path, FAST) as m:
        again = await m.ask(Sale(id="r-again", txn="ARCHRSTR0001", amount="5000"))
        assert isinstance(again, Result) and again.status == "success"
        other = await m.ask(Sale(id="r-other", txn="ARCHRSTR0001", amount="5000",
                                 tid="T9999999"))
        assert isinstance(other, Error)
        assert m.emulator.count("sale") == 0 and m.emulator.count("status") == 0


async def test_an_unreadable_archive_is_an_error_never_a_new_sale(tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "ARCHGONE0001", "5000")
        assert (await _archive(m)).moved == 1
        for file in archive_files(m.journal.path):
            file.write_bytes(b"not gzip")
        again = await m.ask(Sale(id="r-again", txn="ARCHGONE0001", amount="5000"))
        assert isinstance(again, Error) and again.code is ErrorCode.INTERNAL
        assert again.message == ARCHIVE_UNREADABLE_MESSAGE
        for file in archive_files(m.journal.path):
            file.unlink()
        status = await m.ask(Status(id="r-st", txn="ARCHGONE0001"))
        assert isinstance(status, Error) and status.message == ARCHIVE_UNREADABLE_MESSAGE
        assert m.emulator.count("sale", "ARCHGONE0001") == 1
        # Even a sale that slipped past the engine could not open the txn again.
        try:
            await m.journal.create(kind=Kind.SALE, txn="ARCHGONE0001", lane="x", tid=TID,
                                   amount="5000", request={}, txn_time="")
        except JournalError as exc:
            assert "archived" in str(exc)
        else:
            raise AssertionError("an archived txn was journaled again")


class DownEdc:
    """Paytm cannot be reached: every sale provably never left."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    async def sale(self, req: object) -> NotSent:
        return NotSent("connection refused")

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


async def test_an_archived_sale_that_never_left_is_not_sold_under_its_old_txn(
        tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST, edc=DownEdc) as m:  # type: ignore[arg-type]
        refused = await m.ask(Sale(id="r-1", txn="ARCHDOWN0001", amount="5000"))
        assert isinstance(refused, Error) and refused.code is ErrorCode.CLOUD_UNAVAILABLE
        assert (await _archive(m)).moved == 1
    async with money_engine(tmp_path, FAST) as m:
        again = await m.ask(Sale(id="r-2", txn="ARCHDOWN0001", amount="5000"))
        assert isinstance(again, Error) and again.code is ErrorCode.NOT_ALLOWED
        assert again.message == ARCHIVED_NOT_SENT_MESSAGE
        assert m.emulator.count("sale") == 0


def _as_schema_5(path: Path) -> None:
    """Make the journal at `path` what the previous release left: its archives on disk and
    in `archives`, no keys of them (schema 5)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE archived_txns")
    db.execute("ALTER TABLE archives DROP COLUMN keyed")
    db.execute("ALTER TABLE txns DROP COLUMN not_found_first_s")  # schema 7
    db.execute("ALTER TABLE txns DROP COLUMN not_found_count")
    db.execute("PRAGMA user_version=5")
    db.close()


async def test_archives_of_a_schema_5_journal_are_keyed_and_guard_their_sales(
        tmp_path: Path) -> None:
    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "ARCHOLDV0001", "7000")
        await _paid_sale(m, "ARCHOLDV0002", "8000")
        assert (await _archive(m)).moved == 2
    _as_schema_5(tmp_path / "journal.db")

    journal = Journal(tmp_path / "journal.db")
    try:
        assert journal.schema_version == SCHEMA_VERSION
        assert journal.find_archived(Kind.SALE, "ARCHOLDV0001") is None  # not keyed yet
        assert await key_archives(journal) == 2
        key = journal.find_archived(Kind.SALE, "ARCHOLDV0002")
        assert key is not None and (key.amount, key.tid, key.state) == (
            "8000", TID, TxnState.SUCCESS)
        assert await key_archives(journal) == 0  # once: the month is keyed now
    finally:
        await journal.aclose()

    # Retention keys them as well (before it moves anything), for a journal the agent
    # opened without keying them.
    _as_schema_5(tmp_path / "journal.db")
    async with money_engine(tmp_path, FAST) as m:
        assert m.journal.find_archived(Kind.SALE, "ARCHOLDV0001") is None
        await run_retention(m.journal, m.config.journal.keep_days, now=time.time())
        again = await m.ask(Sale(id="r-again", txn="ARCHOLDV0001", amount="7000"))
        assert isinstance(again, Result) and again.status == "success"
        other = await m.ask(Sale(id="r-other", txn="ARCHOLDV0002", amount="1"))
        assert isinstance(other, Error) and other.code is ErrorCode.DUPLICATE_TXN
        assert m.emulator.count("sale") == 0


async def test_the_agent_keys_old_archives_before_its_lanes_read(tmp_path: Path) -> None:
    """An agent upgraded on a schema 5 journal with archives: the first request a register
    sends, a repeat of an archived sale, is already answered from the archive."""
    from devtools.stack import WAIT_S, stack

    async with money_engine(tmp_path, FAST) as m:
        await _paid_sale(m, "ARCHUPGR0001", "4000")
        assert (await _archive(m)).moved == 1
    _as_schema_5(tmp_path / "journal.db")
    async with stack(tmp_path, settings=FAST) as s:
        exchange = await s.register.client.request(
            Sale(id="r-again", txn="ARCHUPGR0001", amount="4000"), WAIT_S)
        (reply,) = exchange.replies
        assert isinstance(reply, Result) and reply.status == "success"
        assert s.emulator.count("sale") == 0

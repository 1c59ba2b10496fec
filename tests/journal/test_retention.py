"""Retention through the real Journal API and real files: what moves, what stays, the
archives read back, and the space given back."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path

from agent.journal import Journal, Kind, TxnState, iter_archived, run_retention
from agent.journal.retention import (
    DAY_S,
    _delete,
    _plan,
    _write_month,
    archive_files,
    archive_path,
)
from agent.paytm.clock import IST

KEEP_DAYS = 400
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=IST).timestamp()
OLD = NOW - (KEEP_DAYS + 40) * DAY_S  # late Dec 2025 / Jan 2026 (IST)


class Clock:
    def __init__(self) -> None:
        self.now = OLD

    def __call__(self) -> float:
        return self.now


async def _sale(journal: Journal, clock: Clock, txn: str, at: float, *,
                state: TxnState = TxnState.SUCCESS, deliver: bool = True,
                kind: Kind = Kind.SALE, parent: str = "") -> int:
    clock.now = at
    record = await journal.create(kind=kind, txn=txn, lane="till-1", tid="T1", amount="1000",
                                  parent=parent, request={"id": f"q-{txn}", "txn": txn},
                                  txn_time="2026-01-01 10:00:00",
                                  states=(TxnState.RECEIVED, TxnState.SENDING))
    if state is TxnState.UNKNOWN:
        await journal.transition(record.row_id, TxnState.UNKNOWN)
        return record.row_id
    result = {"v": 1, "type": "result", "id": f"res-{txn}", "txn": txn, "kind": kind.value,
              "status": state.value, "code": "0000", "message": "Approved",
              "amount": "1000", "receipt": []}
    _, outbox = await journal.finish(record.row_id, state, result=result, code="0000",
                                     message="Approved", payment={"method": "UPI"})
    if deliver:
        await journal.mark_delivered(outbox.row_id)
    return record.row_id


async def test_settled_old_families_move_and_everything_else_stays(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    try:
        for i in range(300):  # settled, old: in two IST months
            await _sale(journal, clock, f"OLD{i:05d}", OLD + i * 600)
        await _sale(journal, clock, "DECLINED01", OLD, state=TxnState.FAILED)
        await _sale(journal, clock, "UNDELIVER1", OLD, deliver=False)
        await _sale(journal, clock, "UNKNOWN001", OLD, state=TxnState.UNKNOWN)
        await _sale(journal, clock, "FRESH00001", NOW - DAY_S)
        # A sale voided the same day: the family moves together.
        await _sale(journal, clock, "VOIDED0001", OLD)
        await _sale(journal, clock, "VOIDED0001", OLD + 60, kind=Kind.VOID,
                    parent="VOIDED0001")
        # A sale refunded recently: the refund is young, so the sale stays with it.
        await _sale(journal, clock, "REFUNDED01", OLD)
        await _sale(journal, clock, "RFD0000001", NOW - DAY_S, kind=Kind.REFUND,
                    parent="REFUNDED01")
        before = journal.count()
        report = await run_retention(journal, KEEP_DAYS, now=NOW)

        assert report.moved == 300 + 1 + 2  # the old sales, the decline, the sale + void
        assert report.kept == 0
        left = {r.txn for r in journal.search(limit=100)}
        assert left == {"UNDELIVER1", "UNKNOWN001", "FRESH00001", "REFUNDED01",
                        "RFD0000001"}
        assert journal.count() == before - report.moved
        # Nothing dangling: events and outbox rows left with their transactions.
        db = sqlite3.connect(path)
        assert db.execute("SELECT COUNT(*) FROM events WHERE txn_row NOT IN "
                          "(SELECT id FROM txns)").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE txn_row NOT IN "
                          "(SELECT id FROM txns)").fetchone() == (0,)
        archives = dict(db.execute("SELECT month, txns FROM archives").fetchall())
        db.close()
        files = archive_files(path)
        assert [p.name for p in files] == [f"journal-{m}.jsonl.gz" for m in sorted(archives)]
        assert sum(archives.values()) == report.moved

        rows = list(iter_archived(path))
        assert len(rows) == report.moved
        assert len({r["row"] for r in rows}) == len(rows)
        sale = next(r for r in rows if r["txn"] == "OLD00000")
        assert sale["state"] == "success" and sale["payment"] == {"method": "UPI"}
        assert [e[1] for e in sale["events"]] == ["received", "sending", "success",
                                                  "delivered"]
        assert sale["outbox"][0]["payload"]["id"] == "res-OLD00000"
        assert sale["outbox"][0]["delivered_at"] is not None
        assert {r["kind"] for r in rows if r["txn"] == "VOIDED0001"} == {"sale", "void"}
        # Day bounds (IST) pick a day's rows out of a month file; a directory works too.
        first_day = datetime.fromtimestamp(OLD, IST).date()
        one_day = list(iter_archived(tmp_path, first_day, first_day))
        assert one_day and all(
            datetime.fromtimestamp(r["created_at"], IST).date() == first_day for r in one_day)
        assert list(iter_archived(path, date(2030, 1, 1))) == []

        # A second run has nothing to do; the archives are unchanged.
        sizes = [p.stat().st_size for p in files]
        again = await run_retention(journal, KEEP_DAYS, now=NOW)
        assert again.moved == 0 and [p.stat().st_size for p in files] == sizes
    finally:
        await journal.aclose()


async def test_space_is_given_back(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    try:
        for i in range(1500):
            await _sale(journal, clock, f"S{i:06d}", OLD + i)
        await _sale(journal, clock, "FRESH00001", NOW)
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        report = await run_retention(journal, KEEP_DAYS, now=NOW)
        assert report.moved == 1500 and report.freed_pages > 0 and not report.vacuumed
        assert journal._db.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert journal._db.execute("PRAGMA page_count").fetchone()[0] < pages / 4
        assert journal.find(Kind.SALE, "FRESH00001") is not None
    finally:
        await journal.aclose()


async def test_an_old_journal_is_vacuumed_once_when_quiet(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "journal.db"
    db = sqlite3.connect(path)  # as schema 1-2 agents created it: no auto_vacuum
    db.execute("PRAGMA auto_vacuum=NONE")
    db.execute("CREATE TABLE t (x)")
    db.execute("DROP TABLE t")
    db.close()
    journal = Journal(path, clock=clock)
    try:
        assert journal._db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
        for i in range(800):
            await _sale(journal, clock, f"S{i:06d}", OLD + i)
        busy = await run_retention(journal, KEEP_DAYS, now=NOW, quiet=lambda: False)
        assert busy.moved == 800 and not busy.vacuumed  # a sale in flight: not now
        quiet = await run_retention(journal, KEEP_DAYS, now=NOW, quiet=lambda: True)
        assert quiet.vacuumed and quiet.moved == 0
        fresh = sqlite3.connect(path)  # a reader opened before keeps the old header's value
        assert fresh.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        assert fresh.execute("PRAGMA freelist_count").fetchone() == (0,)
        fresh.close()
    finally:
        await journal.aclose()


async def test_a_row_that_changed_while_archived_stays(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    try:
        row = await _sale(journal, clock, "CHANGED001", OLD)
        plan = _plan(str(path), NOW - KEEP_DAYS * DAY_S)
        (month, ids), = plan.items()
        target = archive_path(path, month)
        archived = _write_month(str(path), target, ids)
        await journal.note(row, "repeated request answered from journal")  # meanwhile
        moved = await journal.maintain(lambda db: _delete(db, archived, month, target.name,
                                                          NOW))
        assert moved == 0 and journal.find(Kind.SALE, "CHANGED001") is not None
        assert journal.find_archived(Kind.SALE, "CHANGED001") is None  # stays: no key
        report = await run_retention(journal, KEEP_DAYS, now=NOW)
        assert report.moved == 1
        assert journal.find_archived(Kind.SALE, "CHANGED001") is not None
        with gzip.open(target, "rt") as f:
            lines = [json.loads(line) for line in f]
        assert [r["txn"] for r in lines] == ["CHANGED001"]  # once, as last written
        assert lines[0]["events"][-1][3] == "repeated request answered from journal"
    finally:
        await journal.aclose()


async def test_every_moved_row_leaves_its_key_in_the_same_commit(tmp_path: Path) -> None:
    """What left `txns` is in `archived_txns` (and only that): the repeat check's half."""
    clock = Clock()
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    try:
        for i in range(3):
            await _sale(journal, clock, f"KEYED{i:05d}", OLD + i * 15 * DAY_S)  # months apart
        await _sale(journal, clock, "KEYEDVOID1", OLD)
        await _sale(journal, clock, "KEYEDVOID1", OLD + 60, kind=Kind.VOID,
                    parent="KEYEDVOID1")
        await _sale(journal, clock, "KEYEDFAIL1", OLD, state=TxnState.FAILED)
        await _sale(journal, clock, "UNDELIVER1", OLD, deliver=False)
        report = await run_retention(journal, KEEP_DAYS, now=NOW)
        assert report.moved == 6 and len(set(report.months)) >= 2

        db = sqlite3.connect(path)
        keys = db.execute("SELECT kind, txn, month, state, amount, tid FROM archived_txns "
                          "ORDER BY kind, txn").fetchall()
        unkeyed = db.execute("SELECT COUNT(*) FROM archives WHERE keyed=0").fetchone()
        db.close()
        assert unkeyed == (0,)
        archived = sorted((r["kind"], r["txn"], r["created_at"], r["state"])
                          for r in iter_archived(path))
        assert [(k, t, s) for k, t, _, s, _, _ in keys] == [
            (k, t, s) for k, t, _, s in archived]
        assert all(month == datetime.fromtimestamp(at, IST).strftime("%Y-%m")
                   for (_, _, month, _, _, _), (_, _, at, _) in zip(keys, archived,
                                                                    strict=True))
        assert all((amount, tid) == ("1000", "T1") for *_, amount, tid in keys)
        key = journal.find_archived(Kind.VOID, "KEYEDVOID1")
        assert key is not None and key.state is TxnState.SUCCESS
        assert journal.find_archived(Kind.SALE, "UNDELIVER1") is None  # still in txns
        assert journal.find_archived(Kind.PAYLINK, "KEYED00000") is None
    finally:
        await journal.aclose()


async def test_the_daemon_moves_old_rows_at_start(tmp_path: Path) -> None:
    """A store's agent starts on a journal with a year-and-a-half-old day: the day moves
    to its archive while the agent serves (a real sale goes through after it)."""
    import time

    from agent.register.messages import Result, Sale
    from devtools.stack import WAIT_S, stack

    now = time.time()
    clock = Clock()
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    old = now - (KEEP_DAYS + 100) * DAY_S
    for i in range(50):
        await _sale(journal, clock, f"YEAR{i:06d}", old + i)
    await journal.aclose()
    async with stack(tmp_path) as s:
        await asyncio.wait_for(s.agent.retention_done.wait(), WAIT_S)
        report = s.agent.last_retention
        assert report is not None and report.moved == 50
        assert s.agent.journal.count() == 0
        assert len(list(iter_archived(path))) == 50
        result = (await s.register.client.request(
            Sale(id="r-after", txn="AFTER0000001", amount="500"), WAIT_S)).final
        assert isinstance(result, Result) and result.status == "success"


async def test_a_schema_2_journal_migrates_reads_and_archives(tmp_path: Path) -> None:
    """A journal written by the previous release (schema 2, receipts in the reply and the
    outbox payload, no auto_vacuum) opens, reads as before and its old rows archive."""
    from agent.journal.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "journal.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for version in (1, 2):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute("PRAGMA user_version=2")
    reply = json.dumps({"v": 1, "type": "result", "id": "r1", "txn": "V2SALE000001",
                        "kind": "sale", "status": "success", "code": "0000",
                        "message": "Approved", "amount": "100", "receipt": ["SALE", "OK"]})
    db.execute("INSERT INTO txns (id, kind, txn, lane, tid, amount, state, request, txn_time,"
               " created_at, updated_at, reply) VALUES (1, 'sale', 'V2SALE000001', 'till-1',"
               " 'T1', '100', 'success', '{}', '2025-01-01 10:00:00', ?, ?, ?)",
               (OLD, OLD, reply))
    db.execute("INSERT INTO events (txn_row, at, state) VALUES (1, ?, 'success')", (OLD,))
    db.execute("INSERT INTO outbox (txn_row, lane, payload, created_at, delivered_at) "
               "VALUES (1, 'till-1', ?, ?, ?)", (reply, OLD, OLD))
    db.close()
    journal = Journal(path)
    try:
        assert journal.schema_version == SCHEMA_VERSION
        (outbox,) = journal.outbox_for(1)
        assert json.loads(outbox.payload)["receipt"] == ["SALE", "OK"]
        report = await run_retention(journal, KEEP_DAYS, now=NOW)
        assert report.moved == 1 and journal.count() == 0
        (row,) = iter_archived(path)
        assert row["reply"]["receipt"] == ["SALE", "OK"]
        assert row["outbox"][0]["payload"]["receipt"] == ["SALE", "OK"]
    finally:
        await journal.aclose()


async def test_a_failing_maintenance_step_fails_alone(tmp_path: Path) -> None:
    """A bug in a maintenance step (retention's delete) never fails a sale's step that
    shares its commit."""
    from agent.journal import JournalError

    def broken(db: sqlite3.Connection) -> None:
        raise KeyError("a bug")

    clock = Clock()
    journal = Journal(tmp_path / "journal.db", clock=clock)
    try:
        results = await asyncio.gather(
            journal.maintain(broken),
            _sale(journal, clock, "ALONE0000001", NOW),
            return_exceptions=True)
        assert isinstance(results[0], JournalError) and isinstance(results[1], int)
        assert journal.find(Kind.SALE, "ALONE0000001") is not None
    finally:
        await journal.aclose()


async def test_export_reads_the_archives_and_the_journal(tmp_path: Path) -> None:
    from agent.day.export import export_chunks
    from agent.journal.reader import open_read_only

    clock = Clock()
    path = tmp_path / "journal.db"
    journal = Journal(path, clock=clock)
    try:
        await _sale(journal, clock, "ARCHIVED01", OLD)
        await _sale(journal, clock, "LIVE000001", NOW - DAY_S)
        report = await run_retention(journal, KEEP_DAYS, now=NOW)
        assert report.moved == 1
    finally:
        await journal.aclose()
    reader = open_read_only(str(path))
    try:
        rows = [json.loads(line) for line in export_chunks(reader, None, None, "jsonl")]
        # Only the days asked for, whichever file holds them.
        recent = [json.loads(line) for line in export_chunks(reader, NOW - 2 * DAY_S, None,
                                                             "jsonl")]
    finally:
        reader.close()
    assert [(r["txn"], r["method"], r["state"]) for r in rows] == [
        ("ARCHIVED01", "upi", "success"), ("LIVE000001", "upi", "success")]
    assert [r["txn"] for r in recent] == ["LIVE000001"]

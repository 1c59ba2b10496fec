from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.journal import Journal, Kind, TxnState
from agent.journal.schema import SCHEMA_VERSION
from agent.journal.store import JournalError


def _sale(j: Journal, txn: str = "ORDER0001", lane: str = "till-1") -> int:
    rec = j.create(kind=Kind.SALE, txn=txn, lane=lane, tid="12345678", amount="15000",
                   request={"id": "r1", "txn": txn}, txn_time="2026-11-21 10:00:00",
                   states=(TxnState.RECEIVED, TxnState.SENDING))
    return rec.row_id


def test_wal_full_sync_and_schema_version(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert j.schema_version == SCHEMA_VERSION
    j.close()


def test_sale_is_born_sending_and_every_step_is_an_event(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    row = _sale(j)
    rec = j.get(row)
    assert rec.state is TxnState.SENDING and rec.sent_at is not None
    j.transition(row, TxnState.ACCEPTED, code="0009")
    j.transition(row, TxnState.PENDING)
    j.finish(row, TxnState.SUCCESS, result={"type": "result", "txn": "ORDER0001"},
             code="0000", message="Approved", payment={"rrn": "1"})
    assert [e.state for e in j.events(row)] == ["received", "sending", "accepted", "pending",
                                               "success"]
    assert j.get(row).payment == '{"rrn":"1"}'
    j.close()


def test_committed_state_survives_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    row = _sale(j)
    # A second connection (as after a crash and restart) sees the committed step at once.
    other = Journal(path)
    assert other.get(row).state is TxnState.SENDING
    assert [r.txn for r in other.not_final()] == ["ORDER0001"]
    j.close()
    other.close()


def test_outbox_delivery_flag_and_supersede(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    row = _sale(j)
    _, first = j.finish(row, TxnState.UNKNOWN, result={"status": "unknown"}, code="",
                        message="unknown")
    assert [o.row_id for o in j.undelivered("till-1")] == [first.row_id]
    _, second = j.finish(row, TxnState.SUCCESS, result={"status": "success"}, code="0000",
                         message="Approved")
    # The newer result replaces the stale undelivered one.
    assert [o.row_id for o in j.undelivered("till-1")] == [second.row_id]
    assert j.undelivered("till-2") == []
    j.mark_delivered(second.row_id)
    j.mark_delivered(second.row_id)  # idempotent
    assert j.undelivered() == []
    assert [e.state for e in j.events(row)][-1] == "delivered"
    j.close()


def test_unique_kind_and_txn(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    _sale(j)
    with pytest.raises(sqlite3.IntegrityError):
        _sale(j)
    # A void of the same sale is another kind and may exist beside it.
    j.create(kind=Kind.VOID, txn="ORDER0001", lane="till-1", tid="12345678", amount="15000",
             request={}, txn_time="t", parent="ORDER0001")
    assert len(j.find_any("ORDER0001")) == 2
    j.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(path)


def test_search_escapes_like_wildcards(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    _sale(j, "ORDER0001")
    _sale(j, "ORDERX0002")
    assert [r.txn for r in j.search(txn="0001")] == ["ORDER0001"]
    assert j.search(txn="%") == []
    assert [r.txn for r in j.search(lane="till-1")] == ["ORDERX0002", "ORDER0001"]
    assert j.count_by_state(Kind.SALE, 0.0) == {"sending": 2}
    assert j.integrity_check() == "ok"
    j.close()


def test_a_version_1_journal_is_migrated_with_its_data(tmp_path: Path) -> None:
    from agent.journal.schema import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    db.execute("INSERT INTO txns (kind, txn, lane, amount, state, request, txn_time, "
               "created_at, updated_at) VALUES ('sale', 'OLD000000001', 'till-1', '100', "
               "'unknown', '{}', 't', 1.0, 1.0)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    j = Journal(path)
    assert j.schema_version == SCHEMA_VERSION
    assert [r.txn for r in j.not_final()] == ["OLD000000001"]
    assert j.count_in_state(TxnState.UNKNOWN) == 1
    indexes = {r[0] for r in j._db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"txns_kind_created_state", "txns_kind_lane_state", "txns_lane_state"} <= indexes
    j.close()

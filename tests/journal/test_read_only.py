"""`open_read_only`: the journal as `edc-agent report/export/show` read it, beside a running
agent or without one, never creating, migrating or writing anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.journal import Journal, JournalError, Kind, TxnState
from agent.journal.reader import open_read_only


async def test_reads_beside_the_writer_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    try:
        reader = open_read_only(str(path))
        await journal.create(kind=Kind.SALE, txn="T0000001", lane="till-1", tid="1",
                             amount="100", request={}, txn_time="2026-03-14 10:00:00",
                             states=(TxnState.RECEIVED, TxnState.SENDING))
        record = reader.find(Kind.SALE, "T0000001")  # a commit already awaited is seen
        assert record is not None and record.state is TxnState.SENDING
        with pytest.raises(sqlite3.OperationalError):
            reader._db.execute("DELETE FROM txns")
        reader.close()
    finally:
        await journal.aclose()


def test_no_agent_no_side_files_and_no_journal_made_up(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    before = sorted(p.name for p in tmp_path.iterdir())
    reader = open_read_only(str(path))
    assert reader.count() == 0 and reader.last_sweep() is None
    reader.close()
    # Made by `sudo edc-agent report`, -wal/-shm would belong to root: none are made.
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["journal.db"]
    with pytest.raises(JournalError, match="no journal"):
        open_read_only(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()

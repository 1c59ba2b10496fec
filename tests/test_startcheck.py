"""The start-up integrity check that runs beside the agent's imports (agent/startcheck.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.journal import Journal, JournalCorruptError, Kind, TxnState
from agent.startcheck import start_journal_check


async def test_a_sound_journal_is_checked_once_and_opens(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    await journal.create(kind=Kind.SALE, txn="CHECKED00001", lane="till-1", tid="1",
                         amount="100", request={}, txn_time="t",
                         states=(TxnState.RECEIVED, TxnState.SENDING))
    await journal.aclose()
    check = start_journal_check(str(path))
    assert check is not None and check.problems() == ["ok"]
    again = Journal(path, checked=check.problems)
    assert again.find(Kind.SALE, "CHECKED00001") is not None
    await again.aclose()


def test_no_file_or_an_empty_one_is_left_to_the_journal(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert start_journal_check(str(missing)) is None
    assert not missing.exists()  # the check never creates the journal
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert start_journal_check(str(empty)) is None


def test_what_the_check_found_stops_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    with pytest.raises(JournalCorruptError, match="corrupt"):
        Journal(path, checked=lambda: ["*** in database main ***", "Page 5: btreeInitPage"])


def test_a_file_that_is_no_database_is_found_out(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not a SQLite database" * 200)
    check = start_journal_check(str(path))
    assert check is not None and check.problems() is None  # could not check: said at open
    with pytest.raises(JournalCorruptError):
        Journal(path, checked=check.problems)

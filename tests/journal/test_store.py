from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.journal import Journal, JournalError, Kind, NotFoundRun, TxnState
from agent.journal.records import TRANSITIONS, transition_allowed
from agent.journal.schema import SCHEMA_VERSION
from agent.journal.writer import _Step


async def _sale(j: Journal, txn: str = "ORDER0001", lane: str = "till-1") -> int:
    rec = await j.create(kind=Kind.SALE, txn=txn, lane=lane, tid="12345678", amount="15000",
                         request={"id": "r1", "txn": txn}, txn_time="2026-11-21 10:00:00",
                         states=(TxnState.RECEIVED, TxnState.SENDING))
    return rec.row_id


async def test_wal_full_sync_and_schema_version(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j.schema_version == SCHEMA_VERSION
    # The loop's connection only reads; the writer's runs synchronous=FULL.
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        j._db.execute("DELETE FROM txns")
    assert j._writer._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    await j.aclose()


async def test_sale_is_born_sending_and_every_step_is_an_event(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    row = await _sale(j)
    rec = j.get(row)
    assert rec.state is TxnState.SENDING and rec.sent_at is not None
    await j.transition(row, TxnState.ACCEPTED, code="0009")
    await j.transition(row, TxnState.PENDING)
    await j.finish(row, TxnState.SUCCESS, result={"type": "result", "txn": "ORDER0001"},
                   code="0000", message="Approved", payment={"rrn": "1"})
    assert [e.state for e in j.events(row)] == ["received", "sending", "accepted", "pending",
                                               "success"]
    assert j.get(row).payment == '{"rrn":"1"}'
    await j.aclose()


async def test_committed_state_survives_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    row = await _sale(j)
    # A second connection (as after a crash and restart) sees the committed step at once.
    other = Journal(path)
    assert other.get(row).state is TxnState.SENDING
    assert [r.txn for r in other.not_final()] == ["ORDER0001"]
    await j.aclose()
    await other.aclose()


async def test_outbox_delivery_flag_and_supersede(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    row = await _sale(j)
    _, first = await j.finish(row, TxnState.UNKNOWN, result={"status": "unknown"}, code="",
                              message="unknown")
    assert [o.row_id for o in j.undelivered("till-1")] == [first.row_id]
    _, second = await j.finish(row, TxnState.SUCCESS, result={"status": "success"},
                               code="0000", message="Approved")
    # The newer result replaces the stale undelivered one.
    assert [o.row_id for o in j.undelivered("till-1")] == [second.row_id]
    assert j.undelivered("till-2") == []
    await j.mark_delivered(second.row_id)
    await j.mark_delivered(second.row_id)  # idempotent
    assert j.undelivered() == []
    assert [e.state for e in j.events(row)][-1] == "delivered"
    await j.aclose()


async def test_unique_kind_and_txn_is_refused_as_a_journal_error(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    await _sale(j)
    with pytest.raises(JournalError, match="already has a sale ORDER0001"):
        await _sale(j)
    # A void of the same sale is another kind and may exist beside it.
    await j.create(kind=Kind.VOID, txn="ORDER0001", lane="till-1", tid="12345678",
                   amount="15000", request={}, txn_time="t", parent="ORDER0001")
    assert len(j.find_any("ORDER0001")) == 2
    await j.aclose()


def test_the_transition_table() -> None:
    # Final is final; only a row that provably never reached Paytm may be sent again.
    assert TRANSITIONS[TxnState.SUCCESS] == frozenset()
    assert not transition_allowed(TxnState.FAILED, TxnState.SENDING, not_sent=False)
    assert transition_allowed(TxnState.FAILED, TxnState.SENDING, not_sent=True)
    assert not transition_allowed(TxnState.FAILED, TxnState.SUCCESS, not_sent=True)
    assert not transition_allowed(TxnState.UNKNOWN, TxnState.PENDING, not_sent=False)
    assert not transition_allowed(TxnState.PENDING, TxnState.SENDING, not_sent=False)
    assert transition_allowed(TxnState.UNKNOWN, TxnState.SUCCESS, not_sent=False)


@pytest.mark.parametrize(("reach", "target"), [
    ((TxnState.SUCCESS,), TxnState.PENDING),
    ((TxnState.SUCCESS,), TxnState.FAILED),
    ((TxnState.FAILED,), TxnState.SUCCESS),
    ((TxnState.FAILED,), TxnState.SENDING),
    ((TxnState.UNKNOWN,), TxnState.ACCEPTED),
    ((TxnState.PENDING,), TxnState.ACCEPTED),
    ((), TxnState.RECEIVED),
])
async def test_every_refused_transition_is_never_written(
        tmp_path: Path, reach: tuple[TxnState, ...], target: TxnState,
        caplog: pytest.LogCaptureFixture) -> None:
    j = Journal(tmp_path / "j.db")
    row = await _sale(j)
    for state in reach:
        if state in (TxnState.SUCCESS, TxnState.FAILED, TxnState.UNKNOWN):
            await j.finish(row, state, result={}, code="", message="")
        else:
            await j.transition(row, state)
    before = j.get(row)
    events = len(j.events(row))
    with pytest.raises(JournalError, match=f"{before.state.value} → {target.value}"):
        await j.transition(row, target)
    assert j.get(row) == before and len(j.events(row)) == events
    assert f"row {row}" in caplog.text and "not a legal transition" in caplog.text
    await j.aclose()


async def test_a_refused_step_fails_alone_in_its_group(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    done = await _sale(j, "DONE00000001")
    await j.finish(done, TxnState.SUCCESS, result={}, code="0000", message="ok")
    rows = [await _sale(j, f"OPEN0000000{i}") for i in range(3)]
    # Submitted together: they share one commit; the illegal one is rolled back alone.
    results = await asyncio.gather(
        j.transition(rows[0], TxnState.ACCEPTED),
        j.transition(done, TxnState.PENDING),
        j.transition(rows[1], TxnState.ACCEPTED),
        j.note(rows[2], "a note"),
        return_exceptions=True)
    assert isinstance(results[1], JournalError)
    assert j.get(rows[0]).state is TxnState.ACCEPTED
    assert j.get(rows[1]).state is TxnState.ACCEPTED
    assert j.get(done).state is TxnState.SUCCESS
    assert j.events(rows[2])[-1].detail == "a note"
    await j.aclose()


async def test_group_commit_shares_fsyncs_and_keeps_the_loop_free(tmp_path: Path) -> None:
    """While the writer is held inside a commit, the loop runs and steps queue up; they
    then go to disk together, in fewer commits than steps."""
    j = Journal(tmp_path / "j.db")
    gate = threading.Event()
    entered = threading.Event()
    original = j._writer._commit

    def slow_commit(batch: list[_Step]) -> None:
        entered.set()
        gate.wait(5)
        original(batch)

    j._writer._commit = slow_commit  # type: ignore[method-assign]
    first = asyncio.ensure_future(_sale(j, "FIRST0000001"))
    await asyncio.to_thread(entered.wait, 5)
    commits_before = j.stats.commits
    rest = [asyncio.ensure_future(_sale(j, f"LANE{i:08d}")) for i in range(20)]
    ticks = 0
    for _ in range(10):  # the loop is not blocked by the commit on disk
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 10 and not first.done()
    j._writer._commit = original  # type: ignore[method-assign]
    gate.set()
    await asyncio.gather(first, *rest)
    assert j.stats.steps == 21
    assert j.stats.commits - commits_before <= 3  # 20 steps waited: one or two commits
    assert j.count() == 21
    await j.aclose()


async def test_writes_after_close_are_refused_not_lost(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    pending = [asyncio.ensure_future(_sale(j, f"DRAIN{i:07d}")) for i in range(10)]
    await asyncio.sleep(0)  # submitted
    await j.aclose()  # drains the writer: everything queued is committed first
    assert all(p.done() and p.exception() is None for p in pending)
    other = Journal(tmp_path / "j.db")
    assert other.count() == 10
    await other.aclose()
    with pytest.raises(JournalError, match="closed"):
        await j.note(1, "too late")


async def test_memory_journals_are_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="needs a file"):
        Journal(":memory:")


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    await Journal(path).aclose()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(path)


async def test_search_escapes_like_wildcards(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    await _sale(j, "ORDER0001")
    await _sale(j, "ORDERX0002")
    assert [r.txn for r in j.search(txn="0001")] == ["ORDER0001"]
    assert j.search(txn="%") == []
    assert [r.txn for r in j.search(lane="till-1")] == ["ORDERX0002", "ORDER0001"]
    assert j.count_by_state(Kind.SALE, 0.0) == {"sending": 2}
    assert j.integrity_check() == "ok"
    reader = j.reader()  # the page's own connection sees the same commits
    assert reader.count() == 2
    reader.close()
    await j.aclose()


async def test_a_version_1_journal_is_migrated_with_its_data(tmp_path: Path) -> None:
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
    await j.aclose()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs: a full disk (ENOSPC) and a read-only one, as on a cheap POS box."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_fails_the_step_loudly_and_recovers(small_disk: Path) -> None:
    j = Journal(small_disk / "j.db")
    kept = await _sale(j, "BEFORE000001")
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # take every free byte, up to ENOSPC
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    failed = 0
    for i in range(50):  # the WAL has some room left in its pages; fill that too
        try:
            await _sale(j, f"FULL{i:08d}")
        except JournalError as exc:
            assert "full" in str(exc)
            failed += 1
            break
    assert failed == 1
    assert not j.health.ok and "full" in j.health.error and j.health.failures >= 1
    assert j.get(kept).txn == "BEFORE000001"  # nothing already committed is lost
    filler.unlink()  # space is freed: the next step commits
    row = await _sale(j, "AFTER0000001")
    assert j.health.ok and j.get(row).state is TxnState.SENDING
    await j.aclose()
    reopened = Journal(small_disk / "j.db")
    assert reopened.integrity_check() == "ok"
    assert reopened.find(Kind.SALE, "AFTER0000001") is not None
    await reopened.aclose()


async def test_a_read_only_disk_is_a_clear_error_at_start(small_disk: Path) -> None:
    await _sale(j := Journal(small_disk / "j.db"), "BEFORE000001")
    await j.aclose()
    await asyncio.to_thread(subprocess.run, ["mount", "-o", "remount,ro", str(small_disk)],
                            check=True)
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(small_disk / "j.db")


async def test_a_not_found_run_is_kept_across_a_reopen_and_ends_with_a_new_send(
        tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    row = await _sale(j)
    assert j.get(row).not_found is None  # no run: both columns NULL
    await j.save_not_found(row, NotFoundRun(first_s=12.0, count=2), 30.0)
    await j.aclose()
    j = Journal(path)
    record = j.get(row)
    assert (record.not_found, record.elapsed_s) == (NotFoundRun(first_s=12.0, count=2), 30.0)
    # The answer's money-clock time never lowers what a later save_elapsed wrote.
    await j.save_elapsed({row: 45.0})
    await j.save_not_found(row, NotFoundRun(first_s=12.0, count=3), 40.0)
    assert (j.get(row).not_found, j.get(row).elapsed_s) == (NotFoundRun(12.0, 3), 45.0)
    await j.save_not_found(row, None, 50.0)  # another answer: the run is over
    assert (j.get(row).not_found, j.get(row).elapsed_s) == (None, 50.0)
    # A run belongs to one send, as the money clock does: a re-send (after a provable
    # not-sent) starts both again.
    await j.save_not_found(row, NotFoundRun(first_s=50.0, count=1), 50.0)
    await j.transition(row, TxnState.FAILED, not_sent=True)
    record = await j.transition(row, TxnState.SENDING, not_sent=False)
    assert (record.not_found, record.elapsed_s) == (None, 0.0)
    await j.aclose()

"""Reading the journal: typed rows from one SQLite connection that only ever reads.

WAL lets any number of readers run beside the one writer without waiting for it; a
read sees every commit that completed before it started. The engine reads through the
journal's own reader (on the event loop: indexed, page-cache reads of a few rows); the
technician page opens its own (`Journal.reader()`), so a long page query never sits
between a lane and its next decision.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from agent.journal.records import (
    FINAL_STATES,
    EventRecord,
    Kind,
    OutboxRecord,
    TxnRecord,
    TxnState,
)

BUSY_TIMEOUT_S = 5.0  # another process (a technician's sqlite3 shell) may hold a lock briefly

TXN_COLUMNS = (
    "id, kind, txn, lane, tid, amount, parent, state, request, txn_time, created_at, "
    "updated_at, sent_at, code, message, reply, payment, not_sent, elapsed_s"
)
_OUTBOX_COLUMNS = "id, txn_row, lane, payload, created_at, delivered_at, superseded"


class JournalError(AgentError):
    """The journal cannot be opened, migrated or written, or a write was refused."""


def connect_reader(path: str) -> sqlite3.Connection:
    """A connection that can only read (`query_only`): a bug cannot make it write."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                         check_same_thread=False)
    db.execute("PRAGMA query_only=ON")
    return db


def integrity_problems(path: str) -> list[str]:
    """SQLite's full `integrity_check` of the file at `path` through a read-only
    connection; an empty list when it is sound."""
    try:
        db = connect_reader(path)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        db.close()
    problems = [str(r[0]) for r in rows]
    return [] if problems == ["ok"] else problems


class JournalReader:
    def __init__(self, path: str, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db

    def close(self) -> None:
        self._db.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):  # -wal/-shm exist only while open
                total += Path(self.path + suffix).stat().st_size
        return total

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # -- queries ----------------------------------------------------------------------

    def get(self, row_id: int) -> TxnRecord:
        row = self._db.execute(f"SELECT {TXN_COLUMNS} FROM txns WHERE id=?", (row_id,)).fetchone()
        if row is None:
            raise JournalError(f"no transaction row {row_id}")
        return txn_record(row)

    def find(self, kind: Kind, txn: str) -> TxnRecord | None:
        row = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE kind=? AND txn=?", (kind.value, txn)
        ).fetchone()
        return txn_record(row) if row else None

    def find_any(self, txn: str) -> list[TxnRecord]:
        rows = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE txn=? ORDER BY id", (txn,)
        ).fetchall()
        return [txn_record(r) for r in rows]

    def children(self, kind: Kind, parent: str) -> list[TxnRecord]:
        rows = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE kind=? AND parent=? ORDER BY id",
            (kind.value, parent),
        ).fetchall()
        return [txn_record(r) for r in rows]

    def not_final(self) -> list[TxnRecord]:
        # `state IN (...)` uses the state index; `NOT IN (final)` would scan every row
        # (130 ms at 100,000 transactions, twice before READY and on every status line).
        open_states = tuple(s.value for s in TxnState if s not in FINAL_STATES)
        marks = ",".join("?" * len(open_states))
        rows = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE state IN ({marks}) ORDER BY id",
            open_states,
        ).fetchall()
        return [txn_record(r) for r in rows]

    def count_in_state(self, state: TxnState) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM txns WHERE state=?",
                                    (state.value,)).fetchone()[0])

    def last_for_lane(self, lane: str) -> TxnRecord | None:
        row = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE lane=? ORDER BY id DESC LIMIT 1", (lane,)
        ).fetchone()
        return txn_record(row) if row else None

    def undelivered(self, lane: str | None = None) -> list[OutboxRecord]:
        sql = (f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL AND superseded=0")
        args: tuple[str, ...] = ()
        if lane is not None:
            sql += " AND lane=?"
            args = (lane,)
        return [outbox_record(r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def outbox_row(self, outbox_id: int) -> OutboxRecord:
        row = self._db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id=?", (outbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no outbox row {outbox_id}")
        return outbox_record(row)

    def outbox_for(self, row_id: int) -> list[OutboxRecord]:
        rows = self._db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE txn_row=? ORDER BY id", (row_id,)
        ).fetchall()
        return [outbox_record(r) for r in rows]

    def events(self, row_id: int) -> list[EventRecord]:
        rows = self._db.execute(
            "SELECT id, txn_row, at, state, code, detail FROM events WHERE txn_row=? "
            "ORDER BY id", (row_id,)
        ).fetchall()
        return [EventRecord(int(r[0]), int(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5]))
                for r in rows]

    def search(
        self,
        *,
        txn: str | None = None,
        lane: str | None = None,
        state: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[TxnRecord]:
        where: list[str] = []
        args: list[Any] = []
        if txn:
            where.append("(txn LIKE ? ESCAPE '\\' OR parent LIKE ? ESCAPE '\\')")
            pattern = "%" + txn.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern, pattern]
        for column, value in (("lane", lane), ("state", state), ("kind", kind)):
            if value:
                where.append(f"{column}=?")
                args.append(value)
        if since is not None:
            where.append("created_at>=?")
            args.append(since)
        if until is not None:
            where.append("created_at<?")
            args.append(until)
        sql = f"SELECT {TXN_COLUMNS} FROM txns"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        rows = self._db.execute(sql, (*args, limit, offset)).fetchall()
        return [txn_record(r) for r in rows]

    def count_by_state(self, kind: Kind, since: float) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT state, COUNT(*) FROM txns WHERE kind=? AND created_at>=? GROUP BY state",
            (kind.value, since),
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def count_by_lane_state(
        self, kind: Kind | None = None, since: float | None = None
    ) -> dict[tuple[str, str], int]:
        """(lane, state) → number of transactions (of `kind`, created since `since`);
        for the metrics and the technician page."""
        where: list[str] = []
        args: list[Any] = []
        if kind is not None:
            where.append("kind=?")
            args.append(kind.value)
        if since is not None:
            where.append("created_at>=?")
            args.append(since)
        sql = "SELECT lane, state, COUNT(*) FROM txns"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db.execute(sql + " GROUP BY lane, state", args).fetchall()
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    def sale_outcomes(self, since: float | None = None) -> dict[tuple[str, str], int]:
        """(lane, status) → sales (created since `since`), where a successful sale later
        voided counts as `voided` and one refunded in full as `refunded`, not `success`."""
        counts = {key: n for key, n in self.count_by_lane_state(Kind.SALE, since).items()}
        after = "" if since is None else " AND s.created_at>=?"
        args: tuple[float, ...] = () if since is None else (since,)
        # Voids and refunds are few: start from them (kind index), join their sale.
        voided = self._db.execute(
            "SELECT s.lane, COUNT(*) FROM txns v JOIN txns s ON s.kind='sale' AND s.txn=v.txn "
            "WHERE v.kind='void' AND v.state='success' AND s.state='success'" + after
            + " GROUP BY s.lane", args).fetchall()
        refunded = self._db.execute(
            "SELECT s.lane, COUNT(*) FROM (SELECT parent, SUM(CAST(amount AS INTEGER)) AS paid "
            "FROM txns WHERE kind='refund' AND state='success' GROUP BY parent) r "
            "JOIN txns s ON s.kind='sale' AND s.txn=r.parent "
            "WHERE s.state='success' AND r.paid>=CAST(s.amount AS INTEGER)"
            " AND NOT EXISTS (SELECT 1 FROM txns v WHERE v.kind='void' AND v.txn=s.txn "
            "AND v.state='success')" + after + " GROUP BY s.lane", args).fetchall()
        for status, rows in (("voided", voided), ("refunded", refunded)):
            for lane, n in rows:
                key = (str(lane), TxnState.SUCCESS.value)
                counts[key] = counts.get(key, 0) - int(n)
                counts[(str(lane), status)] = counts.get((str(lane), status), 0) + int(n)
        return {k: n for k, n in counts.items() if n > 0}

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM txns").fetchone()[0])


def txn_record(row: tuple[Any, ...]) -> TxnRecord:
    return TxnRecord(
        row_id=int(row[0]), kind=Kind(row[1]), txn=str(row[2]), lane=str(row[3]),
        tid=str(row[4]), amount=str(row[5]), parent=str(row[6]), state=TxnState(row[7]),
        request=str(row[8]), txn_time=str(row[9]), created_at=float(row[10]),
        updated_at=float(row[11]), sent_at=None if row[12] is None else float(row[12]),
        code=str(row[13]), message=str(row[14]), reply=str(row[15]), payment=str(row[16]),
        not_sent=bool(row[17]), elapsed_s=float(row[18]),
    )


def outbox_record(row: tuple[Any, ...]) -> OutboxRecord:
    return OutboxRecord(
        row_id=int(row[0]), txn_row=int(row[1]), lane=str(row[2]), payload=str(row[3]),
        created_at=float(row[4]), delivered_at=None if row[5] is None else float(row[5]),
        superseded=bool(row[6]),
    )

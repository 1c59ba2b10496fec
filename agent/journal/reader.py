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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from agent.journal.records import (
    FINAL_STATES,
    ArchivedTxn,
    EventRecord,
    Kind,
    NotFoundRun,
    OutboxRecord,
    SweepRecord,
    TxnRecord,
    TxnState,
)

BUSY_TIMEOUT_S = 5.0  # another process (a technician's sqlite3 shell) may hold a lock briefly

TXN_COLUMNS = (
    "id, kind, txn, lane, tid, amount, parent, state, request, txn_time, created_at, "
    "updated_at, sent_at, code, message, reply, payment, not_sent, elapsed_s, "
    "not_found_first_s, not_found_count"
)
_SWEEP_COLUMNS = ("id, day, trigger, started_at, finished_at, asked, changed, disagreements, "
                  "report")
SWEEPS_SCHEMA = 4  # the schema version that added the sweeps table
ARCHIVED_SCHEMA = 6  # the schema version that added archived_txns
EXPORT_BATCH = 1000  # rows fetched at a time by `export_rows`: memory stays flat

# A transaction's payment method for the day's split: a link (and a refund of a link) is
# `paylink`; a sale (and its void or refund) is `upi` when Paytm's payMethod (or, before any
# answer, the register's `mode`) says UPI, else `card`. `payment` and `request` are JSON or
# "", hence json_valid before json_extract (which raises on "").
_METHOD_SQL = """CASE
    WHEN t.kind='paylink' OR p.kind='paylink' THEN 'paylink'
    WHEN upper(COALESCE(
        CASE WHEN json_valid(o.payment) THEN json_extract(o.payment, '$.method') END,
        CASE WHEN json_valid(o.request) THEN json_extract(o.request, '$.mode') END,
        '')) LIKE '%UPI%' OR upper(json_extract(o.request, '$.mode'))='QR' THEN 'upi'
    ELSE 'card' END"""
# `o`: the row whose method counts (the sale for a void or refund, else the row itself).
_DAY_FROM = """FROM txns t
    LEFT JOIN txns p ON t.kind IN ('void', 'refund') AND p.txn=t.parent
        AND p.kind IN ('sale', 'paylink')
    JOIN txns o ON o.id=COALESCE(p.id, t.id)"""
# An outbox row's payload '' means "the transaction's reply" (schema 3 on: one copy).
OUTBOX_COLUMNS = ("o.id, o.txn_row, o.lane, CASE WHEN o.payload='' THEN t.reply "
                  "ELSE o.payload END, o.created_at, o.delivered_at, o.superseded")
OUTBOX_FROM = "FROM outbox o JOIN txns t ON t.id=o.txn_row"


class JournalError(AgentError):
    """The journal cannot be opened, migrated or written, or a write was refused."""


class ArchiveError(JournalError):
    """An archived transaction cannot be read back from its month archive (the file is
    missing, unreadable or does not hold it)."""


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
def open_read_only(path: str) -> JournalReader:
    """The journal of `path` for tools beside (or without) a running daemon: never created,
    never migrated, never written (`mode=ro` and `query_only`)."""
    if not Path(path).is_file():
        raise JournalError(f"no journal at {path!r} (is journal.path right?)")
    # No -wal file: no agent has the journal open and everything is in the main file. Then
    # read it as immutable, which creates no -wal/-shm: made by `sudo edc-agent report`,
    # they would belong to root and the agent (its own user) could not open its journal.
    immutable = "" if Path(path + "-wal").exists() else "&immutable=1"
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro{immutable}", uri=True,
                             timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        db.execute("PRAGMA query_only=ON")
        db.execute("SELECT COUNT(*) FROM txns").fetchone()
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read journal {path!r}: {exc}") from exc
    return JournalReader(path, db)


def fetch_txn(db: sqlite3.Connection, row_id: int) -> TxnRecord:
    """One row by id, on any connection (the reader's, or the writer's inside a step)."""
    row = db.execute(f"SELECT {TXN_COLUMNS} FROM txns WHERE id=?", (row_id,)).fetchone()
    if row is None:
        raise JournalError(f"no transaction row {row_id}")
    return txn_record(row)


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
        return fetch_txn(self._db, row_id)

    def find(self, kind: Kind, txn: str) -> TxnRecord | None:
        row = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE kind=? AND txn=?", (kind.value, txn)
        ).fetchone()
        return txn_record(row) if row else None

    def find_archived(self, kind: Kind, txn: str) -> ArchivedTxn | None:
        """The key retention left for (kind, txn) when it moved the row to an archive; a
        primary-key lookup, like `find`. Read after `find` found nothing: a row and its
        key change places in one commit, so one of the two reads sees it."""
        try:
            row = self._db.execute(
                "SELECT kind, txn, month, state, amount, tid FROM archived_txns "
                "WHERE kind=? AND txn=?", (kind.value, txn)).fetchone()
        except sqlite3.OperationalError:
            if self.schema_version < ARCHIVED_SCHEMA:
                return None  # a journal no agent of this version has opened yet
            raise
        if row is None:
            return None
        return ArchivedTxn(kind=Kind(row[0]), txn=str(row[1]), month=str(row[2]),
                           state=TxnState(row[3]), amount=str(row[4]), tid=str(row[5]))

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
        sql = (f"SELECT {OUTBOX_COLUMNS} {OUTBOX_FROM} "
               "WHERE o.delivered_at IS NULL AND o.superseded=0")
        args: tuple[str, ...] = ()
        if lane is not None:
            sql += " AND o.lane=?"
            args = (lane,)
        return [outbox_record(r) for r in self._db.execute(sql + " ORDER BY o.id", args).fetchall()]

    def outbox_row(self, outbox_id: int) -> OutboxRecord:
        row = self._db.execute(
            f"SELECT {OUTBOX_COLUMNS} {OUTBOX_FROM} WHERE o.id=?", (outbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no outbox row {outbox_id}")
        return outbox_record(row)

    def outbox_for(self, row_id: int) -> list[OutboxRecord]:
        rows = self._db.execute(
            f"SELECT {OUTBOX_COLUMNS} {OUTBOX_FROM} WHERE o.txn_row=? ORDER BY o.id", (row_id,)
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

    # -- close of day -----------------------------------------------------------------

    def day_tallies(self, since: float, until: float, lane: str | None = None
                    ) -> list[DayTally]:
        """Transactions created in [since, until), counted and summed by (lane, kind, state,
        method), in one indexed query (created_at): the day's report adds these up."""
        sql = (f"SELECT t.lane, MAX(t.tid), t.kind, t.state, {_METHOD_SQL}, COUNT(*), "
               f"SUM(CAST(t.amount AS INTEGER)) {_DAY_FROM} "
               "WHERE t.created_at>=? AND t.created_at<?")
        args: list[Any] = [since, until]
        if lane is not None:
            sql += " AND t.lane=?"
            args.append(lane)
        rows = self._db.execute(sql + " GROUP BY 1, 3, 4, 5 ORDER BY 1", args).fetchall()
        return [DayTally(lane=str(r[0]), tid=str(r[1] or ""), kind=Kind(r[2]),
                         state=TxnState(r[3]), method=str(r[4]), count=int(r[5]),
                         amount=int(r[6] or 0)) for r in rows]

    def day_rows(self, since: float, until: float) -> list[TxnRecord]:
        """Every transaction created in [since, until), oldest first (the sweep's list)."""
        rows = self._db.execute(
            f"SELECT {TXN_COLUMNS} FROM txns WHERE created_at>=? AND created_at<? ORDER BY id",
            (since, until)).fetchall()
        return [txn_record(r) for r in rows]

    def export_rows(self, since: float | None, until: float | None
                    ) -> Iterator[tuple[TxnRecord, str]]:
        """(transaction, method) for every row created in [since, until), oldest first,
        fetched EXPORT_BATCH at a time: a million rows never sit in memory together."""
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("t.created_at>=?")
            args.append(since)
        if until is not None:
            where.append("t.created_at<?")
            args.append(until)
        columns = [f"t.{c.strip()}" for c in TXN_COLUMNS.split(",")]
        method_at = len(columns)  # the method follows the transaction's own columns
        sql = f"SELECT {', '.join(columns)}, {_METHOD_SQL} {_DAY_FROM}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        cursor = self._db.execute(sql + " ORDER BY t.id", args)
        try:
            while batch := cursor.fetchmany(EXPORT_BATCH):
                for row in batch:
                    yield txn_record(row), str(row[method_at])
        finally:
            cursor.close()

    def last_sweep(self, day: str | None = None) -> SweepRecord | None:
        """The newest reconciliation sweep (of `day`, when given)."""
        if self.schema_version < SWEEPS_SCHEMA:
            return None  # a journal no agent of this version has opened yet
        if day is None:
            row = self._db.execute(
                f"SELECT {_SWEEP_COLUMNS} FROM sweeps ORDER BY id DESC LIMIT 1").fetchone()
        else:
            row = self._db.execute(
                f"SELECT {_SWEEP_COLUMNS} FROM sweeps WHERE day=? ORDER BY id DESC LIMIT 1",
                (day,)).fetchone()
        return None if row is None else sweep_record(row)


@dataclass(frozen=True, slots=True)
class DayTally:
    """One group of a day's transactions: how many and how much (paise)."""

    lane: str
    tid: str
    kind: Kind
    state: TxnState
    method: str  # card | upi | paylink
    count: int
    amount: int


def sweep_record(row: tuple[Any, ...]) -> SweepRecord:
    return SweepRecord(row_id=int(row[0]), day=str(row[1]), trigger=str(row[2]),
                       started_at=float(row[3]), finished_at=float(row[4]), asked=int(row[5]),
                       changed=int(row[6]), disagreements=int(row[7]), report=str(row[8]))


def txn_record(row: tuple[Any, ...]) -> TxnRecord:
    return TxnRecord(
        row_id=int(row[0]), kind=Kind(row[1]), txn=str(row[2]), lane=str(row[3]),
        tid=str(row[4]), amount=str(row[5]), parent=str(row[6]), state=TxnState(row[7]),
        request=str(row[8]), txn_time=str(row[9]), created_at=float(row[10]),
        updated_at=float(row[11]), sent_at=None if row[12] is None else float(row[12]),
        code=str(row[13]), message=str(row[14]), reply=str(row[15]), payment=str(row[16]),
        not_sent=bool(row[17]), elapsed_s=float(row[18]),
        not_found=None if row[19] is None or row[20] is None
        else NotFoundRun(first_s=float(row[19]), count=int(row[20])),
    )


def outbox_record(row: tuple[Any, ...]) -> OutboxRecord:
    return OutboxRecord(
        row_id=int(row[0]), txn_row=int(row[1]), lane=str(row[2]), payload=str(row[3]),
        created_at=float(row[4]), delivered_at=None if row[5] is None else float(row[5]),
        superseded=bool(row[6]),
    )

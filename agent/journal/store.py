"""SQLite journal: WAL, synchronous=FULL, one row per transaction, an append-only event log
and an outbox of results with their delivered flag.

Every public method that changes something commits before it returns: when it
returns, the step is on disk (fsync'd under synchronous=FULL), and only then may
the caller act on it or report it. That ordering is the whole point of this file.

Calls are synchronous and short (one small transaction each); the agent calls
them from its event loop. `write_latency` keeps the last commit times for the
diagnostics page and metrics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
from agent.journal.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0  # another process (a technician's sqlite3 shell) may hold a lock briefly
LATENCY_SAMPLES = 256

_TXN_COLUMNS = (
    "id, kind, txn, lane, tid, amount, parent, state, request, txn_time, created_at, "
    "updated_at, sent_at, code, message, reply, payment, not_sent"
)


class JournalError(AgentError):
    """The journal cannot be opened, migrated or written."""


class Journal:
    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`durable=False` (synchronous=OFF) exists only for benchmarks that measure fsync."""
        self.path = str(path)
        self._clock = clock
        self.write_latency: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        # Called after each commit with (what, txn row): "state", "event" or "delivered".
        # Live web views and tests wait on these instead of polling the file.
        self._listeners: list[Callable[[str, int], None]] = []
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path!r}: {exc}") from exc

    # -- lifecycle --------------------------------------------------------------------

    def subscribe(self, listener: Callable[[str, int], None]) -> Callable[[], None]:
        """Call `listener(what, txn_row)` after every commit; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, what: str, row_id: int) -> None:
        for listener in list(self._listeners):
            try:
                listener(what, row_id)
            except Exception:
                log.exception("journal listener failed")

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path!r} has schema version {version}, newer than this agent "
                f"understands ({SCHEMA_VERSION}): upgrade the agent, do not downgrade it"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._write():
                for statement in MIGRATIONS[target]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={target}")
            log.info("journal %s migrated to schema version %d", self.path, target)

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

    @contextmanager
    def _write(self) -> Iterator[None]:
        start = time.perf_counter()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(f"journal commit failed: {exc}") from exc
        self.write_latency.append(time.perf_counter() - start)

    # -- transactions -----------------------------------------------------------------

    def create(
        self,
        *,
        kind: Kind,
        txn: str,
        lane: str,
        tid: str,
        amount: str,
        request: dict[str, Any],
        txn_time: str,
        parent: str = "",
        states: Iterable[TxnState] = (TxnState.RECEIVED,),
    ) -> TxnRecord:
        """Insert a transaction, walking it through `states` (each an event) in one commit.

        A sale goes in as (received, sending) in one commit: the first time it exists on
        disk it is already marked "might have reached Paytm", and sent_at is set.
        """
        now = self._clock()
        steps = list(states)
        if not steps:
            raise ValueError("at least one state")
        final = steps[-1]
        sent_at = now if TxnState.SENDING in steps else None
        with self._write():
            cur = self._db.execute(
                "INSERT INTO txns (kind, txn, lane, tid, amount, parent, state, request, "
                "txn_time, created_at, updated_at, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (kind.value, txn, lane, tid, amount, parent, final.value,
                 json.dumps(request, separators=(",", ":")), txn_time, now, now, sent_at),
            )
            row_id = int(cur.lastrowid or 0)
            for state in steps:
                self._event(row_id, now, state.value, "", "")
        self._changed("state", row_id)
        return self.get(row_id)

    def transition(
        self,
        row_id: int,
        state: TxnState,
        *,
        code: str | None = None,
        message: str | None = None,
        detail: str = "",
        payment: dict[str, Any] | None = None,
        reply: dict[str, Any] | None = None,
        not_sent: bool | None = None,
        lane: str | None = None,
    ) -> TxnRecord:
        """Move a transaction to `state` (possibly the same, to record an event) and commit."""
        now = self._clock()
        sets = ["state=?", "updated_at=?"]
        args: list[Any] = [state.value, now]
        if state is TxnState.SENDING:
            sets.append("sent_at=?")
            args.append(now)
        if code is not None:
            sets.append("code=?")
            args.append(code)
        if message is not None:
            sets.append("message=?")
            args.append(message)
        if payment is not None:
            sets.append("payment=?")
            args.append(json.dumps(payment, separators=(",", ":")))
        if reply is not None:
            sets.append("reply=?")
            args.append(json.dumps(reply, separators=(",", ":")))
        if not_sent is not None:
            sets.append("not_sent=?")
            args.append(int(not_sent))
        if lane is not None:
            sets.append("lane=?")
            args.append(lane)
        with self._write():
            self._db.execute(f"UPDATE txns SET {', '.join(sets)} WHERE id=?", (*args, row_id))
            self._event(row_id, now, state.value, code or "", detail)
        self._changed("state", row_id)
        return self.get(row_id)

    def note(self, row_id: int, detail: str, code: str = "") -> None:
        """Append an event without changing state (a poll answer, a retry, a delivery)."""
        with self._write():
            state = self._db.execute("SELECT state FROM txns WHERE id=?", (row_id,)).fetchone()
            self._event(row_id, self._clock(), str(state[0]) if state else "", code, detail)
        self._changed("event", row_id)

    def finish(
        self,
        row_id: int,
        state: TxnState,
        *,
        result: dict[str, Any],
        code: str,
        message: str,
        payment: dict[str, Any] | None = None,
        detail: str = "",
    ) -> tuple[TxnRecord, OutboxRecord]:
        """Record a result for the register — the state, the reply and its outbox row —
        in one commit. Older undelivered results of the same transaction are superseded:
        the register needs the newest answer, not a stale `unknown`."""
        now = self._clock()
        payload = json.dumps(result, separators=(",", ":"))
        with self._write():
            self._db.execute(
                "UPDATE txns SET state=?, updated_at=?, code=?, message=?, reply=?"
                + (", payment=?" if payment is not None else "")
                + " WHERE id=?",
                (state.value, now, code, message, payload,
                 *((json.dumps(payment, separators=(",", ":")),) if payment is not None else ()),
                 row_id),
            )
            self._event(row_id, now, state.value, code, detail or message)
            self._db.execute(
                "UPDATE outbox SET superseded=1 WHERE txn_row=? AND delivered_at IS NULL",
                (row_id,),
            )
            lane = self._db.execute("SELECT lane FROM txns WHERE id=?", (row_id,)).fetchone()[0]
            cur = self._db.execute(
                "INSERT INTO outbox (txn_row, lane, payload, created_at) VALUES (?,?,?,?)",
                (row_id, lane, payload, now),
            )
            outbox_id = int(cur.lastrowid or 0)
        self._changed("state", row_id)
        return self.get(row_id), self.outbox_row(outbox_id)

    def mark_delivered(self, outbox_id: int) -> None:
        """The register ACKed the result frame: only now is the result delivered."""
        now = self._clock()
        with self._write():
            row = self._db.execute(
                "SELECT txn_row, delivered_at FROM outbox WHERE id=?", (outbox_id,)
            ).fetchone()
            if row is None or row[1] is not None:
                return
            self._db.execute("UPDATE outbox SET delivered_at=? WHERE id=?", (now, outbox_id))
            self._event(int(row[0]), now, "delivered", "", f"result {outbox_id} ACKed")
        self._changed("delivered", int(row[0]))

    # -- queries ----------------------------------------------------------------------

    def get(self, row_id: int) -> TxnRecord:
        row = self._db.execute(f"SELECT {_TXN_COLUMNS} FROM txns WHERE id=?", (row_id,)).fetchone()
        if row is None:
            raise JournalError(f"no transaction row {row_id}")
        return _txn(row)

    def find(self, kind: Kind, txn: str) -> TxnRecord | None:
        row = self._db.execute(
            f"SELECT {_TXN_COLUMNS} FROM txns WHERE kind=? AND txn=?", (kind.value, txn)
        ).fetchone()
        return _txn(row) if row else None

    def find_any(self, txn: str) -> list[TxnRecord]:
        rows = self._db.execute(
            f"SELECT {_TXN_COLUMNS} FROM txns WHERE txn=? ORDER BY id", (txn,)
        ).fetchall()
        return [_txn(r) for r in rows]

    def children(self, kind: Kind, parent: str) -> list[TxnRecord]:
        rows = self._db.execute(
            f"SELECT {_TXN_COLUMNS} FROM txns WHERE kind=? AND parent=? ORDER BY id",
            (kind.value, parent),
        ).fetchall()
        return [_txn(r) for r in rows]

    def not_final(self) -> list[TxnRecord]:
        # `state IN (...)` uses the state index; `NOT IN (final)` would scan every row
        # (130 ms at 100,000 transactions, twice before READY and on every status line).
        open_states = tuple(s.value for s in TxnState if s not in FINAL_STATES)
        marks = ",".join("?" * len(open_states))
        rows = self._db.execute(
            f"SELECT {_TXN_COLUMNS} FROM txns WHERE state IN ({marks}) ORDER BY id",
            open_states,
        ).fetchall()
        return [_txn(r) for r in rows]

    def count_in_state(self, state: TxnState) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM txns WHERE state=?",
                                    (state.value,)).fetchone()[0])

    def last_for_lane(self, lane: str) -> TxnRecord | None:
        row = self._db.execute(
            f"SELECT {_TXN_COLUMNS} FROM txns WHERE lane=? ORDER BY id DESC LIMIT 1", (lane,)
        ).fetchone()
        return _txn(row) if row else None

    def undelivered(self, lane: str | None = None) -> list[OutboxRecord]:
        sql = ("SELECT id, txn_row, lane, payload, created_at, delivered_at, superseded "
               "FROM outbox WHERE delivered_at IS NULL AND superseded=0")
        args: tuple[str, ...] = ()
        if lane is not None:
            sql += " AND lane=?"
            args = (lane,)
        return [_outbox(r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def outbox_row(self, outbox_id: int) -> OutboxRecord:
        row = self._db.execute(
            "SELECT id, txn_row, lane, payload, created_at, delivered_at, superseded "
            "FROM outbox WHERE id=?", (outbox_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"no outbox row {outbox_id}")
        return _outbox(row)

    def outbox_for(self, row_id: int) -> list[OutboxRecord]:
        rows = self._db.execute(
            "SELECT id, txn_row, lane, payload, created_at, delivered_at, superseded "
            "FROM outbox WHERE txn_row=? ORDER BY id", (row_id,)
        ).fetchall()
        return [_outbox(r) for r in rows]

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
        sql = f"SELECT {_TXN_COLUMNS} FROM txns"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        rows = self._db.execute(sql, (*args, limit, offset)).fetchall()
        return [_txn(r) for r in rows]

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

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM txns").fetchone()[0])

    def _event(self, row_id: int, at: float, state: str, code: str, detail: str) -> None:
        self._db.execute(
            "INSERT INTO events (txn_row, at, state, code, detail) VALUES (?,?,?,?,?)",
            (row_id, at, state, code, detail[:500]),
        )


def _txn(row: tuple[Any, ...]) -> TxnRecord:
    return TxnRecord(
        row_id=int(row[0]), kind=Kind(row[1]), txn=str(row[2]), lane=str(row[3]),
        tid=str(row[4]), amount=str(row[5]), parent=str(row[6]), state=TxnState(row[7]),
        request=str(row[8]), txn_time=str(row[9]), created_at=float(row[10]),
        updated_at=float(row[11]), sent_at=None if row[12] is None else float(row[12]),
        code=str(row[13]), message=str(row[14]), reply=str(row[15]), payment=str(row[16]),
        not_sent=bool(row[17]),
    )


def _outbox(row: tuple[Any, ...]) -> OutboxRecord:
    return OutboxRecord(
        row_id=int(row[0]), txn_row=int(row[1]), lane=str(row[2]), payload=str(row[3]),
        created_at=float(row[4]), delivered_at=None if row[5] is None else float(row[5]),
        superseded=bool(row[6]),
    )

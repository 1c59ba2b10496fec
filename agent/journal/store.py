"""SQLite journal: WAL, synchronous=FULL, one row per transaction, an append-only event log
and an outbox of results with their delivered flag.

Every write is a coroutine that returns once the step is committed (fsync'd under
synchronous=FULL): only then may the caller act on it or report it. That ordering is the
whole point of this file. The commits themselves happen on the writer thread
(`writer.py`), grouped, so a slow disk delays the steps waiting for it and nothing else.

Reads (`JournalReader`) run on the caller's thread through a connection that only reads;
under WAL they never wait for the writer and see every commit already awaited.

Refused, never written: a transition the table in `records.py` does not allow, a second
row for one (kind, txn). Both raise `JournalError` naming the row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.journal.reader import (
    BUSY_TIMEOUT_S,
    OUTBOX_COLUMNS,
    OUTBOX_FROM,
    JournalError,
    JournalReader,
    connect_reader,
    fetch_txn,
    integrity_problems,
    outbox_record,
    sweep_record,
)
from agent.journal.records import (
    Kind,
    NotFoundRun,
    OutboxRecord,
    SweepRecord,
    TxnRecord,
    TxnState,
    transition_allowed,
)
from agent.journal.schema import MIGRATIONS, SCHEMA_VERSION
from agent.journal.writer import Writer, WriterStats

log = logging.getLogger(__name__)

LATENCY_SAMPLES = 256
PROBLEMS_NAMED = 3  # of SQLite's findings, in the one CRITICAL line
QUICK_CHECK = "quick_check"  # at every start: page structure, O(size), no index cross-check
RECOVER_HINT = ("restore the last backup of the journal (docs/install.md, \"Recovering the "
                "journal\") and start the agent again")
_REPLY_OF = "SELECT reply FROM txns WHERE id=?"

__all__ = ["Journal", "JournalCorruptError", "JournalError", "JournalHealth", "Kind"]


@dataclass(slots=True)
class JournalHealth:
    """What the last commits say; the page and /healthz read it."""

    ok: bool = True
    error: str = ""  # the last failure ("" when none since start)
    error_at: float | None = None  # wall clock of that failure
    failures: int = 0


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class Journal(JournalReader):
    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = True,
        clock: Callable[[], float] = time.time,
        checked: Callable[[], list[str] | None] | None = None,
    ) -> None:
        """`durable=False` (synchronous=OFF) exists only for benchmarks that measure fsync.
        `checked`: the start-up quick_check's findings, when it already ran on this file
        (`agent.startcheck`); None from it means "not checked", and it is checked here."""
        path_text = str(path)
        self._clock = clock
        # The time each step waited for its commit (submission → on disk), newest last.
        self.write_latency: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.health = JournalHealth()
        # Called after each commit with (what, txn row): "state", "event" or "delivered".
        # Live web views and tests wait on these instead of polling the file.
        self._listeners: list[Callable[[str, int], None]] = []
        self._commit_observers: list[Callable[[list[float]], None]] = []
        if path_text == ":memory:":
            raise JournalError("the journal needs a file: a reader and the writer share it")
        _check_existing(path_text)
        writer_db: sqlite3.Connection | None = None
        try:
            Path(path_text).parent.mkdir(parents=True, exist_ok=True)
            writer_db = sqlite3.connect(path_text, timeout=BUSY_TIMEOUT_S,
                                        isolation_level=None, check_same_thread=False)
            if not writer_db.execute("SELECT COUNT(*) FROM sqlite_schema").fetchone()[0]:
                # A new file: pages freed by retention are given back a few at a time
                # (`PRAGMA incremental_vacuum`), never by one long VACUUM. Settable only
                # before the first table and before WAL; older journals are converted
                # once, at a quiet time, by retention (retention.py).
                writer_db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            writer_db.execute("PRAGMA journal_mode=WAL")
            writer_db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            writer_db.execute("PRAGMA foreign_keys=ON")
            found = checked() if checked is not None else None
            if found is None:
                _integrity(writer_db, path_text, QUICK_CHECK)
            else:
                _judge(path_text, found)  # checked already, beside the imports
            _migrate(writer_db, path_text)
            reader_db = connect_reader(path_text)
            info = os.stat(path_text)
        except (sqlite3.OperationalError, OSError) as exc:  # cannot open: not damage
            if writer_db is not None:
                writer_db.close()
            raise JournalError(f"cannot open journal {path_text!r}: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
            if writer_db is not None:
                writer_db.close()
            raise JournalCorruptError(path_text, str(exc)) from None
        except sqlite3.Error as exc:
            if writer_db is not None:
                writer_db.close()
            raise JournalError(f"cannot open journal {path_text!r}: {exc}") from exc
        # The file's identity: a journal deleted or replaced under the running agent is
        # noticed before the next commit (which would go to a file nobody will read).
        self._identity = (info.st_dev, info.st_ino)
        self._identity_error = ""
        self._identity_lock = threading.Lock()
        super().__init__(path_text, reader_db)
        self._writer = Writer(writer_db, on_commit=self._committed, on_failure=self._failed,
                              notify=self._notify, guard=self.check_identity)

    # -- lifecycle --------------------------------------------------------------------

    def check_identity(self) -> str | None:
        """None while the path still names the file opened at start, else why not.

        Sticky: once the file was deleted or replaced, every later commit is refused
        until the agent is restarted (with the journal restored from a backup)."""
        with self._identity_lock:  # the writer thread and the loop both ask
            return self._check_identity()

    def _check_identity(self) -> str | None:
        if self._identity_error:
            return self._identity_error
        try:
            info = os.stat(self.path)
            why = None if (info.st_dev, info.st_ino) == self._identity else "replaced"
        except FileNotFoundError:
            why = "deleted"
        except OSError as exc:
            why = f"unreadable ({exc.strerror})"
        if why is None:
            return None
        self._identity_error = (
            f"journal file {self.path!r} was {why} while the agent was running: nothing more "
            f"is written (it would be lost), new sales are refused; {RECOVER_HINT}")
        self.health.ok = False
        self.health.error = self._identity_error
        self.health.error_at = self._clock()
        self.health.failures += 1
        log.critical("%s", self._identity_error)
        return self._identity_error

    def integrity_problems(self) -> list[str]:
        """SQLite's full `integrity_check` (on demand: `edc-agent check-journal`); an
        empty list when the file is sound. Reads only, on a connection of its own."""
        return integrity_problems(self.path)

    def reader(self) -> JournalReader:
        """A reader of its own (the technician page's): its queries never share a lane's."""
        return JournalReader(self.path, connect_reader(self.path))

    def subscribe(self, listener: Callable[[str, int], None]) -> Callable[[], None]:
        """Call `listener(what, txn_row)` after every commit; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    def observe_commits(self, observer: Callable[[list[float]], None]) -> Callable[[], None]:
        """Call `observer(waits)` on the loop after each commit: how long each of its steps
        waited (submission → on disk). Returns the unsubscribe."""
        self._commit_observers.append(observer)
        return lambda: self._commit_observers.remove(observer) \
            if observer in self._commit_observers else None

    def _notify(self, notes: list[tuple[str, int]], waits: list[float]) -> None:
        for observer in list(self._commit_observers):
            try:
                observer(waits)
            except Exception:
                log.exception("journal commit observer failed")
        for what, row_id in notes:
            for listener in list(self._listeners):
                try:
                    listener(what, row_id)
                except Exception:
                    log.exception("journal listener failed")

    def _committed(self, waits: list[float]) -> None:
        # Writer thread. deque.extend is atomic; the flags are plain stores.
        if self._identity_error:
            return
        self.write_latency.extend(waits)
        if not self.health.ok:
            log.warning("journal %s commits again after: %s", self.path, self.health.error)
        self.health.ok = True

    def _failed(self, reason: str) -> None:
        # Writer thread. Loud: every failed commit is a step that did not happen.
        self.health.ok = False
        self.health.error = reason
        self.health.error_at = self._clock()
        self.health.failures += 1
        log.error("journal %s: %s", self.path, reason)

    async def aclose(self) -> None:
        """Commit everything queued (SIGTERM drains the writer), then close.

        The reader closes first: a `query_only` connection may not checkpoint, so the
        writer must be the last connection, which folds the WAL into the file and removes
        the -wal/-shm files (a clean file a backup, or a read-only mount, can take)."""
        super().close()
        await asyncio.to_thread(self._writer.close)

    def close(self) -> None:
        """Blocking close, for tools and tests that run no event loop."""
        super().close()
        self._writer.close()

    async def _run(self, op: Callable[[sqlite3.Connection],
                                      tuple[Any, list[tuple[str, int]]]],
                   *, bare: bool = False) -> Any:
        return await self._writer.submit(op, bare=bare)

    async def maintain(self, op: Callable[[sqlite3.Connection], Any], *,
                       bare: bool = False) -> Any:
        """Run `op(db)` on the writer's connection, on the writer thread: inside a batch
        transaction (committed with it), or `bare` alone outside any (VACUUM). The loop
        never blocks on it; the steps queued behind it wait."""
        def step(db: sqlite3.Connection) -> tuple[Any, list[tuple[str, int]]]:
            try:
                return op(db), []
            except sqlite3.Error:
                raise  # as any step's: a disk error fails its batch
            except Exception as exc:  # a bug in `op` fails it alone, never a sale's step
                raise JournalError(f"journal maintenance failed: {exc!r}") from exc

        return await self._run(step, bare=bare)

    # -- transactions -----------------------------------------------------------------

    async def create(
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
        request_text = _dumps(request)

        def op(db: sqlite3.Connection) -> tuple[TxnRecord, list[tuple[str, int]]]:
            # The engine answers an archived txn from its archive; should anything still
            # try to open one again, the journal refuses it as it refuses a live one.
            if db.execute("SELECT 1 FROM archived_txns WHERE kind=? AND txn=?",
                          (kind.value, txn)).fetchone() is not None:
                raise JournalError(f"the journal archived a {kind.value} {txn} already")
            try:
                cur = db.execute(
                    "INSERT INTO txns (kind, txn, lane, tid, amount, parent, state, request, "
                    "txn_time, created_at, updated_at, sent_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (kind.value, txn, lane, tid, amount, parent, final.value, request_text,
                     txn_time, now, now, sent_at),
                )
            except sqlite3.IntegrityError:
                raise JournalError(f"the journal already has a {kind.value} {txn}") from None
            row_id = int(cur.lastrowid or 0)
            for state in steps:
                _event(db, row_id, now, state.value, "", "")
            return fetch_txn(db, row_id), [("state", row_id)]

        record: TxnRecord = await self._run(op)
        return record

    async def transition(
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
        """Move a transaction to `state` (the same non-final state records an event)."""
        now = self._clock()
        sets = ["state=?", "updated_at=?"]
        args: list[Any] = [state.value, now]
        if state is TxnState.SENDING:
            # A new money clock, so no run of "not found" answers: both belong to one send.
            sets.extend(("sent_at=?", "elapsed_s=0", "not_found_first_s=NULL",
                         "not_found_count=NULL"))
            args.append(now)
        for column, value in (("code", code), ("message", message), ("lane", lane)):
            if value is not None:
                sets.append(f"{column}=?")
                args.append(value)
        if payment is not None:
            sets.append("payment=?")
            args.append(_dumps(payment))
        if reply is not None:
            sets.append("reply=?")
            args.append(_dumps(reply))
        if not_sent is not None:
            sets.append("not_sent=?")
            args.append(int(not_sent))

        def op(db: sqlite3.Connection) -> tuple[TxnRecord, list[tuple[str, int]]]:
            _check_transition(db, row_id, state)
            db.execute(f"UPDATE txns SET {', '.join(sets)} WHERE id=?", (*args, row_id))
            _event(db, row_id, now, state.value, code or "", detail)
            return fetch_txn(db, row_id), [("state", row_id)]

        record: TxnRecord = await self._run(op)
        return record

    async def save_elapsed(self, elapsed: dict[int, float]) -> None:
        """Persist each row's monotonic seconds since `sending` (one commit for all), so a
        restart continues its grace and schedule from there."""
        if not elapsed:
            return
        values = [(seconds, row_id) for row_id, seconds in elapsed.items()]

        def op(db: sqlite3.Connection) -> tuple[None, list[tuple[str, int]]]:
            db.executemany("UPDATE txns SET elapsed_s=? WHERE id=?", values)
            return None, []

        await self._run(op)

    async def save_not_found(self, row_id: int, run: NotFoundRun | None,
                             elapsed_s: float) -> None:
        """Persist a row's run of "not found" answers (None: there is none any more), so a
        restart continues it rather than beginning a new one (register-protocol §5.6).

        `elapsed_s`, the answer's money-clock time, is saved with it (never lowered): after
        a crash, with no save at stop, the restored clock then starts at least at the
        run's last answer, and the time since its first is not waited for again."""
        args = (None if run is None else run.first_s, None if run is None else run.count,
                elapsed_s, row_id)

        def op(db: sqlite3.Connection) -> tuple[None, list[tuple[str, int]]]:
            db.execute("UPDATE txns SET not_found_first_s=?, not_found_count=?, "
                       "elapsed_s=MAX(elapsed_s, ?) WHERE id=?", args)
            return None, []

        await self._run(op)

    async def note(self, row_id: int, detail: str, code: str = "") -> None:
        """Append an event without changing state (a poll answer, a retry, a refusal)."""
        now = self._clock()

        def op(db: sqlite3.Connection) -> tuple[None, list[tuple[str, int]]]:
            row = db.execute("SELECT state FROM txns WHERE id=?", (row_id,)).fetchone()
            _event(db, row_id, now, str(row[0]) if row else "", code, detail)
            return None, [("event", row_id)]

        await self._run(op)

    async def finish(
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
        payload = _dumps(result)
        payment_text = _dumps(payment) if payment is not None else None

        def op(db: sqlite3.Connection) -> tuple[tuple[TxnRecord, OutboxRecord],
                                                list[tuple[str, int]]]:
            _check_transition(db, row_id, state)
            db.execute(f"UPDATE outbox SET payload=({_REPLY_OF}) WHERE txn_row=? AND payload=''",
                       (row_id, row_id))
            db.execute(
                "UPDATE txns SET state=?, updated_at=?, code=?, message=?, reply=?"
                + (", payment=?" if payment_text is not None else "") + " WHERE id=?",
                (state.value, now, code, message, payload,
                 *((payment_text,) if payment_text is not None else ()), row_id),
            )
            _event(db, row_id, now, state.value, code, detail or message)
            db.execute("UPDATE outbox SET superseded=1 WHERE txn_row=? AND delivered_at IS NULL",
                       (row_id,))
            lane = db.execute("SELECT lane FROM txns WHERE id=?", (row_id,)).fetchone()[0]
            # The newest outbox row's payload is the transaction's reply, stored once, in
            # txns ('' here); the older rows got their own copy above, before it changed.
            cur = db.execute(
                "INSERT INTO outbox (txn_row, lane, payload, created_at) VALUES (?,?,'',?)",
                (row_id, lane, now),
            )
            outbox = db.execute(f"SELECT {OUTBOX_COLUMNS} {OUTBOX_FROM} WHERE o.id=?",
                                (int(cur.lastrowid or 0),)).fetchone()
            return (fetch_txn(db, row_id), outbox_record(outbox)), [("state", row_id)]

        done: tuple[TxnRecord, OutboxRecord] = await self._run(op)
        return done

    async def mark_delivered(self, outbox_id: int) -> None:
        """The register ACKed the result frame: only now is the result delivered."""
        now = self._clock()

        def op(db: sqlite3.Connection) -> tuple[None, list[tuple[str, int]]]:
            row = db.execute("SELECT txn_row, delivered_at FROM outbox WHERE id=?",
                             (outbox_id,)).fetchone()
            if row is None or row[1] is not None:
                return None, []
            db.execute("UPDATE outbox SET delivered_at=? WHERE id=?", (now, outbox_id))
            _event(db, int(row[0]), now, "delivered", "", f"result {outbox_id} ACKed")
            return None, [("delivered", int(row[0]))]

        await self._run(op)


    async def add_payment_fields(self, row_id: int, fields: dict[str, str],
                                 detail: str) -> TxnRecord:
        """Fill payment details Paytm gave only later (its transaction id, asked again by
        the close-of-day sweep) into a row, final or not. Adds missing members only: what
        Paytm said first is never overwritten. The state does not change; an event says
        what was added."""
        now = self._clock()

        def op(db: sqlite3.Connection) -> tuple[TxnRecord, list[tuple[str, int]]]:
            row = db.execute("SELECT payment, state FROM txns WHERE id=?", (row_id,)).fetchone()
            if row is None:
                raise JournalError(f"no transaction row {row_id}")
            try:
                payment = json.loads(row[0]) if row[0] else {}
            except ValueError:
                payment = {}
            if not isinstance(payment, dict):
                payment = {}
            added = {k: v for k, v in fields.items() if v and not payment.get(k)}
            if added:
                db.execute("UPDATE txns SET payment=?, updated_at=? WHERE id=?",
                           (_dumps({**payment, **added}), now, row_id))
                _event(db, row_id, now, str(row[1]), "", detail)
            return fetch_txn(db, row_id), [("event", row_id)] if added else []

        record: TxnRecord = await self._run(op)
        return record

    async def record_sweep(self, *, day: str, trigger: str, started_at: float, asked: int,
                           changed: int, disagreements: int,
                           report: dict[str, Any]) -> SweepRecord:
        """Keep a reconciliation sweep's result (the day's report shows the last one)."""
        now = self._clock()
        text = _dumps(report)

        def op(db: sqlite3.Connection) -> tuple[SweepRecord, list[tuple[str, int]]]:
            cur = db.execute(
                "INSERT INTO sweeps (day, trigger, started_at, finished_at, asked, changed, "
                "disagreements, report) VALUES (?,?,?,?,?,?,?,?)",
                (day, trigger, started_at, now, asked, changed, disagreements, text))
            row = db.execute(
                "SELECT id, day, trigger, started_at, finished_at, asked, changed, "
                "disagreements, report FROM sweeps WHERE id=?",
                (int(cur.lastrowid or 0),)).fetchone()
            return sweep_record(row), []

        record: SweepRecord = await self._run(op)
        return record


class JournalCorruptError(JournalError):
    """The journal file is not a sound SQLite database (damaged pages, not a journal)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"journal {path!r} is corrupt ({detail}); stop the agent, move the file aside "
            f"(keep it for the vendor) and {RECOVER_HINT}")


def _check_existing(path: str) -> None:
    """An existing journal must be a readable, non-empty file: never a silent fresh start."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return  # a new installation: the journal is created
    except OSError as exc:
        raise JournalError(f"journal {path!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise JournalError(f"journal {path!r} is not a regular file")
    if info.st_size == 0:
        raise JournalError(
            f"journal {path!r} is empty (0 bytes): the transactions it held are gone, and "
            "starting fresh would forget which sales may have reached Paytm; "
            f"{RECOVER_HINT}, or delete the empty file to start a new journal on purpose")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise JournalError(f"journal {path!r} cannot be read: {exc.strerror}") from None


def _integrity(db: sqlite3.Connection, path: str, check: str) -> None:
    rows = db.execute(f"PRAGMA {check}").fetchall()
    _judge(path, [str(r[0]) for r in rows])


def _judge(path: str, problems: list[str]) -> None:
    if problems != ["ok"]:
        detail = " ".join("; ".join(problems[:PROBLEMS_NAMED]).split())  # one line
        raise JournalCorruptError(path, detail)


def _migrate(db: sqlite3.Connection, path: str) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {path!r} has schema version {version}, newer than this agent "
            f"understands ({SCHEMA_VERSION}): upgrade the agent, do not downgrade it"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version={target}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        log.info("journal %s migrated to schema version %d", path, target)


def _check_transition(db: sqlite3.Connection, row_id: int, target: TxnState) -> None:
    row = db.execute("SELECT kind, txn, state, not_sent FROM txns WHERE id=?",
                     (row_id,)).fetchone()
    if row is None:
        raise JournalError(f"no transaction row {row_id}")
    kind, txn, state = str(row[0]), str(row[1]), TxnState(row[2])
    if not transition_allowed(state, target, not_sent=bool(row[3])):
        log.error("journal refused %s %s (row %d): %s → %s is not a legal transition",
                  kind, txn, row_id, state.value, target.value)
        raise JournalError(f"{kind} {txn} (row {row_id}): "
                           f"{state.value} → {target.value} is not allowed")


def _event(db: sqlite3.Connection, row_id: int, at: float, state: str, code: str,
           detail: str) -> None:
    db.execute("INSERT INTO events (txn_row, at, state, code, detail) VALUES (?,?,?,?,?)",
               (row_id, at, state, code, detail[:500]))

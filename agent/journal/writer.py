"""The journal's writer thread: the only owner of the write connection, with group commit.

    event loop                          writer thread
    ──────────                          ─────────────
    await submit(op) ──► queue ──►      BEGIN IMMEDIATE
    await submit(op) ──►                  SAVEPOINT; op(db); RELEASE     (one per step)
    await submit(op) ──►                  SAVEPOINT; op(db); RELEASE
                                        COMMIT                           (one fsync)
         ◄── every step's future resolved, in order, after COMMIT returned

Why a thread: under synchronous=FULL each COMMIT waits for fsync, and a cheap eMMC takes
100–300 ms for one. On the event loop that stalled every lane's ACK, the page and the
watchdog. Here only the steps in that commit wait for it.

Why group commit: steps that arrive while one commit is on disk share the next
transaction and the next fsync, so N lanes cost one fsync per round, not N.

Ordering: a step's future resolves only after the COMMIT that holds it returned, so
"journaled before it is acted on or reported" holds for each step exactly as before;
steps of one batch are applied in submission order.

Maintenance (`submit(op, bare=True)`): a step that must run outside any transaction
(VACUUM, incremental_vacuum) runs alone, after the steps queued before it committed and
before the ones queued after it; they wait for it, they never fail because of it.

Failures: each step runs in its own SAVEPOINT, so a step the journal refuses (an illegal
transition, a duplicate key) fails alone. A failed BEGIN or COMMIT (disk full, read-only
file, I/O error) fails every step of that batch: none of them is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.journal.reader import JournalError

log = logging.getLogger(__name__)

MAX_BATCH = 256  # steps per commit: bounds one transaction's size, not the wait

# A step: runs on the writer's connection inside the batch transaction; returns its value
# and the notifications (what, txn row) to send to listeners once it is committed.
Op = Callable[[sqlite3.Connection], tuple[Any, list[tuple[str, int]]]]


@dataclass(slots=True)
class _Step:
    op: Op
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    submitted: float = field(default_factory=time.perf_counter)
    bare: bool = False  # maintenance: runs alone, outside BEGIN/COMMIT


@dataclass(slots=True)
class WriterStats:
    steps: int = 0  # steps committed
    commits: int = 0  # COMMITs that succeeded: each one fsync (or one group of them)
    failed_commits: int = 0


class Writer:
    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        on_commit: Callable[[list[float]], None],
        on_failure: Callable[[str], None],
        notify: Callable[[list[tuple[str, int]], list[float]], None],
        guard: Callable[[], str | None] | None = None,
    ) -> None:
        self._db = db
        self._guard = guard  # before each batch: None, or why nothing may be committed
        self._queue: queue.SimpleQueue[_Step | None] = queue.SimpleQueue()
        self._on_commit = on_commit  # each step's wait for its commit — writer thread
        self._on_failure = on_failure  # writer thread
        self._notify = notify  # loop thread, after the steps' futures resolved: (notes, waits)
        self.stats = WriterStats()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Op, *, bare: bool = False) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            future.set_exception(JournalError("journal is closed"))
            return future
        self._queue.put(_Step(op, future, loop, bare=bare))
        return future

    def close(self) -> None:
        """Commit what is queued, then stop. Blocks: call it off the event loop."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        held: _Step | None = None  # a maintenance step met while gathering a batch
        while not stopping or held is not None:
            if held is not None:
                first, held = held, None
            else:
                got = self._queue.get()
                if got is None:
                    break
                first = got
            if first.bare:
                self._maintain(first)
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    step = self._queue.get_nowait()
                except queue.Empty:
                    break
                if step is None:
                    stopping = True
                    break
                if step.bare:
                    held = step
                    break
                batch.append(step)
            try:
                self._commit(batch)
            except Exception as exc:
                log.exception("journal writer failed a batch")
                error = JournalError(f"journal writer failed: {exc}")
                _settle(batch, [(False, error, [])] * len(batch), None, [])
        self._db.close()

    def _maintain(self, step: _Step) -> None:
        try:
            value, notes = step.op(self._db)
        except Exception as exc:
            log.exception("journal maintenance failed")
            _settle([step], [(False, _as_journal_error(exc), [])], None, [])
            return
        _settle([step], [(True, value, notes)], self._notify, [])

    def _commit(self, batch: list[_Step]) -> None:
        db = self._db
        outcomes: list[tuple[bool, Any, list[tuple[str, int]]]] = []
        # A step alone needs no savepoint: if it is refused, the transaction holds nothing
        # else and is rolled back whole (three statements fewer on the common path).
        alone = len(batch) == 1
        refused = self._guard() if self._guard is not None else None
        if refused is not None:
            self.stats.failed_commits += 1
            _settle(batch, [(False, JournalError(refused), [])] * len(batch), None, [])
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            for step in batch:
                if not alone:
                    db.execute("SAVEPOINT step")
                try:
                    value, notes = step.op(db)
                except (JournalError, sqlite3.IntegrityError) as exc:
                    # Refused (an illegal transition, a duplicate key): this step fails
                    # alone. Any other error (disk full, I/O) fails the whole batch below.
                    if not alone:
                        db.execute("ROLLBACK TO step")
                        db.execute("RELEASE step")
                    outcomes.append((False, _as_journal_error(exc), []))
                    continue
                if not alone:
                    db.execute("RELEASE step")
                outcomes.append((True, value, notes))
            if alone and not outcomes[0][0]:
                db.execute("ROLLBACK")
            else:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("journal rollback failed")
            reason = f"journal commit failed: {exc}"
            self.stats.failed_commits += 1
            self._on_failure(reason)
            _settle(batch, [(False, JournalError(reason), [])] * len(batch), None, [])
            return
        done = time.perf_counter()
        self.stats.commits += 1
        self.stats.steps += sum(1 for ok, _, _ in outcomes if ok)
        waits = [done - step.submitted for step in batch]
        self._on_commit(waits)
        _settle(batch, outcomes, self._notify, waits)


def _settle(batch: list[_Step], outcomes: list[tuple[bool, Any, list[tuple[str, int]]]],
            notify: Callable[[list[tuple[str, int]], list[float]], None] | None,
            waits: list[float]) -> None:
    """Hand a batch's outcomes to the loop in one wake-up: resolve each step's future (in
    submission order), then tell the listeners."""
    def on_loop() -> None:
        notes_all: list[tuple[str, int]] = []
        for step, (ok, value, notes) in zip(batch, outcomes, strict=True):
            notes_all.extend(notes)
            if step.future.done():  # the awaiting step was cancelled; the journal has it
                continue
            if ok:
                step.future.set_result(value)
            else:
                step.future.set_exception(value)
        if notify is not None:
            notify(notes_all, waits)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        batch[0].loop.call_soon_threadsafe(on_loop)


def _as_journal_error(exc: Exception) -> JournalError:
    if isinstance(exc, JournalError):
        return exc
    return JournalError(f"journal refused the step: {exc}")

"""Retention: old, settled transactions move to monthly archives and leave the journal.

    journal.db                      the live journal (the last `[journal] keep_days`)
    journal-2026-01.jsonl.gz        January 2026 (IST), one JSON object a transaction
    journal-2026-02.jsonl.gz        …

What moves: a transaction created more than `keep_days` ago that is final (success or
failed) with every result delivered to the register, together with its whole family (a
sale, its void and its refunds move together, or none of them does). Nothing non-final,
`unknown` or undelivered ever moves; a family with such a member stays whole.

Order, so that no transaction is ever in neither place:

1. off the loop (a thread, its own read-only connection): the rows, their events and
   outbox rows are written to a new copy of the month's archive (the old copy's lines
   first), fsync'd, renamed over the old one, and the directory fsync'd;
2. only then, on the journal's writer thread (group commit, like every journal write),
   the rows are deleted, each one re-checked: a row that changed since step 1 (a new
   event, an undelivered result) stays and is archived again next time — a reader keeps
   the newest line of a row (`iter_archived` does);
3. the freed pages go back to the file system: `PRAGMA incremental_vacuum` in small
   steps on the writer thread (journals created since schema 3), or — for an older
   journal with a quarter of its pages free — one VACUUM that converts it, only when the
   caller says the store is quiet (no sale in flight).

Each moved row leaves its key in `archived_txns` (kind, txn, month, final state, amount,
terminal), written in the same writer step that deletes the row: a transaction is in the
journal, or keyed as archived, never in neither. The engine's repeat check reads the keys
(`JournalReader.find_archived`) and answers an archived sale or payment link from its
archive (`read_archived`, in a thread) — never by sending it to Paytm again. Months
archived before schema 6 are keyed from their files once (`key_archives`, at start and
before each run).

`iter_archived` reads the archives back (for exports and the day report of an old day).
An archived row keeps the journal's own text: `reply` as stored (a result journaled
since schema 3 has its receipt rebuilt by `agent.engine.results.restore_result`).
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import io
import json
import logging
import os
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agent.journal.reader import (
    OUTBOX_COLUMNS,
    OUTBOX_FROM,
    TXN_COLUMNS,
    ArchiveError,
    connect_reader,
)
from agent.journal.records import (
    FINAL_STATES,
    ArchivedFamily,
    ArchivedTxn,
    Kind,
    TxnRecord,
    TxnState,
)
from agent.journal.store import Journal
from agent.paytm.clock import IST

log = logging.getLogger(__name__)

DAY_S = 86400.0
ARCHIVE_FORMAT = 1  # the `v` of every archived line
ARCHIVE_SUFFIX = ".jsonl.gz"
MAX_ROWS_PER_PASS = 20_000  # one pass's plan (row ids in memory); a run loops over passes
READ_CHUNK = 500  # rows read (and deleted, in one writer step) at a time
VACUUM_PAGES = 1024  # pages given back per writer step (4 MB at SQLite's default page)
CONVERT_FREE_RATIO = 0.25  # an old journal is VACUUMed (once) when this much of it is free
GZIP_LEVEL = 6
ARCHIVE_MODE = 0o600  # as the journal's own files
_MONTH_RE = re.compile(r"-(\d{4})-(\d{2})\.jsonl\.gz$")
_FINAL = tuple(s.value for s in FINAL_STATES)
# What reading an archive can raise: a missing or unreadable file (OSError, of which
# gzip.BadGzipFile), a truncated one (EOFError), damaged data (zlib.error), bad text.
_UNREADABLE = (OSError, EOFError, zlib.error, UnicodeDecodeError)


@dataclass(slots=True)
class RetentionReport:
    cutoff: float  # rows created before this wall clock were due
    moved: int = 0  # transactions now only in an archive
    kept: int = 0  # due, but kept: they changed while being archived (next run)
    months: list[str] = field(default_factory=list)  # archive months written
    freed_pages: int = 0  # given back by incremental_vacuum
    vacuumed: bool = False  # an old journal converted by one VACUUM


def archive_path(journal_path: str | Path, month: str) -> Path:
    """The archive of `month` ("YYYY-MM", IST) for the journal at `journal_path`."""
    path = Path(journal_path)
    return path.with_name(f"{path.stem}-{month}{ARCHIVE_SUFFIX}")


def month_of(created_at: float) -> str:
    return datetime.fromtimestamp(created_at, IST).strftime("%Y-%m")


async def run_retention(journal: Journal, keep_days: int, *, now: float,
                        quiet: Callable[[], bool] = lambda: False) -> RetentionReport:
    """Move what is due (see the module's docstring); every blocking part runs off the loop."""
    report = RetentionReport(cutoff=now - keep_days * DAY_S)
    await key_archives(journal)  # months archived before schema 6 (once; then nothing)
    while True:
        plan = await asyncio.to_thread(_plan, journal.path, report.cutoff)
        if not plan:
            break
        moved_before = report.moved
        for month, ids in sorted(plan.items()):
            target = archive_path(journal.path, month)
            archived = await asyncio.to_thread(_write_month, journal.path, target, ids)
            for start in range(0, len(ids), READ_CHUNK):
                chunk = {i: archived[i] for i in ids[start:start + READ_CHUNK]}
                moved = await journal.maintain(functools.partial(
                    _delete, archived=chunk, month=month, file=target.name, now=now))
                report.moved += int(moved)
                report.kept += len(chunk) - int(moved)
            report.months.append(month)
        if report.moved == moved_before:  # everything due changed under us: next run
            break
    if report.moved:
        log.info("retention: %d transaction(s) older than %d days moved to %s",
                 report.moved, keep_days, ", ".join(sorted(set(report.months))))
    report.freed_pages, report.vacuumed = await _give_back(journal, quiet)
    return report


# -- plan (a thread, read-only) -----------------------------------------------------------

def _plan(path: str, cutoff: float) -> dict[str, list[int]]:
    """month → row ids due to move (at most MAX_ROWS_PER_PASS in all)."""
    db = connect_reader(path)
    try:
        # A row is settled when final with no result waiting for the register; a family
        # (the sale's txn and every row whose parent it is) moves only when every member
        # is settled and old.
        unsettled = (
            "(r.created_at >= :cut OR r.state NOT IN ('success','failed') OR EXISTS ("
            "SELECT 1 FROM outbox o WHERE o.txn_row=r.id AND o.delivered_at IS NULL "
            "AND o.superseded=0))")
        family = ("CASE WHEN c.parent != '' THEN c.parent ELSE c.txn END")
        sql = (
            "SELECT c.id, c.created_at FROM txns c "
            "WHERE c.created_at < :cut AND c.state IN ('success','failed') "
            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.txn_row=c.id "
            "AND o.delivered_at IS NULL AND o.superseded=0) "
            f"AND NOT EXISTS (SELECT 1 FROM txns r WHERE r.kind IN "
            f"('sale','void','paylink','refund') AND r.txn = {family} AND {unsettled}) "
            f"AND NOT EXISTS (SELECT 1 FROM txns r WHERE r.parent = {family} AND {unsettled}) "
            "ORDER BY c.id LIMIT :limit")
        plan: dict[str, list[int]] = {}
        for row_id, created_at in db.execute(sql, {"cut": cutoff,
                                                   "limit": MAX_ROWS_PER_PASS}):
            plan.setdefault(month_of(float(created_at)), []).append(int(row_id))
        return plan
    finally:
        db.close()


# -- archive files (a thread) -------------------------------------------------------------

def _write_month(path: str, target: Path, ids: list[int]) -> dict[int, int]:
    """Write `target` anew: its old lines (but those of `ids`), then the rows `ids`;
    fsync'd and renamed into place. Returns each row's last event id as archived."""
    wanted = set(ids)
    tmp = target.with_name(f".{target.name}.tmp")
    last_event: dict[int, int] = {}
    db = connect_reader(path)
    try:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL,
                               filename="") as gz:
                out = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
                if target.exists():
                    for line in _lines(target):
                        if _row_of(line) not in wanted:
                            out.write(line if line.endswith("\n") else line + "\n")
                for start in range(0, len(ids), READ_CHUNK):
                    for obj in _archived_rows(db, ids[start:start + READ_CHUNK]):
                        last_event[int(obj["row"])] = int(obj.pop("_last_event"))
                        out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
                        out.write("\n")
                out.flush()
                out.detach()
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, ARCHIVE_MODE)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        db.close()
    return last_event


def _archived_rows(db: sqlite3.Connection, ids: list[int]) -> Iterator[dict[str, Any]]:
    marks = ",".join("?" * len(ids))
    events: dict[int, list[list[Any]]] = {}
    last: dict[int, int] = {}
    for eid, row, at, state, code, detail in db.execute(
            f"SELECT id, txn_row, at, state, code, detail FROM events WHERE txn_row IN "
            f"({marks}) ORDER BY id", ids):
        events.setdefault(int(row), []).append([float(at), str(state), str(code), str(detail)])
        last[int(row)] = int(eid)
    outbox: dict[int, list[dict[str, Any]]] = {}
    for oid, row, _lane, payload, created, delivered, superseded in db.execute(
            f"SELECT {OUTBOX_COLUMNS} {OUTBOX_FROM} WHERE o.txn_row IN ({marks}) "
            "ORDER BY o.id", ids):
        outbox.setdefault(int(row), []).append({
            "id": int(oid), "payload": _json(str(payload)), "created_at": float(created),
            "delivered_at": None if delivered is None else float(delivered),
            "superseded": bool(superseded)})
    for r in db.execute(f"SELECT {TXN_COLUMNS} FROM txns WHERE id IN ({marks}) ORDER BY id",
                        ids):
        row_id = int(r[0])
        yield {
            "v": ARCHIVE_FORMAT, "row": row_id, "kind": r[1], "txn": r[2], "lane": r[3],
            "tid": r[4], "amount": r[5], "parent": r[6], "state": r[7],
            "request": _json(str(r[8])), "txn_time": r[9], "created_at": r[10],
            "updated_at": r[11], "sent_at": r[12], "code": r[13], "message": r[14],
            "reply": _json(str(r[15])), "payment": _json(str(r[16])),
            "not_sent": bool(r[17]), "events": events.get(row_id, []),
            "outbox": outbox.get(row_id, []), "_last_event": last.get(row_id, 0),
        }


def _json(text: str) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"unreadable": text}


def _lines(path: Path) -> Iterator[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
        yield from f


def _row_of(line: str) -> int | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    row = value.get("row") if isinstance(value, dict) else None
    return row if isinstance(row, int) else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- delete (the writer thread, inside a batch transaction) --------------------------------

def _delete(db: sqlite3.Connection, archived: dict[int, int], month: str, file: str,
            now: float) -> int:
    moved = 0
    for row_id, last_event in archived.items():
        row = db.execute(
            "SELECT state, (SELECT COALESCE(MAX(id), 0) FROM events WHERE txn_row=t.id), "
            "EXISTS (SELECT 1 FROM outbox o WHERE o.txn_row=t.id AND o.delivered_at IS NULL "
            "AND o.superseded=0), kind, txn, amount, tid FROM txns t WHERE id=?",
            (row_id,)).fetchone()
        if row is None or row[0] not in _FINAL or int(row[1]) != last_event or row[2]:
            continue  # changed since it was archived: stays, archived again next time
        db.execute("DELETE FROM outbox WHERE txn_row=?", (row_id,))
        db.execute("DELETE FROM events WHERE txn_row=?", (row_id,))
        db.execute("DELETE FROM txns WHERE id=?", (row_id,))
        # Its key, in the same commit as the delete: a repeat of it is never a new sale.
        db.execute("INSERT OR REPLACE INTO archived_txns (kind, txn, month, state, amount, "
                   "tid) VALUES (?,?,?,?,?,?)", (row[3], row[4], month, row[0], row[5], row[6]))
        moved += 1
    if moved:
        # A new month is keyed from its first row on; a month archived before schema 6
        # stays unkeyed until `key_archives` has read its older lines.
        db.execute(
            "INSERT INTO archives (month, file, txns, updated_at, keyed) VALUES (?,?,?,?,1) "
            "ON CONFLICT (month) DO UPDATE SET txns=txns+excluded.txns, "
            "updated_at=excluded.updated_at, file=excluded.file",
            (month, file, moved, now))
    return moved


# -- keys of months archived before schema 6 ----------------------------------------------

async def key_archives(journal: Journal) -> int:
    """Key the transactions of months archived before schema 6 (`archives.keyed = 0`) from
    their files: read in a thread, written on the writer thread, the month marked keyed in
    its last step. Returns the keys written. A file that cannot be read is logged and
    tried again next time (until then a repeat of one of its transactions is not known)."""
    months = await asyncio.to_thread(_unkeyed, journal.path)
    written = 0
    for month, file in months:
        target = Path(journal.path).with_name(file)
        try:
            keys = await asyncio.to_thread(_keys_of, target, month)
        except _UNREADABLE as exc:
            log.error("archive %s cannot be read (%s): its transactions are not known to "
                      "the repeat check; tried again at the next retention run", target, exc)
            continue
        chunks = [keys[i:i + READ_CHUNK] for i in range(0, len(keys), READ_CHUNK)] or [[]]
        for n, chunk in enumerate(chunks):
            written += int(await journal.maintain(functools.partial(
                _key, keys=chunk, month=month if n == len(chunks) - 1 else None)))
        log.info("archive %s: %d transaction(s) keyed for the repeat check", target.name,
                 len(keys))
    return written


def _unkeyed(path: str) -> list[tuple[str, str]]:
    db = connect_reader(path)
    try:
        return [(str(m), str(f)) for m, f in db.execute(
            "SELECT month, file FROM archives WHERE keyed=0 ORDER BY month")]
    finally:
        db.close()


def _keys_of(path: Path, month: str) -> list[tuple[str, str, str, str, str, str]]:
    """(kind, txn, month, state, amount, tid) of every transaction in an archive file."""
    keys: dict[tuple[str, str], tuple[str, str, str, str, str, str]] = {}
    for value in _read_file(path, None, None):
        kind, txn, state = value.get("kind"), value.get("txn"), value.get("state")
        if kind not in tuple(Kind) or not isinstance(txn, str) or state not in _FINAL:
            continue
        keys[(str(kind), txn)] = (str(kind), txn, month, str(state),
                                  str(value.get("amount", "")), str(value.get("tid", "")))
    return list(keys.values())


def _key(db: sqlite3.Connection, keys: list[tuple[str, str, str, str, str, str]],
         month: str | None) -> int:
    written = 0
    for key in keys:
        # A key never replaces one written since (the newer word on that txn), nor stands
        # for a row still in the journal (a line archived while the row changed and stayed).
        written += db.execute(
            "INSERT OR IGNORE INTO archived_txns (kind, txn, month, state, amount, tid) "
            "SELECT ?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM txns WHERE kind=? AND txn=?)",
            (*key, key[0], key[1])).rowcount
    if month is not None:
        db.execute("UPDATE archives SET keyed=1 WHERE month=?", (month,))
    return written


# -- an archived transaction read back (for a repeated request) ----------------------------

async def read_archived(journal: Journal, key: ArchivedTxn) -> ArchivedFamily:
    """The archived transaction `key` from its month file (in a thread), with its void and
    refunds (from the archives of its month on, and any still in the journal). Raises
    ArchiveError when its archive cannot be read or does not hold it."""
    record, void, refunds = await asyncio.to_thread(_read_family, journal.path, key)
    # A family moves together, but a member that changed while being archived stays a
    # run longer: the journal's word on it is the newer one.
    if key.kind is Kind.SALE:
        void = journal.find(Kind.VOID, key.txn) or void
    live = {r.txn: r for r in journal.children(Kind.REFUND, key.txn)}
    merged = {**{r.txn: r for r in refunds}, **live}
    return ArchivedFamily(record=record, void=void, refunds=tuple(merged.values()))


def _read_family(path: str, key: ArchivedTxn
                 ) -> tuple[TxnRecord, TxnRecord | None, list[TxnRecord]]:
    own = archive_path(path, key.month)
    # Its void and refunds are never older than it: its month's archive and the later ones.
    files = [p for p in archive_files(path) if _month(p) >= key.month and p != own]
    needle = f'"{key.txn}"'  # a txn is A-Z a-z 0-9: its JSON text is itself, quoted
    record: TxnRecord | None = None
    void: TxnRecord | None = None
    refunds: dict[int, TxnRecord] = {}
    for file in (own, *files):
        try:
            for line in _lines(file):
                if needle not in line:
                    continue  # most lines: not parsed at all
                value = _json(line)
                if not isinstance(value, dict):
                    continue
                kind, txn = value.get("kind"), value.get("txn")
                if kind == key.kind.value and txn == key.txn:
                    record = _archived_record(value, file)
                elif kind == Kind.VOID.value and txn == key.txn and key.kind is Kind.SALE:
                    void = _archived_record(value, file)
                elif kind == Kind.REFUND.value and value.get("parent") == key.txn:
                    refund = _archived_record(value, file)
                    refunds[refund.row_id] = refund
        except _UNREADABLE as exc:
            if file == own:
                raise ArchiveError(f"archive {file} cannot be read: {exc}") from exc
            log.warning("archive %s cannot be read (%s): %s %s is answered without what it "
                        "holds of its refunds", file, exc, key.kind.value, key.txn)
        if file == own and record is None:
            raise ArchiveError(f"archive {file} does not hold {key.kind.value} {key.txn}")
    assert record is not None
    return record, void, list(refunds.values())


def _month(path: Path) -> str:
    match = _MONTH_RE.search(path.name)
    return f"{match.group(1)}-{match.group(2)}" if match else ""


def _archived_record(value: dict[str, Any], file: Path) -> TxnRecord:
    """An archived line as the TxnRecord it was (its JSON members as the journal's text)."""
    try:
        sent_at = value.get("sent_at")
        return TxnRecord(
            row_id=int(value["row"]), kind=Kind(value["kind"]), txn=str(value["txn"]),
            lane=str(value["lane"]), tid=str(value["tid"]), amount=str(value["amount"]),
            parent=str(value["parent"]), state=TxnState(value["state"]),
            request=_text(value["request"]), txn_time=str(value["txn_time"]),
            created_at=float(value["created_at"]), updated_at=float(value["updated_at"]),
            sent_at=None if sent_at is None else float(sent_at), code=str(value["code"]),
            message=str(value["message"]), reply=_text(value["reply"]),
            payment=_text(value["payment"]), not_sent=bool(value["not_sent"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(f"archive {file}: an unreadable line for "
                           f"{value.get('kind')} {value.get('txn')}: {exc!r}") from None


def _text(value: Any) -> str:
    """The journal's text of an archived JSON member (`_json`'s inverse)."""
    if value == {}:
        return ""
    if isinstance(value, dict) and set(value) == {"unreadable"}:
        return str(value["unreadable"])
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- giving the space back ----------------------------------------------------------------

async def _give_back(journal: Journal, quiet: Callable[[], bool]) -> tuple[int, bool]:
    mode, free, pages = await asyncio.to_thread(_space, journal.path)
    freed = 0
    if mode == 2:  # INCREMENTAL
        while free > 0:
            step = min(free, VACUUM_PAGES)
            await journal.maintain(functools.partial(_incremental_vacuum, pages=step),
                                   bare=True)
            _, left, _ = await asyncio.to_thread(_space, journal.path)
            if left >= free:
                break
            freed += free - left
            free = left
        if freed:
            await journal.maintain(_checkpoint, bare=True)
        return freed, False
    if pages and free / pages >= CONVERT_FREE_RATIO and quiet():
        await journal.maintain(_convert, bare=True)
        log.info("journal %s: VACUUM gave back %d free page(s); incremental from now on",
                 journal.path, free)
        return free, True
    return 0, False


def _space(path: str) -> tuple[int, int, int]:
    """(auto_vacuum mode, free pages, pages), on a connection of its own: one opened
    earlier may keep the auto_vacuum mode it read at its start."""
    db = connect_reader(path)
    try:
        mode = int(db.execute("PRAGMA auto_vacuum").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        return mode, free, pages
    finally:
        db.close()


def _incremental_vacuum(db: sqlite3.Connection, pages: int) -> None:
    db.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()


def _convert(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("VACUUM")
    _checkpoint(db)


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


# -- reading the archives back ------------------------------------------------------------

def archive_files(path_or_dir: str | Path) -> list[Path]:
    """The archive files of a journal (its path), of a directory, or the one file given;
    oldest month first."""
    path = Path(path_or_dir)
    if path.is_dir():
        found = list(path.glob(f"*-[0-9][0-9][0-9][0-9]-[0-9][0-9]{ARCHIVE_SUFFIX}"))
    elif path.name.endswith(ARCHIVE_SUFFIX):
        found = [path]
    else:
        found = list(path.parent.glob(
            f"{path.stem}-[0-9][0-9][0-9][0-9]-[0-9][0-9]{ARCHIVE_SUFFIX}"))
    return sorted((p for p in found if _MONTH_RE.search(p.name)),
                  key=lambda p: (_MONTH_RE.search(p.name).groups(), p.name))  # type: ignore[union-attr]


def iter_archived(path_or_dir: str | Path, from_day: date | None = None,
                  to_day: date | None = None) -> Iterator[dict[str, Any]]:
    """Archived transactions created on IST days `from_day`..`to_day` (inclusive; None:
    unbounded), month by month, in journal order; one dict a transaction (the keys of
    `TxnRecord` plus `row`, `events` [[at, state, code, detail]] and `outbox`), streamed:
    constant memory whatever the archive's size. A row archived twice (it changed while
    being moved) is read once, as last written."""
    for path in archive_files(path_or_dir):
        match = _MONTH_RE.search(path.name)
        assert match is not None
        month = (int(match.group(1)), int(match.group(2)))
        if from_day is not None and month < (from_day.year, from_day.month):
            continue
        if to_day is not None and month > (to_day.year, to_day.month):
            continue
        yield from _read_file(path, from_day, to_day)


def _read_file(path: Path, from_day: date | None, to_day: date | None
               ) -> Iterable[dict[str, Any]]:
    for line in _lines(path):
        try:
            value = json.loads(line)
        except ValueError:
            log.warning("archive %s: an unreadable line skipped", path)
            continue
        if not isinstance(value, dict):
            continue
        day = datetime.fromtimestamp(float(value.get("created_at", 0.0)), IST).date()
        if (from_day is not None and day < from_day) or (to_day is not None and day > to_day):
            continue
        yield value

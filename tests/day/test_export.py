"""`edc-agent export`: one row per transaction, streamed. A million rows go out of a child
process whose peak memory stays flat (os.wait4's ru_maxrss of that child alone)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from agent.day.export import COLUMNS, export_range, write_export
from agent.day.totals import day_bounds
from agent.journal import Journal
from agent.journal.reader import open_read_only

MILLION = 1_000_000
PEAK_RSS_MAX_KB = 120 * 1024  # the rows alone would take gigabytes held in memory
DAY = date(2026, 3, 14)


def _fill(path: Path, rows: int) -> None:
    """`rows` transactions straight into SQLite (a day's sales, every 50th voided)."""
    Journal(path).close()  # creates and migrates
    start = day_bounds(DAY)[0]
    payment = json.dumps({"method": "CARD", "rrn": "123456789012", "card": "4111XXXX1111",
                          "paytm_txn_id": "PAYTM000000000001"})
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")

    def generate() -> object:
        for i in range(rows):
            kind = "void" if i % 50 == 49 else "sale"
            txn = f"T{(i - 1) if kind == 'void' else i:011d}"
            at = start + i * 80_000 / rows
            yield (kind, txn, "till-1", "12345678", "10000",
                   txn if kind == "void" else "", "success", '{"type":"sale"}',
                   "2026-03-14 10:00:00", at, at, at, "0000", "Approved", "", payment)

    db.executemany(
        "INSERT INTO txns (kind, txn, lane, tid, amount, parent, state, request, txn_time, "
        "created_at, updated_at, sent_at, code, message, reply, payment) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", generate())  # type: ignore[arg-type]
    db.commit()
    db.close()


def _config(tmp_path: Path, journal: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[journal]\npath = "{journal}"\n', encoding="utf-8")
    return path


def test_rows_carry_what_the_accounts_team_needs(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    _fill(journal, 100)
    reader = open_read_only(str(journal))
    try:
        out = io.StringIO()
        assert write_export(reader, *export_range(DAY, DAY), "csv", out) == 100
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert tuple(rows[0]) == COLUMNS
        sale, void = rows[48], rows[49]
        assert (sale["kind"], sale["state"], sale["amount"], sale["method"]) == \
            ("sale", "success", "10000", "card")
        assert sale["paytm_txn_id"] == "PAYTM000000000001" and sale["rrn"] == "123456789012"
        assert sale["card"] == "4111XXXX1111" and sale["created_at"].startswith("2026-03-14 ")
        assert void["kind"] == "void" and void["txn"] == sale["txn"]
        lines = io.StringIO()
        assert write_export(reader, *export_range(DAY, DAY), "jsonl", lines) == 100
        assert json.loads(lines.getvalue().splitlines()[0])["lane"] == "till-1"
        empty = io.StringIO()
        next_day = date(2026, 3, 15)
        assert write_export(reader, *export_range(next_day, None), "csv", empty) == 0
    finally:
        reader.close()


@pytest.mark.slow  # a minute: run by .ci/run's slow step, not in the quick suite
@pytest.mark.timeout(600)  # ~20 s to fill, ~40 s to export on a shared 2-core box
def test_a_million_rows_in_flat_memory(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    began = time.monotonic()
    _fill(journal, MILLION)
    filled = time.monotonic() - began
    out = tmp_path / "export.csv"
    child = subprocess.Popen(
        [sys.executable, "-m", "agent", "export", "--config", str(_config(tmp_path, journal)),
         "--from", DAY.isoformat(), "--to", DAY.isoformat(), "-o", str(out)],
        stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    message = child.stderr.read().decode()
    child.stderr.close()
    assert child.returncode == 0, message
    assert f"{MILLION} transaction(s) written" in message
    with out.open(encoding="utf-8") as f:
        assert sum(1 for _ in f) == MILLION + 1  # and the header
    peak_kb = usage.ru_maxrss  # Linux: kilobytes
    print(f"filled in {filled:.1f} s; export peak RSS {peak_kb / 1024:.1f} MiB")
    assert peak_kb < PEAK_RSS_MAX_KB

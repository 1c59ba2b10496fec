"""docs/journal.md documents every table and column the journal has, and nothing else."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from agent.journal import Journal
from agent.journal.schema import SCHEMA_VERSION

DOC = Path(__file__).resolve().parents[2] / "docs" / "journal.md"


def _documented() -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    current = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^## `(\w+)`", line):
            current = m.group(1)
            tables[current] = set()
        elif current and (m := re.match(r"^\| (`[^|]+`) \|", line)):
            tables[current] |= set(re.findall(r"`(\w+)`", m.group(1)))
    return tables


def test_every_table_and_column_is_documented(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.close()
    db = sqlite3.connect(tmp_path / "j.db")
    try:
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        actual = {name: {r[1] for r in db.execute(f"PRAGMA table_info({name})")}
                  for name in names}
        version = db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()
    assert _documented() == actual
    assert version == SCHEMA_VERSION
    assert f"{SCHEMA_VERSION} as of this release" in DOC.read_text(encoding="utf-8")

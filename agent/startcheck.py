"""The journal's start-up integrity check, begun before the agent's imports.

`PRAGMA quick_check` reads the whole file (0.2 s for 100,000 transactions) and must pass
before any lane takes work. SQLite releases the GIL while it reads, so `edc-agent run`
starts it in a thread first and imports aiohttp and the rest (0.3 s) meanwhile; the journal
then takes the answer instead of checking again. Standard library only: importing this
module must cost nothing.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

CHECK_TIMEOUT_S = 5.0  # a technician's sqlite3 shell may hold a lock for a moment


class StartCheck:
    def __init__(self, path: str) -> None:
        self.path = path
        self._problems: list[str] | None = None
        self._thread = threading.Thread(target=self._run, name="journal-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self.path, timeout=CHECK_TIMEOUT_S, isolation_level=None)
            try:
                db.execute("PRAGMA query_only=ON")
                self._problems = [str(r[0]) for r in db.execute("PRAGMA quick_check")]
            finally:
                db.close()
        except sqlite3.Error:
            self._problems = None  # not checked: the journal's own open checks (and says why)

    def problems(self) -> list[str] | None:
        """SQLite's findings (`["ok"]` when sound), or None when it could not check."""
        self._thread.join()
        return self._problems


def start_journal_check(path: str) -> StartCheck | None:
    """Begin the check of an existing, non-empty journal file; None for anything else (a
    new installation, an empty or odd file: the journal's open deals with those, and a
    connection here must never create the file)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return None
    return StartCheck(path)

"""Journal schema and its migrations. Append a migration; never edit a released one.

The schema version lives in SQLite's `user_version`, so a technician can read it
with `sqlite3 journal.db 'PRAGMA user_version'`.
"""

from __future__ import annotations

SCHEMA_VERSION = 7

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE txns (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            txn TEXT NOT NULL,
            lane TEXT NOT NULL,
            tid TEXT NOT NULL DEFAULT '',
            amount TEXT NOT NULL,
            parent TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            request TEXT NOT NULL,
            txn_time TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            sent_at REAL,
            code TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            reply TEXT NOT NULL DEFAULT '',
            payment TEXT NOT NULL DEFAULT '',
            not_sent INTEGER NOT NULL DEFAULT 0,
            UNIQUE (kind, txn)
        )""",
        "CREATE INDEX txns_state ON txns (state)",
        "CREATE INDEX txns_lane ON txns (lane, id)",
        "CREATE INDEX txns_parent ON txns (parent)",
        "CREATE INDEX txns_created ON txns (created_at)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            txn_row INTEGER NOT NULL REFERENCES txns (id),
            at REAL NOT NULL,
            state TEXT NOT NULL,
            code TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_txn ON events (txn_row, id)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            txn_row INTEGER NOT NULL REFERENCES txns (id),
            lane TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            delivered_at REAL,
            superseded INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX outbox_pending ON outbox (lane, id) WHERE delivered_at IS NULL",
        "CREATE INDEX outbox_txn ON outbox (txn_row)",
    ),
    # Covering indexes for the counts the technician page and /metrics read: without
    # them each count scanned the table (0.3–0.5 s at 100,000 transactions, on the loop).
    2: (
        "CREATE INDEX txns_kind_created_state ON txns (kind, created_at, state)",
        "CREATE INDEX txns_kind_lane_state ON txns (kind, lane, state)",
        "CREATE INDEX txns_lane_state ON txns (lane, state)",
    ),
    # Money timing on the monotonic clock: the elapsed seconds since `sending` as of the
    # last save, so a restart continues the grace and the schedule (never a wall-clock
    # difference: an NTP jump cannot age a sale).
    3: (
        "ALTER TABLE txns ADD COLUMN elapsed_s REAL NOT NULL DEFAULT 0",
    ),
    # Close of day (issue 13): each reconciliation sweep and what it found, so the day's
    # report can show the last one after a restart. `report` is JSON (changes, findings).
    4: (
        """CREATE TABLE sweeps (
            id INTEGER PRIMARY KEY,
            day TEXT NOT NULL,
            trigger TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            asked INTEGER NOT NULL,
            changed INTEGER NOT NULL,
            disagreements INTEGER NOT NULL,
            report TEXT NOT NULL
        )""",
        "CREATE INDEX sweeps_day ON sweeps (day, id)",
    ),
    # Smaller rows: a result is journaled without its receipt lines and its payment (both
    # rebuilt on reading, `agent.engine.results.restore_result`), and the newest outbox
    # row's payload '' stands for the transaction's reply. Rows written before keep their
    # own text and read as before; an older agent must not read the new rows, hence the
    # version. `archives`: what retention moved out, per month file (docs/install.md).
    5: (
        """CREATE TABLE archives (
            month TEXT PRIMARY KEY,
            file TEXT NOT NULL,
            txns INTEGER NOT NULL,
            updated_at REAL NOT NULL
        )""",
    ),
    # What retention moved out, one key per transaction: the engine's repeat check reads
    # it beside `txns`, so an archived sale or payment link is answered from its archive
    # and never sent to Paytm again (register-protocol §5.2). Only what judges a repeat
    # (amount, terminal, final state) and where to find the rest (`month`): it stays for
    # good, so it is kept small. `archives.keyed`: the month's keys are in the table
    # (months archived before schema 6 are keyed from their files, retention.py).
    6: (
        """CREATE TABLE archived_txns (
            kind TEXT NOT NULL,
            txn TEXT NOT NULL,
            month TEXT NOT NULL,
            state TEXT NOT NULL,
            amount TEXT NOT NULL,
            tid TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (kind, txn)
        ) WITHOUT ROWID""",
        "ALTER TABLE archives ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0",
    ),
    # "Not found" as evidence (register-protocol §5.6) survives a restart: the row's current
    # run of Paytm's consecutive "not found" answers — the money-clock time (`elapsed_s`)
    # of its first answer and how many there were. A restart (or a crash loop) continues
    # the run instead of waiting another full grace. NULL when there is no run: nothing
    # more per sale than two NULLs for the common case.
    7: (
        "ALTER TABLE txns ADD COLUMN not_found_first_s REAL",
        "ALTER TABLE txns ADD COLUMN not_found_count INTEGER",
    ),
}

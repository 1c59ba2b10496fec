"""The journal: every step of every transaction, in SQLite, committed before it is acted on."""

from agent.journal.reader import ArchiveError, JournalError, JournalReader
from agent.journal.records import (
    FINAL_STATES,
    HOLDING_STATES,
    TRANSITIONS,
    ArchivedFamily,
    ArchivedTxn,
    EventRecord,
    Kind,
    NotFoundRun,
    OutboxRecord,
    SweepRecord,
    TxnRecord,
    TxnState,
    later_steps,
    transition_allowed,
)
from agent.journal.retention import (
    RetentionReport,
    iter_archived,
    key_archives,
    read_archived,
    run_retention,
)
from agent.journal.store import Journal, JournalCorruptError, JournalHealth

__all__ = [
    "FINAL_STATES",
    "HOLDING_STATES",
    "TRANSITIONS",
    "ArchiveError",
    "ArchivedFamily",
    "ArchivedTxn",
    "EventRecord",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalHealth",
    "JournalReader",
    "Kind",
    "NotFoundRun",
    "OutboxRecord",
    "RetentionReport",
    "SweepRecord",
    "TxnRecord",
    "TxnState",
    "iter_archived",
    "key_archives",
    "later_steps",
    "read_archived",
    "run_retention",
    "transition_allowed",
]

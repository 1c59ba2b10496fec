"""The journal: every step of every transaction, in SQLite, committed before it is acted on."""

from agent.journal.reader import JournalError, JournalReader
from agent.journal.records import (
    FINAL_STATES,
    HOLDING_STATES,
    TRANSITIONS,
    EventRecord,
    Kind,
    OutboxRecord,
    TxnRecord,
    TxnState,
    transition_allowed,
)
from agent.journal.store import Journal, JournalCorruptError, JournalHealth

__all__ = [
    "FINAL_STATES",
    "HOLDING_STATES",
    "TRANSITIONS",
    "EventRecord",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalHealth",
    "JournalReader",
    "Kind",
    "OutboxRecord",
    "TxnRecord",
    "TxnState",
    "transition_allowed",
]

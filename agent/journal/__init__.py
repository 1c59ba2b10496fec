"""The journal: every step of every transaction, in SQLite, committed before it is acted on."""

from agent.journal.records import (
    FINAL_STATES,
    HOLDING_STATES,
    EventRecord,
    Kind,
    OutboxRecord,
    TxnRecord,
    TxnState,
)
from agent.journal.store import Journal

__all__ = [
    "FINAL_STATES",
    "HOLDING_STATES",
    "EventRecord",
    "Journal",
    "Kind",
    "OutboxRecord",
    "TxnRecord",
    "TxnState",
]

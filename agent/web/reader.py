"""The page's own view of the journal: its own read-only connection, queried off the loop.

A search over 100,000 rows (`txn LIKE '%…%'` cannot use an index) takes tens of
milliseconds; on the event loop that would sit between a lane and its next ACK. Here it
runs in a worker thread, on a connection no lane uses (WAL: readers never wait for the
writer), one query at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from agent.journal import JournalReader

T = TypeVar("T")


class PageReader:
    def __init__(self, open_reader: Callable[[], JournalReader]) -> None:
        self._open = open_reader
        self._reader: JournalReader | None = None
        self._lock = asyncio.Lock()  # one connection, one query at a time

    async def run(self, query: Callable[[JournalReader], T]) -> T:
        async with self._lock:
            if self._reader is None:
                self._reader = await asyncio.to_thread(self._open)
            return await asyncio.to_thread(query, self._reader)

    async def close(self) -> None:
        async with self._lock:
            if self._reader is not None:
                await asyncio.to_thread(self._reader.close)
                self._reader = None

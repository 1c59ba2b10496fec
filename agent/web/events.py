"""Live updates for the pages: Server-Sent Events on /api/events.

The journal calls us after every commit (`Journal.subscribe`) and the agent after every
Paytm call; each connected browser gets a short event and re-reads what it shows:

    event: txn    data: {"row": 12, "what": "state", "txn": "...", "lane": "...", "state": "..."}
    event: call   data: {"api": "status", "outcome": "answered", "code": "0000", ...}
    event: resync data: {}      (this client fell behind; re-read everything)

A comment line every HEARTBEAT_S keeps proxies from closing the stream and lets us
notice a browser that went away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import web

from agent.journal import Journal
from agent.journal.store import JournalError
from agent.paytm.outcome import CallRecord

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
QUEUE_MAX = 256  # events waiting for one slow browser; beyond: it gets `resync`
MAX_CLIENTS = 16  # open event streams; a 17th gets 503 and falls back to polling
RETRY_MS = 3000  # the browser reconnects after this long when the stream drops

_Item = bytes | None  # None: the hub is closing


class EventHub:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._clients: set[asyncio.Queue[_Item]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        self._unsubscribe = self._journal.subscribe(self._on_journal)

    def close(self) -> None:
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for queue in self._clients:
            _drain(queue)
            queue.put_nowait(None)

    def publish(self, event: str, data: dict[str, object]) -> None:
        if not self._clients or self._closed:
            return
        text = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        item = text.encode()
        for queue in self._clients:
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                _drain(queue)
                queue.put_nowait(b"event: resync\ndata: {}\n\n")

    def _on_journal(self, what: str, row_id: int) -> None:
        if not self._clients:
            return
        try:
            record = self._journal.get(row_id)
        except JournalError:
            return
        self.publish("txn", {"row": row_id, "what": what, "txn": record.txn,
                             "kind": record.kind.value, "lane": record.lane,
                             "state": record.state.value})

    def on_call(self, record: CallRecord) -> None:
        self.publish("call", {"api": record.api, "txn": record.txn, "outcome": record.outcome,
                              "code": record.code or "",
                              "latency_ms": round(record.latency_s * 1000)})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if self._closed:
            raise web.HTTPServiceUnavailable(text="the agent is stopping")
        if len(self._clients) >= MAX_CLIENTS:
            raise web.HTTPServiceUnavailable(
                text=f"more than {MAX_CLIENTS} live views are open; this one polls instead")
        queue: asyncio.Queue[_Item] = asyncio.Queue(QUEUE_MAX)
        self._clients.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "X-Accel-Buffering": "no"})
        try:
            await response.prepare(request)
            await response.write(f"retry: {RETRY_MS}\n: edc-agent live updates\n\n".encode())
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    item = b": ping\n\n"
                if item is None:
                    break
                await response.write(item)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self._clients.discard(queue)
        return response


def _drain(queue: asyncio.Queue[_Item]) -> None:
    while not queue.empty():
        queue.get_nowait()

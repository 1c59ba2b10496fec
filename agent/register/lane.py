"""A lane: one register link bound to one terminal.

    transport (bytes) ─► Link (frames, ACK/NAK, R7) ─► decode_request ─► Engine.submit
    Engine ─► Lane.reply (best effort: accepted, state, error, pong)
           ─► Lane.deliver (tracked: a result is resent until the register ACKs it,
                            then marked delivered in the journal)
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Protocol

from agent.config import LaneConfig
from agent.errors import UndeliveredError
from agent.journal import Journal, JournalError, OutboxRecord
from agent.link.layer import Link, LinkClosedError
from agent.link.timings import LinkProtocol, LinkTimings
from agent.register.codec import decode_request, encode, message_id
from agent.register.messages import Error, Reply, Request
from drivers.base import Transport

log = logging.getLogger(__name__)

MAX_REQUESTS_IN_FLIGHT = 16  # per lane: a register has one or two open; more is a runaway


class RequestSink(Protocol):
    """What a lane needs from the engine: somewhere to hand each decoded request."""

    def submit(self, lane: Lane, request: Request,
               done: Callable[[], None] | None = None) -> None: ...


class Lane:
    def __init__(
        self,
        config: LaneConfig,
        transport: Transport,
        engine: RequestSink,
        journal: Journal,
        render: Callable[[OutboxRecord], bytes] | None = None,
    ) -> None:
        self._config = config
        self.transport = transport
        timings = config.spec.timings if config.spec is not None else LinkTimings()
        protocol = config.spec.protocol if config.spec is not None else LinkProtocol.AUTO
        self.link = Link(transport, timings, name=config.name, id_of=message_id,
                         protocol=protocol)
        self._engine = engine
        self._journal = journal
        # A journaled result → the bytes to send (the engine rebuilds its receipt).
        self._render = render or (lambda outbox: outbox.payload.encode("ascii"))
        self._outbox: collections.deque[OutboxRecord] = collections.deque()
        self._outbox_changed = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_REQUESTS_IN_FLIGHT)
        self._tasks: list[asyncio.Task[None]] = []
        self.requests = 0
        self.errors_sent = 0
        self.last_request_at: float | None = None

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> LaneConfig:
        return self._config

    @property
    def link_version(self) -> int:
        return self.link.link_version

    @property
    def undelivered(self) -> int:
        return len(self._outbox)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pipe (returns at once even if the device is missing) and serve."""
        await self.transport.open()
        await self.link.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_requests(), name=f"lane-requests:{self.name}"),
            loop.create_task(self._deliver_results(), name=f"lane-results:{self.name}"),
        ]

    async def stop_reading(self) -> None:
        """Take no new requests (first step of a drain); results may still go out."""
        if self._tasks:
            reader = self._tasks[0]
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.link.stop()
        await self.transport.close()

    # -- requests -------------------------------------------------------------------------

    async def _read_requests(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                payload = await self.link.receive()
            except LinkClosedError:
                return
            self.requests += 1
            self.last_request_at = loop.time()
            decoded = decode_request(payload)
            if isinstance(decoded, Error):
                log.info("lane %s: %s %s (%s)", self.name, decoded.code.value, decoded.message,
                         decoded.field or "-", extra={"lane": self.name})
                self.errors_sent += 1
                await self.reply(decoded)
                continue
            await self._slots.acquire()
            self._engine.submit(self, decoded, done=self._slots.release)

    async def reply(self, message: Reply) -> bool:
        """Send one reply; False when the register did not acknowledge it."""
        try:
            await self.link.send(encode(message))
        except UndeliveredError:
            log.warning("lane %s: %s for %s not acknowledged by the register", self.name,
                        type(message).__name__.lower(), getattr(message, "re", "-"),
                        extra={"lane": self.name})
            return False
        except LinkClosedError:
            return False
        if isinstance(message, Error):
            self.errors_sent += 1
        return True

    # -- results --------------------------------------------------------------------------

    def deliver(self, outbox: OutboxRecord) -> None:
        """Queue a journaled result; it is sent until the register ACKs it. Idempotent:
        a result already queued (a technician's "resend") is not queued twice."""
        if any(queued.row_id == outbox.row_id for queued in self._outbox):
            return
        self._outbox.append(outbox)
        self._outbox_changed.set()

    async def _deliver_results(self) -> None:
        while True:
            while not self._outbox:
                self._outbox_changed.clear()
                await self._outbox_changed.wait()
            outbox = self._outbox[0]
            current = self._journal.outbox_row(outbox.row_id)
            if current.delivered_at is not None or current.superseded:
                self._outbox.popleft()
                continue
            try:
                await self.link.send(self._render(current))
            except UndeliveredError:
                # S3: the link is down until the register sends a byte; the result stays
                # queued (and in the journal) and goes again then.
                log.warning("lane %s: result for row %d undelivered; resending when the "
                            "register is back", self.name, outbox.txn_row,
                            extra={"lane": self.name})
                try:
                    await self.link.wait_up()
                except LinkClosedError:
                    return
                continue
            except LinkClosedError:
                return
            self._outbox.popleft()
            try:
                await self._journal.mark_delivered(outbox.row_id)
            except JournalError as exc:
                # The register has it. Losing the flag costs one resend after a restart,
                # which the register drops as a repeat (R7).
                log.error("lane %s: result %d delivered but not marked: %s", self.name,
                          outbox.row_id, exc, extra={"lane": self.name})

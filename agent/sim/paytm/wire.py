"""Where an API call meets HTTP: the record, injected faults, and dropped connections.

Each API module (EDC, PG) supplies a `Processor` that turns the raw request
into a reply without touching HTTP; `serve_call` does the rest the same way for all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from agent.sim.paytm.clock import Instant
from agent.sim.paytm.context import EmulatorContext
from agent.sim.paytm.faults import Fault, FaultKind
from agent.sim.paytm.record import RecordedRequest

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # far above any real EDC request; more is refused with 413
# json.dumps separators of every signed PG document the emulator sends (answers and JSON
# webhooks): no spaces, as Paytm sends them and as Paytm's SDK requires (see pg.py).
COMPACT = (",", ":")
HTTP_OK = 200
HTTP_TOO_LARGE = 413
HTTP_SERVER_ERROR = 500

_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\n"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center>\n"
    "<hr><center>nginx</center></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What the record can learn from a request, as far as it is readable."""

    json: object | None = None
    mid: str | None = None
    tid: str | None = None
    txn: str | None = None
    event: str | None = None


@dataclass(frozen=True, slots=True)
class ApiReply:
    body: Mapping[str, object]
    status: int = HTTP_OK
    result_code: str | None = None
    parsed: Parsed = field(default_factory=Parsed)
    drop: bool = False  # processed, but the answer must be lost (magic amount 05)
    # The exact document text to send, when it matters byte for byte (PG answers are signed
    # over the text of their body); None: `body` serialised.
    text: str | None = None


class Processor(Protocol):
    def handle(self, api: str, raw: bytes, content_type: str, now: Instant) -> ApiReply: ...

    def too_large(self, api: str, now: Instant) -> ApiReply: ...


def drop_connection(request: web.BaseRequest) -> web.StreamResponse:
    """Close the socket without a status line; the client sees a disconnect.

    aiohttp then fails to write the response returned here, takes that as a client
    that went away (ConnectionResetError inside its own writer) and logs nothing.
    """
    transport = request.transport
    if transport is not None:
        # abort() rather than close(): no graceful flush, like a crashed upstream.
        transport.abort()
    return web.Response(status=HTTP_OK)


async def serve_call(request: web.Request, ctx: EmulatorContext, api: str,
                     processor: Processor) -> web.StreamResponse:
    now = ctx.clock.now()
    fault = ctx.faults.take(api)
    record = ctx.recorder.add(RecordedRequest(
        api=api, path=request.path, method=request.method, raw="", json=None, mid=None,
        tid=None, txn=None, event=None, at=now.t, wall_time=now.wall,
        fault=fault.fault_kind.value if fault is not None else None))
    if fault is not None and not fault.fault_kind.processes_request:
        log.info("%s: dropping the connection before reading (injected fault)", api)
        await ctx.pause(fault.delay_s)
        record.dropped = True
        return drop_connection(request)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        reply = processor.too_large(api, ctx.clock.now())
        record.status, record.result_code = reply.status, reply.result_code
        return web.json_response(reply.body, status=reply.status)
    record.raw = raw.decode("utf-8", errors="replace")
    reply = processor.handle(api, raw, request.content_type, ctx.clock.now())
    p = reply.parsed
    record.json, record.mid, record.tid, record.txn, record.event = (
        p.json, p.mid, p.tid, p.txn, p.event)
    record.result_code = reply.result_code
    ctx.recorder.touch()
    log.info("%s %s %s → %s%s", api, p.mid or "-", p.txn or "-", reply.result_code or "-",
             f" (fault {fault.fault_kind.value})" if fault is not None else "")
    if fault is not None:
        await ctx.pause(fault.delay_s)
    if reply.drop or (fault is not None and fault.fault_kind.drops_answer):
        record.dropped = True
        return drop_connection(request)
    return _answer(reply, fault, record)


def _answer(reply: ApiReply, fault: Fault | None, record: RecordedRequest) -> web.Response:
    kind = fault.fault_kind if fault is not None else None
    if kind is FaultKind.HTTP_500:
        record.status = HTTP_SERVER_ERROR
        return web.Response(status=HTTP_SERVER_ERROR, text="500 Internal Server Error\n")
    record.status = reply.status
    if kind is FaultKind.HTML:
        return web.Response(status=reply.status, text=_HTML_PAGE, content_type="text/html")
    text = reply.text if reply.text is not None else json.dumps(reply.body, ensure_ascii=False)
    if kind is FaultKind.MALFORMED_JSON:
        text = text[: len(text) // 2]  # cut mid-document: valid start, no end
    return web.Response(status=reply.status, text=text, content_type="application/json")

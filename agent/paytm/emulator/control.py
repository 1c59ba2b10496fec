"""The test and demo controls, in-process and over HTTP under /_emulator/ (one implementation).

    POST /_emulator/faults            {"api", "kind", "count", "delay_s"}   inject a fault
    GET  /_emulator/faults            faults still waiting
    DELETE /_emulator/faults          forget them
    GET  /_emulator/requests[?api=&txn=]   the record
    GET  /_emulator/transactions      every sale with its outcome as of now
    POST /_emulator/advance           {"seconds": S}     move the emulator's clock
    POST /_emulator/finish            {"txn", "outcome", "mid"?}   decide a pending sale/void
    POST /_emulator/terminals/{tid}   {"active": true|false}
    POST /_emulator/reset             forget everything (sales, record, faults, clock offset)
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from aiohttp import web

from agent.paytm.emulator.context import EmulatorContext
from agent.paytm.emulator.faults import ANY_API, Fault, FaultError
from agent.paytm.emulator.record import RecordedRequest
from agent.paytm.emulator.state import Sale, StateError, UnknownError

CONTROL_PREFIX = "/_emulator"
HTTP_BAD_REQUEST, HTTP_NOT_FOUND, HTTP_CONFLICT = 400, 404, 409


class Control:
    def __init__(self, ctx: EmulatorContext) -> None:
        self._ctx = ctx

    def inject(self, fault: Fault) -> None:
        if fault.api != ANY_API and fault.api not in self._ctx.apis:
            known = ", ".join(sorted(self._ctx.apis))
            raise FaultError(f"api must be one of {known} or any, got {fault.api!r}")
        self._ctx.faults.add(fault)

    def faults(self) -> list[Fault]:
        return self._ctx.faults.pending()

    def clear_faults(self) -> None:
        self._ctx.faults.clear()

    def advance(self, seconds: float) -> None:
        self._ctx.clock.advance(seconds)

    def finish(self, txn: str, outcome: str, mid: str | None = None) -> Sale:
        return self._ctx.edc_state.finish(txn, outcome, self._ctx.clock.now(), mid)

    def set_terminal_active(self, tid: str, active: bool) -> None:
        self._ctx.edc_state.set_terminal_active(tid, active)

    def reset(self) -> None:
        self._ctx.edc_state.reset()
        self._ctx.recorder.clear()
        self._ctx.faults.clear()
        self._ctx.clock.reset()

    def requests(self) -> list[RecordedRequest]:
        return self._ctx.recorder.requests

    def count(self, path_or_api: str, txn: str | None = None) -> int:
        return self._ctx.recorder.count(path_or_api, txn)

    def transactions(self) -> list[Sale]:
        return self._ctx.edc_state.sales(self._ctx.clock.now())


def sale_json(sale: Sale) -> dict[str, object]:
    r = sale.request
    return {
        "mid": r.mid, "tid": r.tid, "txn": r.txn, "amount": r.amount, "reference": r.reference,
        "behaviour": sale.behaviour.value, "status": sale.status,
        "outcome": sale.outcome.value if sale.outcome else None,
        "started": sale.started.ist_text(),
        "decided": sale.decided.ist_text() if sale.decided else None,
        "payment": asdict(sale.payment) if sale.payment else None,
        "voids": [{"tid": v.tid, "started": v.started.ist_text(),
                   "status": v.outcome.value if v.outcome else "pending"} for v in sale.voids],
    }


# ---------------------------------------------------------------------------
# HTTP


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _json_object(request: web.Request) -> dict[str, object]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error": "body is not JSON"}),
                                 content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error": "body must be an "
                                                  "object"}), content_type="application/json")
    return data


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (FaultError, ValueError, TypeError) as exc:
            return _error(HTTP_BAD_REQUEST, str(exc))
        except UnknownError as exc:
            return _error(HTTP_NOT_FOUND, str(exc))
        except StateError as exc:
            return _error(HTTP_CONFLICT, str(exc))

    return guarded


def control_routes(control: Control, ctx: EmulatorContext) -> list[web.RouteDef]:
    ok = {"ok": True}

    async def post_fault(request: web.Request) -> web.StreamResponse:
        control.inject(Fault.from_json(await _json_object(request), frozenset(ctx.apis)))
        return web.json_response({**ok, "faults": [f.to_json() for f in control.faults()]})

    async def get_faults(request: web.Request) -> web.StreamResponse:
        return web.json_response({**ok, "faults": [f.to_json() for f in control.faults()]})

    async def delete_faults(request: web.Request) -> web.StreamResponse:
        control.clear_faults()
        return web.json_response(ok)

    async def get_requests(request: web.Request) -> web.StreamResponse:
        api, txn = request.query.get("api"), request.query.get("txn")
        chosen = [r.to_json() for r in control.requests()
                  if (api is None or api in (r.api, r.path)) and (txn is None or r.txn == txn)]
        return web.json_response({**ok, "requests": chosen})

    async def get_transactions(request: web.Request) -> web.StreamResponse:
        return web.json_response({**ok, "transactions": [sale_json(s)
                                                         for s in control.transactions()]})

    async def post_advance(request: web.Request) -> web.StreamResponse:
        seconds = (await _json_object(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
                or not math.isfinite(seconds):
            raise ValueError('"seconds" must be a number')
        control.advance(float(seconds))
        return web.json_response({**ok, "offset_s": ctx.clock.offset})

    async def post_finish(request: web.Request) -> web.StreamResponse:
        data = await _json_object(request)
        txn, outcome, mid = data.get("txn"), data.get("outcome"), data.get("mid")
        if not isinstance(txn, str) or not isinstance(outcome, str) \
                or not isinstance(mid, str | None):
            raise ValueError('"txn" and "outcome" must be strings ("mid" optional)')
        sale = control.finish(txn, outcome, mid)
        return web.json_response({**ok, "transaction": sale_json(sale)})

    async def post_terminal(request: web.Request) -> web.StreamResponse:
        active = (await _json_object(request)).get("active")
        if not isinstance(active, bool):
            raise ValueError('"active" must be true or false')
        control.set_terminal_active(request.match_info["tid"], active)
        return web.json_response(ok)

    async def post_reset(request: web.Request) -> web.StreamResponse:
        control.reset()
        return web.json_response(ok)

    p = CONTROL_PREFIX
    return [
        web.post(f"{p}/faults", _guarded(post_fault)),
        web.get(f"{p}/faults", _guarded(get_faults)),
        web.delete(f"{p}/faults", _guarded(delete_faults)),
        web.get(f"{p}/requests", _guarded(get_requests)),
        web.get(f"{p}/transactions", _guarded(get_transactions)),
        web.post(f"{p}/advance", _guarded(post_advance)),
        web.post(f"{p}/finish", _guarded(post_finish)),
        web.post(f"{p}/terminals/{{tid}}", _guarded(post_terminal)),
        web.post(f"{p}/reset", _guarded(post_reset)),
    ]

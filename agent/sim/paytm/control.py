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

Payment links, refunds, webhooks (PG module):

    POST /_emulator/pay               {"order_id", "outcome"?, "mid"?}   the customer acts now
    GET  /_emulator/links             every payment-link order, settled as of now
    GET  /_emulator/refunds           every refund, settled as of now
    POST /_emulator/refunds/finish    {"ref_id", "outcome", "mid"?}   decide a pending refund
    POST /_emulator/balance           {"low": true|false}   refunds fail with 620 while low
    GET  /_emulator/webhooks          options and every delivery so far
    POST /_emulator/webhooks          {"url"?, "format"?, "duplicates"?, "reverse"?, "hold"?,
                                       "enabled"?}
    POST /_emulator/webhooks/deliver  send what is due (even when held); answers when sent
    POST /_emulator/webhooks/redeliver {"order_id", "tamper"?, "mid"?}
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from aiohttp import web

from agent.sim.paytm.context import EmulatorContext
from agent.sim.paytm.faults import ANY_API, Fault, FaultError
from agent.sim.paytm.money import rupees
from agent.sim.paytm.pg_state import LinkOrder, Refund, RefundStatus
from agent.sim.paytm.record import RecordedRequest
from agent.sim.paytm.state import Sale, StateError, UnknownError
from agent.sim.paytm.webhooks import WebhookDelivery, WebhookSender

CONTROL_PREFIX = "/_emulator"
HTTP_BAD_REQUEST, HTTP_NOT_FOUND, HTTP_CONFLICT = 400, 404, 409


class Control:
    def __init__(self, ctx: EmulatorContext, webhooks: WebhookSender | None = None) -> None:
        self._ctx = ctx
        self._webhooks = webhooks

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
        self._ctx.pg_state.reset()
        if self._webhooks is not None:
            self._webhooks.reset()
        self._ctx.recorder.clear()
        self._ctx.faults.clear()
        self._ctx.clock.reset()

    def requests(self) -> list[RecordedRequest]:
        return self._ctx.recorder.requests

    def count(self, path_or_api: str, txn: str | None = None) -> int:
        return self._ctx.recorder.count(path_or_api, txn)

    def transactions(self) -> list[Sale]:
        return self._ctx.edc_state.sales(self._ctx.clock.now())

    # -- PG ------------------------------------------------------------------

    @property
    def webhooks(self) -> WebhookSender:
        if self._webhooks is None:
            raise RuntimeError("webhook delivery is not set up")
        return self._webhooks

    def _collect(self) -> None:
        """Orders settled by a control call get their callbacks too (sent if a loop runs)."""
        if self._webhooks is not None:
            self._webhooks.collect(self._ctx.clock.now())

    def pay(self, order_id: str, outcome: str = "success", mid: str | None = None) -> LinkOrder:
        order = self._ctx.pg_state.pay(order_id, outcome, self._ctx.clock.now(), mid)
        self._collect()
        return order

    def links(self) -> list[LinkOrder]:
        orders = self._ctx.pg_state.links(self._ctx.clock.now())
        self._collect()
        return orders

    def link(self, order_id: str, mid: str | None = None) -> LinkOrder:
        state = self._ctx.pg_state
        order = state.find_link(order_id, mid)
        state.status(order.mid, order.order_id, self._ctx.clock.now())  # settle
        self._collect()
        return order

    def refunds(self) -> list[Refund]:
        return self._ctx.pg_state.refunds(self._ctx.clock.now())

    def finish_refund(self, ref_id: str, outcome: str, mid: str | None = None) -> Refund:
        return self._ctx.pg_state.finish_refund(ref_id, outcome, self._ctx.clock.now(), mid)

    def set_balance_low(self, low: bool) -> None:
        self._ctx.pg_state.balance_low = low

    async def deliver_webhooks(self) -> list[WebhookDelivery]:
        return await self.webhooks.deliver()

    def redeliver_webhook(self, order_id: str, tamper: bool = False,
                          mid: str | None = None) -> None:
        self.webhooks.redeliver(order_id, tamper, mid)


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


def link_json(order: LinkOrder, refunded_paise: int = 0) -> dict[str, object]:
    r, p = order.request, order.payment
    return {
        "mid": r.mid, "order_id": r.order_id, "amount": rupees(r.amount_paise),
        "amount_paise": r.amount_paise, "pos_id": r.pos_id, "phone": r.phone,
        "expiry": r.expiry, "display_name": r.display_name,
        "behaviour": order.behaviour.value, "status": order.status.value,
        "sms_count": order.sms_count, "created": order.created.ist_text(),
        "decided": order.decided.ist_text() if order.decided else None,
        "payment": {"txn_id": p.txn_id, "bank_txn_id": p.bank_txn_id,
                    "payment_mode": p.payment_mode, "bank_name": p.bank_name,
                    "gateway": p.gateway, "txn_date": p.txn_date} if p else None,
        "refunded": rupees(refunded_paise),
    }


def refund_json(refund: Refund) -> dict[str, object]:
    r = refund.request
    return {
        "mid": r.mid, "order_id": r.order_id, "ref_id": r.ref_id, "refund_id": refund.refund_id,
        "txn_id": r.txn_id, "amount": rupees(r.amount_paise),
        "amount_paise": r.amount_paise, "status": refund.status.value, "code": refund.code,
        "message": refund.message, "requested": refund.requested.ist_text(),
        "decided": refund.decided.ist_text() if refund.decided else None,
        "held": refund.hold and refund.status is RefundStatus.PENDING,
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

    def refunded(order: LinkOrder) -> int:
        return ctx.pg_state.refunded_paise(order.mid, order.order_id)

    async def post_pay(request: web.Request) -> web.StreamResponse:
        data = await _json_object(request)
        order_id, outcome, mid = data.get("order_id"), data.get("outcome", "success"), \
            data.get("mid")
        if not isinstance(order_id, str) or not isinstance(outcome, str) \
                or not isinstance(mid, str | None):
            raise ValueError('"order_id" must be a string ("outcome", "mid" optional)')
        order = control.pay(order_id, outcome, mid)
        return web.json_response({**ok, "link": link_json(order, refunded(order))})

    async def get_links(request: web.Request) -> web.StreamResponse:
        return web.json_response({**ok, "links": [link_json(o, refunded(o))
                                                  for o in control.links()]})

    async def get_refunds(request: web.Request) -> web.StreamResponse:
        return web.json_response({**ok, "refunds": [refund_json(r) for r in control.refunds()]})

    async def post_finish_refund(request: web.Request) -> web.StreamResponse:
        data = await _json_object(request)
        ref_id, outcome, mid = data.get("ref_id"), data.get("outcome"), data.get("mid")
        if not isinstance(ref_id, str) or not isinstance(outcome, str) \
                or not isinstance(mid, str | None):
            raise ValueError('"ref_id" and "outcome" must be strings ("mid" optional)')
        refund = control.finish_refund(ref_id, outcome, mid)
        return web.json_response({**ok, "refund": refund_json(refund)})

    async def post_balance(request: web.Request) -> web.StreamResponse:
        low = (await _json_object(request)).get("low")
        if not isinstance(low, bool):
            raise ValueError('"low" must be true or false')
        control.set_balance_low(low)
        return web.json_response(ok)

    def webhooks_json() -> dict[str, object]:
        sender = control.webhooks
        return {**ok, "options": sender.options(),
                "deliveries": [d.to_json() for d in sender.deliveries]}

    async def get_webhooks(request: web.Request) -> web.StreamResponse:
        return web.json_response(webhooks_json())

    async def post_webhooks(request: web.Request) -> web.StreamResponse:
        data = await _json_object(request)
        unknown = set(data) - {"url", "format", "duplicates", "reverse", "hold", "enabled"}
        if unknown:
            raise ValueError(f"unknown webhook options: {', '.join(sorted(unknown))}")
        url, shape = data.get("url"), data.get("format")
        duplicates = data.get("duplicates")
        reverse, hold, enabled = data.get("reverse"), data.get("hold"), data.get("enabled", True)
        if not isinstance(url, str | None) or not isinstance(shape, str | None) \
                or not isinstance(duplicates, int | None) \
                or not isinstance(reverse, bool | None) or not isinstance(hold, bool | None) \
                or not isinstance(enabled, bool):
            raise ValueError('"url" and "format" are strings, "duplicates" a number, '
                             '"reverse", "hold" and "enabled" true or false')
        control.webhooks.configure(url=url, shape=shape, duplicates=duplicates,
                                   reverse=reverse, hold=hold, enabled=enabled)
        return web.json_response(webhooks_json())

    async def post_deliver(request: web.Request) -> web.StreamResponse:
        sent = await control.deliver_webhooks()
        return web.json_response({**ok, "deliveries": [d.to_json() for d in sent]})

    async def post_redeliver(request: web.Request) -> web.StreamResponse:
        data = await _json_object(request)
        order_id, tamper, mid = data.get("order_id"), data.get("tamper", False), data.get("mid")
        if not isinstance(order_id, str) or not isinstance(tamper, bool) \
                or not isinstance(mid, str | None):
            raise ValueError('"order_id" must be a string, "tamper" true or false')
        control.redeliver_webhook(order_id, tamper, mid)
        return web.json_response(webhooks_json())

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
        web.post(f"{p}/pay", _guarded(post_pay)),
        web.get(f"{p}/links", _guarded(get_links)),
        web.get(f"{p}/refunds", _guarded(get_refunds)),
        web.post(f"{p}/refunds/finish", _guarded(post_finish_refund)),
        web.post(f"{p}/balance", _guarded(post_balance)),
        web.get(f"{p}/webhooks", _guarded(get_webhooks)),
        web.post(f"{p}/webhooks", _guarded(post_webhooks)),
        web.post(f"{p}/webhooks/deliver", _guarded(post_deliver)),
        web.post(f"{p}/webhooks/redeliver", _guarded(post_redeliver)),
    ]

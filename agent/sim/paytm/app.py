"""`Emulator`: the aiohttp application plus the in-process controls tests use.

Modules mount their routes on one application and share one context (clock, record,
faults): `edc_routes` (Sale, Status Enquiry, Void) and `pg_routes` (payment links,
Transaction Status, refunds). The webhook sender is the one piece with a background
task; the emulator closes it when it stops serving.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from agent.sim.paytm.context import EmulatorContext
from agent.sim.paytm.control import (
    Control,
    control_routes,
    link_json,
    refund_json,
    sale_json,
)
from agent.sim.paytm.edc import edc_routes
from agent.sim.paytm.faults import Fault
from agent.sim.paytm.pg import pg_routes
from agent.sim.paytm.record import RecordedRequest
from agent.sim.paytm.settings import EmulatorSettings
from agent.sim.paytm.webhooks import WebhookDelivery, WebhookSender
from agent.sim.paytm.wire import MAX_BODY_BYTES

EMULATOR_KEY = web.AppKey("emulator", EmulatorContext)
# Handlers still running at shutdown (an injected delay, a client that hung up) get this
# long before aiohttp cancels them; injected delays end at once on shutdown anyway.
SHUTDOWN_TIMEOUT_S = 2.0


def build_app(ctx: EmulatorContext, control: Control,
              webhooks: WebhookSender) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[EMULATOR_KEY] = ctx
    app.add_routes(edc_routes(ctx))
    app.add_routes(pg_routes(ctx, webhooks))
    app.add_routes(control_routes(control, ctx))

    async def on_startup(_: web.Application) -> None:
        ctx.closing = asyncio.Event()

    async def on_shutdown(_: web.Application) -> None:
        ctx.closing.set()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


class Emulator:
    """Paytm's cloud, offline. See docs/emulator.md."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings if settings is not None else EmulatorSettings()
        self._ctx = EmulatorContext.create(self.settings)
        self._webhooks = WebhookSender(self.settings, self._ctx.pg_state, self._ctx.clock,
                                       on_delivery=self._ctx.recorder.touch)
        self._control = Control(self._ctx, self._webhooks)
        self.app = build_app(self._ctx, self._control, self._webhooks)
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """"http://127.0.0.1:PORT" (https with a certificate) while `serve()` is running."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not serving")
        return self._base_url

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    access_log: bool = False,
                    ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
        """Serve until the block ends; yields the base URL (port 0 picks a free port).

        With `ssl_context` (a server context holding a certificate) it serves https, as
        Paytm does: `edc-agent certify` and the agent's TLS checks can then be tried
        against a self-signed certificate given to the agent as `paytm.ca_file`.
        """
        if self._base_url is not None:
            raise RuntimeError("the emulator is already serving")
        if access_log:
            runner = web.AppRunner(self.app, handle_signals=False,
                                   shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        else:
            runner = web.AppRunner(self.app, handle_signals=False,
                                   shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
            scheme = "https" if ssl_context is not None else "http"
            self._base_url = f"{scheme}://{shown}:{bound_port}"
            yield self._base_url
        finally:
            self._base_url = None
            self._ctx.closing.set()
            await self._webhooks.close()  # no delivery outlives the emulator
            await runner.cleanup()

    # ------------------------------------------------------------------
    # Controls (the same implementation serves /_emulator/)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._control.requests()

    def count(self, path_or_api: str, txn: str | None = None) -> int:
        return self._control.count(path_or_api, txn)

    async def recorded(self) -> None:
        """Return when the emulator records its next request (event-driven test waits)."""
        await self._ctx.recorder.recorded()

    def inject(self, fault: Fault) -> None:
        self._control.inject(fault)

    @property
    def faults(self) -> list[Fault]:
        return self._control.faults()

    def advance(self, seconds: float) -> None:
        self._control.advance(seconds)

    def finish(self, txn: str, outcome: str, mid: str | None = None) -> None:
        self._control.finish(txn, outcome, mid)

    def set_terminal_active(self, tid: str, active: bool) -> None:
        self._control.set_terminal_active(tid, active)

    def reset(self) -> None:
        self._control.reset()

    def transactions(self) -> list[dict[str, object]]:
        return [sale_json(sale) for sale in self._control.transactions()]

    def transaction(self, txn: str, mid: str | None = None) -> dict[str, object]:
        state = self._ctx.edc_state
        state.sales(self._ctx.clock.now())  # settle first
        return sale_json(state.find(txn, mid))

    # -- payment links, refunds, webhooks ------------------------------------------

    def pay(self, order_id: str, outcome: str = "success", mid: str | None = None) -> None:
        """The customer acts on a link now: success (UPI), failed (227), expired, or
        pending (paid; the bank confirms after bank_pending_s)."""
        self._control.pay(order_id, outcome, mid)

    def links(self) -> list[dict[str, object]]:
        pg = self._ctx.pg_state
        return [link_json(o, pg.refunded_paise(o.mid, o.order_id))
                for o in self._control.links()]

    def link(self, order_id: str, mid: str | None = None) -> dict[str, object]:
        order = self._control.link(order_id, mid)
        return link_json(order, self._ctx.pg_state.refunded_paise(order.mid, order.order_id))

    def refunds(self) -> list[dict[str, object]]:
        return [refund_json(r) for r in self._control.refunds()]

    def finish_refund(self, ref_id: str, outcome: str, mid: str | None = None) -> None:
        """Decide a pending refund now: success or failed (620)."""
        self._control.finish_refund(ref_id, outcome, mid)

    def set_balance_low(self, low: bool) -> None:
        """While low, every new refund fails with 620 (insufficient balance)."""
        self._control.set_balance_low(low)

    def configure_webhooks(self, *, url: str | None = None, shape: str | None = None,
                           duplicates: int | None = None, reverse: bool | None = None,
                           hold: bool | None = None, enabled: bool = True) -> None:
        """Where and how callbacks go; see agent/sim/paytm/webhooks.py."""
        self._webhooks.configure(url=url, shape=shape, duplicates=duplicates,
                                 reverse=reverse, hold=hold, enabled=enabled)

    async def deliver_webhooks(self) -> list[WebhookDelivery]:
        """Settle every order, send every callback due (even when held), wait until sent."""
        return await self._control.deliver_webhooks()

    def redeliver_webhook(self, order_id: str, tamper: bool = False,
                          mid: str | None = None) -> None:
        self._control.redeliver_webhook(order_id, tamper, mid)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return list(self._webhooks.deliveries)

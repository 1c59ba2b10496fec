"""Paytm's S2S payment callback for payment links (`[webhook]`, off by default).

A callback is a *hint*, never the truth: a verified callback makes the agent ask
Transaction Status about that order now (reference §18.1: "then still confirm with the
Transaction Status API"), and only that answer can close the bill. So a forged callback
(bad CHECKSUMHASH/signature) is refused, and a replayed or out-of-order one changes
nothing but an extra status check. Paytm gets its 200 at once; the check runs in the
background.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from agent.journal import FINAL_STATES, Kind
from agent.listener import WEBHOOK_CONNECTIONS_MAX, ListenerTimeouts
from agent.net import split_host_port
from agent.paytm.checksum import MerchantKey
from agent.paytm.webhook import InvalidCallback, parse_callback
from agent.site import GuardedSite

if TYPE_CHECKING:
    from agent.engine.engine import Engine

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # a callback is a few hundred bytes
SEEN_MAX = 10_000  # (order, status) pairs remembered for idempotency


class WebhookServer:
    def __init__(self, engine: Engine, key: MerchantKey, listen: str, path: str,
                 *, cap: int = WEBHOOK_CONNECTIONS_MAX,
                 timeouts: ListenerTimeouts = ListenerTimeouts()) -> None:  # noqa: B008
        self._engine = engine
        self._cap = cap
        self._timeouts = timeouts
        self._key = key
        self._listen = listen
        self._path = path
        self._seen: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._runner: web.AppRunner | None = None
        self.received = 0
        self.refused = 0
        self.address = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(self._path, self._handle)
        return app

    async def start(self) -> None:
        host, port = split_host_port(self._listen)
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                                     keepalive_timeout=self._timeouts.header_s,
                                     lingering_time=0)  # as the page (agent/web/server.py)
        await self._runner.setup()
        site = GuardedSite(self._runner, host, port, cap=self._cap, name="webhook listener")
        await site.start()
        bound = self._runner.addresses[0]
        self.address = f"http://{bound[0]}:{bound[1]}{self._path}"
        log.info("Paytm webhook receiver listening on %s", self.address)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.received += 1
        try:
            async with asyncio.timeout(self._timeouts.body_s):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.refused += 1
            return web.Response(status=413, text="too large\n")
        except TimeoutError:
            self.refused += 1
            return web.Response(status=408, text="body too slow\n")
        callback = parse_callback(body, request.content_type, self._key,
                                  self._engine.config.paytm.mid)
        if isinstance(callback, InvalidCallback):
            self.refused += 1
            log.warning("webhook from %s refused: %s", request.remote, callback.reason)
            return web.Response(status=400, text="invalid callback\n")
        key = (callback.order_id, str(callback.status))
        journal = self._engine.journal
        record = journal.find(Kind.PAYLINK, callback.order_id)
        if key in self._seen:
            log.info("webhook for %s (%s) again: already handled", *key)
            return web.Response(text="OK\n")
        self._seen[key] = None
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        if record is None:
            log.warning("webhook for unknown order %s (%s) ignored", *key)
            return web.Response(text="OK\n")
        await journal.note(record.row_id,
                           f"webhook says {callback.status}; confirming by status",
                           callback.resp_code or "")
        if record.state not in FINAL_STATES:
            self._engine.recheck(record.row_id)
        return web.Response(text="OK\n")

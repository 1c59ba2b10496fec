"""`GuardedSite`: an aiohttp TCP site with a connection cap (why: agent/listener.py).

Apart from the budget and the timeouts (agent/listener.py, read at start) because it
needs aiohttp's server half, which the page and the webhook listener import after READY.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from agent.listener import LISTEN_BACKLOG, REFUSED_LOG_S
from agent.logs import Throttle

log = logging.getLogger(__name__)


class _Refused(asyncio.Protocol):
    """Over the cap: closed as soon as it is accepted (its fd is free again at once)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort() if isinstance(transport, asyncio.Transport) else transport.close()


class _Counted(asyncio.Protocol):
    """Passes every callback to aiohttp's handler; counts the connection while open."""

    def __init__(self, inner: Any, site: GuardedSite) -> None:
        self._inner = inner
        self._site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._site.open -= 1
        self._inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP site with a connection cap (see the module docstring)."""

    __slots__ = ("_cap", "_host", "_name", "_port", "_throttle", "open", "refused")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, cap: int,
                 name: str) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._host = host
        self._port = port
        self._name = name
        self._cap = cap
        self._throttle = Throttle(REFUSED_LOG_S)
        self.open = 0
        self.refused = 0

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def cap(self) -> int:
        return self._cap

    def _protocol(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        if self.open >= self._cap:
            self.refused += 1
            if self._throttle.allow():
                more = self._throttle.take_suppressed()
                log.warning("%s: %d connections open (the cap): new ones are closed at "
                            "once%s; payments are not affected", self._name, self.open,
                            f" ({more} more since the last line)" if more else "")
            return _Refused()
        self.open += 1
        return _Counted(server(), self)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._host, self._port,
                                                backlog=self._backlog)

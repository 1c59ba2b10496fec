"""Listening sockets that cannot starve the money path (the page and the webhook).

A flood of half-open connections to the technician page once used every file descriptor
the service had (1,024): the next Sale failed toward Paytm with "Too many open files" and
asyncio logged a traceback per accept retry. Now:

- `fd_budget()` raises the soft `RLIMIT_NOFILE` to the hard one (the unit sets
  `LimitNOFILE=`) and keeps `FD_RESERVED` descriptors plus `FD_PER_LANE` per lane for
  lanes, the journal (database, WAL, shared memory, two readers) and Paytm's connection
  pool; the listeners share what is left, within fixed caps.
- `GuardedSite` serves an aiohttp runner through a protocol factory that counts open
  connections: beyond its cap a new connection is closed at once (one WARNING per
  interval, with how many were refused), so the page's fds never exceed the cap.
- The idle/header timeout is aiohttp's keep-alive timeout, armed from the moment a
  connection opens (a connection that never completes its request headers is closed
  after `HEADER_TIMEOUT_S`); the body timeout is the page's own (`BODY_TIMEOUT_S`).
- `quiet_accept_errors()`: asyncio's "socket.accept() out of system resource" is logged
  once per interval, never once per retry.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.logs import Throttle

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0  # a connection must complete its request headers within this
BODY_TIMEOUT_S = 10.0  # and its (≤ 16 KiB) body within this
FD_RESERVED = 96  # stdio, epoll, journal (db, WAL, shm, readers), logging, spare
FD_PER_LANE = 4  # a lane's device or listening socket, its connection, a takeover
PAYTM_FDS = 40  # aiohttp's pool toward Paytm (paytm.http.CONNECTION_LIMIT = 32) and DNS
WEB_CONNECTIONS_MAX = 64  # the page: a technician's browser opens a handful
WEBHOOK_CONNECTIONS_MAX = 32  # Paytm's callbacks arrive one at a time
LISTENER_CONNECTIONS_MIN = 4
LISTEN_BACKLOG = 64
REFUSED_LOG_S = 60.0


@dataclass(frozen=True, slots=True)
class ListenerTimeouts:
    """How long a connection may take over its request: the protocol defaults above. A
    test shortens them to watch a slow client being cut off without waiting 10 s."""

    header_s: float = HEADER_TIMEOUT_S
    body_s: float = BODY_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class FdBudget:
    limit: int  # the soft RLIMIT_NOFILE after raising it
    reserved: int  # kept for lanes, the journal and Paytm
    web: int  # the page's connection cap
    webhook: int  # the webhook listener's connection cap


def fd_budget(lanes: int) -> FdBudget:
    """Raise the soft fd limit to the hard one and share it out (call once at start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target,
                        exc)
    reserved = FD_RESERVED + PAYTM_FDS + FD_PER_LANE * lanes
    spare = soft - reserved
    web_cap = max(LISTENER_CONNECTIONS_MIN, min(WEB_CONNECTIONS_MAX, spare * 2 // 3))
    hook_cap = max(LISTENER_CONNECTIONS_MIN, min(WEBHOOK_CONNECTIONS_MAX, spare // 3))
    if spare < web_cap + hook_cap:
        log.warning("open-file limit %d is tight for %d lane(s) (about %d needed): set "
                    "LimitNOFILE= higher in the unit", soft, lanes,
                    reserved + web_cap + hook_cap)
    return FdBudget(limit=soft, reserved=reserved, web=web_cap, webhook=hook_cap)


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


_ACCEPT_LOG = Throttle(REFUSED_LOG_S)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log asyncio's accept-retry complaints (out of file descriptors) once per
    interval instead of once per attempt; everything else as before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            if _ACCEPT_LOG.allow():
                more = _ACCEPT_LOG.take_suppressed()
                log.error("cannot accept a connection: %s%s", context.get("exception"),
                          f" ({more} more since the last line)" if more else "")
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

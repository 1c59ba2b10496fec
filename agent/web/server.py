"""Serve the technician page inside the agent's own event loop (AppRunner + TCPSite).

    server = await start_web(agent)          # after agent.start(); listens on http.listen
    print(server.url)                        # http://127.0.0.1:8765/
    ...
    await server.stop()                      # before agent.stop()

`listen` overrides `http.listen` (tests pass "127.0.0.1:0" for a free port); the login
rules still follow the configured `http.listen`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from agent.errors import AgentError
from agent.listener import ListenerTimeouts
from agent.logs import RECENT, RecentLines
from agent.net import split_host_port
from agent.site import GuardedSite
from agent.web.app import build_app

if TYPE_CHECKING:
    from agent.web.view import AgentView

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 1.0  # open pages get this long to finish; event streams end at once


class WebStartError(AgentError):
    """The technician page cannot listen on its address (in use, not local, no rights)."""


class WebServer:
    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self._runner = runner
        self.url = url

    @property
    def app(self) -> web.Application:
        return self._runner.app

    async def stop(self) -> None:
        await self._runner.cleanup()
        log.info("technician page stopped")


async def start_web(agent: AgentView, *, listen: str | None = None,
                    recent: RecentLines = RECENT,
                    timeouts: ListenerTimeouts = ListenerTimeouts()) -> WebServer:  # noqa: B008  (frozen)
    address = listen if listen is not None else agent.config.http.listen
    try:
        host, port = split_host_port(address)
    except ValueError as exc:
        raise WebStartError(f"http.listen: {exc}") from None
    app = build_app(agent, recent=recent, body_timeout_s=timeouts.body_s)
    # keepalive_timeout is armed when a connection opens: one that never completes its
    # headers (half-open, slowloris) is closed after `timeouts.header_s`. No lingering: a
    # body refused unread (413, 408) closes the connection at once, where aiohttp would
    # go on reading it for 10 s more — a slow client's fd held twice as long.
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                           keepalive_timeout=timeouts.header_s, lingering_time=0)
    await runner.setup()
    try:
        site = GuardedSite(runner, host, port, cap=agent.budget().web,
                           name="technician page")
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise WebStartError(f"technician page: cannot listen on {address}: "
                            f"{exc.strerror or exc}") from exc
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
    url = f"http://{shown}:{bound_port}/"
    if not agent.config.http.password_hash:
        log.warning("technician page on %s is read-only: no http.password_hash set "
                    "(edc-agent hash-password)", url)
    else:
        log.info("technician page on %s", url)
    return WebServer(runner, url)

"""The state the web app shares between requests, kept on the Application under one AppKey."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from agent.listener import BODY_TIMEOUT_S
from agent.logs import RecentLines
from agent.net import is_loopback_host, split_host_port
from agent.passwords import verify_password
from agent.paytm.outcome import CallRecord
from agent.web.events import EventHub
from agent.web.metrics import AgentMetrics
from agent.web.reader import PageReader
from agent.web.security import (
    SESSION_COOKIE,
    HostRule,
    LoginLimiter,
    PasswordGate,
    Session,
    SessionStore,
)

if TYPE_CHECKING:
    from agent.web.view import AgentView


class CallWatch:
    """Fans the agent's Paytm call records out to the metrics, the live view and the
    Tools waiting for a particular call (a re-check). `Agent.observe_calls` has no way to
    unsubscribe, so a stopped web app is switched off instead."""

    def __init__(self, metrics: AgentMetrics, hub: EventHub) -> None:
        self._metrics = metrics
        self._hub = hub
        self._waiters: list[tuple[Callable[[CallRecord], bool], asyncio.Future[CallRecord]]] = []
        self.active = True

    def observe(self, record: CallRecord) -> None:
        if not self.active:
            return
        self._metrics.on_call(record)
        self._hub.on_call(record)
        keep = []
        for wanted, future in self._waiters:
            if future.done():
                continue
            if wanted(record):
                future.set_result(record)
            else:
                keep.append((wanted, future))
        self._waiters = keep

    def expect(self, wanted: Callable[[CallRecord], bool]) -> asyncio.Future[CallRecord]:
        """Register interest in the next matching call *before* causing it."""
        future: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        self._waiters.append((wanted, future))
        return future

    async def wait(self, future: asyncio.Future[CallRecord],
                   timeout_s: float) -> CallRecord | None:
        """The call `future` was waiting for, or None after `timeout_s`."""
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None
        finally:
            self._waiters = [(w, f) for w, f in self._waiters if f is not future]


@dataclass
class WebContext:
    agent: AgentView
    recent: RecentLines
    metrics: AgentMetrics
    hub: EventHub
    calls: CallWatch
    sessions: SessionStore = field(default_factory=SessionStore)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    gate: PasswordGate | None = None  # built on first use around `limiter`
    wall: Callable[[], float] = time.time
    unsubscribe: Callable[[], None] | None = None  # the metrics' journal listener
    reader: PageReader | None = None  # the page's own journal connection (searches)
    hosts: HostRule | None = None  # the Host/Origin rule; built from http.* on first use
    body_timeout_s: float = BODY_TIMEOUT_S  # a request body must arrive within this

    @property
    def host_rule(self) -> HostRule:
        if self.hosts is None:
            http = self.agent.config.http
            try:
                listen = split_host_port(http.listen)[0]
            except ValueError:
                listen = ""
            self.hosts = HostRule(listen, http.hostnames)
        return self.hosts

    def page_reader(self) -> PageReader:
        if self.reader is None:
            self.reader = PageReader(self.agent.journal.reader)
        return self.reader

    @property
    def passwords(self) -> PasswordGate:
        if self.gate is None:
            self.gate = PasswordGate(self.limiter, verify_password)
        return self.gate

    @property
    def password_hash(self) -> str:
        return self.agent.config.http.password_hash

    @property
    def actions_enabled(self) -> bool:
        return bool(self.password_hash)

    @property
    def login_required(self) -> bool:
        """Every page needs a login when the page is reachable from other machines."""
        try:
            host = split_host_port(self.agent.config.http.listen)[0]
        except ValueError:
            return True
        return not is_loopback_host(host)

    def session(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))


CTX = web.AppKey("edc_web", WebContext)


def ctx_of(request: web.Request) -> WebContext:
    return request.app[CTX]

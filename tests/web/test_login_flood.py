"""Concurrent logins (issue 14, case 3), over real sockets: the limit is taken before
scrypt, so a burst is cut at LOGIN_FAILURES_MAX, the right password hidden in a burst of
wrong ones does not get in, other loopback source addresses are the same client, scrypt
runs one at a time, and /metrics Basic auth follows the same rule."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web

from agent.passwords import verify_password
from agent.web.context import CTX
from agent.web.security import (
    LOGIN_FAILURES_MAX,
    LOGIN_GLOBAL_MAX,
    LoginLimiter,
    PasswordGate,
    client_key,
)
from agent.web.server import start_web
from devtools.webstack import LAN, PASSWORD, web_stack

BURST = 60


class CountingVerify:
    """The real scrypt check, counting how many run at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, password: str, password_hash: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return verify_password(password, password_hash)
        finally:
            with self._lock:
                self.running -= 1


def counting(app: web.Application) -> CountingVerify:
    verify = CountingVerify()
    ctx = app[CTX]
    ctx.gate = PasswordGate(ctx.limiter, verify)
    return verify


async def _login(base: str, password: str, source: str = "127.0.0.1") -> int:
    """One browser: its own cookies and connection, from `source`."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(base + "login") as page:
            token = page.cookies["edc_login"].value
        async with session.post(base + "login", data={"csrf": token, "password": password},
                                allow_redirects=False) as response:
            return response.status


async def test_burst_of_wrong_passwords_is_cut_before_scrypt(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        server = await start_web(s.agent, listen="127.0.0.1:0")
        verify = counting(server.app)
        try:
            codes = Counter(await asyncio.gather(
                *(_login(server.url, f"wrong {i}") for i in range(BURST - 1)),
                _login(server.url, PASSWORD)))
        finally:
            await server.stop()
        # Only LOGIN_FAILURES_MAX passwords were ever looked at, one at a time; the right
        # one, at the end of the burst, was refused unread.
        assert codes[401] + codes[303] == LOGIN_FAILURES_MAX, codes
        assert codes[429] == BURST - LOGIN_FAILURES_MAX and codes[303] == 0, codes
        assert verify.calls == LOGIN_FAILURES_MAX and verify.most == 1


async def test_other_loopback_sources_are_the_same_client(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        server = await start_web(s.agent, listen="127.0.0.1:0")
        counting(server.app)
        codes: Counter[int] = Counter()
        try:
            for n in range(2, 2 + LOGIN_FAILURES_MAX + 3):
                codes[await _login(server.url, f"wrong {n}", f"127.0.0.{n}")] += 1
        finally:
            await server.stop()
        assert codes == Counter({401: LOGIN_FAILURES_MAX, 429: 3})


async def test_metrics_basic_auth_has_the_same_limit(tmp_path: Path) -> None:
    async with web_stack(tmp_path, listen=LAN) as s:
        verify = counting(s.app)

        async def scrape(password: str) -> int:
            auth = base64.b64encode(f"x:{password}".encode()).decode()
            response = await s.client.get("/metrics",
                                          headers={"Authorization": f"Basic {auth}"})
            return response.status

        codes = Counter(await asyncio.gather(*(scrape(f"wrong {i}") for i in range(BURST))))
        assert codes == Counter({401: LOGIN_FAILURES_MAX, 429: BURST - LOGIN_FAILURES_MAX})
        assert verify.calls == LOGIN_FAILURES_MAX and verify.most == 1


def test_global_limit_across_addresses() -> None:
    now = [0.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    taken = 0
    for a in range(LOGIN_GLOBAL_MAX // LOGIN_FAILURES_MAX + 2):
        for _ in range(LOGIN_FAILURES_MAX):
            if limiter.attempt(f"10.0.{a}.1") == 0:
                taken += 1
    assert taken == LOGIN_GLOBAL_MAX
    now[0] += 301
    assert limiter.attempt("10.9.9.9") == 0


def test_client_keys() -> None:
    assert client_key("127.0.0.1") == client_key("127.8.9.10") == client_key("::1") \
        == "loopback"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"

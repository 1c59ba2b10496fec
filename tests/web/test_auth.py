"""Login, sessions, CSRF, the login rate limit, read-only mode and the LAN rule."""

from __future__ import annotations

import base64
from pathlib import Path

from agent.web.security import (
    LOGIN_FAILURES_MAX,
    SESSION_COOKIE,
    SESSION_IDLE_S,
    SESSION_TTL_S,
    LoginLimiter,
    SessionStore,
    safe_next,
)
from devtools.webstack import LAN, PASSWORD, web_stack


def cookie_header(set_cookie: list[str], name: str) -> str:
    found = [c for c in set_cookie if c.startswith(name + "=")]
    assert len(found) == 1, set_cookie
    return found[0]


async def test_login_sets_a_strict_http_only_session_cookie(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        assert (await (await s.client.get("/api/session")).json())["logged_in"] is False
        page = await (await s.client.get("/login")).text()
        assert 'type="password"' in page
        response = await s.client.post("/login", data={}, allow_redirects=False)
        assert response.status == 403  # no login CSRF token
        assert await s.login() == 303
        response = await s.client.get("/login", allow_redirects=False)
        assert response.status == 303  # already logged in
        state = await (await s.client.get("/api/session")).json()
        assert state == {"logged_in": True, "actions_enabled": True, "login_required": False}

    async with web_stack(tmp_path / "b") as s:
        first = await s.client.get("/login")
        token = first.cookies["edc_login"].value
        response = await s.client.post(
            "/login", data={"csrf": token, "password": PASSWORD, "next": "//evil.example/"},
            allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/"  # never an open redirect
        cookie = cookie_header(response.headers.getall("Set-Cookie"), SESSION_COOKIE)
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
        assert f"max-age={int(SESSION_TTL_S)}" in lowered
        value = cookie.split(";")[0].split("=", 1)[1]
        assert len(value) >= 40  # 32 random bytes, URL-safe base64
        assert PASSWORD not in cookie


async def test_wrong_password_is_refused_and_rate_limited(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        for attempt in range(LOGIN_FAILURES_MAX):
            response = await s.client.get("/login")
            token = response.cookies.get("edc_login")
            csrf = token.value if token else s.client.session.cookie_jar.filter_cookies(
                s.client.make_url("/login"))["edc_login"].value
            response = await s.client.post(
                "/login", data={"csrf": csrf, "password": f"wrong {attempt}"},
                allow_redirects=False)
            assert response.status == 401
            assert "Wrong password" in await response.text()
            assert SESSION_COOKIE not in response.cookies
        # Locked: even the right password is not tried now.
        assert await s.login(PASSWORD) == 429
        response = await s.client.post("/login", data={"password": PASSWORD},
                                        allow_redirects=False)
        assert response.status in (403, 429)
        assert (await (await s.client.get("/api/session")).json())["logged_in"] is False


def test_rate_limiter_window_and_sessions_expiry() -> None:
    now = [1000.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    for _ in range(LOGIN_FAILURES_MAX):
        assert limiter.retry_after_s("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.retry_after_s("10.0.0.1") > 0
    assert limiter.retry_after_s("10.0.0.2") == 0  # per client
    now[0] += 301
    assert limiter.retry_after_s("10.0.0.1") == 0

    store = SessionStore(clock=lambda: now[0])
    a, b = store.create("c"), store.create("c")
    assert a.token != b.token and a.csrf != b.csrf
    assert store.get(a.token) is a
    now[0] += SESSION_IDLE_S + 1
    assert store.get(a.token) is None  # idle too long
    c = store.create("c")
    for _ in range(int(SESSION_TTL_S // (SESSION_IDLE_S / 2)) + 1):
        now[0] += SESSION_IDLE_S / 2
        store.get(c.token)
    assert store.get(c.token) is None  # absolute lifetime
    assert store.get("") is None and store.get("forged") is None

    assert safe_next("/tools?x=1") == "/tools?x=1"
    for bad in ("//evil", "http://evil/", "/\\evil", "", "evil", "/a\nb"):
        assert safe_next(bad) == "/"


async def test_actions_need_a_session_and_its_csrf_token(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        # Anonymous on a loopback page: reading is fine, acting is not.
        response = await s.client.post("/tools/link-test", data={"lane": "till-1"},
                                       allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")
        response = await s.client.post("/api/tools/link-test", data={"lane": "till-1"})
        assert response.status == 401
        assert s.agent.lanes[0].link.counters.enq_received == 0

        assert await s.login() == 303
        csrf = await s.csrf()
        missing = await s.client.post("/api/tools/link-test", data={"lane": "till-1"})
        forged = await s.client.post("/api/tools/link-test", data={"lane": "till-1"},
                                     headers={"X-CSRF-Token": "forged" + csrf[6:]})
        form_forged = await s.client.post("/tools/link-test",
                                          data={"lane": "till-1", "csrf": "x"})
        for response in (missing, forged, form_forged):
            assert response.status == 403
            assert "CSRF" in await response.text()

        ok = await s.client.post("/api/tools/link-test", data={"lane": "till-1"},
                                 headers={"X-CSRF-Token": csrf})
        assert ok.status == 200
        result = await ok.json()
        assert result["ok"] is True and "ACK" in result["text"]

        # The HTML form: post, redirect, the result shown once on the next page.
        response = await s.client.post("/tools/link-test",
                                       data={"lane": "till-1", "csrf": csrf, "back": "lanes"},
                                       allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/lanes"
        page = await (await s.client.get("/lanes")).text()
        assert "Link test on till-1: OK" in page
        assert "Link test on till-1: OK" not in await (await s.client.get("/lanes")).text()

        # Log out: the session is gone, its token with it.
        response = await s.client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
        assert response.status == 303
        assert (await (await s.client.get("/api/session")).json())["logged_in"] is False
        response = await s.client.post("/api/tools/link-test", data={"lane": "till-1"},
                                       headers={"X-CSRF-Token": csrf})
        assert response.status == 401


async def test_without_a_password_the_page_is_read_only(tmp_path: Path) -> None:
    async with web_stack(tmp_path, password_hash="") as s:
        for path in ("/", "/lanes", "/transactions", "/log", "/config", "/tools"):
            response = await s.client.get(path)
            assert response.status == 200, path
        tools = await (await s.client.get("/tools")).text()
        assert "edc-agent hash-password" in tools and "disabled" in tools
        assert "Read-only" in tools
        for path in ("/tools/link-test", "/api/tools/link-test", "/tools/paytm-test",
                     "/api/tools/recheck", "/logout", "/login"):
            response = await s.client.post(path, data={"lane": "till-1"},
                                           allow_redirects=False)
            assert response.status == 403, path
            text = await response.text()
            assert "edc-agent hash-password" in text and "password_hash" in text, path
            assert str(tmp_path / "agent.toml") in text
        assert s.agent.lanes[0].link.counters.enq_received == 0
        config = await (await s.client.get("/api/config")).json()
        http = next(sec for sec in config["sections"] if sec["name"] == "http")
        assert http["items"]["password_hash"] == "(not set)"


async def test_on_a_lan_address_every_page_needs_a_login(tmp_path: Path) -> None:
    async with web_stack(tmp_path, listen=LAN) as s:
        for path in ("/", "/lanes", "/transactions", "/transactions/1", "/log", "/config",
                     "/tools", "/nope"):
            response = await s.client.get(path, allow_redirects=False)
            assert response.status == 303, path
            assert response.headers["Location"].startswith("/login?next=")
        for path in ("/api/overview", "/api/lanes", "/api/transactions", "/api/log",
                     "/api/config", "/api/events", "/api/tools/ports"):
            assert (await s.client.get(path)).status == 401, path
        metrics = await s.client.get("/metrics")
        assert metrics.status == 401 and "Basic" in metrics.headers["WWW-Authenticate"]
        wrong = base64.b64encode(b"prometheus:nope").decode()
        right = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
        assert (await s.client.get("/metrics", headers={
            "Authorization": f"Basic {wrong}"})).status == 401
        scraped = await s.client.get("/metrics", headers={"Authorization": f"Basic {right}"})
        assert scraped.status == 200 and "edc_uptime_seconds" in await scraped.text()
        # Open without a login: the login page, static files, the health check.
        for path in ("/login", "/static/app.css", "/static/app.js", "/healthz"):
            assert (await s.client.get(path)).status == 200, path

        assert await s.login() == 303
        for path in ("/", "/lanes", "/transactions", "/log", "/config", "/tools",
                     "/api/overview", "/metrics"):
            assert (await s.client.get(path)).status == 200, path
        assert (await (await s.client.get("/api/session")).json())["login_required"] is True


async def test_on_a_lan_address_without_a_password_nothing_is_shown(tmp_path: Path) -> None:
    async with web_stack(tmp_path, listen=LAN, password_hash="") as s:
        response = await s.client.get("/transactions", allow_redirects=False)
        assert response.status == 303
        login = await (await s.client.get("/login")).text()
        assert "edc-agent hash-password" in login and "non-loopback" in login
        assert (await s.client.get("/api/overview")).status == 401
        assert (await s.client.get("/healthz")).status == 200

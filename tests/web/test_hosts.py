"""The Host and Origin rule (issue 14, case 4): DNS rebinding cannot read the page.

A page of attacker.example opened on the billing PC, whose name now resolves to
127.0.0.1, sends `Host: attacker.example`: refused with 421 on every route, before any
handler; state-changing requests from another Origin are refused with 403."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.web.security import HostRule, host_of
from devtools.webstack import LAN, PASSWORD, web_stack

ROUTES = ["/", "/api/transactions", "/api/log", "/api/config", "/metrics", "/healthz",
          "/login", "/static/app.css"]


async def test_foreign_host_is_421_on_every_route(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        for path in ROUTES:
            response = await s.client.get(path, headers={"Host": "attacker.example"},
                                          allow_redirects=False)
            assert response.status == 421, path
            assert "does not answer to" in await response.text(), path
        for host in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST."):
            response = await s.client.get("/api/config", headers={"Host": host})
            assert response.status == 200, host
        response = await s.client.get("/", headers={"Host": "bad host/x"})
        assert response.status == 400


async def test_configured_hostnames_are_answered(tmp_path: Path) -> None:
    async with web_stack(tmp_path, hostnames=("till-pc.shop.lan",)) as s:
        ok = await s.client.get("/healthz", headers={"Host": "till-pc.shop.lan:8765"})
        assert ok.status == 200
        other = await s.client.get("/healthz", headers={"Host": "till-pc.evil.lan"})
        assert other.status == 421


async def test_on_the_lan_any_address_but_no_foreign_name(tmp_path: Path) -> None:
    async with web_stack(tmp_path, listen=LAN) as s:
        assert (await s.client.get("/healthz", headers={"Host": "192.168.1.20:8765"})
                ).status == 200
        assert (await s.client.get("/healthz", headers={"Host": "attacker.example"})
                ).status == 421


async def test_post_from_another_origin_is_refused(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        page = await s.client.get("/login")
        assert page.status == 200
        evil = await s.client.post("/login", data={"password": PASSWORD},
                                   headers={"Origin": "http://attacker.example"},
                                   allow_redirects=False)
        assert evil.status == 403
        evil = await s.client.post("/login", data={"password": PASSWORD},
                                   headers={"Referer": "http://attacker.example/x"},
                                   allow_redirects=False)
        assert evil.status == 403
        # The page's own origin (and a browser that hides it: "null") go on to the
        # login rules (CSRF token, password).
        assert await s.login() == 303


@pytest.mark.parametrize(("header", "host"), [
    ("localhost:8765", "localhost"), ("[::1]:80", "::1"), ("Example.COM.", "example.com"),
    ("a:b:c", None), ("x/y", None), ("", None), ("[zz]", None), ("u@h", None),
])
def test_host_of(header: str, host: str | None) -> None:
    assert host_of(header) == host


def test_host_rule_refusals() -> None:
    rule = HostRule("127.0.0.1")
    assert rule.check_host(None) == (400, "Missing Host header.")
    refused = rule.check_host("attacker.example")
    assert refused is not None and refused[0] == 421
    assert rule.check_host("192.168.1.5") is not None  # not listening there
    assert rule.check_origin("null", None) is None
    assert rule.check_origin("http://localhost:8765", None) is None
    assert rule.check_origin("file://", None) is not None

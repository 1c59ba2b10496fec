"""Every page and API route against a real agent: content, headers, bad input, escaping."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.journal import Kind, TxnState
from agent.logs import RecentLines
from agent.register.messages import Error, ErrorCode, Result, Status, Void
from agent.web.app import MAX_BODY_BYTES
from agent.web.security import SECURITY_HEADERS
from devtools.stack import WAIT_S, until_delivered
from devtools.webstack import sale, web_stack

PAGES = ["/", "/lanes", "/transactions", "/log", "/config", "/tools", "/login"]
API = ["/api/overview", "/api/lanes", "/api/transactions", "/api/log", "/api/config",
       "/api/session", "/api/tools/ports", "/healthz", "/metrics"]


def attach(recent: RecentLines) -> logging.Logger:
    root = logging.getLogger()
    root.addHandler(recent)
    # An earlier test in the same process may have left the root at ERROR (a console run
    # in-process sets it so): the lines these tests log must reach the page.
    root.setLevel(logging.INFO)
    return root


def assert_headers(headers: object, where: str) -> None:
    assert hasattr(headers, "get")
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, f"{where}: header {name}"
    csp = headers.get("Content-Security-Policy")
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp


async def test_every_page_and_api_route(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        row = await sale(s, "CARD00000001")
        for path in PAGES:
            response = await s.client.get(path)
            text = await response.text()
            assert response.status == 200, path
            assert response.content_type == "text/html"
            assert '<script src="/static/app.js" defer></script>' in text
            assert "<script>" not in text and " style=" not in text, f"{path}: inline code"
            assert_headers(response.headers, path)
        for path in API:
            response = await s.client.get(path)
            assert response.status == 200, path
            assert_headers(response.headers, path)

        overview = await (await s.client.get("/api/overview")).json()
        assert overview["today"] == {"success": 1}
        assert overview["paytm"]["state"] == "ok"
        assert overview["paytm"]["last"]["api"] in ("sale", "status")
        assert overview["config_file"].endswith("agent.toml")
        assert overview["attention"] == []
        page = await (await s.client.get("/")).text()
        assert "reachable" in page and "Today&#x27;s sales" in page and "till-1" in page

        lanes = (await (await s.client.get("/api/lanes")).json())["lanes"]
        assert [lane["name"] for lane in lanes] == ["till-1"]
        lane = lanes[0]
        assert lane["state"] == "up" and lane["tid"] == "12345678"
        assert lane["counters"]["frames_in"] >= 1 and lane["counters"]["frames_out"] >= 2
        assert lane["last"]["txn"] == "CARD00000001" and lane["last"]["state"] == "success"
        assert lane["link"].startswith("serial://")

        found = await (await s.client.get("/api/transactions?txn=CARD&status=success")).json()
        assert [t["txn"] for t in found["transactions"]] == ["CARD00000001"]
        assert found["transactions"][0]["amount_text"] == "₹1,234.50"
        none = await (await s.client.get("/api/transactions?lane=other")).json()
        assert none["transactions"] == []
        listing = await (await s.client.get("/transactions?status=success&lane=till-1")).text()
        assert f'href="/transactions/{row}"' in listing

        detail = await (await s.client.get(f"/api/transactions/{row}")).json()
        states = [e["state"] for e in detail["events"]]
        assert states[:3] == ["received", "sending", "accepted"] and "delivered" in states
        assert detail["payment"]["card"].count("X") >= 4  # masked by Paytm, shown as sent
        assert detail["receipt"] == detail["reply"]["receipt"]
        assert any("₹1,234.50" in line for line in detail["receipt"])
        assert {c["code"] for c in detail["codes"]} >= {"0000", "0009"}
        html_page = await (await s.client.get(f"/transactions/{row}")).text()
        receipt = "\n".join(detail["receipt"])
        assert f'<pre class="receipt">{receipt}</pre>' in html_page  # exactly, line by line

        config = await (await s.client.get("/api/config")).json()
        http = next(sec for sec in config["sections"] if sec["name"] == "http")
        assert http["items"] == {"listen": "127.0.0.1:8765", "password_hash": "•••",
                                 "hostnames": ""}
        paytm = next(sec for sec in config["sections"] if sec["name"] == "paytm")
        assert paytm["items"]["merchant_key_file"] == "/unused"  # the path may be shown

        health = await (await s.client.get("/healthz")).json()
        assert health["status"] == "ok" and health["degraded"] == []
        ports = await (await s.client.get("/api/tools/ports")).json()
        assert isinstance(ports["ports"], list) and "problem" in ports
        assert all(p["link"].startswith(("serial://", "usb://")) for p in ports["ports"])

        for name, kind in (("app.css", "text/css"), ("app.js", "text/javascript")):
            response = await s.client.get(f"/static/{name}")
            assert response.status == 200 and response.content_type == kind
            assert_headers(response.headers, name)


async def test_unknown_routes_are_404_pages(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        for path in ("/nope", "/transactions/999", "/transactions/abc", "/static/x.js",
                     "/transactions/99999999999999999999"):
            response = await s.client.get(path)
            assert response.status == 404, path
            assert response.content_type == "text/html"
            assert "Not found" in await response.text()
            assert_headers(response.headers, path)
        response = await s.client.get("/api/nope")
        assert response.status == 404 and (await response.json())["status"] == 404
        response = await s.client.get("/api/transactions/12345")
        assert response.status == 404 and "no transaction" in (await response.json())["error"]
        response = await s.client.put("/lanes")
        assert response.status == 405


@pytest.mark.parametrize(("path", "message"), [
    ("/transactions?status=bogus", "status: must be one of"),
    ("/transactions?date=2024-13-45", "date: no such date"),
    ("/transactions?date=yesterday", "date: must be a date"),
    ("/transactions?page=0", "page: must be between 1"),
    ("/transactions?page=abc", "page: must be a whole number"),
    ("/transactions?txn=%3Cscript%3E", "txn: letters, digits"),
    ("/transactions?txn=" + "A" * 41, "txn: at most 40"),
    ("/transactions?kind=cash", "kind: must be one of"),
    ("/transactions?lane=a%20b", "lane: not a lane name"),
    ("/transactions?status=success&status=failed", "given more than once"),
    ("/transactions?colour=red", "unknown parameter 'colour'"),
    ("/?x=1", "unknown parameter 'x'"),
    ("/log?level=loud", "level: must be one of"),
    ("/log?limit=0", "limit: must be between"),
    ("/api/transactions?page=-1", "page: must be a whole number"),
    ("/api/log?level=loud", "level: must be one of"),
])
async def test_bad_query_parameters_are_400_with_a_message(
        tmp_path: Path, path: str, message: str) -> None:
    async with web_stack(tmp_path) as s:
        response = await s.client.get(path)
        assert response.status == 400
        text = await response.text()
        if path.startswith("/api/"):
            assert message in (await response.json())["error"]
        else:
            assert message.replace("'", "&#x27;") in text
            assert "<script>" not in text
        assert_headers(response.headers, path)


async def test_oversized_bodies_are_refused(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        big = "x" * (MAX_BODY_BYTES + 1)
        for path in ("/login", "/tools/recheck", "/api/tools/recheck", "/logout"):
            response = await s.client.post(path, data={"password": big})
            assert response.status == 413, path
            assert_headers(response.headers, path)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused on reading
            for _ in range(40):
                yield b"password=" + b"y" * 1024

        response = await s.client.post("/login", data=chunks(), headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status == 413


async def test_markup_in_log_lines_and_transactions_shows_as_text(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        root = attach(s.recent)
        try:
            logging.getLogger("agent.test").warning(
                "lane till-1: register sent <script>alert('log')</script> & more")
        finally:
            root.removeHandler(s.recent)
        journal = s.agent.journal
        record = await journal.create(kind=Kind.SALE, txn="<script>alert(1)</script>",
                                      lane="till-1",
                                tid="12345678", amount="100",
                                request={"ref": "<img src=x onerror=alert(2)>"},
                                txn_time="2024-01-01 10:00:00",
                                states=(TxnState.RECEIVED, TxnState.SENDING))
        await journal.finish(record.row_id, TxnState.FAILED, code="<b>9</b>",
                       message="<i>declined</i>",
                       result={"receipt": ["<script>alert(3)</script>"]},
                       payment={"card": "<svg onload=alert(4)>"})
        pages = {
            "/log": "&lt;script&gt;alert(&#x27;log&#x27;)&lt;/script&gt; &amp; more",
            "/log?lane=till-1&level=warning": "&lt;script&gt;alert(&#x27;log&#x27;)",
            "/transactions": "&lt;script&gt;alert(1)&lt;/script&gt;",
            f"/transactions/{record.row_id}": "&lt;script&gt;alert(3)&lt;/script&gt;",
            "/lanes": "&lt;script&gt;alert(1)&lt;/script&gt;",
            "/": "&lt;script&gt;alert(1)&lt;/script&gt;",
            "/tools": "&lt;script&gt;alert(1)&lt;/script&gt;",
        }
        for path, escaped in pages.items():
            text = await (await s.client.get(path)).text()
            assert escaped in text, path
            for raw in ("<script>alert", "<img src=x", "<svg onload", "<i>declined", "<b>9"):
                assert raw not in text, f"{path}: {raw} unescaped"
        detail = await (await s.client.get(f"/transactions/{record.row_id}")).text()
        assert "&lt;svg onload=alert(4)&gt;" in detail and "&lt;i&gt;declined" in detail
        lines = (await (await s.client.get("/api/log?q=alert")).json())["lines"]
        assert [line["text"] for line in lines] == [
            "lane till-1: register sent <script>alert('log')</script> & more"]
        response = await s.client.get("/api/transactions")
        assert response.content_type == "application/json"
        assert json.loads(await response.text())["transactions"][0]["txn"].startswith("<script")


async def test_a_voided_sale_reads_voided_everywhere(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        row = await sale(s, "VOIDSHOW0001", "5000")
        await sale(s, "KEEPSHOW0001", "7000")
        void = await s.register.client.request(Void(id="r-v", txn="VOIDSHOW0001"), WAIT_S)
        assert isinstance(void.final, Result) and void.final.status == "success"
        void_row = s.agent.journal.find(Kind.VOID, "VOIDSHOW0001")
        assert void_row is not None
        await until_delivered(s.agent.journal, void_row.row_id)
        busy = await s.register.client.request(Void(id="r-v2", txn="NOSUCHSALE01"), WAIT_S)
        assert isinstance(busy.final, Error) and busy.final.code is ErrorCode.NOT_FOUND

        detail = await (await s.client.get(f"/transactions/{row}")).text()
        assert "voided" in detail and f'href="/transactions/{void_row.row_id}"' in detail
        child = await (await s.client.get(f"/transactions/{void_row.row_id}")).text()
        assert f'href="/transactions/{row}"' in child  # its original, as a link
        status = await s.register.client.request(Status(id="r-st", txn="VOIDSHOW0001"),
                                                 WAIT_S)
        assert isinstance(status.final, Result) and status.final.voided is True
        overview = await (await s.client.get("/")).text()
        assert "s-voided" in overview
        metrics = await (await s.client.get("/metrics")).text()
        assert 'edc_sales{lane="till-1",status="voided"} 1.0' in metrics
        assert 'edc_sales{lane="till-1",status="success"} 1.0' in metrics
        assert 'edc_refusals_total{code="NOT_FOUND"} 1.0' in metrics
        assert "edc_journal_commits_total" in metrics and "edc_journal_healthy 1.0" in metrics


async def test_healthz_is_503_while_the_journal_cannot_be_written(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        assert (await s.client.get("/healthz")).status == 200
        journal = s.agent.journal
        journal.health.ok = False  # as the writer sets it when a commit fails
        journal.health.error = "journal commit failed: database or disk is full"
        response = await s.client.get("/healthz")
        body = await response.json()
        assert response.status == 503 and body["status"] == "unhealthy"
        assert "disk is full" in body["journal_error"]
        overview = await (await s.client.get("/")).text()
        assert "journal cannot be written" in overview
        journal.health.ok = True

"""The Tools against a real agent: link test, Paytm test, re-check, resend; /healthz,
/metrics and the live event stream."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from aiohttp import ClientResponse

from agent.journal import Journal, Kind, TxnState
from agent.register.messages import Result, Sale
from agent.web.app import build_app
from agent.web.context import CTX
from devtools.stack import WAIT_S, until_delivered
from devtools.webstack import WebStack, undelivered_result, web_stack


async def until_state(journal: Journal, row_id: int, *states: TxnState) -> None:
    """Wait (on journal commits, not a clock) until row `row_id` is in one of `states`."""
    event = asyncio.Event()
    unsubscribe = journal.subscribe(lambda what, row: event.set() if row == row_id else None)
    try:
        async with asyncio.timeout(WAIT_S):
            while journal.get(row_id).state not in states:
                event.clear()
                await event.wait()
    finally:
        unsubscribe()


async def until_row(journal: Journal, kind: Kind, txn: str) -> int:
    event = asyncio.Event()
    unsubscribe = journal.subscribe(lambda what, row: event.set())
    try:
        async with asyncio.timeout(WAIT_S):
            while (record := journal.find(kind, txn)) is None:
                event.clear()
                await event.wait()
            return record.row_id
    finally:
        unsubscribe()


async def post(s: WebStack, path: str, csrf: str, **data: str) -> dict[str, object]:
    response = await s.client.post(path, data=data, headers={"X-CSRF-Token": csrf})
    assert response.status == 200, await response.text()
    result: dict[str, object] = await response.json()
    return result


async def test_link_and_paytm_tests(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        assert await s.login() == 303
        csrf = await s.csrf()
        link = await post(s, "/api/tools/link-test", csrf, lane="till-1")
        assert link["ok"] is True and re.search(r"ACK in [0-9.]+ ms", str(link["text"]))
        assert s.agent.lanes[0].link.counters.stray_controls == 0
        missing = await s.client.post("/api/tools/link-test", data={"lane": "till-9"},
                                      headers={"X-CSRF-Token": csrf})
        assert missing.status == 404

        paytm = await post(s, "/api/tools/paytm-test", csrf)
        assert paytm["ok"] is True, paytm
        assert "not found" in str(paytm["text"])
        pairs = paytm["steps"]
        assert isinstance(pairs, list)
        steps = {str(step): str(text) for step, text in pairs}
        assert steps["TLS handshake"].startswith("skipped: plain http")
        assert steps["EDC status call"].startswith("answered 0404")
        # The payment-link API is checked too: the same made-up id, "no record found".
        assert steps["Payment-link status call"].startswith("answered 334"), steps
        assert "payment-link API" in str(paytm["text"])
        assert s.emulator.count("status") >= 1
        probe = [r for r in s.emulator.requests if r.api == "status"][-1].json
        assert isinstance(probe, dict)
        assert str(probe["body"]["merchantTransactionId"]).startswith("CONNTEST")

        response = await s.client.post("/tools/paytm-test", data={"csrf": csrf},
                                       allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/tools"
        assert "Paytm connectivity: OK" in await (await s.client.get("/tools")).text()


async def test_recheck_a_pending_sale(tmp_path: Path) -> None:
    # Amount ending in 02: the customer never pays until the emulator is told.
    async with web_stack(tmp_path, polling={"interval_s": 30, "first_check_s": 30}) as s:
        assert await s.login() == 303
        csrf = await s.csrf()
        sale = asyncio.create_task(s.register.client.request(
            Sale(id="r-PEND0001", txn="PEND00000001", amount="10002"), WAIT_S))
        try:
            row = await until_row(s.agent.journal, Kind.SALE, "PEND00000001")
            await until_state(s.agent.journal, row, TxnState.ACCEPTED, TxnState.PENDING)
            tools = await (await s.client.get("/tools")).text()
            assert "PEND00000001" in tools and "Re-check now" in tools

            result = await post(s, "/api/tools/recheck", csrf, row=str(row))
            assert result["ok"] is True, result
            assert "answered" in str(result["text"])
            assert s.emulator.count("status", "PEND00000001") >= 1

            s.emulator.finish("PEND00000001", "success")
            result = await post(s, "/api/tools/recheck", csrf, row=str(row))
            assert "success" in str(result["title"]), result
            exchange = await sale
            assert isinstance(exchange.final, Result) and exchange.final.status == "success"
            again = await post(s, "/api/tools/recheck", csrf, row=str(row))
            assert again["ok"] is False and "nothing to ask" in str(again["title"])
            response = await s.client.post("/tools/recheck", data={"row": str(row),
                                                                    "csrf": csrf},
                                           allow_redirects=False)
            assert response.headers["Location"] == f"/transactions/{row}"
            bad = await s.client.post("/api/tools/recheck", data={"row": "x"},
                                      headers={"X-CSRF-Token": csrf})
            assert bad.status == 400
            gone = await s.client.post("/api/tools/recheck", data={"row": "9999"},
                                       headers={"X-CSRF-Token": csrf})
            assert gone.status == 404
        finally:
            if not sale.done():
                sale.cancel()
            await asyncio.gather(sale, return_exceptions=True)


async def test_resend_an_undelivered_result(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        journal = s.agent.journal
        row, outbox = await undelivered_result(journal, "LOST00000001")
        health = await (await s.client.get("/healthz")).json()
        assert health["status"] == "degraded"
        assert any("not acknowledged by the register" in d for d in health["degraded"])
        overview = await (await s.client.get("/")).text()
        assert 'class="attention"' in overview and "1 result(s) not acknowledged" in overview
        tools = await (await s.client.get("/tools")).text()
        assert "LOST00000001" in tools
        metrics = await (await s.client.get("/metrics")).text()
        assert 'edc_undelivered_results{lane="till-1"} 1.0' in metrics

        assert await s.login() == 303
        csrf = await s.csrf()
        result = await post(s, "/api/tools/resend", csrf, outbox=str(outbox))
        assert result["ok"] is True and "delivered" in str(result["title"]), result
        await until_delivered(journal, row)
        assert any(r.txn == "LOST00000001" for r in s.register.results())
        again = await post(s, "/api/tools/resend", csrf, outbox=str(outbox))
        assert "already delivered" in str(again["title"])
        health = await (await s.client.get("/healthz")).json()
        assert health == {"status": "ok", "version": health["version"],
                          "uptime_s": health["uptime_s"], "degraded": []}


async def read_event(response: ClientResponse) -> tuple[str, dict[str, object]]:
    """The next SSE event: its name and data."""
    event = ""
    async with asyncio.timeout(WAIT_S):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data: dict[str, object] = json.loads(line[6:])
                return event, data


async def test_live_events_and_metrics(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        events = await s.client.get("/api/events")
        assert events.status == 200
        assert events.headers["Content-Type"].startswith("text/event-stream")
        assert events.headers["Cache-Control"] == "no-store"
        assert (await events.content.readline()).startswith(b"retry:")
        exchange = await s.register.client.request(
            Sale(id="r-LIVE0001", txn="LIVE00000001", amount="20000"), WAIT_S)
        assert isinstance(exchange.final, Result)
        seen: list[str] = []
        calls: list[str] = []
        while "success" not in seen:
            name, data = await read_event(events)
            if name == "txn":
                assert data["txn"] == "LIVE00000001"
                seen.append(str(data["state"]))
            elif name == "call":
                calls.append(str(data["api"]))
        assert seen[0] in ("sending", "received") and "sale" in calls
        events.close()
        record = s.agent.journal.find(Kind.SALE, "LIVE00000001")
        assert record is not None
        await until_delivered(s.agent.journal, record.row_id)  # the register's ACK is in

        metrics = await s.client.get("/metrics")
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await metrics.text()
        for expected in (
            'edc_sales{lane="till-1",status="success"} 1.0',
            'edc_paytm_call_duration_seconds_count{api="sale",outcome="answered"} 1.0',
            'edc_in_flight{lane="till-1"} 0.0',
            "edc_unknown_transactions 0.0",
            'edc_undelivered_results{lane="till-1"} 0.0',
            'edc_transport_up{lane="till-1"} 1.0',
            'edc_paytm_state{state="ok"} 1.0',
            'edc_link_down{lane="till-1"} 0.0',
        ):
            assert expected in text, expected
        frames = re.search(r'edc_link_frames_in_total\{lane="till-1"\} ([0-9.]+)', text)
        assert frames and float(frames.group(1)) >= 1
        writes = re.search(r"edc_journal_write_duration_seconds_count ([0-9.]+)", text)
        assert writes and float(writes.group(1)) >= 4
        assert re.search(r"edc_paytm_call_duration_seconds_count\{api=\"status\"", text)

        # A second app (another agent, or a restart) has its own registry: no clash.
        other = build_app(s.agent)
        assert b"edc_uptime_seconds" in other[CTX].metrics.render()

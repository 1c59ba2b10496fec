"""The Day page against a real agent: a day's totals, the last sweep, Reconcile (the Tools
button and /api/tools/reconcile, behind the login and CSRF token like every action), the
JSON of /api/day and the streamed export download."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from agent.day.totals import today
from agent.journal import TxnState
from devtools.day import LOST, POLLING, SALES, SETTINGS, UNKNOWN, run_day
from devtools.webstack import web_stack


async def test_day_page_reconcile_and_download(tmp_path: Path) -> None:
    async with web_stack(tmp_path, settings=SETTINGS, polling=POLLING) as s:
        await run_day(s.register, s.emulator)
        day = today(s.agent.journal._clock()).isoformat()

        page = await s.client.get(f"/day?day={day}")
        assert page.status == 200
        html = await page.text()
        assert "All lanes" in html and "No reconciliation with Paytm for this day yet" in html
        assert 'href="/day"' in html  # in the navigation

        # Reconcile is an action: no session, no sweep.
        refused = await s.client.post("/api/tools/reconcile", data={"day": day})
        assert refused.status == 401
        assert s.agent.journal.last_sweep() is None

        assert await s.login() == 303
        csrf = await s.csrf()
        forged = await s.client.post("/api/tools/reconcile", data={"day": day},
                                     headers={"X-CSRF-Token": "forged"})
        assert forged.status == 403
        answer = await s.client.post("/api/tools/reconcile", data={"day": day},
                                     headers={"X-CSRF-Token": csrf})
        assert answer.status == 200
        result = await answer.json()
        assert result["ok"] is False and "1 disagreement" in result["text"]
        assert s.agent.journal.find_any(UNKNOWN)[0].state is TxnState.SUCCESS

        data = await (await s.client.get(f"/api/day?day={day}")).json()
        assert data["total"]["sales"]["count"] == len(SALES)
        assert data["reconciliation"]["swept"] is True
        assert [f["txn"] for f in data["reconciliation"]["findings"]
                if f["type"] == "disagreement"] == [LOST]
        assert data["lanes"][0]["lane"] == "till-1"

        metrics = await (await s.client.get("/metrics")).text()
        assert "edc_reconciliation_disagreements 1.0" in metrics
        assert "edc_reconciliation_last_sweep_timestamp_seconds" in metrics

        html = await (await s.client.get(f"/day?day={day}")).text()
        assert LOST in html and "refund the customer" in html

        # The Tools button: post/redirect/get back to the day.
        form = await s.client.post("/tools/reconcile", data={"day": day, "csrf": csrf},
                                   allow_redirects=False)
        assert form.status == 303 and form.headers["Location"] == f"/day?day={day}"
        tools = await (await s.client.get("/tools")).text()
        assert "Reconcile today now" in tools

        download = await s.client.get(f"/day/export?from={day}&to={day}")
        assert download.status == 200
        assert "attachment" in download.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(await download.text())))
        txns = {(r["kind"], r["txn"]) for r in rows}
        assert ("sale", UNKNOWN) in txns and ("refund", "DAYREFUND001") in txns
        refund = next(r for r in rows if r["kind"] == "refund")
        assert refund["parent"] == "DAYRFND00001" and refund["state"] == "success"
        lines = await (await s.client.get(f"/day/export?from={day}&format=jsonl")).text()
        assert len(lines.splitlines()) == len(rows)
        assert json.loads(lines.splitlines()[0])["kind"] == "sale"

        bad = await s.client.get("/day?day=2026-13-40")
        assert bad.status == 400
        backwards = await s.client.get("/day/export?from=2026-03-02&to=2026-03-01")
        assert backwards.status == 400

"""Day: a day's totals per lane and in all, the last reconciliation with Paytm, the
Reconcile button, and the day's transactions as a CSV/JSON-lines download.

Every query runs on the page's own read-only connection, off the event loop
(`ctx.page_reader()`); the download streams, a batch of rows at a time.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from datetime import date, timedelta

from aiohttp import web

from agent.day.export import FORMATS, export_chunks, export_range
from agent.day.totals import (
    Breakdown,
    DayReport,
    Figures,
    day_report,
    reconciliation_json,
    today,
)
from agent.web.context import WebContext, ctx_of
from agent.web.facts import amount_text, attention_now
from agent.web.html import Html, action_form, card, join, page, table, tag, when
from agent.web.params import BadInput, Params

DAY_PARAMS = ("day",)
EXPORT_PARAMS = ("from", "to", "format")
EXPORT_BLOCK_CHARS = 64 * 1024  # rows are sent in blocks of about this size
EXPORT_QUEUE_BLOCKS = 8  # blocks between the reading thread and the response: bounded
EXPORT_PUT_WAIT_S = 0.5  # the reading thread checks this often whether the browser left


async def read_report(ctx: WebContext, day: date) -> DayReport:
    tids = {lane.name: lane.tid for lane in ctx.agent.config.lanes}
    wall = ctx.wall()
    return await ctx.page_reader().run(
        lambda j: day_report(j, day, tids=tids, generated_at=wall))


def _figure_rows(totals: Breakdown) -> list[list[object]]:
    rows: list[list[object]] = []
    groups: list[tuple[str, Figures]] = [("All", totals.figures), *totals.by_method]
    for label, f in groups:
        if label != "All" and f == Figures():
            continue
        rows.append([label,
                     *(Html(f"{t.count} · ") + tag("span", amount_text(str(t.amount)),
                                                   class_="num")
                       for t in (f.sales, f.voids, f.refunds)),
                     tag("span", amount_text(str(f.net)), class_="num"),
                     *(Html(f"{t.count} · ") + tag("span", amount_text(str(t.amount)),
                                                   class_="num")
                       for t in (f.failed, f.unknown))])
    return rows


_HEADERS = ["Method", "Sales", "Voids", "Refunds", "Net", "Failed", "Unknown"]


def _reconciliation(ctx: WebContext, request: web.Request, report: DayReport) -> Html:
    data = reconciliation_json(report.sweep)
    session = ctx.session(request)
    button = action_form(session, "/tools/reconcile", "Reconcile with Paytm now",
                         [("day", report.day.isoformat())], enabled=ctx.actions_enabled)
    sweep = report.sweep
    if sweep is None:
        body = tag("p", "No reconciliation with Paytm for this day yet"
                   + (f" (the agent runs one at {ctx.agent.config.day.close_at} IST)."
                      if ctx.agent.config.day.close_at else "."), class_="muted")
    else:
        body = tag("p", Html(f"Last sweep ({sweep.trigger}) finished ")
                   + when(sweep.finished_at)
                   + Html(f": asked Paytm about {sweep.asked}, {sweep.changed} changed, "
                          f"{sweep.disagreements} disagreement(s)."))
        findings = data["findings"]
        rows = [[str(f.get("type", "")), tag("a", str(f.get("txn", "")),
                                             href=f"/transactions/{f.get('row', '')}"),
                 str(f.get("kind", "")), str(f.get("lane", "")), str(f.get("journal", "")),
                 str(f.get("paytm", "")), str(f.get("problem", "")), str(f.get("action", ""))]
                for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []
        body += table(["Finding", "Transaction", "Kind", "Lane", "Journal", "Paytm", "Problem",
                       "What to do"], rows, empty="Journal and Paytm agree.")
    return card("Reconciliation with Paytm", body + button, id_="reconcile")


async def day_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    params = Params(request.query, DAY_PARAMS)
    day = params.calendar_day("day") or today(ctx.wall())
    report = await read_report(ctx, day)
    iso = day.isoformat()
    picker = tag("form", tag("input", type="date", name="day", value=iso, aria_label="Day")
                 + tag("button", "Show", type="submit"), method="get", action="/day",
                 class_="inline")
    nav = join([tag("a", "← previous day", href=f"/day?day={day - timedelta(days=1)}"),
                tag("a", "next day →", href=f"/day?day={day + timedelta(days=1)}")], " · ")
    downloads = join([tag("a", "Download CSV", href=f"/day/export?from={iso}&to={iso}"),
                      tag("a", "Download JSON lines",
                          href=f"/day/export?from={iso}&to={iso}&format=jsonl"),
                      tag("a", "JSON", href=f"/api/day?day={iso}")], " · ")
    lanes = join(card(f"Lane {lane.lane}" + (f" · terminal {lane.tid}" if lane.tid else ""),
                      table(_HEADERS, _figure_rows(lane.totals)))
                 for lane in report.lanes)
    total = card("All lanes", table(_HEADERS, _figure_rows(report.total)), id_="total")
    body = tag("p", picker + Html(" ") + nav) + tag("p", downloads, class_="muted") \
        + total + _reconciliation(ctx, request, report) + lanes \
        + tag("p", "Sales count every successful sale and paid link, also those voided or "
                   "refunded later; net = sales − voids − refunds. A transaction belongs to "
                   "the IST day it was made.", class_="muted")
    return page(ctx, request, title=f"Day {iso}", active="day", body=body,
                attention=attention_now(ctx.agent))


async def api_day(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    params = Params(request.query, DAY_PARAMS)
    day = params.calendar_day("day") or today(ctx.wall())
    return web.json_response((await read_report(ctx, day)).to_json())


async def day_export(request: web.Request) -> web.StreamResponse:
    """The export, streamed: a thread reads the journal into a bounded queue, the response
    writes from it. Memory holds at most EXPORT_QUEUE_CHUNKS rows whatever the range."""
    ctx = ctx_of(request)
    params = Params(request.query, EXPORT_PARAMS)
    start, end = params.calendar_day("from"), params.calendar_day("to")
    fmt = params.choice("format", FORMATS, default="csv")
    if start is not None and end is not None and end < start:
        raise BadInput("to: before from")
    since, until = export_range(start, end)
    name = f"edc-agent-{start or 'start'}-{end or 'end'}.{fmt}"
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if fmt == "csv"
        else "application/x-ndjson; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}"'})
    await response.prepare(request)
    blocks: queue.Queue[str | None] = queue.Queue(maxsize=EXPORT_QUEUE_BLOCKS)
    stop = threading.Event()
    open_reader = ctx.agent.journal.reader

    def put(block: str | None) -> bool:
        while not stop.is_set():
            try:
                blocks.put(block, timeout=EXPORT_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        reader = open_reader()
        try:
            pending: list[str] = []
            size = 0
            for chunk in export_chunks(reader, since, until, fmt):
                pending.append(chunk)
                size += len(chunk)
                if size >= EXPORT_BLOCK_CHARS:
                    if not put("".join(pending)):
                        return
                    pending, size = [], 0
            if pending:
                put("".join(pending))
        finally:
            reader.close()
            put(None)

    worker = asyncio.get_running_loop().run_in_executor(None, produce)
    try:
        while (block := await asyncio.to_thread(blocks.get)) is not None:
            await response.write(block.encode("utf-8"))
        await response.write_eof()
    finally:
        stop.set()  # the browser went away, or done: the thread stops putting
        await worker
    return response

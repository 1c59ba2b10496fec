"""JSON under /api/ for everything the pages show, plus /healthz and /metrics.

Reads return the same dataclasses the pages render (agent.web.facts). Actions (POST)
take form fields and the CSRF token (field `csrf` or header X-CSRF-Token) and return a
`ToolResult` as JSON; the guard middleware has checked the password, session and token.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from agent import __version__
from agent.logs import SECRETS
from agent.web.actions import (
    ToolResult,
    link_test,
    paytm_test,
    recheck,
    reconcile,
    resend,
    set_log_level,
    support_bundle,
)
from agent.web.context import ctx_of
from agent.web.facts import (
    as_json,
    attention_now,
    config_facts,
    lane_facts,
    overview,
    txn_detail,
)
from agent.web.metrics import CONTENT_TYPE
from agent.web.pages.log import LOG_PARAMS, level_from_form, parse_log_query, select_lines
from agent.web.pages.transactions import SEARCH_PARAMS, parse_search, record_for, run_search
from agent.web.params import Params
from agent.web.ports import list_ports
from agent.web.security import CSRF_FIELD


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def api_overview(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    return _json(as_json(overview(ctx.agent, ctx.wall())))


async def api_lanes(request: web.Request) -> web.Response:
    Params(request.query, ())
    return _json({"lanes": as_json(lane_facts(ctx_of(request).agent))})


async def api_transactions(request: web.Request) -> web.Response:
    search = parse_search(Params(request.query, SEARCH_PARAMS))
    rows, more = await ctx_of(request).page_reader().run(lambda j: run_search(j, search))
    return _json({"page": search.page, "more": more, "transactions": as_json(rows)})


async def api_transaction(request: web.Request) -> web.Response:
    Params(request.query, ())
    record = record_for(request)
    return _json(as_json(txn_detail(ctx_of(request).agent, record)))


async def api_log(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    query = parse_log_query(Params(request.query, LOG_PARAMS))
    return _json({"lines": as_json(select_lines(ctx, query))})


async def api_config(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    sections = [{"name": s.name, "items": {k: SECRETS.redact(v) for k, v in s.items}}
                for s in config_facts(ctx.agent.config)]
    return _json({"source": ctx.agent.config.source, "sections": sections})


async def api_session(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    return _json({"logged_in": ctx.session(request) is not None,
                  "actions_enabled": ctx.actions_enabled,
                  "login_required": ctx.login_required})


async def api_ports(request: web.Request) -> web.Response:
    Params(request.query, ())
    found = await asyncio.to_thread(list_ports)
    return _json({"ports": as_json(found.ports), "problem": found.problem})


def _result(result: ToolResult) -> web.Response:
    return _json(dataclasses.asdict(result))


async def _form(request: web.Request, *names: str) -> Params:
    return Params(await request.post(), (CSRF_FIELD, *names))


async def api_link_test(request: web.Request) -> web.Response:
    params = await _form(request, "lane")
    lane = params.text("lane", pattern=r"[A-Za-z0-9_.-]{1,32}", max_len=32)
    return _result(await link_test(ctx_of(request).agent, lane))


async def api_paytm_test(request: web.Request) -> web.Response:
    await _form(request)
    return _result(await paytm_test(ctx_of(request).agent))


async def api_recheck(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    row = (await _form(request, "row")).integer("row", low=1, high=2**62)
    return _result(await recheck(ctx.agent, ctx.calls, row))


async def api_log_level(request: web.Request) -> web.Response:
    return _result(set_log_level(await level_from_form(request)))


async def api_resend(request: web.Request) -> web.Response:
    outbox_id = (await _form(request, "outbox")).integer("outbox", low=1, high=2**62)
    return _result(await resend(ctx_of(request).agent, outbox_id))


async def api_reconcile(request: web.Request) -> web.Response:
    params = await _form(request, "day")
    return _result(await reconcile(ctx_of(request).agent, params.calendar_day("day")))


async def api_events(request: web.Request) -> web.StreamResponse:
    Params(request.query, ())
    return await ctx_of(request).hub.stream(request)


async def healthz(request: web.Request) -> web.Response:
    """200 while the agent runs; the body lists what is degraded (empty list: all well)."""
    ctx = ctx_of(request)
    Params(request.query, ())
    agent = ctx.agent
    if agent.engine is None:
        return _json({"status": "starting", "version": __version__, "degraded": []}, 503)
    degraded = [item.text for item in attention_now(agent)]
    journal = agent.journal.health
    body: dict[str, object] = {
        "status": "degraded" if degraded else "ok", "version": __version__,
        "uptime_s": round(max(0.0, ctx.wall() - agent.started_at), 1), "degraded": degraded}
    if not journal.ok:
        # No step can be journaled, so none may be acted on: the agent is not healthy.
        body.update(status="unhealthy", journal_error=journal.error)
        return _json(body, 503)
    return _json(body)


async def metrics(request: web.Request) -> web.Response:
    Params(request.query, ())
    # On the loop, not in a thread: it reads the journal's SQLite connection.
    body = ctx_of(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def api_bundle(request: web.Request) -> web.Response:
    """POST: the support bundle with the live capture (application/gzip)."""
    from agent.web.pages.tools import bundle_response

    await _form(request)
    ctx = ctx_of(request)
    return bundle_response(*await support_bundle(ctx.agent, ctx.recent))

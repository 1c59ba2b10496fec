"""Tools: link test, Paytm connectivity test, ports, re-check, resend, support bundle.

The forms post here; the guard middleware has already checked the password is set, the
session and its CSRF token. The result is kept in the session and shown after the
redirect (post/redirect/get: a reload does not repeat the action).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from agent.day.totals import today
from agent.journal import TxnState
from agent.web.actions import (
    ToolResult,
    link_test,
    paytm_test,
    recheck,
    reconcile,
    resend,
    support_bundle,
)
from agent.web.context import WebContext, ctx_of
from agent.web.facts import attention_now, txn_row
from agent.web.html import Html, action_form, card, join, page, pill, table, tag, when
from agent.web.params import BadInput, Params
from agent.web.ports import PortList, list_ports
from agent.web.security import CSRF_FIELD, actions_disabled_message

RECHECK_STATES = (TxnState.SENDING, TxnState.ACCEPTED, TxnState.PENDING, TxnState.UNKNOWN)
LIST_MAX = 50


async def tools_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    session = ctx.session(request)
    enabled = ctx.actions_enabled
    notice = Html("")
    if not enabled:
        notice = tag("p", actions_disabled_message(ctx.agent.config.source), class_="notice")
    elif session is None:
        notice = tag("p", Html("Viewing is open; to use the tools, ")
                     + tag("a", "log in", href="/login?next=/tools") + Html("."),
                     class_="notice")

    lanes = [lane.name for lane in ctx.agent.lanes]
    if lanes:
        lane_select = tag("select", join(tag("option", n, value=n) for n in lanes),
                          name="lane", aria_label="Lane")
        link_form = tag("form", (tag("input", type="hidden", name=CSRF_FIELD,
                                     value=session.csrf) if session else Html(""))
                        + lane_select + tag("input", type="hidden", name="back", value="tools")
                        + tag("button", "Run link test", type="submit",
                              disabled=not enabled or None),
                        method="post", action="/tools/link-test", class_="inline")
    else:
        link_form = tag("p", "No lanes are configured.", class_="muted")
    link_card = card("Link test", tag("p", "Sends ENQ to the register and times its ACK: "
                                      "proves the cable, the port settings and the register "
                                      "program.", class_="muted") + link_form, id_="link")
    paytm_card = card("Paytm connectivity", tag(
        "p", "A TLS handshake with Paytm's server, then one Status Enquiry for a made-up id: "
        "'not found' proves the network, the MID and the checksum.", class_="muted")
        + action_form(session, "/tools/paytm-test", "Test Paytm connectivity",
                      enabled=enabled), id_="paytm")

    found = await asyncio.to_thread(list_ports)
    ports_card = card("Serial ports and USB devices", ports_table(found)
                      + tag("p", "The same list as `edc-agent ports`. USB-serial adapters "
                            "are best named by /dev/serial/by-id/…, which survives replugging.",
                            class_="muted"), id_="ports")

    journal = ctx.agent.journal
    pending = []
    for state in RECHECK_STATES:
        pending += journal.search(state=state.value, limit=LIST_MAX)
    pending.sort(key=lambda r: r.row_id, reverse=True)
    recheck_rows = [[when(r.created_at), tag("a", r.txn, href=f"/transactions/{r.row_id}"),
                     r.lane, tag("span", txn_row(r).amount_text, class_="num"),
                     pill(r.state.value),
                     action_form(session, "/tools/recheck", "Re-check now",
                                 [("row", str(r.row_id))], enabled=enabled)]
                    for r in pending[:LIST_MAX]]
    recheck_card = card("Re-check a transaction", tag(
        "p", "Asks Paytm now about a transaction that is in progress, pending or unknown, "
        "instead of waiting for the next scheduled check.", class_="muted")
        + table(["Time (IST)", "Transaction", "Lane", "Amount", "Status", ""], recheck_rows,
                empty="Nothing is waiting for Paytm."), id_="recheck", live=True)

    resend_rows = []
    for outbox in journal.undelivered()[:LIST_MAX]:
        record = journal.get(outbox.txn_row)
        resend_rows.append([when(outbox.created_at),
                            tag("a", record.txn, href=f"/transactions/{record.row_id}"),
                            outbox.lane, pill(record.state.value),
                            action_form(session, "/tools/resend", "Resend",
                                        [("outbox", str(outbox.row_id))], enabled=enabled)])
    resend_card = card("Resend a result", tag(
        "p", "Results the register has not acknowledged. The lane resends them by itself "
        "when the register talks; this sends one now.", class_="muted")
        + table(["Created", "Transaction", "Lane", "Status", ""], resend_rows,
                empty="Every result was acknowledged by its register."),
        id_="resend", live=True)

    close_at = ctx.agent.config.day.close_at
    reconcile_card = card("Reconcile the day with Paytm", tag(
        "p", "Asks Paytm once more about every transaction of today that is not final or "
        "unknown, and every success without Paytm's transaction id; lists where the journal "
        "and Paytm disagree. "
        + (f"The agent also does this every day at {close_at} IST." if close_at else
           "No daily sweep is configured ([day] close_at)."), class_="muted")
        + action_form(session, "/tools/reconcile", "Reconcile today now", enabled=enabled)
        + tag("p", tag("a", "Today's totals and the last sweep", href="/day")),
        id_="reconcile")
    bundle_card = card("Support bundle", tag(
        "p", "One .tar.gz to send to support: the config (secrets as •••), versions, ports "
        "and their permissions, udev rules, the service's state, the last 2,000 log lines, "
        "journal statistics, the last 50 transactions' timelines and the capture of the "
        "last 500 frames of each lane and the last 200 Paytm calls (signatures as •••, "
        "phone numbers to their last four digits). `edc-agent bundle` makes one without "
        "the capture.", class_="muted")
        + action_form(session, "/tools/bundle", "Download support bundle", enabled=enabled),
        id_="bundle")
    body = notice + tag("div", link_card + paytm_card, class_="grid") + reconcile_card \
        + recheck_card + resend_card + ports_card + bundle_card
    return page(ctx, request, title="Tools", active="tools", body=body,
                attention=attention_now(ctx.agent))


def ports_table(found: PortList) -> Html:
    rows = []
    for port in found.ports:
        access: object = "cannot tell" if port.can_open is None else (
            tag("span", "yes", class_="good") if port.can_open else
            tag("span", "no", class_="bad") + Html(" ") + tag("span", port.advice,
                                                             class_="muted"))
        rows.append([port.kind, tag("code", port.device), port.description, port.ids,
                     port.owner, access, tag("code", port.link)])
    body = table(["Kind", "Device", "Description", "Ids", "Owner and mode", "Agent may open",
                  "Link URL for the config"], rows,
                 empty="No serial ports or USB devices found.")
    if found.problem:
        body += tag("p", found.problem, class_="muted")
    return body


# -- actions (POST, form) ----------------------------------------------------------------


def _finish(ctx: WebContext, request: web.Request, result: ToolResult,
            back: str) -> web.HTTPSeeOther:
    session = ctx.session(request)
    if session is not None:
        text = f"{result.title}. {result.text}".strip()
        if result.steps:
            text += " — " + "; ".join(f"{step}: {what}" for step, what in result.steps)
        session.flash.append(("ok" if result.ok else "fail", text))
    return web.HTTPSeeOther(back)


async def _form(request: web.Request, *names: str) -> Params:
    return Params(await request.post(), (CSRF_FIELD, *names))


async def link_test_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    params = await _form(request, "lane", "back")
    lane = params.text("lane", pattern=r"[A-Za-z0-9_.-]{1,32}", max_len=32)
    if not lane:
        raise BadInput("lane: missing")
    back = {"lanes": "/lanes", "tools": "/tools"}[params.choice("back", ["lanes", "tools"],
                                                                default="tools")]
    raise _finish(ctx, request, await link_test(ctx.agent, lane), back)


async def paytm_test_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    await _form(request)
    raise _finish(ctx, request, await paytm_test(ctx.agent), "/tools")


async def recheck_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    row = (await _form(request, "row")).integer("row", low=1, high=2**62)
    raise _finish(ctx, request, await recheck(ctx.agent, ctx.calls, row),
            f"/transactions/{row}")


async def resend_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    outbox_id = (await _form(request, "outbox")).integer("outbox", low=1, high=2**62)
    result = await resend(ctx.agent, outbox_id)
    row = ctx.agent.journal.outbox_row(outbox_id).txn_row
    raise _finish(ctx, request, result, f"/transactions/{row}")


async def reconcile_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    params = await _form(request, "day")
    day = params.calendar_day("day")
    result = await reconcile(ctx.agent, day)
    back = f"/day?day={(day or today(ctx.wall())).isoformat()}"
    raise _finish(ctx, request, result, back)


async def bundle_action(request: web.Request) -> web.Response:
    """The bundle as a download (no redirect: the browser saves the file)."""
    ctx = ctx_of(request)
    await _form(request)
    return bundle_response(*await support_bundle(ctx.agent, ctx.recent))


def bundle_response(body: bytes, name: str) -> web.Response:
    return web.Response(body=body, content_type="application/gzip", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})

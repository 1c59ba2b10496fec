"""Overview: is the agent well, can it reach Paytm, what happened today, what needs a person."""

from __future__ import annotations

from aiohttp import web

from agent.journal import TxnState
from agent.web.context import ctx_of
from agent.web.facts import LaneFacts, Overview, PaytmFacts, overview
from agent.web.html import (
    Html,
    age,
    card,
    css_class,
    h,
    join,
    page,
    pairs,
    pill,
    size,
    table,
    tag,
    when,
)
from agent.web.params import Params

PAYTM_WORDS = {"ok": "reachable", "down": "unreachable", "unknown": "not known yet"}
# Finished first, then what needs a person, then what is still on its way.
# A sale voided or refunded in full later counts as that, not as a success.
SALE_STATES: list[str] = [TxnState.SUCCESS, "voided", "refunded", TxnState.FAILED,
                          TxnState.UNKNOWN, TxnState.PENDING, TxnState.ACCEPTED,
                          TxnState.SENDING, TxnState.RECEIVED]


async def overview_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    facts = overview(ctx.agent, ctx.wall())
    return page(ctx, request, title="Overview", active="overview", body=render(facts),
                attention=facts.attention)


def render(facts: Overview) -> Html:
    agent_card = card("Agent", pairs([
        ("Version", facts.version),
        ("Host", facts.host),
        ("Running for", Html(f"{h(age(facts.uptime_s))} (since {when(facts.started_at)})")),
        ("Config file", tag("code", facts.config_file)  # absolute (load_config)
         if facts.config_file else "(none: built-in settings)"),
        ("Journal", Html(f"{tag('code', facts.journal_path)} · {h(size(facts.journal_bytes))}"
                         f" · {facts.journal_rows} transaction(s)")),
        ("In flight", f"{facts.in_flight} holding a terminal, {facts.polling} being checked"),
    ]))
    today = facts.today
    counts = join(
        tag("li", pill(state) + tag("span", str(today.get(state, 0)), class_="count"))
        for state in SALE_STATES if today.get(state, 0) or state in ("success", "failed"))
    sales_card = card("Today's sales", tag("ul", counts, class_="counts")
                      + tag("p", Html(f"{sum(today.values())} in all since "
                                      f"{when(facts.today_since)} (IST)"), class_="muted")
                      + tag("p", tag("a", "Today's totals in rupees, by method, and the "
                                          "reconciliation with Paytm", href="/day")))
    body = tag("div", agent_card + paytm_card(facts.paytm, facts) + sales_card,
               class_="grid")
    body += card("Lanes", lanes_table(facts.lanes))
    return tag("div", body, id="overview-live", data_live=True)


def paytm_card(paytm: PaytmFacts, facts: Overview) -> Html:
    items: list[tuple[str, object]] = [
        ("Reachability", pill_word(paytm.state)),
        ("Server", tag("code", paytm.base_url)),
    ]
    last = paytm.last
    if last is None:
        items.append(("Last call", "none since the agent started"))
    else:
        outcome = {"answered": "answered", "not_sent": "not sent",
                   "unknown": "no clear answer"}.get(last.outcome, last.outcome)
        code = f" {last.code}" if last.code else ""
        items.append(("Last call", Html(
            f"{h(last.api)} {tag('code', last.txn)}: {h(outcome)}{h(code)} in "
            f"{last.latency_ms:.0f} ms, {h(age(facts.started_at + facts.uptime_s - last.at))}"
            " ago")))
        if last.reason:
            items.append(("Reason", last.reason))
    if paytm.clock_skew_s is None:
        items.append(("Clock", "Paytm's time not seen yet"))
    else:
        text = f"Paytm − this PC: {signed_seconds(paytm.clock_skew_s)}"
        items.append(("Clock", tag("span", text + (" — fix this PC's time" if
                                                     paytm.skew_warning else " (fine)"),
                                   class_="bad" if paytm.skew_warning else None)))
    return card("Paytm", pairs(items))


def signed_seconds(value: float) -> str:
    """`+3 s`, `-2 s`, and `0 s` for anything that rounds to zero (never "-0 s")."""
    whole = round(value)
    return "0 s" if whole == 0 else f"{whole:+d} s"


def pill_word(state: str) -> Html:
    # "unknown" here is the normal state after a start (no call yet), not a problem:
    # a neutral pill, not the red one an unknown *transaction* gets.
    style = "idle" if state == "unknown" else css_class(state)
    return tag("span", PAYTM_WORDS.get(state, state), class_=f"pill s-{style}")


def lanes_table(lanes: list[LaneFacts]) -> Html:
    rows = []
    for lane in lanes:
        flight: object = "—"
        if lane.in_flight is not None:
            target = f"/transactions/{lane.in_flight.row}" if lane.in_flight.row else None
            flight = tag("a", lane.in_flight.txn, href=target) + Html(" ") + \
                pill(lane.in_flight.state)
        state = pill(lane.state) + (tag("span", " register silent", class_="bad")
                                    if lane.link_down else Html(""))
        last: object = "—"
        if lane.last is not None:
            last = tag("a", lane.last.txn, href=f"/transactions/{lane.last.row}") + \
                Html(" ") + pill(lane.last.state)
        rows.append([tag("a", lane.name, href="/lanes#lane-" + lane.name), state,
                     lane.tid, flight, last, str(lane.undelivered)])
    return table(["Lane", "Link", "Terminal", "In flight", "Last transaction",
                  "Results waiting"], rows, empty="No lanes are configured.")

"""Lanes: per lane the pipe, the link layer's counters, the terminal and what it is doing."""

from __future__ import annotations

from aiohttp import web

from agent.web.context import WebContext, ctx_of
from agent.web.facts import LaneFacts, amount_text, attention, lane_facts, paytm_facts
from agent.web.html import Html, action_form, age, h, join, page, pairs, pill, tag, when
from agent.web.params import Params


async def lanes_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    lanes = lane_facts(ctx.agent)
    body = render(ctx, request, lanes)
    return page(ctx, request, title="Lanes", active="lanes", body=body,
                attention=attention(ctx.agent, lanes, paytm_facts(ctx.agent)))


def render(ctx: WebContext, request: web.Request, lanes: list[LaneFacts]) -> Html:
    if not lanes:
        return tag("p", "No lanes are configured: add [[lanes]] to the config file.",
                   class_="muted")
    session = ctx.session(request)
    now = ctx.wall()
    cards = []
    for lane in lanes:
        cards.append(lane_card(lane, now) + tag("div", action_form(
            session, "/tools/link-test", "Link test (ENQ → ACK)",
            [("lane", lane.name), ("back", "lanes")], enabled=ctx.actions_enabled),
            class_="actions"))
    return tag("div", join(tag("div", c, class_="lane-wrap") for c in cards),
               id="lanes-live", data_live=True, class_="lanes")


def lane_card(lane: LaneFacts, now: float) -> Html:
    c = lane.counters
    flight: object = "idle"
    if lane.in_flight is not None:
        f = lane.in_flight
        href = f"/transactions/{f.row}" if f.row else None
        flight = tag("a", f.txn, href=href) + Html(f" {h(f.kind)} ") + pill(f.state)
    last: object = "none yet"
    if lane.last is not None:
        t = lane.last
        last = tag("a", t.txn, href=f"/transactions/{t.row}") + Html(
            f" {h(t.kind)} {h(amount_text(t.amount))} ") + pill(t.state)
    state = pill(lane.state) + Html(f" for {h(age(now - lane.since))}")
    if lane.link_down:
        state += tag("div", "The register stopped acknowledging frames: results wait until "
                     "it sends something (try the link test)", class_="bad")
    items: list[tuple[str, object]] = [
        ("Link", tag("code", lane.link)),
        ("State", state),
        ("Terminal", lane.tid),
        ("In flight", flight),
        ("Last transaction", last),
        ("Results waiting", tag("span", str(lane.undelivered),
                                class_="bad" if lane.undelivered else None)),
        # A technician checking a v2 register's cable wants to see it is on v2 (§6).
        ("Link version", f"v{lane.link_version} (protocol={lane.link_protocol})"),
    ]
    if lane.baudrate:
        items.append(("Baud rate", lane.baudrate))
    if lane.pos_id:
        items.append(("POS id", lane.pos_id))
    items += [
        ("Bytes in / out", f"{lane.bytes_in} / {lane.bytes_out}"),
        ("Frames in / out", f"{c.get('frames_in', 0)} / {c.get('frames_out', 0)}"),
        ("NAKs sent / received", f"{c.get('naks_sent', 0)} / {c.get('naks_received', 0)}"),
        ("Retransmissions", str(c.get("retransmissions", 0))),
        ("Undelivered sends", str(c.get("undelivered", 0))),
        ("Requests", str(lane.requests)),
        ("Reconnects", str(lane.reconnects)),
        ("Last error", tag("span", lane.last_error, class_="bad") if lane.last_error else "—"),
        ("State since", when(lane.since)),
    ]
    counters = pairs(sorted((k.replace("_", " "), str(v)) for k, v in c.items()))
    details = tag("details", tag("summary", "All link counters") + counters)
    return tag("section", tag("h2", Html(f"{h(lane.name)} ") + pill(
        "up" if lane.up else "down")) + pairs(items) + details,
               class_="card lane", id=f"lane-{lane.name}")

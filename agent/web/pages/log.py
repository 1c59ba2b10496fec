"""Log: the agent's recent log lines (already redacted), newest first, by level and lane."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from agent.logs import LOG_LEVELS, current_level
from agent.web.actions import set_log_level
from agent.web.context import WebContext, ctx_of
from agent.web.facts import LEVELS, LogFacts, attention_now, log_lines
from agent.web.html import Html, csrf_input, css_class, join, page, tag, when
from agent.web.params import BadInput, Params
from agent.web.security import CSRF_FIELD

LOG_PARAMS = ("level", "lane", "q", "limit")
DEFAULT_LIMIT = 300
MAX_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class LogQuery:
    level: str
    lane: str
    q: str
    limit: int


def parse_log_query(params: Params) -> LogQuery:
    return LogQuery(
        level=params.choice("level", LEVELS, default="info"),
        lane=params.text("lane", pattern=r"[A-Za-z0-9_.-]{1,32}", max_len=32,
                         what="not a lane name"),
        q=params.text("q", max_len=100),
        limit=params.integer("limit", low=1, high=MAX_LIMIT, default=DEFAULT_LIMIT))


def select_lines(ctx: WebContext, query: LogQuery) -> list[LogFacts]:
    return log_lines(list(ctx.recent.lines), level=query.level, lane=query.lane, query=query.q,
                     limit=query.limit)


async def log_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    query = parse_log_query(Params(request.query, LOG_PARAMS))
    lines = select_lines(ctx, query)
    lanes = [lane.name for lane in ctx.agent.config.lanes]
    level_opts = join(tag("option", lv, value=lv, selected=lv == query.level or None)
                      for lv in LEVELS)
    lane_opts = tag("option", "all lanes", value="") + join(
        tag("option", name, value=name, selected=name == query.lane or None) for name in lanes)
    form = tag("form", join([
        tag("label", Html("Level at least ") + tag("select", level_opts, name="level")),
        tag("label", Html("Lane ") + tag("select", lane_opts, name="lane")),
        tag("label", Html("Text ") + tag("input", type="search", name="q", value=query.q,
                                         maxlength="100")),
        tag("button", "Filter", type="submit"),
    ]), method="get", action="/log", class_="search")
    rows = join(
        tag("li", Html(f"{when(line.at)} ") + tag("span", line.level,
                                                  class_=f"lv lv-{css_class(line.level)}")
            + Html(f" {tag('span', line.logger, class_='logger')} ")
            + (tag("span", line.lane, class_="lane-tag") + Html(" ") if line.lane else Html(""))
            + tag("span", line.text, class_="text"),
            class_=f"log-{css_class(line.level)}")
        for line in lines)
    shown = tag("ol", rows, class_="log") if lines else tag(
        "p", "No log lines match (the agent keeps the last 2000 lines in memory).",
        class_="muted")
    count = tag("p", f"{len(lines)} line(s), newest first.", class_="muted")
    body = form + level_form(ctx, request) + tag("div", count + shown, id="log-live",
                                                 data_live=True)
    return page(ctx, request, title="Log", active="log", body=body,
                attention=attention_now(ctx.agent))


def level_form(ctx: WebContext, request: web.Request) -> Html:
    """What the agent logs from now on: a POST (logged in, CSRF) that needs no restart."""
    session = ctx.session(request)
    now = current_level()
    options = join(tag("option", lv, value=lv, selected=lv == now or None) for lv in LOG_LEVELS)
    enabled = ctx.actions_enabled and session is not None
    hint = "" if enabled else " (log in to change it)"
    return tag("form", csrf_input(session) + join([
        tag("label", Html("Agent logs at ") + tag("select", options, name="level",
                                                  disabled=not enabled or None)),
        tag("button", "Set level", type="submit", disabled=not enabled or None),
        tag("span", f"now: {now}; until restart{hint}", class_="muted"),
    ]), method="post", action="/log/level", class_="search", id="log-level")


async def level_from_form(request: web.Request) -> str:
    params = Params(await request.post(), (CSRF_FIELD, "level"))
    level = params.choice("level", list(LOG_LEVELS), default="")
    if not level:
        raise BadInput("level: missing")
    return level


async def log_level_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    result = set_log_level(await level_from_form(request))
    session = ctx.session(request)
    if session is not None:
        session.flash.append(("ok", f"{result.title}. {result.text}"))
    raise web.HTTPSeeOther("/log")

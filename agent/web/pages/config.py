"""Config: the effective configuration, secrets shown as •••."""

from __future__ import annotations

from aiohttp import web

from agent.logs import SECRETS
from agent.web.context import ctx_of
from agent.web.facts import attention_now, config_facts
from agent.web.html import card, join, page, pairs, tag
from agent.web.params import Params


async def config_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    config = ctx.agent.config
    intro = tag("p", f"Read from {config.source or '(built-in defaults)'}. Change it there "
                "and restart the agent; `edc-agent check-config --config FILE` explains any "
                "problem first. The merchant key is never in the config: only the path of "
                "its file.", class_="muted")
    sections = join(card(section.name, pairs((k, SECRETS.redact(v)) for k, v in section.items))
                    for section in config_facts(config))
    body = intro + tag("div", sections, class_="grid config")
    return page(ctx, request, title="Config", active="config", body=body,
                attention=attention_now(ctx.agent))

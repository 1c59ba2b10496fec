"""Config: the effective configuration, secrets shown as •••."""

from __future__ import annotations

from aiohttp import web

from agent.logs import SECRETS
from agent.web.context import ctx_of
from agent.web.facts import attention_now, config_facts
from agent.web.html import Html, card, join, page, pairs, tag
from agent.web.params import Params

NOT_SET = "(not set)"


async def config_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    config = ctx.agent.config
    source = config.source or "(built-in defaults)"  # absolute: load_config makes it so
    intro = tag("p", f"Read from {source}. Change it there "
                "and restart the agent; `edc-agent check-config --config FILE` explains any "
                "problem first. The merchant key is never in the config: only the path of "
                "its file.", class_="muted")
    sections = join(card(section.name, pairs((k, shown(v)) for k, v in section.items))
                    for section in config_facts(config))
    body = intro + tag("div", sections, class_="grid config")
    return page(ctx, request, title="Config", active="config", body=body,
                attention=attention_now(ctx.agent))


def shown(value: str) -> Html | str:
    """A config value as the page shows it: secrets as •••, an empty one as "(not set)"."""
    if not value.strip():
        return tag("span", NOT_SET, class_="muted")
    return SECRETS.redact(value)

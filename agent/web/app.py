"""The aiohttp Application: routes, the three middlewares and the shared WebContext.

Middlewares, outermost first:

    redact   last line of defence: a registered secret in any body becomes •••
    errors   BadInput and HTTP errors → an HTML error page (JSON under /api/)
    guard    body size, login and CSRF rules (agent.web.security), before any handler

Every response, error pages and the event stream included, gets the security headers
in `on_response_prepare`.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from agent.listener import BODY_TIMEOUT_S
from agent.logs import RECENT, SECRETS, RecentLines, Throttle
from agent.web.api import (
    api_bundle,
    api_config,
    api_events,
    api_lanes,
    api_link_test,
    api_log,
    api_log_level,
    api_overview,
    api_paytm_test,
    api_ports,
    api_recheck,
    api_reconcile,
    api_resend,
    api_session,
    api_transaction,
    api_transactions,
    healthz,
    metrics,
)
from agent.web.context import CTX, CallWatch, WebContext, ctx_of
from agent.web.events import EventHub
from agent.web.html import page, tag
from agent.web.metrics import AgentMetrics
from agent.web.pages.auth import login_action, login_page, logout_action
from agent.web.pages.config import config_page
from agent.web.pages.day import api_day, day_export, day_page
from agent.web.pages.lanes import lanes_page
from agent.web.pages.log import log_level_action, log_page
from agent.web.pages.overview import overview_page
from agent.web.pages.tools import (
    bundle_action,
    link_test_action,
    paytm_test_action,
    recheck_action,
    reconcile_action,
    resend_action,
    tools_page,
)
from agent.web.pages.transactions import transaction_page, transactions_page
from agent.web.params import BadInput
from agent.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    actions_disabled_message,
    add_security_headers,
    basic_password,
    client_address,
    same_token,
)

if TYPE_CHECKING:
    from agent.web.view import AgentView

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # the largest form is a password and a token
STATIC_FILES = {"app.css": "text/css", "app.js": "text/javascript",
                "icon.svg": "image/svg+xml"}
_REFUSAL_LOG = Throttle()  # refused Host/Origin: one line per client and minute
OPEN_PATHS = frozenset({"/login", "/healthz", "/favicon.ico"})  # reachable without a login, always


def build_app(agent: AgentView, *, recent: RecentLines = RECENT,
              redact_bodies: bool = True,
              body_timeout_s: float = BODY_TIMEOUT_S) -> web.Application:
    """The technician page for `agent`. `redact_bodies=False` exists for the test that
    proves the pages never contain a secret in the first place."""
    agent_metrics = AgentMetrics(agent)
    hub = EventHub(agent.journal)
    ctx = WebContext(agent=agent, recent=recent, metrics=agent_metrics, hub=hub,
                     calls=CallWatch(agent_metrics, hub), body_timeout_s=body_timeout_s)
    middlewares: list[Middleware] = []
    if redact_bodies:
        middlewares.append(_redact_middleware(ctx))
    middlewares += [_errors, _guard]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[CTX] = ctx
    app.on_response_prepare.append(add_security_headers)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    static = _load_static()

    async def static_file(request: web.Request) -> web.Response:
        found = static.get(request.match_info["name"])
        if found is None:
            raise BadInput("no such file", 404)
        return web.Response(body=found[0], content_type=found[1], charset="utf-8")

    async def favicon(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/static/icon.svg")

    app.add_routes([
        web.get("/", overview_page),
        web.get("/lanes", lanes_page),
        web.get("/transactions", transactions_page),
        web.get(r"/transactions/{row}", transaction_page),
        web.get("/day", day_page),
        web.get("/day/export", day_export),
        web.get("/log", log_page),
        web.get("/config", config_page),
        web.get("/tools", tools_page),
        web.post("/tools/link-test", link_test_action),
        web.post("/tools/paytm-test", paytm_test_action),
        web.post("/tools/recheck", recheck_action),
        web.post("/tools/resend", resend_action),
        web.post("/tools/reconcile", reconcile_action),
        web.post("/tools/bundle", bundle_action),
        web.post("/log/level", log_level_action),
        web.get("/login", login_page),
        web.post("/login", login_action),
        web.post("/logout", logout_action),
        web.get("/static/{name}", static_file),
        web.get("/favicon.ico", favicon),
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.get("/api/overview", api_overview),
        web.get("/api/lanes", api_lanes),
        web.get("/api/transactions", api_transactions),
        web.get(r"/api/transactions/{row}", api_transaction),
        web.get("/api/log", api_log),
        web.get("/api/config", api_config),
        web.get("/api/session", api_session),
        web.get("/api/tools/ports", api_ports),
        web.post("/api/tools/link-test", api_link_test),
        web.post("/api/tools/paytm-test", api_paytm_test),
        web.post("/api/tools/recheck", api_recheck),
        web.post("/api/tools/resend", api_resend),
        web.post("/api/tools/reconcile", api_reconcile),
        web.get("/api/day", api_day),
        web.post("/api/tools/bundle", api_bundle),
        web.post("/api/log/level", api_log_level),
        web.get("/api/events", api_events),
    ])
    return app


def _load_static() -> dict[str, tuple[bytes, str]]:
    """The CSS, JS and icon (package data, see pyproject). A missing file is logged, not
    fatal: the pages work without them, only plainer and without live updates."""
    static: dict[str, tuple[bytes, str]] = {}
    folder = importlib.resources.files("agent.web").joinpath("static")
    for name, kind in STATIC_FILES.items():
        try:
            static[name] = (folder.joinpath(name).read_bytes(), kind)
        except OSError as exc:
            log.error("technician page: static file %s missing (%s); is the package "
                      "installed with its data files?", name, exc)
    return static


async def _on_startup(app: web.Application) -> None:
    ctx = app[CTX]
    ctx.hub.start()
    ctx.unsubscribe = ctx.agent.journal.observe_commits(ctx.metrics.on_commit)
    ctx.agent.observe_calls(ctx.calls.observe)


async def _on_shutdown(app: web.Application) -> None:
    ctx = app[CTX]
    ctx.calls.active = False  # Agent.observe_calls cannot unsubscribe
    if ctx.unsubscribe is not None:
        ctx.unsubscribe()
        ctx.unsubscribe = None
    ctx.hub.close()  # ends the open event streams, so shutdown does not wait for them
    if ctx.reader is not None:
        await ctx.reader.close()


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _redact_middleware(ctx: WebContext) -> Middleware:
    @web.middleware
    async def redact(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not isinstance(response, web.Response):
            return response  # the event stream: txn ids, states and codes only
        body = response.body
        if isinstance(body, bytes) and body:
            text = body.decode("utf-8", errors="replace")
            extra = ctx.password_hash
            if text in SECRETS or (extra and extra in text):
                log.error("web: a secret was about to be sent in %s; redacted", request.path)
                text = SECRETS.redact(text)
                if extra:
                    text = text.replace(extra, "•••")
                response.body = text.encode()
        return response

    return redact


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadInput as exc:
        return error_response(request, exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: f"No page at {request.path}.",
                   405: f"{request.method} is not allowed on {request.path}.",
                   413: f"Request body too large (at most {MAX_BODY_BYTES} bytes)."}.get(
            exc.status, exc.text or exc.reason)
        if exc.status in (401, 429, 503) and exc.text:
            message = exc.text
        response = error_response(request, exc.status, message)
        for name in ("Retry-After", "WWW-Authenticate", "Allow"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        return error_response(request, 500, "Internal error; the agent logged the cause.")


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    if _is_api(request.path) or request.path == "/healthz":
        return web.json_response({"error": message, "status": status}, status=status)
    if request.path == "/metrics":
        return web.Response(text=message + "\n", status=status)
    titles = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found",
              405: "Not allowed", 413: "Too large", 429: "Too many attempts",
              408: "Too slow", 421: "Wrong address", 500: "Internal error", 503: "Unavailable"}
    body = tag("p", message, class_="flash flash-fail") + tag(
        "p", tag("a", "Back to the overview", href="/"))
    return page(ctx_of(request), request, title=titles.get(status, f"Error {status}"),
                active="", body=body, status=status)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = ctx_of(request)
    rule = ctx.host_rule
    refused = rule.check_host(request.headers.get("Host"))
    if refused is not None:  # DNS rebinding: a page of attacker.example on this PC
        status, why = refused
        _log_refused(request, f"Host {request.headers.get('Host', '')[:80]!r}")
        raise BadInput(why, status)
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise BadInput(f"Request body too large (at most {MAX_BODY_BYTES} bytes).", 413)
    if request.can_read_body:
        try:  # read (and cache) the whole body now, against the clock
            async with asyncio.timeout(ctx.body_timeout_s):
                await request.read()
        except TimeoutError:
            raise BadInput("The request body did not arrive in time.", 408) from None
    path = request.path
    session = ctx.session(request)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        foreign = rule.check_origin(request.headers.get("Origin"),
                                    request.headers.get("Referer"))
        if foreign is not None:
            _log_refused(request, foreign)
            raise BadInput(foreign, 403)
    if request.method == "POST" and path != "/login":
        if not ctx.actions_enabled:
            raise BadInput(actions_disabled_message(ctx.agent.config.source), 403)
        if session is None:
            if _is_api(path):
                raise BadInput("Log in first (POST /login with the technician password).",
                               401)
            back = "/tools" if path.startswith("/tools") else (
                "/log" if path.startswith("/log") else "/")
            raise web.HTTPSeeOther("/login?" + urlencode({"next": back}))
        form = await request.post()
        token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not isinstance(token, str) or not same_token(token, session.csrf):
            log.warning("web: %s from %s refused: forged or missing CSRF token", path,
                        client_address(request))
            raise BadInput("Forged or missing CSRF token: reload the page and try again.",
                           403)
        return await handler(request)
    if ctx.login_required and session is None and path not in OPEN_PATHS \
            and not path.startswith("/static/"):
        if path == "/metrics" and await _basic_auth_ok(ctx, request):
            return await handler(request)
        if path == "/metrics":
            raise web.HTTPUnauthorized(
                text="Log in, or use HTTP Basic auth with the technician password.",
                headers={"WWW-Authenticate": 'Basic realm="edc-agent metrics"'})
        if _is_api(path):
            raise BadInput("Log in first (POST /login with the technician password).", 401)
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
    return await handler(request)


def _log_refused(request: web.Request, why: str) -> None:
    """One WARNING per refused client and interval (a scanner must not fill the log)."""
    if _REFUSAL_LOG.allow(client_address(request)):
        log.warning("web: %s %s from %s refused: %s", request.method, request.path[:80],
                    client_address(request), why)


async def _basic_auth_ok(ctx: WebContext, request: web.Request) -> bool:
    password = basic_password(request)
    if password is None or not ctx.actions_enabled:
        return False
    client = client_address(request)
    verdict = await ctx.passwords.check(client, password, ctx.password_hash)
    if verdict.retry_after_s:
        wait_s = verdict.retry_after_s
        raise web.HTTPTooManyRequests(
            text=f"Too many failed logins: try again in {wait_s:.0f} s.",
            headers={"Retry-After": str(int(wait_s + 0.999))})
    if verdict.ok:
        return True
    log.warning("web: failed metrics login from %s", client)
    return False

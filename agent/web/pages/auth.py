"""Log in and out. The password is checked against `http.password_hash` (scrypt) in a
worker thread, so a login never stalls the payments running in the same loop."""

from __future__ import annotations

import logging

from aiohttp import web

from agent.web.context import WebContext, ctx_of
from agent.web.html import Html, join, page, tag
from agent.web.params import BadInput, Params
from agent.web.security import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_FAILURES_MAX,
    SESSION_COOKIE,
    SESSION_TTL_S,
    actions_disabled_message,
    client_address,
    new_token,
    safe_next,
    same_token,
)

log = logging.getLogger(__name__)

LOGIN_COOKIE_MAX_AGE_S = 3600


def _login_form(ctx: WebContext, request: web.Request, token: str, next_path: str,
                error: str = "", status: int = 200) -> web.Response:
    if not ctx.actions_enabled:
        body = tag("p", actions_disabled_message(ctx.agent.config.source), class_="notice")
        if ctx.login_required:
            body += tag("p", "This page listens on a non-loopback address, so every page "
                        "needs a login, and there is no password to log in with yet.")
        response = page(ctx, request, title="Log in", active="", body=body, status=status)
        return response
    fields = join([
        tag("p", error, class_="flash flash-fail", role="alert") if error else Html(""),
        tag("input", type="hidden", name=CSRF_FIELD, value=token),
        tag("input", type="hidden", name="next", value=next_path),
        tag("label", Html("Technician password ") + tag(
            "input", type="password", name="password", autocomplete="current-password",
            required=True, autofocus=True, id="password")),
        tag("button", "Log in", type="submit"),
    ])
    body = tag("form", fields, method="post", action="/login", class_="login")
    body += tag("p", "The password is set with `edc-agent hash-password` (its output goes in "
                "http.password_hash). Sessions last at most 8 hours.", class_="muted")
    response = page(ctx, request, title="Log in", active="", body=body, status=status)
    response.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_COOKIE_MAX_AGE_S, path="/login",
                        httponly=True, samesite="Strict")
    return response


async def login_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    params = Params(request.query, ("next",))
    next_path = safe_next(params.raw("next"))
    if ctx.session(request) is not None:
        raise web.HTTPSeeOther(next_path)
    token = request.cookies.get(LOGIN_COOKIE) or new_token()
    return _login_form(ctx, request, token, next_path)


async def login_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    if not ctx.actions_enabled:
        raise BadInput(actions_disabled_message(ctx.agent.config.source), 403)
    params = Params(await request.post(), (CSRF_FIELD, "next", "password"))
    cookie = request.cookies.get(LOGIN_COOKIE)
    if cookie is None or not same_token(params.raw(CSRF_FIELD), cookie):
        raise BadInput("The login form expired or did not come from this page (CSRF check "
                       "failed): open the login page again.", 403)
    client = client_address(request)
    next_path = safe_next(params.raw("next"))
    password = params.raw("password")
    verdict = await ctx.passwords.check(client, password, ctx.password_hash)
    if verdict.retry_after_s:
        wait_s = verdict.retry_after_s
        log.warning("web: login from %s refused: too many failed attempts", client)
        raise web.HTTPTooManyRequests(
            text=f"Too many failed logins: try again in {wait_s:.0f} s.",
            headers={"Retry-After": str(int(wait_s + 0.999))})
    if not verdict.ok:
        log.warning("web: failed technician login from %s", client)
        left = LOGIN_FAILURES_MAX - ctx.limiter.failures(client)
        error = "Wrong password." + (f" {left} more attempt(s) before a pause." if left > 0
                                     else " Too many attempts: wait a few minutes.")
        return _login_form(ctx, request, cookie, next_path, error, status=401)
    session = ctx.sessions.create(client)
    log.info("web: technician logged in from %s", client)
    response = web.HTTPSeeOther(next_path)
    response.set_cookie(SESSION_COOKIE, session.token, max_age=int(SESSION_TTL_S), path="/",
                        httponly=True, samesite="Strict")
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout_action(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    await request.post()
    ctx.sessions.drop(request.cookies.get(SESSION_COOKIE))
    log.info("web: technician logged out from %s", client_address(request))
    response = web.HTTPSeeOther("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response

"""HTML building: every value is escaped unless it is already `Html` built here.

`Html` marks markup we made ourselves; anything else that reaches `h()` (a txn id, a
log line, a config value, a Paytm message) is text and is escaped with `html.escape`.
No inline scripts or styles: the CSP forbids them; behaviour lives in /static/app.js.
"""

from __future__ import annotations

import html
import re
import socket
from collections.abc import Iterable, Sequence
from datetime import datetime

from aiohttp import web

from agent import __version__
from agent.paytm.clock import IST
from agent.web.context import WebContext
from agent.web.facts import Attention
from agent.web.security import CSRF_FIELD, Session

NAV = (
    ("overview", "/", "Overview"),
    ("lanes", "/lanes", "Lanes"),
    ("transactions", "/transactions", "Transactions"),
    ("day", "/day", "Day"),
    ("log", "/log", "Log"),
    ("config", "/config", "Config"),
    ("tools", "/tools", "Tools"),
)
_CLASS_RE = re.compile(r"[^a-z0-9_-]")
_VOID = frozenset({"input", "meta", "link", "br", "hr", "img"})  # no end tag in HTML


class Html(str):
    """Markup that is safe as it is (built from escaped parts). Adding text to it
    escapes the text."""

    __slots__ = ()

    def __add__(self, other: str) -> Html:
        return Html(str.__add__(self, h(other)))

    def __radd__(self, other: str) -> Html:
        return Html(str.__add__(h(other), self))


def h(value: object) -> Html:
    """`value` as HTML: escaped, unless it already is `Html`."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[object], sep: str = "") -> Html:
    return Html(sep.join(h(p) for p in parts))


def tag(element: str, content: object = "", /, **attrs: object) -> Html:
    """<name attrs>content</name>; attribute names use _ for - and a trailing _ for
    Python keywords (class_)."""
    rendered = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{h(value)}"' if value is not True
        else f' {key.rstrip("_").replace("_", "-")}'
        for key, value in attrs.items() if value is not None and value is not False)
    if element in _VOID:
        return Html(f"<{element}{rendered}>")
    return Html(f"<{element}{rendered}>{h(content)}</{element}>")


def css_class(value: str) -> str:
    return _CLASS_RE.sub("", value.lower())


def pill(state: str) -> Html:
    return tag("span", state or "—", class_=f"pill s-{css_class(state) or 'none'}")


def when(epoch: float | None) -> Html:
    """A wall-clock time in IST (Paytm's zone, and the shop's)."""
    if epoch is None:
        return Html("—")
    text = datetime.fromtimestamp(epoch, IST).strftime("%Y-%m-%d %H:%M:%S")
    return tag("time", text, datetime=datetime.fromtimestamp(epoch, IST).isoformat())


def age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 36:
        return f"{int(hours)} h {int(minutes % 60)} min"
    return f"{hours / 24:.1f} days"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, class_: str = "",
          empty: str = "Nothing to show.") -> Html:
    head = join(tag("th", col, scope="col") for col in headers)
    body = [join(tag("td", cell) for cell in row) for row in rows]
    if not body:
        return tag("p", empty, class_="muted")
    return tag("div", tag("table", Html(f"<thead><tr>{head}</tr></thead><tbody>")
                          + join(Html(f"<tr>{r}</tr>") for r in body) + Html("</tbody>"),
                          class_=class_ or None),
               class_="scroll")


def pairs(items: Iterable[tuple[str, object]], class_: str = "kv") -> Html:
    """A definition list: label, value."""
    return tag("dl", join(tag("dt", k) + tag("dd", v) for k, v in items), class_=class_)


def card(title: str, body: object, *, id_: str | None = None, live: bool = False,
         class_: str = "card") -> Html:
    return tag("section", tag("h2", title) + h(body), id=id_, class_=class_,
               data_live=live or None)


def csrf_input(session: Session | None) -> Html:
    if session is None:
        return Html("")
    return tag("input", type="hidden", name=CSRF_FIELD, value=session.csrf)


def action_form(session: Session | None, action: str, label: str,
                fields: Sequence[tuple[str, str]] = (), *, enabled: bool = True,
                class_: str = "inline") -> Html:
    """A POST form with the session's CSRF token; the button is disabled when actions
    are not possible (the server refuses them anyway)."""
    hidden = join(tag("input", type="hidden", name=name, value=value)
                  for name, value in fields)
    button = tag("button", label, type="submit", disabled=not enabled or None)
    return tag("form", csrf_input(session) + hidden + button, method="post", action=action,
               class_=class_)


def attention_box(items: Sequence[Attention]) -> Html:
    if not items:
        return tag("div", "", id="attention", data_live=True)
    entries = join(tag("li", tag("a", item.text, href=item.href), class_=f"a-{item.kind}")
                   for item in items)
    return tag("div", tag("strong", "Needs attention") + tag("ul", entries),
               id="attention", class_="attention", data_live=True, role="alert")


def page(ctx: WebContext, request: web.Request, *, title: str, active: str, body: Html,
         attention: Sequence[Attention] = (), status: int = 200) -> web.Response:
    session = ctx.session(request)
    nav = join(tag("a", label, href=href, aria_current="page" if key == active else None)
               for key, href, label in NAV)
    if session is not None:
        who = tag("span", "Logged in", class_="who-in") + action_form(
            session, "/logout", "Log out", class_="inline logout")
    elif ctx.actions_enabled:
        who = tag("a", "Log in", href="/login", class_="button")
    else:
        who = tag("span", "Read-only: no technician password set", class_="who-ro")
    flashes = Html("")
    if session is not None and session.flash:
        flashes = join(tag("p", text, class_=f"flash flash-{css_class(kind)}", role="status")
                       for kind, text in session.flash)
        session.flash.clear()
    csrf_meta = tag("meta", name="csrf-token", content=session.csrf) if session else Html("")
    document = Html(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        f"{csrf_meta}<title>{h(title)} · edc-agent</title>"
        "<link rel=\"stylesheet\" href=\"/static/app.css\">"
        "<link rel=\"icon\" href=\"/static/icon.svg\" type=\"image/svg+xml\">"
        "<script src=\"/static/app.js\" defer></script></head>"
        f"<body data-page=\"{h(active)}\">"
        "<header class=\"top\"><div class=\"bar\">"
        f"<a class=\"brand\" href=\"/\">edc-agent</a>"
        f"<span class=\"host\">{h(socket.gethostname())}</span>"
        f"<div class=\"who\">{who}</div></div>"
        f"<nav>{nav}</nav></header>"
        f"{attention_box(attention)}"
        f"<main id=\"main\"><h1>{h(title)}</h1>{flashes}{body}</main>"
        f"<footer>edc-agent {h(__version__)} · "
        "<span id=\"live-status\">live updates need JavaScript; reload to refresh</span>"
        "</footer></body></html>\n"
    )
    return web.Response(text=document, status=status, content_type="text/html",
                        charset="utf-8")

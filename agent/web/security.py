"""Who may see and do what on the technician page, and the headers every response carries.

Rules (docs/web.md, issue 5):

- `http.password_hash` empty: nobody can log in; pages are read-only and every action
  is refused with a message saying how to set a password.
- `http.listen` not a loopback address: every page and API needs a logged-in session
  (only /login, /static/, /healthz stay open; /metrics also takes HTTP Basic auth with
  the technician password, for scrapers).
- Actions (every POST) need a session *and* its CSRF token (form field `csrf` or the
  `X-CSRF-Token` header). The login form itself carries a double-submit token.
- Logins (the form and /metrics Basic auth alike, `PasswordGate`): a slot is taken
  *before* the password is checked and counted at once as a failure (a success gives it
  back), per client address (all of 127/8 and ::1 count as one, IPv6 per /64):
  LOGIN_FAILURES_MAX within LOGIN_WINDOW_S, and for all addresses together
  LOGIN_GLOBAL_MAX; then 429 until the oldest leaves the window. scrypt runs one check
  at a time, so concurrent attempts cost neither CPU nor memory in parallel.

Sessions live only in this process (a restart logs everybody out, which is fine for a
technician's visit): a random token in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

SESSION_COOKIE = "edc_session"
LOGIN_COOKIE = "edc_login"  # double-submit token of the login form (no session yet)
SESSION_TTL_S = 8 * 3600.0  # absolute: a working day, then log in again
SESSION_IDLE_S = 3600.0  # idle: a forgotten browser on the counter stops being logged in
MAX_SESSIONS = 64  # oldest dropped beyond this: a script cannot fill memory with logins
LOGIN_FAILURES_MAX = 5
LOGIN_GLOBAL_MAX = 30  # failed or running attempts from all addresses within the window
LOGIN_WINDOW_S = 300.0
IPV6_PREFIX_BITS = 64  # one household or shop LAN gets one IPv6 /64
MAX_TRACKED_CLIENTS = 1024  # addresses remembered by the rate limiter
TOKEN_BYTES = 32

CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"

# No inline script or style anywhere: everything comes from /static/.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # same-origin: the page's own requests carry Origin/Referer (checked on every POST),
    # nothing is sent to other sites. (no-referrer made browsers send `Origin: null`.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

ACTIONS_DISABLED_MESSAGE = (
    "Actions are disabled because no technician password is set. To enable them, run "
    "`edc-agent hash-password`, put the line it prints as password_hash under [http] in "
    "{config}, and restart the agent."
)


def actions_disabled_message(config_file: str | None) -> str:
    return ACTIONS_DISABLED_MESSAGE.format(config=config_file or "the agent's config file")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, error pages and the SSE stream included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Session:
    token: str
    csrf: str
    created: float
    seen: float
    client: str
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) after a redirect


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: collections.OrderedDict[str, Session] = collections.OrderedDict()

    def create(self, client: str) -> Session:
        now = self._clock()
        session = Session(token=new_token(), csrf=new_token(), created=now, seen=now,
                          client=client)
        self._sessions[session.token] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if now - session.created > SESSION_TTL_S or now - session.seen > SESSION_IDLE_S:
            del self._sessions[token]
            return None
        session.seen = now
        return session

    def drop(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)

    def __len__(self) -> int:
        return len(self._sessions)


def client_key(client: str) -> str:
    """The address a login limit counts against: every loopback address is one client
    (127.0.0.2 is not a new person), an IPv6 address counts per /64."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX_BITS), strict=False))
    return str(ip)


class LoginLimiter:
    """Failed (and running) logins per client address, and for all of them, in a
    sliding window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = \
            collections.OrderedDict()
        self._global: collections.deque[float] = collections.deque()

    def attempt(self, client: str) -> float:
        """Take a slot for one password check: 0 when taken (it counts as a failure at
        once, before the check), else the seconds until one is free."""
        wait = self.retry_after_s(client)
        if wait:
            return wait
        now = self._clock()
        while self._global and now - self._global[0] >= LOGIN_WINDOW_S:
            self._global.popleft()
        if len(self._global) >= LOGIN_GLOBAL_MAX:
            return max(1.0, self._global[0] + LOGIN_WINDOW_S - now)
        self._global.append(now)
        self.failed(client, _counted_globally=True)
        return 0.0

    def _recent(self, client: str) -> collections.deque[float]:
        client = client_key(client)
        now = self._clock()
        failures = self._failures.get(client)
        if failures is None:
            return collections.deque()
        while failures and now - failures[0] >= LOGIN_WINDOW_S:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def retry_after_s(self, client: str) -> float:
        """0 when `client` may try a password now, else seconds until it may."""
        failures = self._recent(client)
        if len(failures) < LOGIN_FAILURES_MAX:
            return 0.0
        return max(1.0, failures[0] + LOGIN_WINDOW_S - self._clock())

    def failures(self, client: str) -> int:
        return len(self._recent(client))

    def failed(self, client: str, *, _counted_globally: bool = False) -> None:
        client = client_key(client)
        if not _counted_globally:
            self._global.append(self._clock())
        failures = self._failures.setdefault(client, collections.deque())
        self._failures.move_to_end(client)
        failures.append(self._clock())
        while len(failures) > LOGIN_FAILURES_MAX:
            failures.popleft()
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """The right password: this client's slots are given back (one global one too)."""
        self._failures.pop(client_key(client), None)
        if self._global:
            self._global.pop()


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    retry_after_s: float = 0.0  # > 0: refused before the password was looked at


class PasswordGate:
    """The one way a password is checked (login form and /metrics): a limiter slot
    first, then scrypt, one check at a time."""

    def __init__(self, limiter: LoginLimiter, verify: Callable[[str, str], bool]) -> None:
        self.limiter = limiter
        self._verify = verify
        self._one_at_a_time = asyncio.Lock()

    async def check(self, client: str, password: str, password_hash: str) -> Verdict:
        wait_s = self.limiter.attempt(client)
        if wait_s:
            return Verdict(ok=False, retry_after_s=wait_s)
        if not password or not password_hash:
            return Verdict(ok=False)
        async with self._one_at_a_time:
            ok = await asyncio.to_thread(self._verify, password, password_hash)
        if ok:
            self.limiter.succeeded(client)
        return Verdict(ok=ok)


def client_address(request: web.Request) -> str:
    """The peer's address. Proxy headers are ignored: the agent is reached directly."""
    return request.remote or "unknown"


def basic_password(request: web.Request) -> str | None:
    """The password of an `Authorization: Basic` header (any user name), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def safe_next(value: str | None) -> str:
    """A local path to go to after logging in; anything else (//host, http:...) is '/'."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x21 for ch in value) or len(value) > 512:
        return "/"
    return value


# -- Host and Origin (DNS rebinding) ------------------------------------------------------

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (names, not a bind)


def host_of(value: str) -> str | None:
    """The host part of a Host header (or of an Origin's netloc), lower case, without the
    port or a trailing dot; None when it is not a host at all."""
    text = value.strip().lower()
    if not text or any(ch in text for ch in "/@\\ \t?#"):
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1:] and not _is_port(text[end + 1:])):
            return None
        host = text[1:end]
        return host if _ip(host) else None
    name, sep, port = text.rpartition(":")
    if sep and _is_port(":" + port) and ":" not in name:
        text = name
    elif ":" in text:
        return None  # an IPv6 literal must be bracketed
    return text.rstrip(".") or None


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class HostRule:
    """Which `Host` the page answers to: `localhost` (and the loopback addresses), its
    listen address, the names in `http.hostnames`, and — when it listens on every
    address — any IP literal (a rebinding attack always arrives under the attacker's
    *name*, never under an address)."""

    def __init__(self, listen_host: str, hostnames: tuple[str, ...] = ()) -> None:
        listen = listen_host.strip("[]").lower()
        self._names = frozenset({*LOCAL_NAMES, listen, *(n.lower() for n in hostnames)}
                                - WILDCARD_HOSTS)
        self._any_address = listen in WILDCARD_HOSTS

    def allows(self, host: str) -> bool:
        return host in self._names or (self._any_address and _ip(host))

    def check_host(self, header: str | None) -> tuple[int, str] | None:
        """None when the Host header is acceptable, else (status, why)."""
        if header is None:
            return 400, "Missing Host header."
        host = host_of(header)
        if host is None:
            return 400, "Malformed Host header."
        if not self.allows(host):
            return 421, (f"This page does not answer to {host!r}: open it as "
                         "http://localhost:PORT/ or its configured address, or add the "
                         "name to http.hostnames.")
        return None

    def check_origin(self, origin: str | None, referer: str | None) -> str | None:
        """For a state-changing request: None when Origin (else Referer), if present,
        names an allowed host; else why not."""
        for name, value in (("Origin", origin), ("Referer", referer)):
            if value is None or value == "null":  # absent, or hidden by the browser
                continue
            parts = urlsplit(value)
            host = host_of(parts.netloc) if parts.scheme in ("http", "https") else None
            if host is None or not self.allows(host):
                return f"{name} {value[:80]!r} is not this page: request refused."
            return None
        return None

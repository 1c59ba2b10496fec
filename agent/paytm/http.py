"""The one HTTP session the agent uses to reach Paytm: timeouts, base-URL rule, the TLS
context of agent.paytm.tls.

One `ClientSession` lives as long as the process (aiohttp's advice): it pools TLS
connections, so a status poll every few seconds does not pay a handshake each time.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from agent import __version__
from agent.errors import ConfigError
from agent.net import is_loopback_host
from agent.paytm.settings import PaytmConfig
from agent.paytm.tls import ssl_context

# Idle pooled connections are dropped after this long. Kept below the idle timeouts
# that load balancers commonly use (30–60 s) so we rarely write a request into a
# connection the far end has just closed: such a request would end as "unknown"
# (aiohttp never retries a POST, and we could not prove it was not received).
KEEPALIVE_S = 10.0
# At most this many simultaneous connections to Paytm (one call in flight per terminal).
CONNECTION_LIMIT = 32
USER_AGENT = f"edc-agent/{__version__}"


def check_base_url(url: str, key: str = "paytm.edc_base_url") -> str:
    """`url` without its trailing slash; ConfigError naming `key` unless it is https://
    (or http:// to a loopback host: the emulator)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError([f"{key}: not a valid URL (got {url!r})"]) from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError([f"{key}: must be an https:// URL (got {url!r})"])
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError([f"{key}: plain http:// is allowed only for loopback hosts "
                           f"(127.0.0.1, ::1, localhost); use https:// (got {url!r})"])
    return url.rstrip("/")


def client_timeout(config: PaytmConfig) -> aiohttp.ClientTimeout:
    """Per-phase timeouts and no overall one.

    `connect` covers waiting for a pooled slot, DNS, TCP and the TLS handshake, all
    before a byte of the request is written, so aiohttp's ConnectionTimeoutError
    provably means "not sent". `sock_read` bounds each wait for the answer. There is
    deliberately no `total`: it fires as a bare TimeoutError that does not say which
    phase it interrupted (EdcClient applies its own overall deadline).
    """
    return aiohttp.ClientTimeout(
        total=None,
        connect=config.connect_timeout_s,
        sock_connect=config.connect_timeout_s,
        sock_read=config.read_timeout_s,
    )


def make_session(config: PaytmConfig) -> aiohttp.ClientSession:
    """The process's session to Paytm; call it inside the running event loop, close it at exit."""
    check_base_url(config.edc_base_url, "paytm.edc_base_url")
    check_base_url(config.pg_base_url, "paytm.pg_base_url")
    connector = aiohttp.TCPConnector(
        ssl=ssl_context(config),
        limit=CONNECTION_LIMIT,
        keepalive_timeout=KEEPALIVE_S,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=client_timeout(config),
        headers={"User-Agent": USER_AGENT},
        # Proxies from the environment would add a hop whose failures we cannot classify.
        trust_env=False,
        raise_for_status=False,
    )

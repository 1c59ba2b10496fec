"""The way to Paytm, step by step for each configured base URL: DNS, TCP, TLS (≥ 1.2, the
certificate the agent itself would trust), each with its latency."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from agent.certify.model import Findings, Verdict
from agent.errors import ConfigError
from agent.net import is_loopback_host
from agent.paytm.settings import PaytmConfig
from agent.paytm.tls import ssl_context

SECTION = "Network"
# A certificate that expires within this many days gets a warning: renewals go wrong.
CERT_WARN_DAYS = 14
_MS = 1000.0


def base_urls(config: PaytmConfig) -> list[tuple[str, str]]:
    """(what, url) for each distinct base URL: EDC and PG may share a host."""
    urls: list[tuple[str, str]] = []
    for what, url in (("EDC", config.edc_base_url), ("PG", config.pg_base_url)):
        for i, (seen_what, seen_url) in enumerate(urls):
            if seen_url == url:
                urls[i] = (f"{seen_what} and {what}", seen_url)
                break
        else:
            urls.append((what, url))
    return urls


async def check_network(config: PaytmConfig, findings: Findings) -> None:
    for what, url in base_urls(config):
        await _check_url(config, what, url, findings)


async def _check_url(config: PaytmConfig, what: str, url: str, findings: Findings) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout_s = config.connect_timeout_s
    label = f"{host}:{port} ({what})"

    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        findings.add(SECTION, f"DNS {host}", Verdict.FAIL,
                     f"{host} does not resolve: {type(exc).__name__}: {exc}",
                     ["Check the host name in the config and this PC's DNS settings."])
        return
    addresses = sorted({str(info[4][0]) for info in infos})
    findings.add(SECTION, f"DNS {host}", Verdict.PASS,
                 f"{host} → {', '.join(addresses)} in {_ms(started)}")

    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        findings.add(SECTION, f"TCP {label}", Verdict.FAIL,
                     f"cannot connect to {host}:{port}: {type(exc).__name__}: {exc}",
                     ["A firewall or proxy may block outgoing connections to Paytm."])
        return
    findings.add(SECTION, f"TCP {label}", Verdict.PASS, f"connected in {_ms(started)}")
    await _close(writer)

    if parts.scheme != "https":
        if is_loopback_host(host):
            findings.add(SECTION, f"TLS {label}", Verdict.INFO,
                         "TLS: not applicable (loopback)",
                         ["Plain http is allowed only to this PC (the emulator); Paytm's "
                          "hosts are always https."])
        else:  # the config refuses this already; kept so a report never says PASS here
            findings.add(SECTION, f"TLS {label}", Verdict.FAIL,
                         "plain http to a host that is not loopback")
        return
    await _check_tls(config, host, port, label, findings)


async def _check_tls(config: PaytmConfig, host: str, port: int, label: str,
                     findings: Findings) -> None:
    started = time.monotonic()
    try:
        context = ssl_context(config)  # TLS 1.2 minimum, hostname checked, ca_file added
        async with asyncio.timeout(config.connect_timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context,
                                                      server_hostname=host)
    except ConfigError as exc:
        findings.add(SECTION, f"TLS {label}", Verdict.FAIL, "; ".join(exc.problems))
        return
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        findings.add(SECTION, f"TLS {label}", Verdict.FAIL,
                     f"handshake failed: {type(exc).__name__}: {exc}",
                     ["If a proxy inspects TLS, give its CA in paytm.ca_file; otherwise check "
                      "this PC's clock and CA certificates."])
        return
    elapsed = _ms(started)
    tls = writer.get_extra_info("ssl_object")
    version = tls.version() if isinstance(tls, ssl.SSLObject) else None
    cipher = tls.cipher() if isinstance(tls, ssl.SSLObject) else None
    cert = tls.getpeercert() if isinstance(tls, ssl.SSLObject) else None
    await _close(writer)
    details = [f"protocol {version or '?'}, cipher {cipher[0] if cipher else '?'}"]
    verdict = Verdict.PASS
    if isinstance(cert, dict):
        details.append(f"certificate for {_name(cert.get('subject'))}, issued by "
                       f"{_name(cert.get('issuer'))}")
        not_after = cert.get("notAfter")
        if isinstance(not_after, str):
            expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
            days = (expires - datetime.now(UTC)).days
            details.append(f"valid until {expires:%Y-%m-%d} ({days} days)")
            if days < CERT_WARN_DAYS:
                verdict = Verdict.WARN
    findings.add(SECTION, f"TLS {label}", verdict,
                 f"{version or 'TLS'} in {elapsed}, certificate verified", details)


def _name(field: object) -> str:
    """The CN (or the first attribute) of a subject/issuer in getpeercert() form."""
    if not isinstance(field, tuple):
        return "?"
    pairs = [pair for rdn in field if isinstance(rdn, tuple) for pair in rdn
             if isinstance(pair, tuple) and len(pair) == 2]
    for key, value in pairs:
        if key == "commonName":
            return str(value)
    return str(pairs[0][1]) if pairs else "?"


def _ms(started: float) -> str:
    return f"{(time.monotonic() - started) * _MS:.0f} ms"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()

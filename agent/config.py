"""Configuration: TOML in, frozen dataclasses out, every problem named by its key.

The key names are part of the operator contract (architecture.md); keep them.
`load_config` collects *all* problems before raising, so `edc-agent check-config`
can list them in one go. The merchant key is never in the config text: only the
path of the file that holds it (see `agent.keyfile`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agent.errors import ConfigError
from agent.link.spec import LinkSpec, parse_link_url
from agent.net import is_loopback_host, split_host_port
from agent.paytm.checksum import ChecksumMode

# The Paytm clients own their settings (agent/paytm/settings.py); loaded and checked here.
from agent.paytm.settings import PaytmConfig
from agent.rules import is_pos_id, is_tid

DEFAULT_JOURNAL = "/var/lib/edc-agent/journal.db"
DEFAULT_KEEP_DAYS = 400
# A sale's void, its refunds and the day's reconciliation look it up in the live journal:
# a month at least stays there. At most a century (in effect: keep everything).
MIN_KEEP_DAYS = 30
MAX_KEEP_DAYS = 36500

# Paytm documents paytmMid as string(20) on the Sale page but string(64) in responses, and
# the operator contract's own example MID has 21 characters: accept up to 32.
_MID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


@dataclass(frozen=True, slots=True)
class PollingConfig:
    first_check_s: float = 5.0
    interval_s: float = 5.0
    slow_after_s: float = 180.0
    slow_interval_s: float = 15.0
    unknown_after_s: float = 900.0
    not_found_grace_s: float = 60.0
    paylink_interval_s: float = 7.5  # reference §15: 8 checks a minute while a link is live


@dataclass(frozen=True, slots=True)
class JournalConfig:
    path: str = DEFAULT_JOURNAL
    # Final, delivered transactions older than this many days move to monthly archives
    # beside the journal (agent/journal/retention.py).
    keep_days: int = DEFAULT_KEEP_DAYS


@dataclass(frozen=True, slots=True)
class DayConfig:
    close_at: str = "23:45"  # IST HH:MM of the daily reconciliation sweep; "" = off


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str = "127.0.0.1:8765"
    password_hash: str = ""
    # Host names the page answers to besides its listen address and localhost (a name
    # in the shop's DNS or /etc/hosts); any other Host is refused (DNS rebinding).
    hostnames: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen)[1]


@dataclass(frozen=True, slots=True)
class ReceiptConfig:
    width: int = 40
    header: tuple[str, ...] = ()
    footer: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    enabled: bool = False
    listen: str = "127.0.0.1:8766"
    path: str = "/paytm/webhook"


@dataclass(frozen=True, slots=True)
class LaneConfig:
    name: str
    link: str
    tid: str
    pos_id: str = ""
    spec: LinkSpec | None = field(default=None, compare=False)
    display: tuple[tuple[str, str], ...] = ()  # defaults for the terminal pop-up
    print: tuple[tuple[str, str], ...] = ()  # defaults for the terminal slip


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Config:
    paytm: PaytmConfig = field(default_factory=PaytmConfig)
    polling: PollingConfig = PollingConfig()
    journal: JournalConfig = JournalConfig()
    day: DayConfig = DayConfig()
    http: HttpConfig = HttpConfig()
    receipt: ReceiptConfig = ReceiptConfig()
    webhook: WebhookConfig = WebhookConfig()
    log: LogConfig = LogConfig()
    lanes: tuple[LaneConfig, ...] = ()
    source: str | None = None  # the file it came from, for the diagnostics page


# ---------------------------------------------------------------------------
# Loading


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; `ConfigError.problems` lists every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"config file {str(p)!r} does not exist"]) from None
    except OSError as exc:
        raise ConfigError([f"config file {str(p)!r} cannot be read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"config file {str(p)!r} is not UTF-8 text"]) from None
    # The page, check-config and the logs show where the config came from: absolute,
    # so it means the same thing whatever directory the reader is in.
    return parse_config(text, source=os.path.abspath(p))


def parse_config(text: str, source: str | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, and ValueError for a 4,300-digit integer
        raise ConfigError([f"not valid TOML: {exc}"]) from None
    return config_from_dict(data, source=source)


def config_from_dict(data: Mapping[str, Any], source: str | None = None) -> Config:
    v = _Validator()
    known = {"paytm", "polling", "journal", "day", "http", "receipt", "webhook", "log",
             "lanes"}
    for key in data:
        if key not in known:
            v.problem(key, "unknown section or key" + _did_you_mean(key, known))
    paytm = _paytm(v, v.table(data, "paytm"))
    polling = _polling(v, v.table(data, "polling"))
    journal_table = v.table(data, "journal")
    journal = JournalConfig(
        path=v.string(journal_table, "journal", "path", DEFAULT_JOURNAL, nonempty=True),
        keep_days=v.integer(journal_table, "journal", "keep_days", DEFAULT_KEEP_DAYS,
                            MIN_KEEP_DAYS, MAX_KEEP_DAYS))
    v.done(journal_table, "journal", {"path", "keep_days"})
    day = _day(v, v.table(data, "day"))
    http = _http(v, v.table(data, "http"))
    receipt = _receipt(v, v.table(data, "receipt"))
    webhook = _webhook(v, v.table(data, "webhook"))
    log = _log(v, v.table(data, "log"))
    lanes = _lanes(v, data.get("lanes", []))
    if v.problems:
        raise ConfigError(v.problems)
    return Config(paytm=paytm, polling=polling, journal=journal, day=day, http=http,
                  receipt=receipt,
                  webhook=webhook, log=log, lanes=lanes, source=source)


T = TypeVar("T")


def _did_you_mean(key: object, known: set[str]) -> str:
    # str(): a TOML key is a string, but config_from_dict also takes other mappings.
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


class _Validator:
    """Reads typed values out of TOML tables, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def table(self, data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, Mapping):
            self.problem(name, "must be a table ([" + name + "])")
            return {}
        return value

    def done(self, table: Mapping[str, Any], prefix: str, keys: set[str]) -> None:
        for key in table:
            if key not in keys:
                self.problem(f"{prefix}.{key}", "unknown key" + _did_you_mean(key, keys))

    def _get(self, table: Mapping[str, Any], prefix: str, key: str, default: T,
             kind: str, check: Callable[[Any], bool]) -> T | Any:
        if key not in table:
            return default
        value = table[key]
        if not check(value):
            self.problem(f"{prefix}.{key}", f"must be {kind} (got {_show(value)})")
            return default
        return value

    def string(self, table: Mapping[str, Any], prefix: str, key: str, default: str,
               nonempty: bool = False) -> str:
        value: str = self._get(table, prefix, key, default, "a string",
                               lambda x: isinstance(x, str))
        if nonempty and not value:
            self.problem(f"{prefix}.{key}", "must not be empty")
        return value

    def boolean(self, table: Mapping[str, Any], prefix: str, key: str, default: bool) -> bool:
        result: bool = self._get(table, prefix, key, default, "true or false",
                                 lambda x: isinstance(x, bool))
        return result

    def integer(self, table: Mapping[str, Any], prefix: str, key: str, default: int,
                low: int, high: int) -> int:
        value: int = self._get(table, prefix, key, default, "an integer",
                               lambda x: isinstance(x, int) and not isinstance(x, bool))
        if not low <= value <= high:
            self.problem(f"{prefix}.{key}", f"must be between {low} and {high} (got {value})")
            return default
        return value

    def seconds(self, table: Mapping[str, Any], prefix: str, key: str, default: float,
                low: float = 0.0, high: float = 30 * 86400.0, positive: bool = True) -> float:
        value = self._get(table, prefix, key, default, "a number of seconds",
                          lambda x: isinstance(x, int | float) and not isinstance(x, bool))
        try:
            number = float(value)
        except OverflowError:  # an integer of 309+ digits: out of range like any other
            number = math.inf
        if math.isnan(number) or math.isinf(number) or number < low or number > high \
                or (positive and number <= 0):
            bound = "greater than 0" if positive else f"at least {low:g}"
            self.problem(f"{prefix}.{key}", f"must be {bound} and at most {high:g} seconds "
                         f"(got {value})")
            return default
        return number

    def strings(self, table: Mapping[str, Any], prefix: str, key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.problem(f"{prefix}.{key}", f"must be a list of strings (got {_show(value)})")
            return ()
        return tuple(value)

    def string_map(self, table: Mapping[str, Any], prefix: str,
                   key: str) -> tuple[tuple[str, str], ...]:
        value = table.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(x, str) for x in value.values()):
            self.problem(f"{prefix}.{key}", "must be a table of strings")
            return ()
        return tuple((str(k), str(x)) for k, x in value.items())


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _paytm(v: _Validator, t: Mapping[str, Any]) -> PaytmConfig:
    d = PaytmConfig()
    p = "paytm"
    mid = v.string(t, p, "mid", d.mid)
    if not _MID_RE.match(mid):
        v.problem("paytm.mid", "must be 1–32 letters and digits")
    channel_id = v.string(t, p, "channel_id", d.channel_id)
    if not _CHANNEL_RE.match(channel_id):
        v.problem("paytm.channel_id", "must be 1–32 letters, digits or _")
    key_file = v.string(t, p, "merchant_key_file", d.merchant_key_file, nonempty=True)
    edc = _base_url(v, "paytm.edc_base_url", v.string(t, p, "edc_base_url", d.edc_base_url))
    pg = _base_url(v, "paytm.pg_base_url", v.string(t, p, "pg_base_url", d.pg_base_url))
    mode_text = v.string(t, p, "checksum_mode", d.checksum_mode.value)
    try:
        mode = ChecksumMode(mode_text)
    except ValueError:
        v.problem("paytm.checksum_mode", f'must be "params" or "json" (got {mode_text!r})')
        mode = d.checksum_mode
    connect = v.seconds(t, p, "connect_timeout_s", d.connect_timeout_s, high=300)
    read = v.seconds(t, p, "read_timeout_s", d.read_timeout_s, high=600)
    ca_file = t.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        v.problem("paytm.ca_file", "must be a string path")
        ca_file = None
    void_path = v.string(t, p, "void_path", d.void_path)
    resend_path = v.string(t, p, "resend_path", d.resend_path)
    for key, path in (("void_path", void_path), ("resend_path", resend_path)):
        if not path.startswith("/"):
            v.problem(f"paytm.{key}", "must start with /")
    client_id = v.string(t, p, "client_id", d.client_id)
    if not 1 <= len(client_id) <= 3:
        v.problem("paytm.client_id", "must be 1–3 characters (Paytm uses C11)")
    display_name = v.string(t, p, "display_name", d.display_name)
    if len(display_name) > 50:
        v.problem("paytm.display_name", "must be at most 50 characters")
    v.done(t, p, {"mid", "channel_id", "merchant_key_file", "edc_base_url", "pg_base_url",
                  "checksum_mode", "connect_timeout_s", "read_timeout_s", "ca_file",
                  "void_path", "resend_path", "client_id", "display_name"})
    return PaytmConfig(mid=mid, channel_id=channel_id, merchant_key_file=key_file,
                       edc_base_url=edc, pg_base_url=pg, checksum_mode=mode,
                       connect_timeout_s=connect, read_timeout_s=read, ca_file=ca_file,
                       void_path=void_path, resend_path=resend_path, client_id=client_id,
                       display_name=display_name)


def _base_url(v: _Validator, key: str, url: str) -> str:
    try:
        parts = urlsplit(url)  # raises ValueError on an unbalanced "[" (an IPv6 host)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        v.problem(key, f"is not a valid URL: bad host or port (got {url!r})")
        return url
    if parts.scheme not in ("https", "http") or not host:
        v.problem(key, f"must be an https:// URL (got {url!r})")
    elif parts.scheme == "http" and not is_loopback_host(host):
        v.problem(key, "plain http:// is allowed only for loopback hosts (127.0.0.1, ::1, "
                       "localhost); use https://")
    if parts.query or parts.fragment:
        v.problem(key, "must not have a query or fragment")
    return url.rstrip("/")


def _polling(v: _Validator, t: Mapping[str, Any]) -> PollingConfig:
    d = PollingConfig()
    p = "polling"
    first = v.seconds(t, p, "first_check_s", d.first_check_s, positive=False, high=3600)
    interval = v.seconds(t, p, "interval_s", d.interval_s, high=3600)
    slow_after = v.seconds(t, p, "slow_after_s", d.slow_after_s, positive=False)
    slow_interval = v.seconds(t, p, "slow_interval_s", d.slow_interval_s, high=3600)
    unknown_after = v.seconds(t, p, "unknown_after_s", d.unknown_after_s)
    grace = v.seconds(t, p, "not_found_grace_s", d.not_found_grace_s, positive=False)
    paylink = v.seconds(t, p, "paylink_interval_s", d.paylink_interval_s, high=3600)
    if unknown_after < first:
        v.problem("polling.unknown_after_s", "must not be shorter than polling.first_check_s")
    v.done(t, p, {"first_check_s", "interval_s", "slow_after_s", "slow_interval_s",
                  "unknown_after_s", "not_found_grace_s", "paylink_interval_s"})
    return PollingConfig(first_check_s=first, interval_s=interval, slow_after_s=slow_after,
                         slow_interval_s=slow_interval, unknown_after_s=unknown_after,
                         not_found_grace_s=grace, paylink_interval_s=paylink)


def _listen(v: _Validator, key: str, text: str) -> None:
    try:
        split_host_port(text)
    except ValueError:
        v.problem(key, f"must be HOST:PORT, like 127.0.0.1:8765 (got {text!r})")


def _http(v: _Validator, t: Mapping[str, Any]) -> HttpConfig:
    d = HttpConfig()
    listen = v.string(t, "http", "listen", d.listen)
    _listen(v, "http.listen", listen)
    password_hash = v.string(t, "http", "password_hash", d.password_hash)
    if password_hash and not password_hash.startswith("scrypt$"):
        v.problem("http.password_hash", "must be the output of `edc-agent hash-password`")
    hostnames = v.strings(t, "http", "hostnames")
    for name in hostnames:
        if not _HOSTNAME.fullmatch(name):
            v.problem("http.hostnames", f"{name!r} is not a host name (letters, digits, "
                      "'-' and '.', no port)")
    v.done(t, "http", {"listen", "password_hash", "hostnames"})
    return HttpConfig(listen=listen, password_hash=password_hash,
                      hostnames=tuple(n.lower().rstrip(".") for n in hostnames))


def _receipt(v: _Validator, t: Mapping[str, Any]) -> ReceiptConfig:
    width = v.integer(t, "receipt", "width", ReceiptConfig().width, 24, 80)
    header = v.strings(t, "receipt", "header")
    footer = v.strings(t, "receipt", "footer")
    v.done(t, "receipt", {"width", "header", "footer"})
    return ReceiptConfig(width=width, header=header, footer=footer)


def _webhook(v: _Validator, t: Mapping[str, Any]) -> WebhookConfig:
    d = WebhookConfig()
    enabled = v.boolean(t, "webhook", "enabled", d.enabled)
    listen = v.string(t, "webhook", "listen", d.listen)
    _listen(v, "webhook.listen", listen)
    path = v.string(t, "webhook", "path", d.path)
    if not path.startswith("/"):
        v.problem("webhook.path", "must start with /")
    v.done(t, "webhook", {"enabled", "listen", "path"})
    return WebhookConfig(enabled=enabled, listen=listen, path=path)


_CLOSE_AT_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _day(v: _Validator, t: Mapping[str, Any]) -> DayConfig:
    close_at = v.string(t, "day", "close_at", DayConfig().close_at).strip()
    if close_at and _CLOSE_AT_RE.match(close_at) is None:
        v.problem("day.close_at", f"must be a time of day HH:MM (IST, 00:00-23:59) or \"\" "
                  f"for no sweep, got {_show(close_at)}")
        close_at = DayConfig().close_at
    v.done(t, "day", {"close_at"})
    return DayConfig(close_at=close_at)


def _log(v: _Validator, t: Mapping[str, Any]) -> LogConfig:
    level = v.string(t, "log", "level", LogConfig().level).lower()
    if level not in ("debug", "info", "warning", "error"):
        v.problem("log.level", "must be debug, info, warning or error")
        level = LogConfig().level
    v.done(t, "log", {"level"})
    return LogConfig(level=level)


def _lanes(v: _Validator, raw: Any) -> tuple[LaneConfig, ...]:
    if not isinstance(raw, list):
        v.problem("lanes", "must be an array of tables ([[lanes]])")
        return ()
    lanes: list[LaneConfig] = []
    names: set[str] = set()
    tcp_ports: dict[tuple[str, int], str] = {}
    for i, t in enumerate(raw):
        p = f"lanes[{i}]"
        if not isinstance(t, Mapping):
            v.problem(p, "must be a table")
            continue
        name = v.string(t, p, "name", "", nonempty=True)
        if "name" not in t:
            v.problem(f"{p}.name", "is required")
        elif name and not _NAME_RE.match(name):
            v.problem(f"{p}.name", "must be 1–32 letters, digits, '_', '.' or '-'")
        if name in names:
            v.problem(f"{p}.name", f"{name!r} is used by another lane")
        names.add(name)
        link = v.string(t, p, "link", "", nonempty="link" in t)
        spec: LinkSpec | None = None
        if "link" not in t:
            v.problem(f"{p}.link", "is required (serial://, usb:// or tcp:// URL)")
        elif link:
            try:
                spec = parse_link_url(link, key=f"{p}.link")
            except ConfigError as exc:
                v.problems.extend(exc.problems)
        if spec is not None and spec.kind == "tcp":
            target = spec.target
            addr = (getattr(target, "host", ""), getattr(target, "port", 0))
            if addr in tcp_ports:
                v.problem(f"{p}.link", f"listens on the same address as lane {tcp_ports[addr]!r}")
            tcp_ports[addr] = name
        tid = v.string(t, p, "tid", "")
        if "tid" not in t:
            v.problem(f"{p}.tid", "is required (the Paytm terminal id, 8 digits)")
        elif not is_tid(tid):
            v.problem(f"{p}.tid", f"must be 1–8 letters or digits (got {tid!r})")
        pos_id = v.string(t, p, "pos_id", "")
        if pos_id and not is_pos_id(pos_id):
            v.problem(f"{p}.pos_id", f"must look like StoreID_POSID, e.g. S12_1 (got {pos_id!r})")
        display = v.string_map(t, p, "display")
        if len(display) > 3:
            v.problem(f"{p}.display", "may hold at most 3 entries (Paytm's pop-up limit)")
        printed = v.string_map(t, p, "print")
        v.done(t, p, {"name", "link", "tid", "pos_id", "display", "print"})
        lanes.append(LaneConfig(name=name, link=link, tid=tid, pos_id=pos_id, spec=spec,
                                display=display, print=printed))
    return tuple(lanes)

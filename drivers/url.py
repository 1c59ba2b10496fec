"""Link URLs: which pipe a lane uses and how it is tuned.

    serial:///dev/ttyUSB0?baudrate=9600        any tty, pty or /dev/serial/by-id/... path
    usb://0483:5740[/SERIAL]                   bulk endpoints of a USB device
    tcp://127.0.0.1:7070                       the agent listens; one register connects

Link-layer timings may be tuned on any URL with query keys (protocol §2 defaults):
`ack_timeout_s` (S1, 1.0), `retries` (S2, 3), `frame_gap_s` (R5, 0.5).
`protocol=1|2|auto` (§6, default `auto`) picks the link version.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from agent.errors import ConfigError

DEFAULT_BAUDRATE = 115200
BAUDRATES = (9600, 19200, 38400, 57600, 115200)  # protocol §1: 9600–115200

# Protocol §2 defaults; a lane may override them in its link URL.
ACK_TIMEOUT_S = 1.0  # S1: wait for ACK/NAK after the LRC
RETRIES = 3  # S2: repetitions after the first send (4 sends in all)
FRAME_GAP_S = 0.5  # R5: a partial frame is dropped after this silence
ACK_DEADLINE_S = 0.1  # R1: the receiver ACKs within this time (not tunable: it is our promise)

LINK_SCHEMES = ("serial", "usb", "tcp")
LINK_OPTIONS = ("baudrate", "ack_timeout_s", "retries", "frame_gap_s", "protocol", "allow")

_USB_RE = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")


class LinkProtocol(enum.StrEnum):
    """Which link versions a lane speaks (protocol §6)."""

    V1 = "1"  # v1 only: a v2 frame is ignored
    V2 = "2"  # v2 only: a v1 frame is answered with a bare NAK
    AUTO = "auto"  # both; send in the version of the last valid frame received


@dataclass(frozen=True, slots=True)
class LinkTimings:
    ack_timeout_s: float = ACK_TIMEOUT_S
    retries: int = RETRIES
    frame_gap_s: float = FRAME_GAP_S


@dataclass(frozen=True, slots=True)
class SerialSpec:
    path: str
    baudrate: int = DEFAULT_BAUDRATE


@dataclass(frozen=True, slots=True)
class UsbSpec:
    vendor_id: int
    product_id: int
    serial: str | None = None


@dataclass(frozen=True, slots=True)
class TcpSpec:
    host: str
    port: int
    allow: tuple[str, ...] = ()  # `allow=ADDR,...`: only these peers; () = any
    takeover: str = "silent"  # `takeover=silent|newest|never`: who wins a second connection


@dataclass(frozen=True, slots=True)
class LinkSpec:
    url: str
    target: SerialSpec | UsbSpec | TcpSpec
    timings: LinkTimings
    protocol: LinkProtocol = LinkProtocol.AUTO

    @property
    def kind(self) -> str:
        match self.target:
            case SerialSpec():
                return "serial"
            case UsbSpec():
                return "usb"
            case TcpSpec():
                return "tcp"


def parse_link_url(url: str, key: str = "link") -> LinkSpec:
    """Parse a link URL; every problem is a `ConfigError` naming `key`."""
    try:
        parts = urlsplit(url)  # raises ValueError on an unbalanced "[" (an IPv6 host)
    except ValueError:
        raise ConfigError([f"{key}: invalid link URL {url!r}"]) from None
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    except ValueError:
        raise ConfigError([f"{key}: cannot read the query of {url!r}"]) from None
    problems: list[str] = []
    timings = _timings(query, key, problems)
    protocol = _protocol(query, key, problems)
    target: SerialSpec | UsbSpec | TcpSpec | None = None
    if parts.scheme == "serial":
        path = parts.path
        if parts.netloc or not path.startswith("/"):
            problems.append(f"{key}: serial URL needs an absolute device path, "
                            f"like serial:///dev/ttyUSB0 (got {url!r})")
        baud_text = query.pop("baudrate", str(DEFAULT_BAUDRATE))
        baudrate = _int(baud_text)
        if baudrate is None or baudrate not in BAUDRATES:
            problems.append(f"{key}: baudrate must be one of {', '.join(map(str, BAUDRATES))}"
                            f" (got {baud_text!r})")
            baudrate = DEFAULT_BAUDRATE
        target = SerialSpec(path=path, baudrate=baudrate)
    elif parts.scheme == "usb":
        m = _USB_RE.match(parts.netloc)
        serial = parts.path.lstrip("/") or None
        if m is None:
            problems.append(f"{key}: USB URL must be usb://VID:PID[/SERIAL] with 4 hex digits "
                            f"each (got {url!r})")
        else:
            target = UsbSpec(int(m.group(1), 16), int(m.group(2), 16), serial)
    elif parts.scheme == "tcp":
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        allow = _allow(query.pop("allow", ""), key, problems)
        takeover = query.pop("takeover", "silent")
        if takeover not in TAKEOVER_MODES:
            problems.append(f"{key}: takeover must be one of {', '.join(TAKEOVER_MODES)} "
                            f"(got {takeover!r})")
        if not host or port is None or not 0 < port < 65536:
            problems.append(f"{key}: TCP URL must be tcp://HOST:PORT (got {url!r})")
        else:
            target = TcpSpec(host=host, port=port, allow=allow, takeover=takeover)
    else:
        close = difflib.get_close_matches(parts.scheme, LINK_SCHEMES, n=1)
        hint = f"did you mean {close[0]}://? " if close else ""
        problems.append(f"{key}: unknown link type {parts.scheme!r}; {hint}use serial://, "
                        "usb:// or tcp://")
        # Which options a link takes depends on its type: with the type wrong, an
        # option error would only be a consequence of the first one.
        query.clear()
    for unknown in sorted(query):
        close = difflib.get_close_matches(unknown, LINK_OPTIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{key}: unknown link option {unknown!r}{hint}")
    if problems or target is None:
        raise ConfigError(problems or [f"{key}: invalid link URL {url!r}"])
    return LinkSpec(url=url, target=target, timings=timings, protocol=protocol)


def _protocol(query: dict[str, str], key: str, problems: list[str]) -> LinkProtocol:
    text = query.pop("protocol", LinkProtocol.AUTO.value)
    try:
        return LinkProtocol(text)
    except ValueError:
        problems.append(f"{key}: protocol must be 1, 2 or auto (got {text!r})")
        return LinkProtocol.AUTO


def _timings(query: dict[str, str], key: str, problems: list[str]) -> LinkTimings:
    defaults = LinkTimings()
    ack = _float(query.pop("ack_timeout_s", str(defaults.ack_timeout_s)))
    if ack is None or not 0.01 <= ack <= 60:
        problems.append(f"{key}: ack_timeout_s must be a number of seconds in 0.01–60")
        ack = defaults.ack_timeout_s
    retries = _int(query.pop("retries", str(defaults.retries)))
    if retries is None or not 0 <= retries <= 10:
        problems.append(f"{key}: retries must be an integer in 0–10")
        retries = defaults.retries
    gap = _float(query.pop("frame_gap_s", str(defaults.frame_gap_s)))
    if gap is None or not 0.01 <= gap <= 60:
        problems.append(f"{key}: frame_gap_s must be a number of seconds in 0.01–60")
        gap = defaults.frame_gap_s
    return LinkTimings(ack_timeout_s=ack, retries=retries, frame_gap_s=gap)


TAKEOVER_MODES = ("silent", "newest", "never")


def _allow(text: str, key: str, problems: list[str]) -> tuple[str, ...]:
    """`allow=ADDR,...`: IP addresses (normalised); empty when not given."""
    addresses: list[str] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        try:
            addresses.append(str(ipaddress.ip_address(item.strip("[]"))))
        except ValueError:
            problems.append(f"{key}: allow must list IP addresses (got {item!r})")
    return tuple(addresses)


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


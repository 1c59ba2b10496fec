"""Link URLs, the drivers' part: which pipe a lane uses.

    serial:///dev/ttyUSB0?baudrate=9600        any tty, pty or /dev/serial/by-id/... path
    usb://0483:5740[/SERIAL]                   bulk endpoints of a USB device
    tcp://127.0.0.1:7070?allow=ADDR,...        the agent listens; one register connects

The drivers read only their own query keys (`baudrate`, `allow`, `takeover`); every other
key is handed up raw in `LinkAddress.options` for the link layer to read
(agent/link/spec.py), which also reports the keys nobody knows.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

DEFAULT_BAUDRATE = 115200
BAUDRATES = (9600, 19200, 38400, 57600, 115200)  # protocol §1: 9600–115200

LINK_SCHEMES = ("serial", "usb", "tcp")
DRIVER_OPTIONS = ("baudrate", "allow", "takeover")

_USB_RE = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")


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


LinkTarget = SerialSpec | UsbSpec | TcpSpec


@dataclass(frozen=True, slots=True)
class LinkAddress:
    """A link URL as the drivers read it. `target` is None when the URL names no pipe;
    `options` holds the query keys that are not the drivers' (the link layer's, or typos)."""

    url: str
    target: LinkTarget | None
    options: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    typed: bool = True  # False: unknown link type, so leftover keys are not worth reporting


def read_link_url(url: str, key: str = "link") -> LinkAddress:
    """Read the pipe out of a link URL; never raises: each problem names `key`."""
    try:
        parts = urlsplit(url)  # raises ValueError on an unbalanced "[" (an IPv6 host)
    except ValueError:
        return LinkAddress(url, None, problems=[f"{key}: invalid link URL {url!r}"])
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    except ValueError:
        return LinkAddress(url, None, problems=[f"{key}: cannot read the query of {url!r}"])
    problems: list[str] = []
    target: LinkTarget | None = None
    typed = True
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
        typed = False
    return LinkAddress(url, target, options=query, problems=problems, typed=typed)


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

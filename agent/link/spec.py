"""A lane's link: the pipe its URL names (drivers) and how the link layer is tuned.

    serial:///dev/ttyUSB0?baudrate=9600        any tty, pty or /dev/serial/by-id/... path
    usb://0483:5740[/SERIAL]                   bulk endpoints of a USB device
    tcp://127.0.0.1:7070                       the agent listens; one register connects

Any URL may carry the link layer's keys (agent/link/timings.py): `ack_timeout_s` (S1,
1.0), `retries` (S2, 3), `frame_gap_s` (R5, 0.5) and `protocol=1|2|auto` (§6, `auto`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from agent.errors import ConfigError
from agent.link.timings import LINK_OPTIONS, LinkProtocol, LinkTimings, read_link_options
from drivers.url import DRIVER_OPTIONS, LinkTarget, SerialSpec, TcpSpec, UsbSpec, read_link_url


@dataclass(frozen=True, slots=True)
class LinkSpec:
    url: str
    target: LinkTarget
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
    address = read_link_url(url, key)
    problems: list[str] = []
    options = dict(address.options)
    timings, protocol = read_link_options(options, key, problems)
    problems.extend(address.problems)
    for unknown in sorted(options) if address.typed else ():
        close = difflib.get_close_matches(unknown, (*DRIVER_OPTIONS, *LINK_OPTIONS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{key}: unknown link option {unknown!r}{hint}")
    if problems or address.target is None:
        raise ConfigError(problems or [f"{key}: invalid link URL {url!r}"])
    return LinkSpec(url=url, target=address.target, timings=timings, protocol=protocol)

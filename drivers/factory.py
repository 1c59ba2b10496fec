"""Pick the driver for a link URL: the agent's side of a lane, or the register's side."""

from __future__ import annotations

from typing import Protocol

from drivers.base import Backoff, Transport
from drivers.errors import TransportError
from drivers.serial_port import SerialTransport
from drivers.tcp import TcpClientTransport, TcpServerTransport
from drivers.url import LinkTarget, SerialSpec, TcpSpec, UsbSpec


class LinkSpec(Protocol):
    """What a driver needs of a lane's link: its URL (for messages) and the pipe it names
    (the agent's `agent.link.spec.LinkSpec` is one)."""

    @property
    def url(self) -> str: ...

    @property
    def target(self) -> LinkTarget: ...


def make_transport(spec: LinkSpec, *, backoff: Backoff | None = None) -> Transport:
    """The agent's side: open the tty, claim the USB device, or listen for the register."""
    target = spec.target
    match target:
        case SerialSpec():
            return SerialTransport(target, url=spec.url, backoff=backoff)
        case UsbSpec():
            # Imported here: pyusb is only needed by lanes that use it.
            from drivers.usb_bulk import UsbTransport

            return UsbTransport(target, url=spec.url, backoff=backoff)
        case TcpSpec():
            return TcpServerTransport(target, url=spec.url, backoff=backoff)
    raise TransportError(f"{spec.url}: no driver for this link type")


def make_peer_transport(spec: LinkSpec, *, backoff: Backoff | None = None) -> Transport:
    """The register's side (the register console): open the other end of the same link."""
    target = spec.target
    match target:
        case SerialSpec():
            # The other end of a serial link is a tty too (a null-modem cable's
            # second port, or the pty the agent is not using); open it the same way.
            return SerialTransport(target, url=spec.url, backoff=backoff)
        case TcpSpec():
            return TcpClientTransport(target, url=spec.url, backoff=backoff)
        case UsbSpec():
            raise TransportError(
                f"{spec.url}: the register console cannot play a USB device (usb:// links "
                "are host-side only); test a USB lane with the register itself, or use a "
                "serial:// or tcp:// link"
            )
    raise TransportError(f"{spec.url}: no driver for this link type")

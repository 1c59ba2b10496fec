"""make_transport / make_peer_transport pick the driver from the link URL."""

from __future__ import annotations

import pytest

from agent.link.spec import parse_link_url
from drivers.errors import TransportError
from drivers.factory import make_peer_transport, make_transport
from drivers.serial_port import SerialTransport
from drivers.tcp import TcpClientTransport, TcpServerTransport
from drivers.usb_bulk import UsbTransport


def test_agent_side() -> None:
    serial = make_transport(parse_link_url("serial:///dev/ttyUSB0?baudrate=9600"))
    assert isinstance(serial, SerialTransport)
    assert serial.spec.baudrate == 9600
    assert serial.status.url == "serial:///dev/ttyUSB0?baudrate=9600"
    assert serial.status.detail["baudrate"] == "9600"
    usb = make_transport(parse_link_url("usb://0483:5740/ABC"))
    assert isinstance(usb, UsbTransport)
    assert usb.spec.serial == "ABC"
    tcp = make_transport(parse_link_url("tcp://127.0.0.1:7070"))
    assert isinstance(tcp, TcpServerTransport)
    assert tcp.status.kind == "tcp"


def test_register_side() -> None:
    assert isinstance(make_peer_transport(parse_link_url("serial:///dev/pts/3")), SerialTransport)
    tcp = make_peer_transport(parse_link_url("tcp://127.0.0.1:7070"))
    assert isinstance(tcp, TcpClientTransport)
    with pytest.raises(TransportError, match="cannot play a USB device"):
        make_peer_transport(parse_link_url("usb://0483:5740"))

"""The drivers' reading of a link URL: only their own keys, the rest handed up raw."""

from __future__ import annotations

import pytest

from drivers.url import SerialSpec, TcpSpec, UsbSpec, read_link_url


def test_the_link_layers_keys_are_handed_up_untouched() -> None:
    address = read_link_url("serial:///dev/ttyS0?baudrate=9600&retries=x&protocol=2&bogus=1")
    assert address.target == SerialSpec(path="/dev/ttyS0", baudrate=9600)
    assert address.options == {"retries": "x", "protocol": "2", "bogus": "1"}
    assert address.problems == [] and address.typed


def test_tcp_takes_allow_and_takeover_and_leaves_the_rest() -> None:
    address = read_link_url("tcp://0.0.0.0:7070?allow=10.0.0.5&takeover=never&frame_gap_s=1")
    assert address.target == TcpSpec(host="0.0.0.0", port=7070, allow=("10.0.0.5",),
                                     takeover="never")
    assert address.options == {"frame_gap_s": "1"}


def test_usb_serial_number_is_the_path() -> None:
    assert read_link_url("usb://0483:5740/ABC").target == UsbSpec(0x0483, 0x5740, "ABC")


@pytest.mark.parametrize(("url", "problem"), [
    ("tcp://[::1:7070", "invalid link URL"),
    ("serial://dev/ttyS0", "absolute device path"),
    ("serial:///dev/ttyS0?baudrate=1200", "baudrate must be one of"),
    ("usb://483:5740", "usb://VID:PID"),
    ("tcp://host", "tcp://HOST:PORT"),
    ("tcp://h:1?takeover=maybe", "takeover must be one of"),
    ("tcp://h:1?allow=nowhere", "allow must list IP addresses"),
])
def test_problems_are_returned_never_raised(url: str, problem: str) -> None:
    address = read_link_url(url, key="lanes[0].link")
    assert address.problems and all(p.startswith("lanes[0].link: ") for p in address.problems)
    assert problem in " ".join(address.problems)


def test_an_unknown_type_marks_its_options_as_not_worth_reporting() -> None:
    address = read_link_url("seriel:///dev/ttyS0?baudrate=9600")
    assert address.target is None and not address.typed
    assert "did you mean serial://?" in address.problems[0]

"""Lane URL option `protocol=1|2|auto` (protocol §6), beside the timing options."""

from __future__ import annotations

import pytest

from agent.errors import ConfigError
from agent.link.spec import parse_link_url
from agent.link.timings import LinkProtocol, LinkTimings


@pytest.mark.parametrize(("url", "expected"), [
    ("serial:///dev/ttyUSB0", LinkProtocol.AUTO),  # the default
    ("serial:///dev/ttyUSB0?protocol=auto", LinkProtocol.AUTO),
    ("serial:///dev/ttyUSB0?protocol=1", LinkProtocol.V1),
    ("tcp://127.0.0.1:7070?protocol=2", LinkProtocol.V2),
    ("usb://0483:5740/ABC?retries=1&protocol=2&ack_timeout_s=0.5", LinkProtocol.V2),
])
def test_protocol_option(url: str, expected: LinkProtocol) -> None:
    spec = parse_link_url(url)
    assert spec.protocol is expected


def test_protocol_does_not_disturb_the_timings() -> None:
    spec = parse_link_url("tcp://127.0.0.1:7070?protocol=2&retries=1")
    assert spec.timings == LinkTimings(retries=1)


@pytest.mark.parametrize("value", ["3", "v2", "AUTO", "", "12"])
def test_bad_protocol_is_a_problem_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"lanes\[0\]\.link: protocol must be 1, 2 or auto"):
        parse_link_url(f"serial:///dev/ttyUSB0?protocol={value}", "lanes[0].link")

"""Fuzzing the configuration loader (agent/config.py): whatever the text or the table,
only ConfigError may come out, and a Config that comes out obeys its own rules.

Three sources: a valid config damaged byte by byte; TOML written from the known sections
and keys with values of every TOML type (and some no one would write); and tables built
directly, as `config_from_dict` receives them from tests and tools.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import budget
from tests.fuzz.oracles import KnownBug, check_config_dict, check_config_text
from tests.fuzz.strategies import mutated_bytes

VALID = """
[paytm]
mid = "TESTMID00000000000001"
merchant_key_file = "/etc/edc-agent/merchant.key"
edc_base_url = "https://securegw-stage.paytm.in"
pg_base_url = "http://127.0.0.1:8900"
connect_timeout_s = 5
read_timeout_s = 20.5

[polling]
first_check_s = 0
interval_s = 2
unknown_after_s = 60
not_found_grace_s = 30

[journal]
path = "/var/lib/edc-agent/journal.db"

[http]
listen = "127.0.0.1:8765"

[receipt]
width = 32
header = ["Store", "GSTIN 22AAAAA0000A1Z5"]

[webhook]
enabled = true
listen = "[::1]:8766"

[log]
level = "debug"

[[lanes]]
name = "till-1"
link = "serial:///dev/ttyUSB0?baudrate=9600&ack_timeout_s=0.5"
tid = "12345678"
pos_id = "S1_1"
display = { Shop = "Tea" }

[[lanes]]
name = "till-2"
link = "tcp://127.0.0.1:7070"
tid = "87654321"
"""

SCHEMA: dict[str, list[str]] = {
    "paytm": ["mid", "channel_id", "merchant_key_file", "edc_base_url", "pg_base_url",
              "checksum_mode", "connect_timeout_s", "read_timeout_s", "ca_file", "void_path",
              "resend_path", "client_id", "display_name", "unknown_key"],
    "polling": ["first_check_s", "interval_s", "slow_after_s", "slow_interval_s",
                "unknown_after_s", "not_found_grace_s", "paylink_interval_s"],
    "journal": ["path"],
    "http": ["listen", "password_hash", "hostnames"],
    "receipt": ["width", "header", "footer"],
    "webhook": ["enabled", "listen", "path"],
    "log": ["level"],
}
LANE_KEYS = ["name", "link", "tid", "pos_id", "display", "print", "extra"]

# Strings worth trying in a URL, path, address or id.
TRICKY = st.sampled_from([
    "", " ", "serial:///dev/ttyS0", "serial://dev", "serial:///dev/x?baudrate=abc",
    "serial:///dev/x?retries=99&frame_gap_s=nan", "tcp://[::1]:7070", "tcp://[::1", "tcp://[",
    "tcp://host:0", "tcp://host:65536", "tcp://:80", "usb://0483:5740/SER", "usb://zz:5740",
    "https://[", "http://[::1]:80/", "https://x:99999", "http://10.0.0.1", "ftp://x",
    "https://example.com/?q", "127.0.0.1:8765", "[::1]:1", "localhost:", ":1", "x:٣",
    "x:²", "S1_1", "_", "scrypt$", "debug", "INFO", "params", "json", "12345678",
    "123456789", "till-1", "a" * 40, "\x00", "\ud800", "☃", "%", "[[", "]]",
])
TOML_LITERALS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.integers(4290, 4400).map(lambda n: "9" * n),  # past Python's int-to-str limit
    st.floats().map(lambda f: "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
                    if math.isinf(f) else repr(f)),
    st.sampled_from(["true", "false", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27",
                     "[]", "{}", "[1, \"a\"]", "{ a = 1 }", "0x1F", "1_000", "+inf"]),
    st.one_of(TRICKY, st.text(max_size=20)).map(json.dumps),
)


@st.composite
def toml_texts(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for section, keys in SCHEMA.items():
        if draw(st.booleans()):
            lines.append(f"[{section}]")
            for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
                lines.append(f"{key} = {draw(TOML_LITERALS)}")
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[lanes]]")
        for key in draw(st.lists(st.sampled_from(LANE_KEYS), max_size=5, unique=True)):
            lines.append(f"{key} = {draw(TOML_LITERALS)}")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=30)))
    return "\n".join(lines)


VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), TRICKY,
    st.text(max_size=10), st.datetimes(), st.dates(),
    st.lists(st.one_of(TRICKY, st.integers()), max_size=3),
    st.dictionaries(st.one_of(TRICKY, st.text(max_size=4)), TRICKY, max_size=4))


@st.composite
def tables(draw: st.DrawFn) -> dict[Any, Any]:
    data: dict[Any, Any] = {}
    for section, keys in SCHEMA.items():
        if draw(st.booleans()):
            data[section] = (draw(VALUES) if draw(st.integers(0, 9)) == 0 else
                             {k: draw(VALUES) for k in draw(st.lists(st.sampled_from(keys),
                                                                     max_size=5, unique=True))})
    if draw(st.booleans()):
        data["lanes"] = draw(st.one_of(VALUES, st.lists(st.one_of(VALUES, st.fixed_dictionaries(
            {}, optional={k: VALUES | TRICKY for k in LANE_KEYS})), max_size=3)))
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.one_of(st.text(max_size=5), st.integers()))] = draw(VALUES)
    return data


@contextlib.contextmanager
def tolerating_known_bugs() -> Iterator[None]:
    """A reported bug (oracles.KNOWN_BUGS) does not fail the search; its corpus case
    (strict xfail) keeps it visible until the fix is in."""
    with contextlib.suppress(KnownBug):
        yield


@budget(200)
@given(mutated_bytes(VALID.encode(), max_ops=6).map(lambda b: b.decode("utf-8", "replace")))
def test_damaged_valid_config(text: str) -> None:
    with tolerating_known_bugs():
        check_config_text(text)


@budget(200)
@given(toml_texts())
def test_generated_toml(text: str) -> None:
    with tolerating_known_bugs():
        check_config_text(text)


@budget(100)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    with tolerating_known_bugs():
        check_config_text(text)


@budget(200)
@given(tables())
def test_generated_tables(data: dict[Any, Any]) -> None:
    with tolerating_known_bugs():
        check_config_dict(data)


def test_the_valid_config_loads() -> None:
    check_config_text(VALID)
    check_config_dict({"journal": {"path": dt.datetime(2024, 1, 1)}})  # a TOML datetime

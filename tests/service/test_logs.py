"""Under systemd, log lines carry syslog priorities; redaction still applies."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.logs import SECRETS, journal_prefix, on_journal, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _journal_stream(path: Path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


def test_priorities_and_redaction_on_the_journal_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    path = tmp_path / "stderr"
    secret = "key-" + secrets.token_hex(8)
    SECRETS.add(secret)
    with path.open("w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", _journal_stream(path))
        setup_logging("debug", stream=stream)
        log = logging.getLogger("agent.test")
        log.error("signing with %s failed", secret)
        log.warning("link down")
        log.info("up")
        log.debug("bytes")
        try:
            raise ValueError(f"bad {secret}")
        except ValueError:
            log.exception("crashed")
    lines = path.read_text().splitlines()
    assert lines[:4] == ["<3>ERROR agent.test: signing with ••• failed",
                         "<4>WARNING agent.test: link down",
                         "<6>INFO agent.test: up",
                         "<7>DEBUG agent.test: bytes"]
    # A traceback stays on one journal line (one entry, one priority), redacted.
    assert len(lines) == 5 and lines[4].startswith("<3>ERROR agent.test: crashed | Traceback")
    assert secret not in path.read_text()


def test_no_prefix_when_stderr_is_not_the_journal_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> None:
    other = tmp_path / "other"
    other.write_text("")
    path = tmp_path / "stderr"
    with path.open("w") as stream:
        # Inherited from a service, but this stderr was redirected to a file.
        monkeypatch.setenv("JOURNAL_STREAM", _journal_stream(other))
        assert not on_journal(stream)
        assert journal_prefix(logging.ERROR, stream) == ""
        setup_logging("info", stream=stream)
        logging.getLogger("agent.test").error("plain")
    assert " ERROR agent.test: plain" in path.read_text()
    assert not path.read_text().startswith("<")


def test_on_journal_tolerates_odd_values(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as stream:
        for value in ("", "1", "a:b", ":"):
            assert not on_journal(stream, {"JOURNAL_STREAM": value})
        assert on_journal(stream, {"JOURNAL_STREAM": _journal_stream(tmp_path / "f")})

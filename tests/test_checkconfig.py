"""`edc-agent check-config` as a newcomer meets it: typos, the key file, the journal's directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.cli import main
from devtools.config import DEMO_KEY_TEXT

LANE = '[[lanes]]\nname = "till-1"\nlink = "tcp://127.0.0.1:7070"\ntid = "12345678"\n'


def _config(tmp: Path, body: str, *, key: bool = True) -> Path:
    key_file = tmp / "merchant.key"
    if key:
        key_file.write_text(DEMO_KEY_TEXT + "\n")
        os.chmod(key_file, 0o600)
    path = tmp / "agent.toml"
    if "[journal]" not in body:  # the default's directory is not on a test machine
        body = f'[journal]\npath = "{tmp / "journal.db"}"\n' + body
    path.write_text(f'[paytm]\nmerchant_key_file = "{key_file}"\n' + body)
    return path


def _problems(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["check-config", "--config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    return [line.removeprefix("  - ") for line in lines[1:]]


def test_a_typod_key_gets_a_suggestion(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, f'[jornal]\npath = "j.db"\n{LANE}')
    text = path.read_text().replace("[paytm]\n", "[paytm]\nread_timout_s = 5\n")
    path.write_text(text)
    assert _problems(path, capsys) == [
        "jornal: unknown section or key (did you mean `journal`?)",
        "paytm.read_timout_s: unknown key (did you mean `read_timeout_s`?)",
    ]


def test_a_typod_link_type_is_one_problem_not_two(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lane = LANE.replace("tcp://127.0.0.1:7070", "serail:///dev/ttyUSB0?baudrate=9600")
    assert _problems(_config(tmp_path, lane), capsys) == [
        "lanes[0].link: unknown link type 'serail'; did you mean serial://? use serial://, "
        "usb:// or tcp://",
    ]


def test_the_missing_key_file_names_its_key_once(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    [problem] = _problems(_config(tmp_path, LANE, key=False), capsys)
    assert problem.startswith("paytm.merchant_key_file: ")
    assert problem.count("paytm.merchant_key_file") == 1


def test_the_journals_directory_is_checked(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    journal = blocker / "journal.db"
    path = _config(tmp_path, f'[journal]\npath = "{journal}"\n{LANE}')
    assert _problems(path, capsys) == [
        f"journal.path: {blocker} is a file, so the directory for {journal} cannot be "
        "made; choose another path",
    ]
    path = _config(tmp_path, f'[journal]\npath = "{tmp_path}"\n{LANE}')
    assert _problems(path, capsys) == [
        f"journal.path: {tmp_path} is a directory; give the journal's file name, e.g. "
        f"{tmp_path / 'journal.db'}",
    ]


def test_a_missing_journal_directory_is_fine_when_it_can_be_made(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "new" / "deeper" / "journal.db"
    path = _config(tmp_path, f'[journal]\npath = "{journal}"\n{LANE}')
    assert main(["check-config", "--config", str(path)]) == 0, capsys.readouterr().err


def test_a_valid_config_shows_the_journal_path_absolute(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _config(tmp_path, f'[journal]\npath = "journal.db"\n{LANE}')
    assert main(["check-config", "--config", str(path)]) == 0
    assert f"journal {tmp_path / 'journal.db'};" in capsys.readouterr().out

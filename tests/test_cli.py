"""The command line: every command's --help explains itself; version; defaults in one place."""

from __future__ import annotations

import argparse
import io
import logging
import re
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

from agent import __version__, cli
from agent.demo import DEMO_HTTP_PORT
from agent.logs import LOG_LEVELS, RedactingFilter, _Formatter, current_level, set_level
from agent.sim.register import console, repl

# The operator contract's commands (architecture.md), each with its own --help.
COMMANDS = ("run", "check-config", "check-journal", "demo", "emulator", "register", "certify",
            "hash-password", "ports", "version")


def _help(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_has_a_description_an_example_and_exit_codes(command: str) -> None:
    text = _help(command)
    _, _, after_usage = text.partition("\n\n")
    description = after_usage.split("\n\n")[0]
    assert len(description.split()) >= 4, text  # a sentence, not just the flags
    examples = text.split("examples:\n", 1)[1]
    assert examples.startswith(f"  edc-agent {command}"), text
    assert re.search(r"^exit codes: 0", text, re.MULTILINE), text


def test_top_level_help_lists_every_command() -> None:
    text = _help()
    for command in COMMANDS:
        assert command in text


def test_version_command_and_flag_print_the_same() -> None:
    command = subprocess.run([sys.executable, "-m", "agent", "version"], capture_output=True,
                             text=True, check=False)
    flag = subprocess.run([sys.executable, "-m", "agent", "--version"], capture_output=True,
                          text=True, check=False)
    assert command.returncode == flag.returncode == 0
    assert command.stdout == flag.stdout == f"edc-agent {__version__}\n"


def test_defaults_shown_in_help_are_the_ones_used() -> None:
    assert cli.WAIT_DEFAULT_S == console.WAIT_DEFAULT_S
    assert cli.PROGRESS_DEFAULT_S == repl.PROGRESS_DEFAULT_S
    assert cli.DEMO_HTTP_PORT == DEMO_HTTP_PORT


def test_register_waits_beyond_the_emulators_terminal_timeout() -> None:
    from agent.sim.paytm.settings import EmulatorSettings

    args = cli._parser().parse_args(["register", "--link", "tcp://127.0.0.1:7070"])
    assert isinstance(args, argparse.Namespace)
    assert args.wait_s > EmulatorSettings().terminal_timeout_s


def test_run_log_level_choices() -> None:
    args = cli._parser().parse_args(["run", "--config", "x.toml", "--log-level", "debug"])
    assert args.log_level == "debug"
    assert tuple(LOG_LEVELS) == ("debug", "info", "warning", "error")


def test_log_lines_are_iso_8601_in_ist() -> None:
    record = logging.LogRecord("agent.x", logging.INFO, __file__, 1, "hello", None, None)
    record.created = 0.0  # 1970-01-01 00:00 UTC
    record.msecs = 0.0
    RedactingFilter().filter(record)
    line = _Formatter(syslog_prefix=False).format(record)
    assert line == "1970-01-01T05:30:00.000+05:30 INFO agent.x: hello"


def test_set_level_changes_the_level_now() -> None:
    root = logging.getLogger()
    before = root.level
    try:
        set_level("debug")
        assert current_level() == "debug"
        with pytest.raises(ValueError, match="log level must be one of"):
            set_level("loud")
    finally:
        root.setLevel(before)


def test_pyproject_license_is_an_spdx_expression() -> None:
    # A TOML table here makes setuptools warn "project.license as a TOML table is
    # deprecated" three times during every install.
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)

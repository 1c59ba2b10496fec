"""`edc-agent check-config`: every problem of a config, each naming its key; exit 0 when valid.

Besides the config text it checks what `run` would trip over next: the merchant key
file (`agent.keyfile` decides what is accepted) and the journal's directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Final

from agent.config import Config, load_config
from agent.errors import ConfigError
from agent.journal.reader import integrity_problems
from agent.journal.store import RECOVER_HINT
from agent.keyfile import key_path, load_merchant_key

PROBLEMS_SHOWN = 10
KEY_FILE_KEY: Final = "paytm.merchant_key_file"
JOURNAL_KEY: Final = "journal.path"
EXIT_VALID: Final = 0
EXIT_INVALID: Final = 1


def _named(key: str, problem: str) -> str:
    """`key: problem`, the key said once even when the problem's text already ends with it."""
    problem = problem.removesuffix(f" ({key})")
    return problem if problem.startswith(f"{key}:") else f"{key}: {problem}"


def journal_problems(config: Config) -> list[str]:
    """Can the agent open (or create) the journal? The agent makes missing directories
    itself, so the question is whether the nearest existing one lets it (SQLite also
    adds -wal and -shm files beside the journal)."""
    path = Path(os.path.abspath(config.journal.path))
    if path.exists():
        if path.is_dir():
            return [f"{JOURNAL_KEY}: {path} is a directory; give the journal's file name, "
                    f"e.g. {path / 'journal.db'}"]
        if not os.access(path, os.R_OK | os.W_OK):
            return [f"{JOURNAL_KEY}: {path} exists but is not readable and writable by "
                    "this user"]
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return [f"{JOURNAL_KEY}: {existing} is a file, so the directory for {path} cannot "
                "be made; choose another path"]
    if not os.access(existing, os.W_OK | os.X_OK):
        what = ("the directory" if existing == path.parent
                else f"{path.parent} cannot be created:")
        return [f"{JOURNAL_KEY}: {what} {existing} is not writable by this user (the agent "
                "must be able to create the journal and its -wal file there)"]
    return []


def _report(path: str, problems: list[str]) -> None:
    noun = "problem" if len(problems) == 1 else "problems"
    print(f"{path}: {len(problems)} {noun}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def check_config_main(args: argparse.Namespace) -> int:
    path: str = args.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        _report(path, list(exc.problems))
        return EXIT_INVALID
    problems: list[str] = []
    try:
        load_merchant_key(config.paytm.merchant_key_file)
    except ConfigError as exc:
        problems.extend(_named(KEY_FILE_KEY, problem) for problem in exc.problems)
    problems.extend(journal_problems(config))
    if problems:
        _report(path, problems)
        return EXIT_INVALID
    print(f"{path}: valid")
    print(f"  merchant {config.paytm.mid}, key file {key_path(config.paytm.merchant_key_file)}")
    print(f"  EDC API {config.paytm.edc_base_url}, PG API {config.paytm.pg_base_url}, "
          f"checksum mode {config.paytm.checksum_mode.value}")
    print(f"  journal {Path(config.journal.path).absolute()}; "
          f"web page http://{config.http.listen}/")
    print(f"  reconciliation with Paytm daily at {config.day.close_at} IST" if config.day.close_at
          else "  no daily reconciliation sweep (day.close_at is \"\")")
    for lane in config.lanes:
        print(f"  lane {lane.name}: {lane.link} → terminal {lane.tid}"
              + (f", POS id {lane.pos_id}" if lane.pos_id else ""))
    if not config.lanes:
        print("  no lanes configured: the agent will serve no register")
    return EXIT_VALID


def check_journal_main(args: argparse.Namespace) -> int:
    """`edc-agent check-journal`: SQLite's full integrity check of the configured journal.

    Exit 0 when sound, 1 when damaged (with what to do), 2 when the config is wrong.
    Safe while the agent runs: it only reads."""
    path: str = args.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    journal_path = config.journal.path
    if not Path(journal_path).exists():
        print(f"journal {journal_path!r} does not exist (yet)", file=sys.stderr)
        return 1
    problems = integrity_problems(journal_path)
    if problems:
        print(f"journal {journal_path!r} is damaged:", file=sys.stderr)
        for problem in problems[:PROBLEMS_SHOWN]:
            print(f"  - {problem}", file=sys.stderr)
        print(f"  {RECOVER_HINT}", file=sys.stderr)
        return 1
    print(f"journal {journal_path!r}: integrity check ok")
    return 0

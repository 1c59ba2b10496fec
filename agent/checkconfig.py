"""`edc-agent check-config`: every problem of a config, each naming its key; exit 0 when valid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config import load_config
from agent.errors import ConfigError
from agent.journal.reader import integrity_problems
from agent.journal.store import RECOVER_HINT
from agent.keyfile import key_path, load_merchant_key

PROBLEMS_SHOWN = 10


def check_config_main(args: argparse.Namespace) -> int:
    path: str = args.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    try:
        load_merchant_key(config.paytm.merchant_key_file)
    except ConfigError as exc:
        print(f"{path}: 1 problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - paytm.merchant_key_file: {problem}", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    print(f"  merchant {config.paytm.mid}, key file {key_path(config.paytm.merchant_key_file)}")
    print(f"  EDC API {config.paytm.edc_base_url}, PG API {config.paytm.pg_base_url}, "
          f"checksum mode {config.paytm.checksum_mode.value}")
    print(f"  journal {config.journal.path}; web page http://{config.http.listen}/")
    print(f"  reconciliation with Paytm daily at {config.day.close_at} IST" if config.day.close_at
          else "  no daily reconciliation sweep (day.close_at is \"\")")
    for lane in config.lanes:
        print(f"  lane {lane.name}: {lane.link} → terminal {lane.tid}"
              + (f", POS id {lane.pos_id}" if lane.pos_id else ""))
    if not config.lanes:
        print("  no lanes configured: the agent will serve no register")
    return 0


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

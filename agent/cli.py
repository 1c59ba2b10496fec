"""`edc-agent` commands (operator contract, architecture.md). Names and flags are stable.

Each command lives in its own module and is imported only when used, so
`edc-agent hash-password` does not pay for aiohttp and the emulator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edc-agent",
        description="Connects cash registers to Paytm EDC terminals and UPI payment links.",
    )
    parser.add_argument("--version", action="version", version=f"edc-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the agent (the daemon)")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")

    p = sub.add_parser("check-config", help="validate a configuration and explain every problem")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")

    p = sub.add_parser("demo", help="agent + Paytm emulator + virtual register, scripted sales")
    p.add_argument("--keep", action="store_true",
                   help="stay up after the script (with the web page) until Ctrl-C")

    p = sub.add_parser("emulator", help="the Paytm cloud emulator on 127.0.0.1")
    p.add_argument("--port", type=int, default=8900, help="TCP port (default 8900)")
    p.add_argument("--config", metavar="FILE",
                   help="serve the merchant of this agent config (MID, key, lane terminals)")
    p.add_argument("--customer-delay-s", type=float, default=None, metavar="S",
                   help="how long the simulated customer takes to pay (default 0)")
    p.add_argument("--webhook-url", metavar="URL", default=None,
                   help="post Paytm's S2S payment callbacks to this URL (the agent's [webhook])")
    p.add_argument("--clock-offset-s", type=float, default=None, metavar="S",
                   help="run Paytm's clock S seconds off this PC's (try edc-agent certify)")

    p = sub.add_parser("register", help="register console: send requests by hand or script")
    p.add_argument("--link", required=True, metavar="URL",
                   help="serial:///dev/pts/N, tcp://127.0.0.1:7070 or usb://VID:PID")
    p.add_argument("--script", metavar="FILE", help="run the commands in FILE, then exit")
    p.add_argument("--hex", action="store_true", help="also print raw bytes in hex")
    p.add_argument("--wait-s", type=float, default=60.0, metavar="S",
                   help="how long to wait for a final result (default 60)")
    p.add_argument("--protocol", choices=("1", "2", "auto"), default=None,
                   help="link version (protocol §6): 2 for CRC frames; auto (the URL's "
                        "protocol= option, default) sends v1 until the agent sends v2")

    p = sub.add_parser("certify", help="go-live checks against the configured Paytm "
                       "(exit 0 all passed, 1 a check failed, 2 bad config)")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--report", metavar="FILE.md", help="also write the report as Markdown")
    p.add_argument("--sale", metavar="PAISE",
                   help="one guided sale of PAISE (and its void) on every lane's terminal; "
                        "staging and loopback only unless --production")
    p.add_argument("--production", action="store_true",
                   help="allow --sale against Paytm's production hosts (real money)")

    p = sub.add_parser("check-journal", help="full integrity check of the journal (read only)")
    p.add_argument("--config", required=True, help="path to the TOML config")

    p = sub.add_parser("report", help="a day's totals (read-only on the journal)")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--day", metavar="YYYY-MM-DD", help="the IST day (default today)")
    p.add_argument("--lane", metavar="NAME", help="one lane only")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text")

    p = sub.add_parser("export", help="transactions, one row each (read-only)")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--from", dest="from_day", metavar="YYYY-MM-DD",
                   help="first IST day (default: the first in the journal)")
    p.add_argument("--to", dest="to_day", metavar="YYYY-MM-DD",
                   help="last IST day, included (default: the last)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default stdout)")

    p = sub.add_parser("show", help="one transaction's timeline, receipt and children "
                       "(read-only)")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("txn", metavar="TXN", help="the transaction id (sale, link or refund id)")

    p = sub.add_parser("bundle", help="a support bundle (.tar.gz), secrets redacted")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("-o", "--output", metavar="FILE.tar.gz",
                   help="where to write it (default edc-agent-bundle-HOST-TIME.tar.gz)")

    sub.add_parser("hash-password", help="print the hash to put in http.password_hash")
    sub.add_parser("ports", help="serial ports and USB devices this machine sees")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command: str = args.command
    try:
        if command == "run":
            from agent.app import run_main

            return run_main(args)
        if command == "check-config":
            from agent.checkconfig import check_config_main

            return check_config_main(args)
        if command == "demo":
            from agent.demo import demo_main

            return demo_main(args)
        if command == "emulator":
            from agent.sim.paytm.server import emulator_main

            return emulator_main(args)
        if command == "register":
            from agent.sim.register.console import console_main

            return console_main(args)
        if command == "certify":
            from agent.certify import certify_main

            return certify_main(args)
        if command == "check-journal":
            from agent.checkconfig import check_journal_main

            return check_journal_main(args)
        if command in ("report", "export", "show"):
            from agent.day import cli as day_cli

            return {"report": day_cli.report_main, "export": day_cli.export_main,
                    "show": day_cli.show_main}[command](args)
        if command == "bundle":
            from agent.bundle import bundle_main

            return bundle_main(args)
        if command == "hash-password":
            from agent.passwords import hash_password_main

            return hash_password_main(args)
        if command == "ports":
            from drivers.discovery import ports_main

            return ports_main(args)
    except KeyboardInterrupt:
        return 130
    print(f"edc-agent: unknown command {command!r}", file=sys.stderr)
    return 2

"""`edc-agent` commands (operator contract, architecture.md). Names and flags are stable.

Each command lives in its own module and is imported only when used, so
`edc-agent hash-password` does not pay for aiohttp and the emulator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from agent import __version__
from agent.logs import LOG_LEVELS

# Defaults shown in --help; the modules that use them are imported only when run.
DEMO_HTTP_PORT: Final = 8765
WAIT_DEFAULT_S: Final = 120.0  # the register console's; = console.WAIT_DEFAULT_S (tested)
PROGRESS_DEFAULT_S: Final = 5.0  # = repl.PROGRESS_DEFAULT_S (tested)


EXIT_CODES_CONFIG: Final = ("exit codes: 0 the config is valid, 1 it is not (every problem "
                             "is listed)")
_RAW: Final = argparse.RawDescriptionHelpFormatter


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str,
             description: str, examples: str, exit_codes: str) -> argparse.ArgumentParser:
    """A subcommand whose --help has a description, examples and its exit codes."""
    return sub.add_parser(
        name, help=summary, description=description, formatter_class=_RAW,
        epilog=f"examples:\n{examples}\n\n{exit_codes}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edc-agent",
        description="Connects cash registers to Paytm EDC terminals and UPI payment links.",
        epilog="Run `edc-agent COMMAND --help` for a command's description, examples and "
               "exit codes.",
    )
    parser.add_argument("--version", action="version", version=f"edc-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(sub, "run", "run the agent (the daemon)",
                 "Run the agent: serve every configured lane, poll Paytm, journal every step "
                 "and serve the technician page. Under systemd it reports READY and feeds "
                 "the watchdog. Stops cleanly on SIGTERM.",
                 "  edc-agent run --config /etc/edc-agent/edc-agent.toml\n"
                 "  edc-agent run --config edc-agent.toml --log-level debug",
                 "exit codes: 0 stopped cleanly, 1 could not run (e.g. the journal), "
                 "2 bad config or key, 130 Ctrl-C")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                   help="overrides the config's [log] level (the page can change it later "
                        "without a restart)")

    p = _command(sub, "check-config", "validate a configuration and explain every problem",
                 "Read a config and its merchant key file the way `run` does and list every "
                 "problem at once, each naming its key. Nothing is opened or changed.",
                 "  edc-agent check-config --config /etc/edc-agent/edc-agent.toml",
                 EXIT_CODES_CONFIG)
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")

    p = _command(sub, "demo", "agent + Paytm emulator + virtual register, scripted sales",
                 "Start a Paytm emulator, the agent and two virtual registers on ptys, run a "
                 "card sale, a UPI sale, a decline, a busy terminal, a repeat, a void and a "
                 "payment link, and print who said what. Nothing leaves this machine.",
                 "  edc-agent demo\n  edc-agent demo --keep\n"
                 "  edc-agent demo --keep --http-port 8080",
                 "exit codes: 0 every step went as told, 1 a step did not, 130 Ctrl-C")
    p.add_argument("--keep", action="store_true",
                   help="stay up after the script (with the web page) until Ctrl-C")
    p.add_argument("--http-port", type=int, default=DEMO_HTTP_PORT, metavar="N",
                   help=f"the technician page's port with --keep (default {DEMO_HTTP_PORT}; "
                        "0 picks a free one)")

    p = _command(sub, "emulator", "the Paytm cloud emulator on 127.0.0.1",
                 "Serve Paytm's EDC and payment-link APIs on 127.0.0.1, with a simulated "
                 "terminal and customer, for development and tests (docs/emulator.md).",
                 "  edc-agent emulator --port 8900\n"
                 "  edc-agent emulator --port 8900 --config edc-agent.toml "
                 "--customer-delay-s 5",
                 "exit codes: 0 stopped, 1 cannot listen, 2 bad arguments or config")
    p.add_argument("--port", type=int, default=8900, help="TCP port (default 8900)")
    p.add_argument("--config", metavar="FILE",
                   help="serve the merchant of this agent config (MID, key, lane terminals)")
    p.add_argument("--customer-delay-s", type=float, default=None, metavar="S",
                   help="how long the simulated customer takes to pay (default 0)")
    p.add_argument("--webhook-url", metavar="URL", default=None,
                   help="post Paytm's S2S payment callbacks to this URL (the agent's [webhook])")
    p.add_argument("--clock-offset-s", type=float, default=None, metavar="S",
                   help="run Paytm's clock S seconds off this PC's (try edc-agent certify)")

    p = _command(sub, "register", "register console: send requests by hand or script",
                 "Be a cash register: send sale, void, status, paylink, refund, ... to the "
                 "agent and print every frame readably. On a terminal: a `> ` prompt with "
                 "history, Tab completion, and results printed as they arrive while you "
                 "type. Type `help` for the commands.",
                 "  edc-agent register --link tcp://127.0.0.1:7070\n"
                 "  > sale 150.00 --txn ORDER0001\n  > status ORDER0001\n"
                 "  edc-agent register --link serial:///dev/ttyUSB0 --script till.txt --hex",
                 "exit codes: 0 the commands ran (declines included), 1 link error or the "
                 "agent refused the connection, 2 bad arguments or script line")
    p.add_argument("--link", required=True, metavar="URL",
                   help="tcp://127.0.0.1:7070, serial:///dev/pts/N or usb://VID:PID")
    p.add_argument("--script", metavar="FILE", help="run the commands in FILE, then exit")
    p.add_argument("--hex", action="store_true", help="also print raw bytes in hex")
    p.add_argument("--wait-s", type=float, default=WAIT_DEFAULT_S, metavar="S",
                   help=f"how long to wait for a final result (default {WAIT_DEFAULT_S:g}: "
                        "beyond the emulator's 60 s terminal timeout)")
    p.add_argument("--progress-s", type=float, default=PROGRESS_DEFAULT_S, metavar="S",
                   help="on a terminal, an elapsed-time line this often while a request "
                        f"waits (default {PROGRESS_DEFAULT_S:g}; 0 none)")
    p.add_argument("--protocol", choices=("1", "2", "auto"), default=None,
                   help="link version (protocol §6): 2 for CRC frames; auto (the URL's "
                        "protocol= option, default) sends v1 until the agent sends v2")

    p = _command(sub, "certify", "go-live checks against the configured Paytm",
                 "Check the way to Paytm (DNS, TCP, TLS), the merchant key, the MID, the "
                 "checksum mode, the clock and Paytm's answers; with --sale one guided sale "
                 "and void per terminal. No money moves without --sale.",
                 "  edc-agent certify --config edc-agent.toml --report certify.md\n"
                 "  edc-agent certify --config edc-agent.toml --sale 100",
                 "exit codes: 0 all passed, 1 a check failed, 2 bad config")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--report", metavar="FILE.md", help="also write the report as Markdown")
    p.add_argument("--sale", metavar="PAISE",
                   help="one guided sale of PAISE (and its void) on every lane's terminal; "
                        "staging and loopback only unless --production")
    p.add_argument("--production", action="store_true",
                   help="allow --sale against Paytm's production hosts (real money)")

    p = _command(sub, "check-journal", "full integrity check of the journal (read only)",
                 "Run SQLite's full integrity check on the configured journal. Only reads: "
                 "safe while the agent runs.",
                 "  edc-agent check-journal --config /etc/edc-agent/edc-agent.toml",
                 "exit codes: 0 sound, 1 damaged or missing (with what to do), 2 bad config")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")

    p = _command(sub, "report", "a day's totals (read-only on the journal)",
                 "Print an IST day's totals per lane/terminal and in all: sales, voids, "
                 "refunds, net, failed and unknown, split by card, UPI and payment link, and "
                 "the last reconciliation sweep. Reads the journal only: works beside a "
                 "running agent and without one.",
                 "  edc-agent report --config /etc/edc-agent/edc-agent.toml\n"
                 "  edc-agent report --config FILE --day 2026-12-01 --lane till-1 --format json",
                 "exit codes: 0 printed, 2 bad config or day, or the journal cannot be read")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--day", metavar="YYYY-MM-DD", help="the IST day (default today)")
    p.add_argument("--lane", metavar="NAME", help="one lane only")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text")

    p = _command(sub, "export", "transactions, one row each (read-only)",
                 "Write every transaction of the IST days asked (archives included), one row "
                 "each: kind, final state, amounts, lane, terminal, Paytm's ids, RRN, masked "
                 "card, method, parent and times in IST. Streamed: any number of rows.",
                 "  edc-agent export --config FILE --from 2026-12-01 --to 2026-12-31 -o dec.csv\n"
                 "  edc-agent export --config FILE --format jsonl",
                 "exit codes: 0 written, 2 bad config or day, or the journal cannot be read")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("--from", dest="from_day", metavar="YYYY-MM-DD",
                   help="first IST day (default: the first in the journal)")
    p.add_argument("--to", dest="to_day", metavar="YYYY-MM-DD",
                   help="last IST day, included (default: the last)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default stdout)")

    p = _command(sub, "show", "one transaction's timeline, receipt and children (read-only)",
                 "Print one transaction as the technician page shows it: its journal "
                 "timeline, the receipt the register got, its void and refunds.",
                 "  edc-agent show --config /etc/edc-agent/edc-agent.toml ORDER0001",
                 "exit codes: 0 printed, 1 no such transaction, 2 bad config or the journal "
                 "cannot be read")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("txn", metavar="TXN", help="the transaction id (sale, link or refund id)")

    p = _command(sub, "bundle", "a support bundle (.tar.gz), secrets redacted",
                 "Write one .tar.gz for support: the config with secrets as •••, versions, "
                 "ports and udev rules, service state, log lines, journal statistics, the "
                 "last transactions' timelines and the day's report. The page's Tools button "
                 "adds the live capture of frames and Paytm calls.",
                 "  edc-agent bundle --config /etc/edc-agent/edc-agent.toml -o support.tar.gz",
                 "exit codes: 0 written, 1 it could not be written, 2 bad config")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    p.add_argument("-o", "--output", metavar="FILE.tar.gz",
                   help="where to write it (default edc-agent-bundle-HOST-TIME.tar.gz)")
    _command(sub, "hash-password", "print the hash to put in http.password_hash",
             "Ask for the technician password twice (no echo) and print the line to put "
             "in the config's [http] section.",
             "  edc-agent hash-password",
             "exit codes: 0 printed, 1 the two entries differ or are empty, 130 Ctrl-C")
    _command(sub, "ports", "serial ports and USB devices this machine sees",
             "List serial ports (with their /dev/serial/by-id names) and USB devices, and "
             "whether this user may open them.",
             "  edc-agent ports",
             "exit codes: 0 listed")
    _command(sub, "version", "print the version (as --version)",
             "Print the program's version.", "  edc-agent version", "exit codes: 0")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command: str = args.command
    try:
        if command == "version":
            print(f"edc-agent {__version__}")
            return 0
        if command == "run":
            # The journal's integrity check reads the whole file: start it now, so it runs
            # while the agent's imports do (agent/startcheck.py).
            from agent.config import load_config
            from agent.errors import ConfigError
            from agent.startcheck import start_journal_check

            try:
                check = start_journal_check(load_config(args.config).journal.path)
            except ConfigError:
                check = None  # run_main reports the config's problems
            from agent.app import run_main

            return run_main(args, check)
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

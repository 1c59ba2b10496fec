"""`edc-agent report`, `export` and `show`: read-only tools on the journal.

They open the journal read-only (beside a running daemon, which WAL allows, or with none)
and never write it; they need only the config (for journal.path and the lanes' terminals),
not the merchant key.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, TextIO

from agent.config import Config, load_config
from agent.day.export import export_range, write_export
from agent.day.totals import (
    DayError,
    day_report,
    ist_text,
    parse_day,
    render_csv,
    render_json,
    render_text,
    today,
)
from agent.errors import ConfigError
from agent.journal import JournalError, JournalReader
from agent.journal.reader import open_read_only

if TYPE_CHECKING:
    from agent.web.facts import TxnDetail


def _open(args: argparse.Namespace) -> tuple[Config, JournalReader]:
    config = load_config(args.config)
    return config, open_read_only(config.journal.path)


def _fail(exc: Exception) -> int:
    if isinstance(exc, ConfigError):
        print(f"edc-agent: {exc.problems[0] if exc.problems else exc}", file=sys.stderr)
        for problem in exc.problems[1:]:
            print(f"  - {problem}", file=sys.stderr)
    else:
        print(f"edc-agent: {exc}", file=sys.stderr)
    return 2


def report_main(args: argparse.Namespace) -> int:
    try:
        day = parse_day(args.day) if args.day else today(time.time())
        config, reader = _open(args)
    except (ConfigError, DayError, JournalError) as exc:
        return _fail(exc)
    try:
        tids = {lane.name: lane.tid for lane in config.lanes}
        if args.lane is not None and args.lane not in tids:
            print(f"edc-agent: no lane {args.lane!r} in {args.config}", file=sys.stderr)
            return 2
        report = day_report(reader, day, lane=args.lane, tids=tids, generated_at=time.time())
    finally:
        reader.close()
    render = {"text": render_text, "csv": render_csv, "json": render_json}[args.format]
    sys.stdout.write(render(report))
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None or path == "-":
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        yield out


def export_main(args: argparse.Namespace) -> int:
    try:
        start: date | None = parse_day(args.from_day) if args.from_day else None
        end: date | None = parse_day(args.to_day) if args.to_day else None
        if start is not None and end is not None and end < start:
            raise DayError("--to is before --from")
        _, reader = _open(args)
    except (ConfigError, DayError, JournalError) as exc:
        return _fail(exc)
    since, until = export_range(start, end)
    try:
        with _output(args.output) as out:
            rows = write_export(reader, since, until, args.format, out)
    except OSError as exc:
        return _fail(exc)
    finally:
        reader.close()
    if args.output not in (None, "-"):
        print(f"{rows} transaction(s) written to {args.output}", file=sys.stderr)
    return 0


def show_main(args: argparse.Namespace) -> int:
    # The page's own view of a transaction (imported here: report and export need no web).
    from agent.web.facts import txn_detail_from

    try:
        config, reader = _open(args)
    except (ConfigError, JournalError) as exc:
        return _fail(exc)
    try:
        records = reader.find_any(args.txn)
        if not records:
            print(f"edc-agent: the journal has no transaction {args.txn!r}", file=sys.stderr)
            return 1
        text = "\n".join(detail_text(txn_detail_from(reader, r, config)) for r in records)
    finally:
        reader.close()
    sys.stdout.write(text)
    return 0


def detail_text(detail: TxnDetail) -> str:
    """One transaction as the page shows it: facts, timeline, receipt, children."""
    row = detail.txn
    lines = [f"{row.kind} {row.txn}  {row.state}  {row.amount_text}  lane {row.lane}"
             + (f"  terminal {row.tid}" if row.tid else ""),
             f"  created {ist_text(row.created_at)} IST, updated {ist_text(row.updated_at)} IST"]
    if row.code or row.message:
        lines.append(f"  Paytm {row.code} {row.message}".rstrip())
    if detail.later:
        lines.append(f"  since: {detail.later}")
    if detail.original is not None:
        o = detail.original
        lines.append(f"  original: {o.kind} {o.txn} {o.state} {o.amount_text}")
    for key in ("paytm_txn_id", "rrn", "card", "method"):
        if detail.payment.get(key):
            lines.append(f"  {key}: {detail.payment[key]}")
    lines.append("Timeline (IST):")
    for event in detail.events:
        code = f" [{event.code}]" if event.code else ""
        lines.append(f"  {ist_text(event.at)}  {event.state:<9}{code} {event.detail}".rstrip())
    for outbox in detail.outbox:
        delivered = (f"delivered {ist_text(outbox.delivered_at)}" if outbox.delivered_at
                     else "superseded" if outbox.superseded else "not yet acknowledged")
        lines.append(f"  result {outbox.id} ({outbox.status}) to {outbox.lane}: {delivered}")
    if detail.receipt:
        lines.append("Receipt:")
        lines += [f"  | {line}" for line in detail.receipt]
    if detail.related:
        lines.append("Children:")
        lines += [f"  {r.kind} {r.txn} {r.state} {r.amount_text}" for r in detail.related]
    return "\n".join(lines) + "\n"

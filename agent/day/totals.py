"""A day's totals (IST calendar day), per lane and in total, from one indexed query.

    sales    successful sales and paid links, including those later voided or refunded
    voids    successful voids          refunds   successful refunds
    net      sales − voids − refunds (paise)
    failed   sales and links declined or never paid
    unknown  sales and links not final yet (unknown, or still being followed)

Each as {"count": N, "amount": "PAISE"}, and the same split by method (card, upi,
paylink). A transaction belongs to the day it was created on: a refund made on Tuesday of
Monday's sale counts on Tuesday. Pure: a reader in, dataclasses and text out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from agent.errors import AgentError
from agent.journal import JournalReader, Kind, SweepRecord, TxnState
from agent.journal.reader import DayTally
from agent.paytm.clock import IST
from agent.receipts import mask, rupees
from agent.register import messages

METHODS = ("card", "upi", "paylink")
FIGURES = ("sales", "voids", "refunds", "failed", "unknown")
DAY_S = 86_400  # IST has no daylight saving: every day is 24 h
_PAYMENTS = (Kind.SALE, Kind.PAYLINK)


class DayError(AgentError):
    """A day or range the close-of-day tools cannot read (a bad date)."""


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DayError(f"{text!r} is not a day: use YYYY-MM-DD") from None


def today(wall: float) -> date:
    return datetime.fromtimestamp(wall, IST).date()


def day_bounds(day: date) -> tuple[float, float]:
    """[start, end) of an IST calendar day, in epoch seconds (the journal's clock)."""
    start = datetime(day.year, day.month, day.day, tzinfo=IST).timestamp()
    return start, start + DAY_S


def day_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, IST).date().isoformat()


def ist_text(epoch: float | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, IST).strftime(
        "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class Tally:
    count: int = 0
    amount: int = 0  # paise

    def plus(self, count: int, amount: int) -> Tally:
        return Tally(self.count + count, self.amount + amount)

    def to_json(self) -> dict[str, object]:
        return {"count": self.count, "amount": str(self.amount)}


@dataclass(frozen=True, slots=True)
class Figures:
    sales: Tally = Tally()
    voids: Tally = Tally()
    refunds: Tally = Tally()
    failed: Tally = Tally()
    unknown: Tally = Tally()

    @property
    def net(self) -> int:
        return self.sales.amount - self.voids.amount - self.refunds.amount

    def plus(self, other: Figures) -> Figures:
        return Figures(**{name: getattr(self, name).plus(getattr(other, name).count,
                                                          getattr(other, name).amount)
                          for name in FIGURES})

    def to_json(self) -> dict[str, object]:
        return {"sales": self.sales.to_json(), "voids": self.voids.to_json(),
                "refunds": self.refunds.to_json(), "net": str(self.net),
                "failed": self.failed.to_json(), "unknown": self.unknown.to_json()}


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Figures in all and per method."""

    figures: Figures = Figures()
    by_method: tuple[tuple[str, Figures], ...] = tuple((m, Figures()) for m in METHODS)

    def method(self, name: str) -> Figures:
        return dict(self.by_method)[name]

    def plus(self, other: Breakdown) -> Breakdown:
        mine, theirs = dict(self.by_method), dict(other.by_method)
        return Breakdown(self.figures.plus(other.figures),
                         tuple((m, mine[m].plus(theirs[m])) for m in METHODS))

    def to_json(self) -> dict[str, object]:
        return {**self.figures.to_json(),
                "by_method": {m: f.to_json() for m, f in self.by_method}}


@dataclass(frozen=True, slots=True)
class LaneTotals:
    lane: str
    tid: str
    totals: Breakdown

    def to_json(self) -> dict[str, object]:
        return {"lane": self.lane, "tid": self.tid, **self.totals.to_json()}


@dataclass(frozen=True, slots=True)
class DayReport:
    day: date
    lanes: tuple[LaneTotals, ...]
    total: Breakdown
    sweep: SweepRecord | None = None
    generated_at: float | None = None
    lane_filter: str | None = field(default=None)

    def to_json(self) -> dict[str, object]:
        return {"day": self.day.isoformat(), "lanes": [lane.to_json() for lane in self.lanes],
                "total": self.total.to_json(), "reconciliation": reconciliation_json(self.sweep)}


def figure_of(tally: DayTally) -> str | None:
    """Which figure a group of transactions adds to (None: it adds to none)."""
    if tally.kind in _PAYMENTS:
        if tally.state is TxnState.SUCCESS:
            return "sales"
        if tally.state is TxnState.FAILED:
            return "failed"
        return "unknown"
    if tally.state is TxnState.SUCCESS:
        return "voids" if tally.kind is Kind.VOID else "refunds"
    return None  # a failed or open void/refund moved no money (open ones: the sweep's list)


def breakdown(tallies: Iterable[DayTally]) -> Breakdown:
    figures: dict[str, dict[str, Tally]] = {m: {f: Tally() for f in FIGURES} for m in METHODS}
    for tally in tallies:
        name = figure_of(tally)
        if name is None:
            continue
        method = tally.method if tally.method in figures else "card"
        figures[method][name] = figures[method][name].plus(tally.count, tally.amount)
    per_method = tuple((m, Figures(**figures[m])) for m in METHODS)
    total = Figures()
    for _, f in per_method:
        total = total.plus(f)
    return Breakdown(total, per_method)


def day_report(reader: JournalReader, day: date, *, lane: str | None = None,
               tids: Mapping[str, str] | None = None,
               generated_at: float | None = None) -> DayReport:
    """The day's totals from the journal. `tids` (lane → terminal, from the config) names
    the terminal of lanes that made only links and refunds that day (rows without a tid)."""
    since, until = day_bounds(day)
    tallies = reader.day_tallies(since, until, lane)
    by_lane: dict[str, list[DayTally]] = {}
    for tally in tallies:
        by_lane.setdefault(tally.lane, []).append(tally)
    configured = dict(tids or {})
    names = [n for n in configured if lane is None or n == lane]
    names += sorted(n for n in by_lane if n not in configured)
    lanes = []
    for name in names:
        rows = by_lane.get(name, [])
        tid = configured.get(name) or max((t.tid for t in rows), default="")
        lanes.append(LaneTotals(name, tid, breakdown(rows)))
    total = Breakdown()
    for lane_totals in lanes:
        total = total.plus(lane_totals.totals)
    return DayReport(day=day, lanes=tuple(lanes), total=total,
                     sweep=reader.last_sweep(day.isoformat()), generated_at=generated_at,
                     lane_filter=lane)


# -- the last sweep ----------------------------------------------------------------------


def sweep_details(record: SweepRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    try:
        value = json.loads(record.report)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def reconciliation_json(record: SweepRecord | None) -> dict[str, object]:
    if record is None:
        return {"swept": False}
    details = sweep_details(record)
    return {"swept": True, "trigger": record.trigger,
            "started_at": ist_text(record.started_at),
            "finished_at": ist_text(record.finished_at), "asked": record.asked,
            "changed": record.changed, "disagreements": record.disagreements,
            "changes": details.get("changes", []), "findings": details.get("findings", [])}


def finding_lines(record: SweepRecord | None) -> list[str]:
    details = sweep_details(record)
    lines = []
    for finding in details.get("findings", []):
        if isinstance(finding, dict):
            lines.append(f"{finding.get('kind', '')} {finding.get('txn', '')} "
                         f"({finding.get('lane', '')}): {finding.get('problem', '')}"
                         f" → {finding.get('action', '')}")
    return lines


# -- rendering ---------------------------------------------------------------------------

_LABELS = (("sales", "Sales"), ("voids", "Voids"), ("refunds", "Refunds"),
           ("failed", "Failed"), ("unknown", "Unknown"))


def _figure_lines(figures: Figures, indent: str) -> list[str]:
    lines = []
    for name, label in _LABELS[:3]:
        tally: Tally = getattr(figures, name)
        lines.append(f"{indent}{label:<10}{tally.count:>6}  {rupees(tally.amount):>16}")
    lines.append(f"{indent}{'Net':<10}{'':>6}  {rupees(figures.net):>16}")
    for name, label in _LABELS[3:]:
        tally = getattr(figures, name)
        lines.append(f"{indent}{label:<10}{tally.count:>6}  {rupees(tally.amount):>16}")
    return lines


def _breakdown_lines(totals: Breakdown) -> list[str]:
    lines = _figure_lines(totals.figures, "  ")
    for method, figures in totals.by_method:
        if figures == Figures():
            continue
        lines.append(f"  {method}:")
        lines += _figure_lines(figures, "    ")
    return lines


def render_text(report: DayReport) -> str:
    lines = [f"Day totals for {report.day.isoformat()} (IST)"]
    if report.generated_at is not None:
        lines.append(f"Printed {ist_text(report.generated_at)} IST")
    for lane in report.lanes:
        lines += ["", f"Lane {lane.lane}" + (f", terminal {lane.tid}" if lane.tid else "")]
        lines += _breakdown_lines(lane.totals)
    if report.lane_filter is None:
        lines += ["", "All lanes", *_breakdown_lines(report.total)]
    lines += ["", *sweep_text(report.sweep)]
    return "\n".join(lines) + "\n"


def sweep_text(record: SweepRecord | None) -> list[str]:
    if record is None:
        return ["Reconciliation with Paytm: not run for this day yet"]
    lines = [f"Reconciliation with Paytm ({record.trigger}, {ist_text(record.finished_at)} "
             f"IST): asked {record.asked}, changed {record.changed}, "
             f"{record.disagreements} disagreement(s)"]
    lines += [f"  ! {line}" for line in finding_lines(record)]
    return lines


CSV_HEADER = ("day", "lane", "tid", "method", "figure", "count", "amount")


def render_csv(report: DayReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    day = report.day.isoformat()
    rows = [(lane.lane, lane.tid, lane.totals) for lane in report.lanes]
    if report.lane_filter is None:
        rows.append(("total", "", report.total))
    for name, tid, totals in rows:
        for method, figures in (("all", totals.figures), *totals.by_method):
            for figure in ("sales", "voids", "refunds"):
                tally: Tally = getattr(figures, figure)
                writer.writerow((day, name, tid, method, figure, tally.count, tally.amount))
            writer.writerow((day, name, tid, method, "net", "", figures.net))
            for figure in ("failed", "unknown"):
                tally = getattr(figures, figure)
                writer.writerow((day, name, tid, method, figure, tally.count, tally.amount))
    return out.getvalue()


def render_json(report: DayReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


def x_report_lines(day: date, lane: LaneTotals, *, width: int, printed_at: float,
                   header: Iterable[str] = ()) -> tuple[str, ...]:
    """The register's X-report: every line at most `width` characters."""
    lines: list[str] = []

    def centred(text: str) -> None:
        lines.append(text[:width].center(width).rstrip())

    def pair(left: str, right: str) -> None:
        gap = width - len(left) - len(right)
        lines.append((left + " " * gap + right) if gap >= 1 else
                     (left + " " + right)[:width])

    rule = "-" * width
    for text in header:
        centred(text)
    centred("X-REPORT (NOT A CLOSE)")
    pair("Day", day.isoformat())
    pair("Printed", datetime.fromtimestamp(printed_at, IST).strftime("%d-%m-%Y %H:%M IST"))
    pair("Lane", lane.lane)
    if lane.tid:
        pair("TID", mask(lane.tid))  # as on the sale slips
    lines.append(rule)
    figures = lane.totals.figures
    for name, label in _LABELS[:3]:
        tally: Tally = getattr(figures, name)
        pair(f"{label} x{tally.count}", rupees(tally.amount))
    pair("NET", rupees(figures.net))
    for name, label in _LABELS[3:]:
        tally = getattr(figures, name)
        pair(f"{label} x{tally.count}", rupees(tally.amount))
    for method, by in lane.totals.by_method:
        if by == Figures():
            continue
        lines.append(rule)
        centred(method.upper())
        pair(f"Sales x{by.sales.count}", rupees(by.sales.amount))
        pair("Net", rupees(by.net))
    lines.append(rule)
    return tuple(line[:width] for line in lines)


def message_figures(figures: Figures) -> messages.DayFigures:
    def tally(t: Tally) -> messages.Tally:
        return messages.Tally(count=t.count, amount=str(t.amount))

    return messages.DayFigures(sales=tally(figures.sales), voids=tally(figures.voids),
                               refunds=tally(figures.refunds), net=str(figures.net),
                               failed=tally(figures.failed), unknown=tally(figures.unknown))

"""The certify report: a progress line per check on the terminal, and the same as Markdown
the merchant can send to Paytm. Nothing secret in either: the key is never in a `Check`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from agent import __version__
from agent.certify.checklist import Point
from agent.certify.model import Check, Findings, Verdict

_MARK = {Verdict.PASS: "PASS", Verdict.WARN: "WARN", Verdict.FAIL: "FAIL",
         Verdict.INFO: "INFO", Verdict.SKIP: "SKIP"}


def progress_line(check: Check) -> str:
    lines = [f"[{_MARK[check.verdict]}] {check.section}: {check.name}: {check.summary}"]
    lines += [f"         {detail}" for detail in check.details]
    return "\n".join(lines)


def verdict_line(findings: Findings) -> str:
    counts = {v: sum(1 for c in findings.checks if c.verdict is v) for v in Verdict}
    tally = ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)
    if findings.failed:
        return f"NOT READY for the first sale: a check failed ({tally})"
    return f"READY: every check passed ({tally})"


def checklist_text(points: Iterable[Point]) -> list[str]:
    lines = ["Paytm's integration checklist (seed 000):"]
    for p in points:
        lines += [f"  {p.number:2d}. {p.paytm}", f"      agent: {p.agent}",
                  f"      this run: {p.proved}"]
    return lines


def markdown(findings: Findings, points: Iterable[Point], *, mid: str, config_path: str,
             edc_url: str, pg_url: str, started: datetime) -> str:
    out = [
        "# edc-agent certify report",
        "",
        f"- When: {started:%Y-%m-%d %H:%M:%S} IST",
        f"- Agent: edc-agent {__version__}",
        f"- Config: `{config_path}`",
        f"- MID: `{mid}`",
        f"- EDC API: {edc_url}",
        f"- PG API: {pg_url}",
        "",
        f"**{verdict_line(findings)}**",
        "",
        "## Checks",
        "",
        "| result | section | check | finding |",
        "|---|---|---|---|",
    ]
    for c in findings.checks:
        out.append(f"| {_MARK[c.verdict]} | {c.section} | {_cell(c.name)} | "
                   f"{_cell(c.summary)} |")
    detailed = [c for c in findings.checks if c.details]
    if detailed:
        out += ["", "## Details", ""]
        for c in detailed:
            out += [f"### {c.section}: {c.name}", "", "```", *c.details, "```", ""]
    out += ["## Paytm's integration checklist", "",
            "| # | Paytm asks | what the agent does | what this run proved |",
            "|---|---|---|---|"]
    for p in points:
        out.append(f"| {p.number} | {_cell(p.paytm)} | {_cell(p.agent)} | {_cell(p.proved)} |")
    out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

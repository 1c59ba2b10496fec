"""What a certify run finds: one `Check` per thing looked at, in the order they ran."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"  # worth a look, does not fail the run
    FAIL = "fail"  # the run fails (exit 1)
    INFO = "info"  # a fact, e.g. "TLS: not applicable (loopback)"
    SKIP = "skip"  # not run (the guided sale without --sale)


@dataclass(frozen=True, slots=True)
class Check:
    section: str  # Network, Clock, EDC, PG, Answers, Sale
    name: str
    verdict: Verdict
    summary: str
    details: tuple[str, ...] = ()


Progress = Callable[[Check], None]


@dataclass(slots=True)
class Findings:
    """The checks so far; `add` also reports each one as it completes (the progress line)."""

    progress: Progress | None = None
    checks: list[Check] = field(default_factory=list)

    def add(self, section: str, name: str, verdict: Verdict, summary: str,
            details: tuple[str, ...] | list[str] = ()) -> Check:
        check = Check(section, name, verdict, summary, tuple(details))
        self.checks.append(check)
        if self.progress is not None:
            self.progress(check)
        return check

    @property
    def failed(self) -> bool:
        return any(c.verdict is Verdict.FAIL for c in self.checks)

    def find(self, section: str, name: str) -> Check | None:
        for check in self.checks:
            if (check.section, check.name) == (section, name):
                return check
        return None

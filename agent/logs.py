"""Logging: one line per event on stderr, secrets redacted, recent lines kept for the web page.

The redaction filter sits on the handlers, not the loggers, so nothing that any
library logs can carry a registered secret past it. Under systemd (stderr is the
stream named by `JOURNAL_STREAM`) lines carry syslog priority prefixes so
`journalctl -p err` works.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, TextIO

REDACTED = "•••"
# IST, UTC+05:30 without daylight saving (as agent.paytm.clock; logs must not import up).
_IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
RECENT_LINES = 2000
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class Secrets:
    """The process-wide set of strings that must never be logged."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) >= 4:  # redacting "a" everywhere would make logs unreadable
            with self._lock:
                self._values = self._values | {value}

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def __contains__(self, text: str) -> bool:
        return any(v in text for v in self._values)


SECRETS = Secrets()


class RedactingFilter(logging.Filter):
    """Rewrites the record's message with every registered secret replaced by •••."""

    def __init__(self, secrets: Secrets = SECRETS) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._secrets.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._secrets.redact(record.exc_text)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


@dataclass(frozen=True, slots=True)
class LogLine:
    at: float
    level: str
    logger: str
    lane: str
    text: str


class RecentLines(logging.Handler):
    """Keeps the last lines (already redacted) for the technician page."""

    def __init__(self, capacity: int = RECENT_LINES) -> None:
        super().__init__()
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_text:
            text += "\n" + record.exc_text
        lane = str(getattr(record, "lane", ""))
        self.lines.append(LogLine(record.created, record.levelname, record.name, lane, text))


def log_time(created: float) -> str:
    """`2026-12-02T07:05:10.539+05:30`: ISO-8601 in IST, the zone of the page, the
    receipts and Paytm, whatever the host's zone (one format for agent and emulator)."""
    return datetime.fromtimestamp(created, _IST).isoformat(timespec="milliseconds")


class _Formatter(logging.Formatter):
    def __init__(self, syslog_prefix: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._syslog = syslog_prefix

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return log_time(record.created)

    def format(self, record: logging.LogRecord) -> str:
        if self._syslog:
            # journald adds its own timestamp; keep the line short.
            line = f"{record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_text:
                line += " | " + record.exc_text.replace("\n", " | ")
            return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{line}"
        text = super().format(record)
        return text.replace("\n", "\n    ")


RECENT = RecentLines()


def on_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journald stream systemd connected (systemd.exec(5)).

    JOURNAL_STREAM holds "DEVICE:INODE" of that stream; comparing it with the stream
    itself keeps a child whose stderr was redirected (or a shell that inherited the
    variable) from writing `<6>` prefixes into a file or a terminal.
    """
    env = os.environ if environ is None else environ
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    try:
        info = os.fstat(stream.fileno())
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):  # unset or odd value; no real descriptor
        return False


def journal_prefix(level: int, stream: TextIO) -> str:
    """`<3>` and friends for a line written straight to `stream` (before logging is set up)."""
    return f"<{_SYSLOG_PRIORITY.get(level, 6)}>" if on_journal(stream) else ""


def setup_logging(level: str = "info", *, stream: TextIO | None = None) -> None:
    """Configure the root logger once for the daemon, the demo or a command."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(_Formatter(syslog_prefix=on_journal(out)))
    root.addHandler(handler)
    root.addHandler(RECENT)
    set_level(level)
    # aiohttp's access log is noise for a technician; our own request log says more.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def set_level(level: str) -> None:
    """Change the level of every logger at once, now (the page's "log level" action)."""
    if level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)} (got {level!r})")
    logging.getLogger().setLevel(level.upper())


def current_level() -> str:
    return logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()


THROTTLE_INTERVAL_S = 60.0  # a repeated complaint is logged at most once per this
THROTTLE_KEYS_MAX = 256


class Throttle:
    """Whether to log a repeated complaint now: once per `interval_s` per key, counting
    what was held back (`take_suppressed`) so the next line can say "and N more"."""

    def __init__(self, interval_s: float = THROTTLE_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str = "") -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if len(self._last) >= THROTTLE_KEYS_MAX and key not in self._last:
            self._last.clear()
        self._last[key] = now
        return True

    def take_suppressed(self, key: str = "") -> int:
        return self._suppressed.pop(key, 0)

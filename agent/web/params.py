"""Query and form parameters, checked: anything unexpected is a 400 that says what is wrong."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from multidict import MultiMapping

from agent.errors import AgentError
from agent.paytm.clock import IST

MAX_TEXT = 100


class BadInput(AgentError):
    """A request parameter is wrong; the message is shown to the technician (400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Params:
    """The parameters of one request, each read at most once with its rule."""

    def __init__(self, source: Mapping[str, object], allowed: Iterable[str]) -> None:
        allowed_set = frozenset(allowed)
        self._values: dict[str, str] = {}
        for key in source:
            if key not in allowed_set:
                names = ", ".join(sorted(allowed_set)) or "none"
                raise BadInput(f"unknown parameter {key!r} (allowed: {names})")
            if isinstance(source, MultiMapping) and len(source.getall(key)) > 1:
                raise BadInput(f"parameter {key!r} given more than once")
            value = source[key]
            if not isinstance(value, str):
                raise BadInput(f"parameter {key!r} must be text")
            self._values[key] = value

    def text(self, name: str, *, pattern: str | None = None, max_len: int = MAX_TEXT,
             what: str = "") -> str:
        value = self._values.get(name, "").strip()
        if len(value) > max_len:
            raise BadInput(f"{name}: at most {max_len} characters")
        if value and pattern is not None and not re.fullmatch(pattern, value):
            raise BadInput(f"{name}: {what or 'not allowed here'} (got {value[:40]!r})")
        return value

    def choice(self, name: str, options: Iterable[str], default: str = "") -> str:
        value = self._values.get(name, "").strip()
        if not value:
            return default
        choices = list(options)
        if value not in choices:
            raise BadInput(f"{name}: must be one of {', '.join(choices)} (got {value[:40]!r})")
        return value

    def integer(self, name: str, *, low: int, high: int, default: int | None = None) -> int:
        value = self._values.get(name, "").strip()
        if not value:
            if default is None:
                raise BadInput(f"{name}: missing")
            return default
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            raise BadInput(f"{name}: must be a whole number (got {value[:40]!r})")
        number = int(value)
        if not low <= number <= high:
            raise BadInput(f"{name}: must be between {low} and {high} (got {number})")
        return number

    def calendar_day(self, name: str) -> date | None:
        """A YYYY-MM-DD date (None when absent)."""
        value = self._values.get(name, "").strip()
        if not value:
            return None
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise BadInput(f"{name}: must be a date like 2024-03-31 (got {value[:40]!r})")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadInput(f"{name}: no such date ({value})") from None

    def day(self, name: str) -> tuple[float, float] | None:
        """A YYYY-MM-DD date as [midnight, next midnight) IST in epoch seconds."""
        day = self.calendar_day(name)
        if day is None:
            return None
        start = datetime(day.year, day.month, day.day, tzinfo=IST)
        return start.timestamp(), (start + timedelta(days=1)).timestamp()

    def raw(self, name: str) -> str:
        return self._values.get(name, "")

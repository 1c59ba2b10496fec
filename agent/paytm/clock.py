"""Paytm's clock: every EDC timestamp is India Standard Time, whatever the host's time zone.

IST is a fixed UTC+05:30 (India has no daylight saving), so a fixed-offset tzinfo is
exact and needs no tz database on the billing PC. Paytm writes times as
``yyyy-MM-dd HH:mm:ss`` (reference §3); PG answers sometimes add ``.0``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
PAYTM_FORMAT = "%Y-%m-%d %H:%M:%S"

# Digits only, so "２０２４" (full-width digits, which int() accepts) never parses; an optional
# fraction of up to 6 digits (Paytm's PG APIs append ".0").
_PAYTM_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?",
    re.ASCII,
)


def now_ist() -> datetime:
    return datetime.now(IST)


def format_paytm(dt: datetime) -> str:
    """`dt` as Paytm writes it, converted to IST; a naive `dt` is refused (its zone is a guess)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("a Paytm timestamp needs a timezone-aware datetime")
    return dt.astimezone(IST).strftime(PAYTM_FORMAT)


def parse_paytm(text: object) -> datetime | None:
    """A Paytm timestamp as an aware IST datetime; None for anything else. Never raises."""
    if not isinstance(text, str):
        return None
    match = _PAYTM_RE.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=IST,
        )
    except ValueError:  # 2024-02-30, 25:00:00 ...
        return None

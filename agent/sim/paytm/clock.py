"""The emulator's clock: the real clocks plus an offset that tests move with `advance()`.

Nothing in the emulator sleeps to simulate the customer; every outcome is computed
from this clock when someone asks (see state.py), so moving the offset is enough.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

# India has no daylight saving time, so a fixed offset is exact and independent of the
# host's time zone database.
IST = timezone(timedelta(hours=5, minutes=30), "IST")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # Paytm's `yyyy-MM-dd HH:mm:ss`
# Far beyond any test's needs, and short of the dates `datetime` cannot represent.
MAX_OFFSET_S = 100 * 365 * 86400.0


@dataclass(frozen=True, slots=True)
class Instant:
    t: float  # monotonic seconds: pacing of the simulated customer and terminal
    wall: float  # epoch seconds: IST timestamps, the "same day" rule for voids

    def ist(self) -> datetime:
        return datetime.fromtimestamp(self.wall, IST)

    def ist_text(self) -> str:
        return self.ist().strftime(TIMESTAMP_FORMAT)

    def ist_date(self) -> date:
        return self.ist().date()


class SimClock:
    def __init__(self, mono: Callable[[], float], wall: Callable[[], float]) -> None:
        self._mono = mono
        self._wall = wall
        self._offset = 0.0

    def now(self) -> Instant:
        return Instant(self._mono() + self._offset, self._wall() + self._offset)

    def advance(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"can only move the clock forward, got {seconds!r} seconds")
        if self._offset + seconds > MAX_OFFSET_S:
            raise ValueError(f"cannot move the clock more than {MAX_OFFSET_S:g} seconds ahead")
        self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset

    def reset(self) -> None:
        self._offset = 0.0

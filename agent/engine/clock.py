"""Money timing on the monotonic clock, and the watch that notices wall-clock jumps.

Every duration that decides money (the not-found grace, `unknown_after_s`, the polling
schedule) is measured by `MoneyClock` on `time.monotonic()`: an NTP correction of the
wall clock (a dead CMOS battery, a technician setting the time) cannot make a sale look
older than it is. Across restarts the elapsed time so far is persisted in the journal
(`txns.elapsed_s`) and continued from there; the time the agent was stopped is not
counted (never more than the truth: the grace and the schedule only ever get longer).
The wall clock stays for what is shown and sent (`txn_time`, the page's timestamps).

`ClockWatch` compares the wall clock with the monotonic clock once per tick: when their
difference moves by more than `JUMP_THRESHOLD_S` the wall clock jumped; that is logged at
WARNING and shown on the page (the money timing is unaffected by construction).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.journal import NotFoundRun, TxnRecord

log = logging.getLogger(__name__)

JUMP_THRESHOLD_S = 2.0  # wall − monotonic moving by more than this is a jump, not drift
JUMPS_KEPT = 16  # the page shows the latest ones
ANCHORS_MAX = 50_000  # rows timed at once; the oldest are forgotten (re-anchored if asked)


@dataclass(frozen=True, slots=True)
class ClockJump:
    at: float  # wall clock after the jump
    delta_s: float  # how far the wall clock moved against the monotonic clock


class MoneyClock:
    """Elapsed seconds since a row was sent, on the monotonic clock."""

    def __init__(self, mono: Callable[[], float] = time.monotonic) -> None:
        self._mono = mono
        # row id → (monotonic reading, elapsed at that reading)
        self._anchors: dict[int, tuple[float, float]] = {}

    def start(self, row_id: int, elapsed_s: float = 0.0) -> None:
        """Time `row_id` from now, `elapsed_s` already behind it (no-op if timed)."""
        if row_id in self._anchors:
            return
        if len(self._anchors) >= ANCHORS_MAX:
            del self._anchors[next(iter(self._anchors))]
        self._anchors[row_id] = (self._mono(), max(0.0, elapsed_s))

    def elapsed(self, record: TxnRecord) -> float:
        anchor = self._anchors.get(record.row_id)
        if anchor is None:  # sent by an earlier run: continue from what it persisted
            self.start(record.row_id, record.elapsed_s)
            anchor = self._anchors[record.row_id]
        at, base = anchor
        return base + max(0.0, self._mono() - at)

    def forget(self, row_id: int) -> None:
        self._anchors.pop(row_id, None)

    def snapshot(self, row_ids: Iterable[int]) -> dict[int, float]:
        """Elapsed so far of the timed rows among `row_ids` (to persist)."""
        now = self._mono()
        return {r: base + max(0.0, now - at) for r in row_ids
                if (anchor := self._anchors.get(r)) is not None for at, base in (anchor,)}


class ClockWatch:
    """Notices the wall clock jumping against the monotonic clock."""

    def __init__(self, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 threshold_s: float = JUMP_THRESHOLD_S) -> None:
        self._wall = wall
        self._mono = mono
        self._threshold_s = threshold_s
        self._offset = wall() - mono()
        self.jumps: deque[ClockJump] = deque(maxlen=JUMPS_KEPT)

    def check(self) -> ClockJump | None:
        wall = self._wall()
        offset = wall - self._mono()
        delta = offset - self._offset
        if abs(delta) <= self._threshold_s:
            return None
        self._offset = offset
        jump = ClockJump(at=wall, delta_s=delta)
        self.jumps.append(jump)
        log.warning("the wall clock jumped %+.1f s against the monotonic clock (NTP "
                    "correction or a manual change); payment timing is unaffected, "
                    "timestamps before and after the jump do not compare", delta)
        return jump


NOT_FOUND_ANSWERS_MIN = 3  # "not found" answers, spread over the whole grace, before failed


def not_found_answered(run: NotFoundRun | None, elapsed_s: float,
                       grace_s: float) -> tuple[NotFoundRun, bool]:
    """Paytm said "not found" at `elapsed_s` on the row's money clock, after `run` (None:
    the answer before was another one, or there was none). The run with this answer, and
    whether it is now evidence that the request never reached Paytm.

    One "not found" past the grace is no evidence (the sale may still be on its way
    through Paytm's systems): only `NOT_FOUND_ANSWERS_MIN` answers in a row whose first
    and last are at least the grace apart are. Any other answer ends the run (the caller
    drops it). The run is journaled with the row (`txns.not_found_*`), so a restart
    continues it on the same money clock instead of waiting a whole grace again."""
    run = NotFoundRun(first_s=elapsed_s, count=1) if run is None \
        else NotFoundRun(first_s=run.first_s, count=run.count + 1)
    return run, run.count >= NOT_FOUND_ANSWERS_MIN and elapsed_s - run.first_s >= grace_s

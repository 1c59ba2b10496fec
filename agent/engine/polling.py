"""When to ask Paytm again. Pure functions of elapsed time and configuration.

EDC sale/void (reference §9, `[polling]` keys): first check `first_check_s` after the
Sale, then every `interval_s`, every `slow_interval_s` after `slow_after_s`; the
register hears `unknown` at `unknown_after_s`. After that, reconciliation follows
Paytm's published late-notification schedule (reference §15): 15 min, 30 min, 1 h,
6 h, 12 h, 24 h, 48 h and 72 h after the Sale; Paytm itself gives up at 72 h.

Payment links (reference §15): every `paylink_interval_s` (8 a minute) while the link
is live, then the same 72-hour schedule. Refund status: 30 s, 2 min, 10 min, 1 h, 6 h,
then daily for 7 days (reference §17).
"""

from __future__ import annotations

from agent.config import PollingConfig

RECONCILE_AT_S: tuple[float, ...] = (
    15 * 60, 30 * 60, 3600, 6 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 72 * 3600,
)
REFUND_AT_S: tuple[float, ...] = (
    30, 120, 600, 3600, 6 * 3600, *(86400.0 * d for d in range(1, 8)),
)
ERROR_BACKOFF_MAX_S = 60.0  # while Paytm is unreachable, never wait longer than this to retry
MIN_DELAY_S = 0.0


def edc_delay(elapsed_s: float, cfg: PollingConfig, *, checks_done: int) -> float:
    """Delay before the next status check of a sale or void still being waited for."""
    if checks_done == 0:
        return max(MIN_DELAY_S, cfg.first_check_s - elapsed_s)
    interval = cfg.interval_s if elapsed_s < cfg.slow_after_s else cfg.slow_interval_s
    # Never sleep past the moment the register must hear `unknown`.
    return max(MIN_DELAY_S, min(interval, cfg.unknown_after_s - elapsed_s)) \
        if elapsed_s < cfg.unknown_after_s else interval


def scheduled_delay(elapsed_s: float, schedule: tuple[float, ...]) -> float | None:
    """Delay to the next point of a fixed schedule, or None when it is exhausted."""
    for at in schedule:
        if at > elapsed_s:
            return at - elapsed_s
    return None


def reconcile_delay(elapsed_s: float) -> float | None:
    return scheduled_delay(elapsed_s, RECONCILE_AT_S)


def error_backoff(base_s: float, failures: int) -> float:
    """After `failures` consecutive failed status calls: base doubled each time, capped."""
    return float(min(base_s * (2 ** min(failures, 16)), max(base_s, ERROR_BACKOFF_MAX_S)))

from __future__ import annotations

import pytest

from agent.config import PollingConfig
from agent.engine.polling import edc_delay, error_backoff, reconcile_delay

CFG = PollingConfig()  # 5 s first, 5 s interval, 15 s after 180 s, unknown at 900 s


@pytest.mark.parametrize(
    ("elapsed", "checks", "expected"),
    [
        (0.0, 0, 5.0),  # first check after first_check_s
        (2.0, 0, 3.0),  # ... counted from the Sale, also after a restart
        (9.0, 0, 0.0),  # overdue: check at once
        (5.0, 1, 5.0),  # then every interval_s
        (179.0, 30, 5.0),
        (180.0, 31, 15.0),  # slower after slow_after_s
        (895.0, 80, 5.0),  # never sleep past unknown_after_s
        (1000.0, 90, 15.0),
    ],
)
def test_edc_schedule(elapsed: float, checks: int, expected: float) -> None:
    assert edc_delay(elapsed, CFG, checks_done=checks) == pytest.approx(expected)


def test_reconciliation_follows_paytm_72_hour_schedule() -> None:
    assert reconcile_delay(900.0) == pytest.approx(0.0 + 30 * 60 - 900)
    assert reconcile_delay(60 * 60 + 1) == pytest.approx(6 * 3600 - 3601)
    assert reconcile_delay(72 * 3600) is None


def test_error_backoff_is_capped() -> None:
    assert error_backoff(5.0, 0) == 5.0
    assert error_backoff(5.0, 1) == 10.0
    assert error_backoff(5.0, 10) == 60.0

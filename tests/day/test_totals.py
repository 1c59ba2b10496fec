"""Day totals as pure data: which figure a group adds to, the sums, the X-report's width."""

from __future__ import annotations

from datetime import date

import pytest

from agent.day.totals import (
    DayError,
    LaneTotals,
    breakdown,
    day_bounds,
    figure_of,
    parse_day,
    x_report_lines,
)
from agent.journal import Kind, TxnState
from agent.journal.reader import DayTally


def _tally(kind: Kind, state: TxnState, method: str, count: int, amount: int) -> DayTally:
    return DayTally(lane="till-1", tid="12345678", kind=kind, state=state, method=method,
                    count=count, amount=amount)


def test_each_group_adds_to_one_figure() -> None:
    assert figure_of(_tally(Kind.SALE, TxnState.SUCCESS, "card", 1, 1)) == "sales"
    assert figure_of(_tally(Kind.PAYLINK, TxnState.FAILED, "paylink", 1, 1)) == "failed"
    assert figure_of(_tally(Kind.SALE, TxnState.PENDING, "card", 1, 1)) == "unknown"
    assert figure_of(_tally(Kind.VOID, TxnState.SUCCESS, "card", 1, 1)) == "voids"
    assert figure_of(_tally(Kind.REFUND, TxnState.SUCCESS, "upi", 1, 1)) == "refunds"
    assert figure_of(_tally(Kind.REFUND, TxnState.FAILED, "upi", 1, 1)) is None


def test_net_and_the_method_split() -> None:
    totals = breakdown([_tally(Kind.SALE, TxnState.SUCCESS, "card", 2, 30000),
                        _tally(Kind.SALE, TxnState.SUCCESS, "upi", 1, 5000),
                        _tally(Kind.VOID, TxnState.SUCCESS, "card", 1, 10000),
                        _tally(Kind.REFUND, TxnState.SUCCESS, "upi", 1, 9000)])
    assert totals.figures.sales.count == 3 and totals.figures.net == 16000
    assert totals.method("card").net == 20000 and totals.method("upi").net == -4000
    assert totals.method("paylink").sales.count == 0
    assert totals.to_json()["net"] == "16000"


@pytest.mark.parametrize("width", [24, 32, 40])
def test_the_x_report_fits_the_slip(width: int) -> None:
    lane = LaneTotals("till-with-a-long-name", "12345678", breakdown(
        [_tally(Kind.SALE, TxnState.SUCCESS, "card", 123456, 99_999_999_999_99)]))
    lines = x_report_lines(date(2026, 3, 14), lane, width=width, printed_at=0.0,
                           header=["A store name much longer than any slip is wide"])
    assert lines and all(len(line) <= width for line in lines)
    assert any("XXXX5678" in line for line in lines)  # the terminal masked, as on slips


def test_days_are_ist_calendar_days() -> None:
    start, end = day_bounds(date(2026, 3, 14))
    assert end - start == 86_400
    assert start == 1773426600.0  # 2026-03-14 00:00 IST = 2026-03-13 18:30 UTC
    with pytest.raises(DayError):
        parse_day("14-03-2026")

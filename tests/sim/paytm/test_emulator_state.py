"""The simulated terminals and customers without HTTP: a fake clock, typed requests."""

from __future__ import annotations

import pytest

from agent.sim.paytm import Behaviour, EmulatorSettings, Outcome, behaviour_for
from agent.sim.paytm.clock import Instant, SimClock
from agent.sim.paytm.state import EdcState, StateError, StatusKind
from agent.sim.paytm.validation import Refused, SaleRequest, StatusRequest, VoidRequest

MID, TID = "TESTMID00000000000001", "12345678"
T0 = Instant(100.0, 1_704_085_200.0)  # 2024-01-01 10:30:00 IST


def at(seconds: float) -> Instant:
    return Instant(T0.t + seconds, T0.wall + seconds)


def sale(txn: str, amount: str = "100", tid: str = TID) -> SaleRequest:
    return SaleRequest(mid=MID, tid=tid, txn=txn, amount=amount, date_time="2024-01-01 10:30:00",
                       reference=None, extended_info=None, extend_info=None)


def status(txn: str, void: bool = False) -> StatusRequest:
    return StatusRequest(mid=MID, tid=TID, txn=txn, date_time="2024-01-01 10:30:00", void=void)


@pytest.mark.parametrize(("amount", "behaviour"), [
    ("101", Behaviour.DECLINED), ("2", Behaviour.NEVER_PAYS), ("12303", Behaviour.REJECTED),
    ("104", Behaviour.LATE_RECORD), ("105", Behaviour.LOST_RESPONSE), ("106", Behaviour.UPI),
    ("100", Behaviour.CARD), ("107", Behaviour.CARD), ("1", Behaviour.DECLINED),
    ("110", Behaviour.CARD), ("999999999999", Behaviour.CARD),
])
def test_magic_amount_table(amount: str, behaviour: Behaviour) -> None:
    assert behaviour_for(amount) is behaviour


def test_outcome_is_decided_by_the_clock_not_by_timers() -> None:
    state = EdcState(EmulatorSettings(customer_delay_s=4))
    state.start_sale(sale("ORDER0001", "101"), T0)
    assert state.status(status("ORDER0001"), at(3.99)).kind is StatusKind.PENDING
    view = state.status(status("ORDER0001"), at(4))
    assert view.kind is StatusKind.FAILED and view.reason == "Transaction declined by bank"
    assert view.sale is not None and view.sale.decided == at(4)


def test_nobody_looking_still_frees_the_terminal_in_time() -> None:
    state = EdcState(EmulatorSettings(terminal_timeout_s=60))
    state.start_sale(sale("ORDER0001", "102"), T0)
    with pytest.raises(Refused) as busy:
        state.start_sale(sale("ORDER0002"), at(59))
    assert busy.value.code == "0333"
    state.start_sale(sale("ORDER0002"), at(60))
    [first, _] = state.sales(at(60))
    assert first.outcome is Outcome.TIMEOUT


def test_payment_details_are_reproducible() -> None:
    details = []
    for _ in range(2):
        state = EdcState(EmulatorSettings())
        state.start_sale(sale("ORDER0001"), T0)
        view = state.status(status("ORDER0001"), T0)
        assert view.sale is not None
        details.append(view.sale.payment)
    assert details[0] == details[1] and details[0] is not None


def test_void_timeline_and_finish() -> None:
    state = EdcState(EmulatorSettings(customer_delay_s=2))
    state.start_sale(sale("ORDER0001"), T0)
    void = VoidRequest(mid=MID, tid=TID, txn="ORDER0001", date_time="2024-01-01 10:30:05")
    with pytest.raises(Refused, match="still pending"):
        state.start_void(void, at(1))
    state.start_void(void, at(2))
    assert state.status(status("ORDER0001", void=True), at(3)).kind is StatusKind.VOID_PENDING
    assert state.status(status("ORDER0001", void=True), at(4)).kind is StatusKind.VOID_SUCCESS
    assert state.status(status("ORDER0001"), at(4)).kind is StatusKind.SUCCESS
    with pytest.raises(StateError):
        state.finish("ORDER0001", "success", at(5))


def test_sim_clock_only_moves_forward() -> None:
    clock = SimClock(lambda: 10.0, lambda: 1000.0)
    clock.advance(5)
    assert clock.now() == Instant(15.0, 1005.0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(float("inf"))
    clock.reset()
    assert clock.now() == Instant(10.0, 1000.0)


def test_settings_refuse_negative_times() -> None:
    with pytest.raises(ValueError, match="customer_delay_s"):
        EmulatorSettings(customer_delay_s=-1)
    with pytest.raises(ValueError, match="terminal_timeout_s"):
        EmulatorSettings(terminal_timeout_s=float("nan"))

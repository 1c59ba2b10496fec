"""The sweep's rules that need no Paytm: when it runs, which rows it asks about. The sweep
itself runs end to end in tests/day and tests/web/test_day.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from agent.engine.results import NOT_RECEIVED_CODE
from agent.engine.sweep import needs_asking, next_close
from agent.journal import Kind, TxnRecord, TxnState
from agent.paytm.clock import IST

ROW = TxnRecord(row_id=1, kind=Kind.SALE, txn="T1", lane="till-1", tid="12345678",
                amount="100", parent="", state=TxnState.SUCCESS, request="{}",
                txn_time="2026-03-14 10:00:00", created_at=0.0, updated_at=0.0, sent_at=0.0,
                code="0000", message="Approved", reply="", payment='{"paytm_txn_id":"P1"}',
                not_sent=False)


def _ist(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=IST).timestamp()


def test_next_close_is_today_or_tomorrow_in_ist() -> None:
    assert next_close(_ist("2026-03-14 10:00"), "23:45") == _ist("2026-03-14 23:45")
    assert next_close(_ist("2026-03-14 23:45"), "23:45") == _ist("2026-03-15 23:45")
    assert next_close(_ist("2026-03-14 23:50"), "00:05") == _ist("2026-03-15 00:05")


def test_which_rows_are_asked_again() -> None:
    assert not needs_asking(ROW)  # a success with Paytm's id: settled
    assert needs_asking(replace(ROW, payment=""))  # checklist 5: Paytm's id missing
    assert not needs_asking(replace(ROW, kind=Kind.VOID, payment=""))  # the sale's id
    for state in (TxnState.SENDING, TxnState.ACCEPTED, TxnState.PENDING, TxnState.UNKNOWN):
        assert needs_asking(replace(ROW, state=state))
    assert not needs_asking(replace(ROW, state=TxnState.RECEIVED))  # never sent
    declined = replace(ROW, state=TxnState.FAILED, code="0005", message="Declined")
    assert not needs_asking(declined)  # Paytm's own word
    lost = replace(declined, code=NOT_RECEIVED_CODE)
    assert needs_asking(lost)  # the agent's conclusion: asked again
    assert not needs_asking(replace(lost, not_sent=True))  # provably never reached Paytm

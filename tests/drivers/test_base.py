"""TransportStatus.wait_state and Backoff."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from drivers.base import Backoff, TransportState, TransportStatus


async def test_wait_state_returns_at_once_when_already_there() -> None:
    status = TransportStatus(url="x", kind="fd", state=TransportState.UP)
    assert await status.wait_state(TransportState.UP, TransportState.DOWN) is TransportState.UP


async def test_wait_state_sees_a_transition_that_is_undone_before_the_waiter_runs() -> None:
    status = TransportStatus(url="x", kind="fd", state=TransportState.UP)
    waiter = asyncio.create_task(status.wait_state(TransportState.RECONNECTING))
    await asyncio.sleep(0)  # let the waiter register (ordering only, not timing)
    status.set_state(TransportState.RECONNECTING, "gone")
    status.set_state(TransportState.UP)
    assert await waiter is TransportState.RECONNECTING
    assert status.last_error == "gone"
    assert status._waiters == []


async def test_cancelled_waiter_is_forgotten() -> None:
    status = TransportStatus(url="x", kind="fd")
    waiter = asyncio.create_task(status.wait_state(TransportState.UP))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert status._waiters == []
    status.set_state(TransportState.UP)  # nothing to wake, nothing raised


def test_status_asdict_has_no_waiters() -> None:
    status = TransportStatus(url="x", kind="fd", detail={"baudrate": "9600"})
    assert set(dataclasses.asdict(status)) == {
        "url", "kind", "state", "last_error", "since", "reconnects", "bytes_in", "bytes_out",
        "detail",
    }


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial_s=0.5, max_s=2.0, factor=2.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5

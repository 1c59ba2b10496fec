"""Suite-wide fixtures. The lingering-task check fails any async test that leaves work behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def _no_lingering_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    # Let callbacks scheduled by the test's own teardown run before judging.
    for _ in range(3):
        await asyncio.sleep(0)
    lingering = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    for task in lingering:
        task.cancel()
    if lingering:
        await asyncio.gather(*lingering, return_exceptions=True)
        names = ", ".join(sorted(t.get_name() + ":" + repr(t.get_coro()) for t in lingering))
        pytest.fail(f"test left {len(lingering)} task(s) running: {names}")

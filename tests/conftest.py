"""Suite-wide fixtures. The lingering check fails any async test that leaves work behind:
tasks still running, or timers (`loop.call_later`) still scheduled — a `Link` gap timer or
a retry that would fire after the test has gone. And an entry point a test runs in-process
(`edc-agent register`, `demo`, ...) configures the process's logging as it would in its own
process; the root logger is put back afterwards, so the next test sees the default."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)


def _timers(loop: asyncio.AbstractEventLoop) -> set[asyncio.TimerHandle]:
    scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
    return {t for t in scheduled if not t.cancelled()}


@pytest.fixture(autouse=True)
async def _no_lingering_tasks() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    timers_before = _timers(loop)
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
    timers = _timers(loop) - timers_before
    if timers:
        for timer in timers:
            timer.cancel()
        names = ", ".join(sorted(repr(t) for t in timers))
        pytest.fail(f"test left {len(timers)} timer(s) scheduled: {names}")

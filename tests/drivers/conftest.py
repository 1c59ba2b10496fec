"""Driver tests: also fail a test that leaves a USB reader thread running."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

# The reader thread gets this long to notice close(): one USB read timeout.
THREAD_EXIT_S = 2.0


@pytest.fixture(autouse=True)
def _no_lingering_usb_threads() -> Iterator[None]:
    yield
    ours = [t for t in threading.enumerate() if t.name.startswith("usb-read")]
    for thread in ours:
        thread.join(THREAD_EXIT_S)
    alive = [t.name for t in ours if t.is_alive()]
    if alive:
        pytest.fail(f"test left USB reader thread(s) running: {', '.join(alive)}")

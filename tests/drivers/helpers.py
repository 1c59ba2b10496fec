"""Shared test helpers for the drivers: fast backoff, bounded waits (ptys: devtools.pty)."""

from __future__ import annotations

import asyncio

from drivers.base import Backoff, Transport, TransportState

# Upper bound for any awaited event in these tests. Tests wait on events and
# state changes; this only turns a hang into a failure.
WAIT_S = 5.0


def fast_backoff() -> Backoff:
    return Backoff(initial_s=0.01, max_s=0.05)


async def wait_state(transport: Transport, *states: TransportState) -> TransportState:
    async with asyncio.timeout(WAIT_S):
        return await transport.wait_state(*states)


async def read_exactly(transport: Transport, n: int) -> bytes:
    data = bytearray()
    async with asyncio.timeout(WAIT_S):
        while len(data) < n:
            data += await transport.read()
    return bytes(data)

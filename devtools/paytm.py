"""The `emulator` fixture: what the Paytm client tests (tests/paytm) and the emulator's own
tests (tests/sim/paytm) run against. Each directory's conftest imports it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.sim.paytm import Emulator, EmulatorSettings


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator with default settings (demo merchant, no customer delay, params checksum),
    serving on 127.0.0.1 on a free port; `emulator.base_url` is "http://127.0.0.1:PORT".

    Use `emulator.advance(seconds)` to move its clock instead of sleeping.
    """
    emu = Emulator(EmulatorSettings())
    async with emu.serve(host="127.0.0.1", port=0):
        yield emu

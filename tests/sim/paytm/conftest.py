"""The emulator on a loopback port (as tests/paytm has it) and a raw client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from agent.sim.paytm import Emulator
from devtools.paytm import emulator
from tests.sim.paytm.raw import RawPaytm

__all__ = ["emulator", "paytm"]


@pytest.fixture
async def paytm(emulator: Emulator) -> AsyncIterator[RawPaytm]:
    async with aiohttp.ClientSession() as session:
        yield RawPaytm(session, emulator.base_url)

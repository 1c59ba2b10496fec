"""The `emulator` fixture: what the Paytm client tests (tests/paytm) and the emulator's own
tests (tests/sim/paytm) run against. Each directory's conftest imports it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest

from agent.paytm.settings import PaytmConfig
from agent.sim.paytm import DEMO_MID, Emulator, EmulatorSettings

POS: Final = "S12_1"  # a payment link's StoreID_POSID
LINK_LIFETIME: Final = dt.timedelta(minutes=15)


def paytm_config(base_url: str, **overrides: Any) -> PaytmConfig:
    """The clients' settings against an emulator: both APIs on its base URL, short timeouts."""
    return PaytmConfig(**{"mid": DEMO_MID, "pg_base_url": base_url, "edc_base_url": base_url,
                          "connect_timeout_s": 5.0, "read_timeout_s": 5.0, **overrides})


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The emulator with default settings (demo merchant, no customer delay, params checksum),
    serving on 127.0.0.1 on a free port; `emulator.base_url` is "http://127.0.0.1:PORT".

    Use `emulator.advance(seconds)` to move its clock instead of sleeping.
    """
    emu = Emulator(EmulatorSettings())
    async with emu.serve(host="127.0.0.1", port=0):
        yield emu

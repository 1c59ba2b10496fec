"""What every emulator module shares: settings, clock, record, faults, state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agent.sim.paytm.clock import SimClock
from agent.sim.paytm.faults import FaultQueue
from agent.sim.paytm.pg_state import PgState
from agent.sim.paytm.record import Recorder
from agent.sim.paytm.settings import EmulatorSettings
from agent.sim.paytm.state import EdcState


@dataclass(slots=True)
class EmulatorContext:
    settings: EmulatorSettings
    clock: SimClock
    recorder: Recorder = field(default_factory=Recorder)
    faults: FaultQueue = field(default_factory=FaultQueue)
    edc: EdcState | None = None
    pg: PgState | None = None  # payment links and refunds (it refunds EDC sales too)
    apis: set[str] = field(default_factory=set)  # names usable in Fault.api
    # Set while the server shuts down so injected delays end at once instead of holding
    # the shutdown (and the test) for their full length.
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def create(cls, settings: EmulatorSettings) -> EmulatorContext:
        edc = EdcState(settings)
        return cls(settings=settings, clock=SimClock(settings.clock, settings.wall_clock),
                   edc=edc, pg=PgState(settings, edc))

    @property
    def edc_state(self) -> EdcState:
        if self.edc is None:
            raise RuntimeError("the EDC module is not set up")
        return self.edc

    @property
    def pg_state(self) -> PgState:
        if self.pg is None:
            raise RuntimeError("the PG module is not set up")
        return self.pg

    async def pause(self, seconds: float) -> None:
        if seconds <= 0 or self.closing.is_set():
            return
        try:
            async with asyncio.timeout(seconds):
                await self.closing.wait()
        except TimeoutError:
            pass

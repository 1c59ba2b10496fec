"""Offline stand-in for Paytm's staging cloud: the EDC APIs and the PG APIs of
All-in-One Payment Request (payment links, Transaction Status, refunds, webhooks).

    from agent.sim.paytm import Emulator, EmulatorSettings, Fault
    emu = Emulator(EmulatorSettings(customer_delay_s=0))
    async with emu.serve() as base_url:   # "http://127.0.0.1:PORT"
        ...
        emu.advance(5)                    # move its clock; never sleep in tests
        emu.pay("ORD1001")                # the link's customer pays now
        await emu.deliver_webhooks()      # S2S callbacks, when a webhook URL is set

See docs/emulator.md for the magic amounts, faults and codes.
"""

from agent.sim.paytm.app import Emulator
from agent.sim.paytm.clock import IST, Instant
from agent.sim.paytm.faults import Fault, FaultError, FaultKind
from agent.sim.paytm.magic import Behaviour, Outcome, behaviour_for
from agent.sim.paytm.pg_state import (
    LinkBehaviour,
    LinkOutcome,
    LinkStatus,
    RefundStatus,
    link_behaviour_for,
)
from agent.sim.paytm.record import RecordedRequest
from agent.sim.paytm.settings import (
    DEMO_INACTIVE_TID,
    DEMO_KEY,
    DEMO_MERCHANT,
    DEMO_MID,
    DEMO_TIDS,
    EmulatorSettings,
    Merchant,
    ResultStyle,
    Terminal,
    demo_bench_tid,
)
from agent.sim.paytm.signature import SimKey
from agent.sim.paytm.state import StateError, UnknownError
from agent.sim.paytm.webhooks import WebhookDelivery
from agent.sim.paytm.wire import MAX_BODY_BYTES

__all__ = [
    "DEMO_INACTIVE_TID",
    "DEMO_KEY",
    "DEMO_MERCHANT",
    "DEMO_MID",
    "DEMO_TIDS",
    "IST",
    "MAX_BODY_BYTES",
    "Behaviour",
    "Emulator",
    "EmulatorSettings",
    "Fault",
    "FaultError",
    "FaultKind",
    "Instant",
    "LinkBehaviour",
    "LinkOutcome",
    "LinkStatus",
    "Merchant",
    "Outcome",
    "RecordedRequest",
    "RefundStatus",
    "ResultStyle",
    "SimKey",
    "StateError",
    "Terminal",
    "UnknownError",
    "WebhookDelivery",
    "behaviour_for",
    "demo_bench_tid",
    "link_behaviour_for",
]

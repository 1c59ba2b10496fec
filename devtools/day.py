"""One shop day through the real register protocol: card and UPI sales, a decline, a void,
a partial refund, a paid link, an unknown the sweep resolves and a sale the agent wrongly
closed as "not received" (Paytm took the money: the sweep's disagreement).

The agent runs with `POLLING` (unknown after 1 s, "not found" is evidence at once); the
emulator with `SETTINGS` (refunds final at once). The close-of-day tests (tests/day) and
the web page's (tests/web/test_day.py) run the same day.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.register.messages import Paylink, Refund, Result, Sale, Void
from agent.sim.paytm import Emulator, EmulatorSettings
from devtools.stack import WAIT_S, Register

POLLING = {"unknown_after_s": 1.0, "not_found_grace_s": 0}
SETTINGS = EmulatorSettings(refund_delay_s=0)

CARD, UPI, DECLINED, VOIDED, REFUNDED = "DAYCARD00001", "DAYUPI000001", "DAYDECL00001", \
    "DAYVOID00001", "DAYRFND00001"
LINK, UNKNOWN, LOST = "DAYLINK00001", "DAYUNKN00001", "DAYLOST00001"
REFUND_ID = "DAYREFUND001"

# The figures of the day once the sweep has resolved UNKNOWN (paise).
SALES = {CARD: 10000, UPI: 20006, VOIDED: 15000, REFUNDED: 50000, LINK: 25000, UNKNOWN: 10002}
FAILED = {DECLINED: 30001, LOST: 40004}
VOID_PAISE, REFUND_PAISE = 15000, 20000


@dataclass
class Day:
    results: dict[str, Result]


async def _final(register: Register, request: Sale | Void | Paylink | Refund) -> Result:
    exchange = await register.client.request(request, WAIT_S)
    assert isinstance(exchange.final, Result), exchange.replies
    return exchange.final


async def run_day(register: Register, emulator: Emulator) -> Day:
    results: dict[str, Result] = {}
    for txn, paise in ((CARD, 10000), (UPI, 20006), (DECLINED, 30001), (VOIDED, 15000),
                       (REFUNDED, 50000)):
        results[txn] = await _final(register, Sale(id=f"s-{txn}", txn=txn, amount=str(paise)))
    assert results[CARD].status == "success" and results[DECLINED].status == "failed"
    void = await _final(register, Void(id="v1", txn=VOIDED))
    assert void.status == "success"
    refund = await _final(register, Refund(id="f1", txn=REFUNDED, refund_id=REFUND_ID,
                                           amount=str(REFUND_PAISE)))
    assert refund.status == "success"
    link = await _final(register, Paylink(id="l1", txn=LINK, amount="25000",
                                          phone="9876543210"))
    assert link.status == "success"
    # 02: the customer never pays in time for the agent: `unknown` after 1 s.
    unknown = await _final(register, Sale(id="s-unkn", txn=UNKNOWN, amount="10002"))
    assert unknown.status == "unknown"
    # Later, at Paytm, the customer pays (the terminal is free again for the next sale).
    emulator.finish(UNKNOWN, "success")
    # 04: Paytm says "not found" for its first seconds; with no grace the agent closes it
    # as not received, although Paytm has the payment.
    lost = await _final(register, Sale(id="s-lost", txn=LOST, amount="40004"))
    assert lost.status == "failed" and lost.code == "0404"
    emulator.advance(60)  # now Paytm has the lost sale's record
    return Day(results)

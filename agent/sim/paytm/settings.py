"""Who the emulator is: its merchants, their terminals, and how it behaves.

The demo merchant is what `edc-agent demo`, the tests and the benchmarks run
against. Its bench terminals (70000001–70000999) are a predicate rather than a
list so a thousand lanes cost nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from agent.sim.paytm.signature import ChecksumMode, SimKey

DEMO_MID = "TESTMID00000000000001"
DEMO_KEY = SimKey(b"DEMOKEY123456789")
DEMO_TIDS: tuple[str, ...] = ("12345678", "87654321")  # the named active demo terminals
DEMO_INACTIVE_TID = "99999999"  # configured but inactive: Sale answers 0007
DEMO_BENCH_TID_FIRST = 70000001
DEMO_BENCH_TID_LAST = 70000999
_BENCH_TID_RE = re.compile(r"7\d{7}")

DEFAULT_TERMINAL_TIMEOUT_S = 60.0  # a customer who never pays keeps the terminal this long
DEFAULT_NOT_FOUND_WINDOW_S = 3.0  # magic 04: Status Enquiry says 0404 this long after the Sale
# Payment links (PG module): see docs/emulator.md, "Payment links".
DEFAULT_LATE_PAYMENT_S = 120.0  # magic 12: the customer pays this long after the Send
DEFAULT_BANK_PENDING_S = 60.0  # magic 15: Transaction Status says PENDING 402 this long
DEFAULT_REFUND_DELAY_S = 10.0  # a refund stays PENDING 601 this long, then succeeds
# UPI's per-transaction limit (₹1,00,000): a larger link amount is refused (2007).
DEFAULT_MAX_LINK_PAISE = 10_000_000


def demo_bench_tid(n: int) -> str:
    """The n-th bench terminal of the demo merchant, n = 1..999."""
    if not 1 <= n <= DEMO_BENCH_TID_LAST - DEMO_BENCH_TID_FIRST + 1:
        raise ValueError(f"bench terminal number must be 1..999, got {n}")
    return str(DEMO_BENCH_TID_FIRST + n - 1)


def _is_demo_bench_tid(tid: str) -> bool:
    return (_BENCH_TID_RE.fullmatch(tid) is not None
            and DEMO_BENCH_TID_FIRST <= int(tid) <= DEMO_BENCH_TID_LAST)


class ResultStyle(StrEnum):
    """Where the one-letter status goes in `resultInfo` (reference §4.3: the docs disagree).

    observed:   resultStatus "ACCEPTED_SUCCESS", resultCode "A"  (what Odoo receives)
    documented: resultStatus "A", resultCode "ACCEPTED_SUCCESS"  (the Sale page's table)
    """

    OBSERVED = "observed"
    DOCUMENTED = "documented"


@dataclass(frozen=True, slots=True)
class Terminal:
    tid: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Merchant:
    mid: str
    key: SimKey
    terminals: tuple[Terminal, ...] = ()
    # Terminals too many to list (bench lanes): active when the predicate says so.
    also_active: Callable[[str], bool] | None = None

    def configured(self, tid: str) -> bool | None:
        """True/False: the terminal is configured active/inactive; None: unknown terminal."""
        for terminal in self.terminals:
            if terminal.tid == tid:
                return terminal.active
        if self.also_active is not None and self.also_active(tid):
            return True
        return None

    def describe_terminals(self) -> str:
        active = [t.tid for t in self.terminals if t.active]
        inactive = [t.tid for t in self.terminals if not t.active]
        parts = [", ".join(active) if active else "no listed terminals"]
        if self.also_active is _is_demo_bench_tid:
            parts.append(f"{DEMO_BENCH_TID_FIRST}..{DEMO_BENCH_TID_LAST}")
        elif self.also_active is not None:
            parts.append("more by rule")
        text = " + ".join(parts)
        return text + (f" (inactive: {', '.join(inactive)})" if inactive else "")


DEMO_MERCHANT = Merchant(
    mid=DEMO_MID,
    key=DEMO_KEY,
    terminals=(*(Terminal(tid) for tid in DEMO_TIDS), Terminal(DEMO_INACTIVE_TID, active=False)),
    also_active=_is_demo_bench_tid,
)


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    merchants: tuple[Merchant, ...] = (DEMO_MERCHANT,)
    checksum_mode: ChecksumMode = ChecksumMode.PARAMS
    customer_delay_s: float = 0.0  # from Sale (or Void) accepted to the customer's decision
    terminal_timeout_s: float = DEFAULT_TERMINAL_TIMEOUT_S
    not_found_window_s: float = DEFAULT_NOT_FOUND_WINDOW_S
    result_style: ResultStyle = ResultStyle.OBSERVED
    # PG module (payment links, refunds). customer_delay_s above also paces the link customer.
    late_payment_s: float = DEFAULT_LATE_PAYMENT_S
    bank_pending_s: float = DEFAULT_BANK_PENDING_S
    refund_delay_s: float = DEFAULT_REFUND_DELAY_S
    max_link_paise: int = DEFAULT_MAX_LINK_PAISE
    resend_path: str = "/order/resendpaymentrequest"  # reference §13: path Unconfirmed
    # S2S callbacks to the agent when a link order is final; None: off (can be set later
    # with Emulator.configure_webhooks). "form" (key-value, CHECKSUMHASH) or "json".
    webhook_url: str | None = None
    webhook_format: str = "form"
    # Simulated time = these clocks + emulator.advance() offset. `clock` paces the customer;
    # `wall_clock` (epoch seconds) gives IST timestamps and the "same day" rule for voids.
    clock: Callable[[], float] = field(default=time.monotonic)
    wall_clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        # Any string of the mode ("json", or the agent's own enum of the same values) becomes
        # ours: the services compare with `is`, and a foreign member would never match.
        object.__setattr__(self, "checksum_mode", ChecksumMode(self.checksum_mode))
        for name in ("customer_delay_s", "terminal_timeout_s", "not_found_window_s",
                     "late_payment_s", "bank_pending_s", "refund_delay_s"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"{name} must be ≥ 0, got {value!r}")
        if self.max_link_paise < 1:
            raise ValueError(f"max_link_paise must be ≥ 1, got {self.max_link_paise!r}")
        if not self.resend_path.startswith("/"):
            raise ValueError(f"resend_path must start with /, got {self.resend_path!r}")
        if self.webhook_format not in ("form", "json"):
            raise ValueError(f"webhook_format must be form or json, got {self.webhook_format!r}")
        mids = [m.mid for m in self.merchants]
        if len(set(mids)) != len(mids):
            raise ValueError("two merchants with the same MID")

    def merchant(self, mid: str) -> Merchant | None:
        for merchant in self.merchants:
            if merchant.mid == mid:
                return merchant
        return None

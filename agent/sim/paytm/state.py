"""The simulated terminals and transactions. Pure: no I/O, no asyncio; time is passed in.

Nothing runs in the background. A sale or void records when it started and what the
customer will do; its outcome is worked out from the clock whenever somebody looks
(Status Enquiry, a new Sale on the same terminal, the control API). So a test moves
the clock with `advance()` and never sleeps, and no timer outlives a test.

    Sale accepted (0009) ──customer_delay_s──► success | declined | rejected
                         └─terminal_timeout_s─► timeout        (amount ending in 02)
    Void accepted (0009) ──customer_delay_s──► void success
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agent.sim.paytm.clock import Instant
from agent.sim.paytm.magic import (
    FAILURE_REASONS,
    Behaviour,
    Outcome,
    PaymentDetails,
    behaviour_for,
    honour_payment_mode,
    natural_outcome,
    payment_details,
)
from agent.sim.paytm.settings import EmulatorSettings
from agent.sim.paytm.validation import (
    CODE_INVALID,
    MODE_QR,
    Refused,
    SaleRequest,
    StatusRequest,
    VoidRequest,
)

CODE_NOT_FOUND = "0029"  # unknown MID or TID
CODE_INACTIVE = "0007"
CODE_BUSY = "0333"
CODE_DUPLICATE = "0233"


class StateError(Exception):
    """A control request that cannot apply now (nothing pending, wrong outcome word...)."""


class UnknownError(StateError):
    """A control request names a transaction or terminal the emulator does not have."""


class VoidOutcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


VOID_FAILED_REASON = "Void rejected on terminal"


@dataclass(slots=True)
class Void:
    tid: str
    started: Instant
    date_time: str
    outcome: VoidOutcome | None = None
    decided: Instant | None = None


@dataclass(slots=True)
class Sale:
    request: SaleRequest
    started: Instant
    behaviour: Behaviour
    outcome: Outcome | None = None
    decided: Instant | None = None
    payment: PaymentDetails | None = None
    voids: list[Void] = field(default_factory=list)

    @property
    def mid(self) -> str:
        return self.request.mid

    @property
    def tid(self) -> str:
        return self.request.tid

    @property
    def txn(self) -> str:
        return self.request.txn

    @property
    def status(self) -> str:
        """"pending", "success" or "failed", as of the last settlement."""
        if self.outcome is None:
            return "pending"
        return "success" if self.outcome.paid else "failed"

    @property
    def void(self) -> Void | None:
        """The latest void attempt."""
        return self.voids[-1] if self.voids else None

    @property
    def voided(self) -> bool:
        return any(v.outcome is VoidOutcome.SUCCESS for v in self.voids)


class StatusKind(StrEnum):
    NOT_FOUND = "not_found"  # 0404
    PENDING = "pending"  # 0010
    SUCCESS = "success"  # 0000
    FAILED = "failed"  # 0011
    VOID_NOT_FOUND = "void_not_found"  # 0180
    VOID_PENDING = "void_pending"  # 0010
    VOID_SUCCESS = "void_success"  # 0000
    VOID_FAILED = "void_failed"  # 0090


@dataclass(frozen=True, slots=True)
class StatusView:
    kind: StatusKind
    sale: Sale | None = None
    reason: str | None = None  # resultMsg for failures


class EdcState:
    def __init__(self, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._sales: dict[tuple[str, str], Sale] = {}  # (mid, merchantTransactionId)
        self._busy: dict[str, Sale] = {}  # tid → the sale whose sale or void holds it
        self._terminal_override: dict[str, bool] = {}

    # ------------------------------------------------------------------
    # Terminals

    def terminal_active(self, mid: str, tid: str) -> bool | None:
        merchant = self._settings.merchant(mid)
        configured = merchant.configured(tid) if merchant is not None else None
        if configured is None:
            return None
        return self._terminal_override.get(tid, configured)

    def set_terminal_active(self, tid: str, active: bool) -> None:
        if not any(m.configured(tid) is not None for m in self._settings.merchants):
            raise UnknownError(f"no merchant has terminal {tid!r}")
        self._terminal_override[tid] = active

    def _check_terminal(self, mid: str, tid: str, *, need_active: bool) -> None:
        if self._settings.merchant(mid) is None:
            raise Refused(CODE_NOT_FOUND, "paytmMid")
        active = self.terminal_active(mid, tid)
        if active is None:
            raise Refused(CODE_NOT_FOUND, "paytmTid")
        if need_active and not active:
            raise Refused(CODE_INACTIVE, "paytmTid")

    def _holder(self, tid: str, now: Instant) -> Sale | None:
        """The sale whose sale or void still occupies `tid`, settling it first."""
        sale = self._busy.get(tid)
        if sale is None:
            return None
        self._settle(sale, now)
        if sale.outcome is None or (sale.void is not None and sale.void.outcome is None):
            return sale
        del self._busy[tid]
        return None

    # ------------------------------------------------------------------
    # Sale, Status Enquiry, Void

    def start_sale(self, request: SaleRequest, now: Instant) -> Sale:
        """Accept the sale (0009) or raise `Refused` with Paytm's code."""
        self._check_terminal(request.mid, request.tid, need_active=True)
        # A duplicate id is refused before the busy check: Paytm knows the order id first.
        if (request.mid, request.txn) in self._sales:
            raise Refused(CODE_DUPLICATE, "merchantTransactionId")
        if self._holder(request.tid, now) is not None:
            raise Refused(CODE_BUSY, "paytmTid")
        sale = Sale(request=request, started=now, behaviour=behaviour_for(request.amount))
        self._sales[(request.mid, request.txn)] = sale
        self._busy[request.tid] = sale
        return sale

    def status(self, request: StatusRequest, now: Instant) -> StatusView:
        self._check_terminal(request.mid, request.tid, need_active=False)
        sale = self._sales.get((request.mid, request.txn))
        # Assumption: Paytm looks a transaction up by MID, TID and id together, so asking on
        # another terminal finds nothing.
        if sale is None or sale.tid != request.tid:
            return StatusView(StatusKind.NOT_FOUND)
        self._settle(sale, now)
        if request.void:
            return self._void_view(sale)
        if (sale.behaviour is Behaviour.LATE_RECORD
                and now.t - sale.started.t < self._settings.not_found_window_s):
            return StatusView(StatusKind.NOT_FOUND)
        if sale.outcome is None:
            return StatusView(StatusKind.PENDING, sale)
        if sale.outcome.paid:
            return StatusView(StatusKind.SUCCESS, sale)
        return StatusView(StatusKind.FAILED, sale, FAILURE_REASONS[sale.outcome])

    @staticmethod
    def _void_view(sale: Sale) -> StatusView:
        void = sale.void
        if void is None:
            return StatusView(StatusKind.VOID_NOT_FOUND, sale)
        if void.outcome is None:
            return StatusView(StatusKind.VOID_PENDING, sale)
        if void.outcome is VoidOutcome.SUCCESS:
            return StatusView(StatusKind.VOID_SUCCESS, sale)
        return StatusView(StatusKind.VOID_FAILED, sale, VOID_FAILED_REASON)

    def start_void(self, request: VoidRequest, now: Instant) -> Sale:
        """Accept the void (0009) or raise `Refused`.

        Paytm documents only "successful sales of the same day"; it publishes no code for
        breaking that rule, so the emulator answers 0002 naming merchantTransactionId with
        the reason (an assumption, see docs/emulator.md).
        """
        self._check_terminal(request.mid, request.tid, need_active=True)
        sale = self._sales.get((request.mid, request.txn))
        if sale is None or sale.tid != request.tid:
            raise Refused(CODE_INVALID, "merchantTransactionId", "no such sale on this terminal")
        holder = self._holder(request.tid, now)
        if holder is not None and holder is not sale:
            raise Refused(CODE_BUSY, "paytmTid")
        self._settle(sale, now)
        if sale.void is not None and sale.void.outcome is None:
            raise Refused(CODE_BUSY, "paytmTid")  # its own void is still on the terminal
        if sale.outcome is None:
            raise Refused(CODE_INVALID, "merchantTransactionId", "sale is still pending")
        if not sale.outcome.paid:
            raise Refused(CODE_INVALID, "merchantTransactionId", "sale was not successful")
        if sale.voided:
            raise Refused(CODE_INVALID, "merchantTransactionId", "sale is already voided")
        if sale.started.ist_date() != now.ist_date():
            raise Refused(CODE_INVALID, "merchantTransactionId",
                          "sale is not from today (IST); refund it instead")
        sale.voids.append(Void(tid=request.tid, started=now, date_time=request.date_time))
        self._busy[request.tid] = sale
        return sale

    # ------------------------------------------------------------------
    # Time

    def _settle(self, sale: Sale, now: Instant) -> None:
        """Decide what the customer did, if the clock says they have done it by now."""
        s = self._settings
        if sale.outcome is None:
            natural = natural_outcome(sale.behaviour)
            wait = s.terminal_timeout_s if natural is Outcome.TIMEOUT else s.customer_delay_s
            if now.t - sale.started.t >= wait:
                self._decide(sale, natural, _shift(sale.started, wait))
        void = sale.void
        if void is not None and void.outcome is None \
                and now.t - void.started.t >= s.customer_delay_s:
            void.outcome = VoidOutcome.SUCCESS
            void.decided = _shift(void.started, s.customer_delay_s)

    @staticmethod
    def _decide(sale: Sale, outcome: Outcome, at: Instant) -> None:
        outcome = honour_payment_mode(outcome, sale.request.payment_mode)
        sale.outcome = outcome
        sale.decided = at
        sale.payment = payment_details(outcome, f"{sale.mid}:{sale.txn}", sale.tid, at,
                                       by_qr=sale.request.payment_mode == MODE_QR)

    def finish(self, txn: str, outcome: str, now: Instant, mid: str | None = None) -> Sale:
        """Complete a pending sale (or the pending void of a sale) now, with `outcome`."""
        sale = self.find(txn, mid)
        self._settle(sale, now)
        if sale.outcome is None:
            try:
                chosen = Outcome(outcome)
            except ValueError:
                words = ", ".join(o.value for o in Outcome)
                raise StateError(f"sale outcome must be one of {words}, got {outcome!r}") \
                    from None
            if honour_payment_mode(chosen, sale.request.payment_mode) is not chosen:
                raise StateError(f"sale {txn!r} offers only paymentMode "
                                 f"{sale.request.payment_mode}: cannot end it with {outcome!r}")
            self._decide(sale, chosen, now)
            return sale
        void = sale.void
        if void is not None and void.outcome is None:
            try:
                void.outcome = VoidOutcome(outcome)
            except ValueError:
                raise StateError(f"void outcome must be success or failed, got {outcome!r}") \
                    from None
            void.decided = now
            return sale
        raise StateError(
            f"transaction {txn!r} has nothing pending (sale {sale.outcome.value}); keep a sale "
            "pending with an amount ending in 02 or with customer_delay_s > 0")

    # ------------------------------------------------------------------
    # Inspection

    def find(self, txn: str, mid: str | None = None) -> Sale:
        matches = [s for (m, t), s in self._sales.items() if t == txn and mid in (None, m)]
        if not matches:
            raise UnknownError(f"no transaction {txn!r}")
        if len(matches) > 1:
            raise StateError(f"transaction {txn!r} exists for several merchants: give the MID")
        return matches[0]

    def sales(self, now: Instant) -> list[Sale]:
        for sale in self._sales.values():
            self._settle(sale, now)
        return list(self._sales.values())

    def reset(self) -> None:
        self._sales.clear()
        self._busy.clear()
        self._terminal_override.clear()


def _shift(at: Instant, seconds: float) -> Instant:
    return Instant(at.t + seconds, at.wall + seconds)

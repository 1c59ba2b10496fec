"""Payment links and refunds, simulated. Pure: no I/O, no asyncio; time is passed in.

Like the EDC side nothing runs in the background: an order records when it was sent and
what its customer will do, and its state is worked out from the clock whenever somebody
looks (Transaction Status, Resend, Refund, the control API, the webhook sender).

    Send ─ 0000 ──customer_delay_s──► paid by UPI                    any other amount
                ──customer_delay_s──► failed 227                     magic 13
                ──customer_delay_s──► PENDING 402 ─bank_pending_s─► paid   magic 15
                ──late_payment_s────► paid                           magic 12
                ──expiry────────────► expired 810   magic 11, and every link still unpaid
    Send ─ 3001 (no SMS; the order is not registered)                magic 14

    Refund ─ 601 ──refund_delay_s──► success 10
           ─ 601, pending until finish_refund()       refund amount ending in 21
           ─ 620 at once, recorded as failed          refund amount ending in 20, balance low

The magic digits are the last two of the amount in paise (docs/emulator.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from agent.sim.paytm.clock import Instant
from agent.sim.paytm.settings import EmulatorSettings
from agent.sim.paytm.state import EdcState, StateError, UnknownError

# Codes the PG module answers (see agent.paytm.pg_models.LINK_CODES, agent.paytm.codes).
CODE_DUPLICATE_ORDER = "325"
CODE_ORDER_NOT_FOUND = "334"
CODE_SMS_FAILED = "3001"
CODE_NOT_OPEN = "3002"
CODE_PAID = "01"
CODE_DECLINED = "227"
CODE_CLOSED = "810"
CODE_BANK_PENDING = "402"
CODE_REFUND_SUCCESS = "10"
CODE_REFUND_PENDING = "601"
CODE_REFUND_INVALID = "600"
CODE_REFUND_CANCELLED = "607"
CODE_REFUND_DUPLICATE = "617"
CODE_REFUND_AMOUNT = "619"
CODE_REFUND_BALANCE = "620"
CODE_REFUND_BUSY = "626"
CODE_REFUND_MISMATCH = "627"
CODE_REFUND_DONE = "629"
CODE_REFUND_NOT_FOUND = "631"
CODE_REFUND_UNDER_1 = "635"

MIN_PARTIAL_REFUND_PAISE = 100  # 635: a partial refund under ₹1 is refused (reference §16)
TXN_ID_DIGITS = 35  # like the acquirement ids of the EDC side; the client allows 64
RRN_DIGITS = 12
REFUND_ID_DIGITS = 30
UPI_BANKS = ("State Bank of India", "HDFC Bank", "ICICI Bank", "Axis Bank",
             "Kotak Mahindra Bank")
UPI_GATEWAY = "PPBLC"  # Paytm Payments Bank's UPI gateway name in callbacks


class PgRefused(Exception):  # an answer to send, not a fault of the emulator
    """Paytm would refuse this request with `code`; `message` says why, naming the field."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code} {message}")


class LinkBehaviour(Enum):
    NEVER_PAYS = "11"
    PAYS_LATE = "12"
    PAYMENT_FAILS = "13"
    SMS_FAILS = "14"
    BANK_PENDING = "15"
    PAYS = "pays"


def link_behaviour_for(amount_paise: int) -> LinkBehaviour:
    tail = f"{amount_paise % 100:02d}"
    for behaviour in LinkBehaviour:
        if behaviour.value == tail:
            return behaviour
    return LinkBehaviour.PAYS


class LinkStatus(StrEnum):
    OPEN = "open"  # SMS sent, the customer has not paid (Transaction Status: 334)
    PAYING = "paying"  # the customer paid, the bank has not confirmed (PENDING 402)
    PAID = "paid"  # TXN_SUCCESS 01
    FAILED = "failed"  # TXN_FAILURE 227
    EXPIRED = "expired"  # TXN_FAILURE 810: nobody paid before the expiry

    @property
    def final(self) -> bool:
        return self in (LinkStatus.PAID, LinkStatus.FAILED, LinkStatus.EXPIRED)


class LinkOutcome(StrEnum):
    """The words `emulator.pay(order_id, outcome)` accepts."""

    SUCCESS = "success"
    FAILED = "failed"
    EXPIRED = "expired"
    PENDING = "pending"  # the customer paid; the bank confirms after bank_pending_s


@dataclass(frozen=True, slots=True)
class LinkRequest:
    mid: str
    order_id: str
    amount: str  # rupees as the merchant sent them
    amount_paise: int
    pos_id: str
    phone: str
    expiry: str  # as sent, IST yyyy-MM-dd HH:mm:ss
    expiry_wall: float  # the same, epoch seconds
    display_name: str | None


@dataclass(frozen=True, slots=True)
class LinkPayment:
    txn_id: str
    bank_txn_id: str
    payment_mode: str
    bank_name: str
    gateway: str
    txn_date: str  # "yyyy-MM-dd HH:mm:ss.0", as PG answers write it


@dataclass(slots=True)
class LinkOrder:
    request: LinkRequest
    created: Instant
    behaviour: LinkBehaviour
    status: LinkStatus = LinkStatus.OPEN
    sms_count: int = 1
    attempt: Instant | None = None  # when the customer paid (or tried to)
    decided: Instant | None = None
    payment: LinkPayment | None = None

    @property
    def mid(self) -> str:
        return self.request.mid

    @property
    def order_id(self) -> str:
        return self.request.order_id


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RefundApply:
    mid: str
    order_id: str
    ref_id: str
    txn_id: str
    amount: str  # rupees as sent
    amount_paise: int
    comments: str | None


@dataclass(slots=True)
class Refund:
    request: RefundApply
    refund_id: str
    order_amount_paise: int
    txn_time: str  # the payment's time, "yyyy-MM-dd HH:mm:ss.0"
    requested: Instant
    status: RefundStatus
    code: str
    message: str
    hold: bool = False  # magic 21: pending until finish_refund()
    decided: Instant | None = None

    @property
    def mid(self) -> str:
        return self.request.mid

    @property
    def order_id(self) -> str:
        return self.request.order_id

    @property
    def ref_id(self) -> str:
        return self.request.ref_id


@dataclass(frozen=True, slots=True)
class _Paid:
    """What Refund needs to know about the payment it refunds (link order or EDC sale)."""

    txn_id: str | None
    amount_paise: int
    txn_time: str
    problem: PgRefused | None = None  # why it cannot be refunded


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _shift(at: Instant, seconds: float) -> Instant:
    return Instant(at.t + seconds, at.wall + seconds)


def pg_time(at: Instant) -> str:
    return at.ist_text() + ".0"


@dataclass(slots=True)
class _Ledger:
    refunds: list[Refund] = field(default_factory=list)

    def refunded(self) -> int:
        return sum(r.request.amount_paise for r in self.refunds
                   if r.status is RefundStatus.SUCCESS)

    def pending(self) -> Refund | None:
        return next((r for r in self.refunds if r.status is RefundStatus.PENDING), None)


class PgState:
    def __init__(self, settings: EmulatorSettings, edc: EdcState) -> None:
        self._settings = settings
        self._edc = edc
        self._orders: dict[tuple[str, str], LinkOrder] = {}  # (mid, merchantOrderId)
        self._open: dict[tuple[str, str], LinkOrder] = {}  # not final yet
        self._refunds: dict[tuple[str, str], Refund] = {}  # (mid, refId)
        self._ledgers: dict[tuple[str, str], _Ledger] = {}  # (mid, orderId)
        self._settled: list[LinkOrder] = []  # final since last take_settled(): webhooks
        self.balance_low = False

    # ------------------------------------------------------------------
    # Send, Resend, Transaction Status

    def send(self, request: LinkRequest, now: Instant) -> LinkOrder:
        """Register the order and "send" its SMS (0000), or raise `PgRefused`."""
        key = (request.mid, request.order_id)
        if key in self._orders or self._edc_sale_exists(request.mid, request.order_id):
            raise PgRefused(CODE_DUPLICATE_ORDER,
                            f"Duplicate order id: merchantOrderId {request.order_id!r} "
                            "was already used for this MID")
        behaviour = link_behaviour_for(request.amount_paise)
        if behaviour is LinkBehaviour.SMS_FAILS:
            # Assumption: an order whose SMS could not be sent is not registered.
            raise PgRefused(CODE_SMS_FAILED, "SMS could not be sent to the mobile number")
        order = LinkOrder(request=request, created=now, behaviour=behaviour)
        self._orders[key] = order
        self._open[key] = order
        return order

    def resend(self, mid: str, order_id: str, now: Instant) -> LinkOrder:
        order = self._orders.get((mid, order_id))
        if order is None:
            raise PgRefused(CODE_ORDER_NOT_FOUND,
                            f"Invalid order id: no payment request {order_id!r}")
        self._settle_link(order, now)
        if order.status is not LinkStatus.OPEN:
            raise PgRefused(CODE_NOT_OPEN, f"Order is no longer open: it is {order.status}")
        order.sms_count += 1
        return order

    def status(self, mid: str, order_id: str, now: Instant) -> LinkOrder | None:
        order = self._orders.get((mid, order_id))
        if order is not None:
            self._settle_link(order, now)
        return order

    def refunded_paise(self, mid: str, order_id: str) -> int:
        ledger = self._ledgers.get((mid, order_id))
        return ledger.refunded() if ledger is not None else 0

    # ------------------------------------------------------------------
    # The customer

    def _settle_link(self, order: LinkOrder, now: Instant) -> None:
        if order.status.final:
            return
        s = self._settings
        if order.status is LinkStatus.OPEN:
            delay = {
                LinkBehaviour.PAYS: s.customer_delay_s,
                LinkBehaviour.PAYMENT_FAILS: s.customer_delay_s,
                LinkBehaviour.BANK_PENDING: s.customer_delay_s,
                LinkBehaviour.PAYS_LATE: s.late_payment_s,
            }.get(order.behaviour)
            if delay is not None:
                at = _shift(order.created, delay)
                # A customer who would come after the expiry finds a dead link.
                if at.wall < order.request.expiry_wall and now.t >= at.t:
                    self._start_payment(order, at)
                    if order.behaviour is LinkBehaviour.PAYMENT_FAILS:
                        self._decide(order, LinkStatus.FAILED, at)
                    elif order.behaviour is not LinkBehaviour.BANK_PENDING:
                        self._decide(order, LinkStatus.PAID, at)
        if order.status is LinkStatus.PAYING and order.attempt is not None:
            done = _shift(order.attempt, s.bank_pending_s)
            if now.t >= done.t:
                self._decide(order, LinkStatus.PAID, done)
            return
        expiry = order.request.expiry_wall
        if order.status is LinkStatus.OPEN and now.wall >= expiry:
            at = Instant(order.created.t + (expiry - order.created.wall), expiry)
            self._decide(order, LinkStatus.EXPIRED, at)

    def _start_payment(self, order: LinkOrder, at: Instant) -> None:
        rng = random.Random(f"{order.mid}:{order.order_id}")  # reproducible, not a secret
        date = at.ist().strftime("%Y%m%d")
        order.attempt = at
        order.status = LinkStatus.PAYING
        order.payment = LinkPayment(
            txn_id=date + _digits(rng, TXN_ID_DIGITS - len(date)),
            bank_txn_id=_digits(rng, RRN_DIGITS), payment_mode="UPI",
            bank_name=rng.choice(UPI_BANKS), gateway=UPI_GATEWAY, txn_date=pg_time(at))

    def _decide(self, order: LinkOrder, status: LinkStatus, at: Instant) -> None:
        order.status = status
        order.decided = at
        self._open.pop((order.mid, order.order_id), None)
        self._settled.append(order)

    def pay(self, order_id: str, outcome: str, now: Instant, mid: str | None = None) -> LinkOrder:
        """The customer acts now ("pay now" in the control API)."""
        try:
            chosen = LinkOutcome(outcome)
        except ValueError:
            words = ", ".join(o.value for o in LinkOutcome)
            raise StateError(f"link outcome must be one of {words}, got {outcome!r}") from None
        order = self.find_link(order_id, mid)
        self._settle_link(order, now)
        if order.status.final:
            raise StateError(f"order {order_id!r} is already {order.status.value}")
        if chosen is LinkOutcome.EXPIRED:
            self._decide(order, LinkStatus.EXPIRED, now)
            return order
        if order.status is LinkStatus.PAYING and chosen is LinkOutcome.PENDING:
            raise StateError(f"order {order_id!r} is already pending at the bank")
        if order.attempt is None:
            self._start_payment(order, now)
        if chosen is LinkOutcome.SUCCESS:
            self._decide(order, LinkStatus.PAID, now)
        elif chosen is LinkOutcome.FAILED:
            self._decide(order, LinkStatus.FAILED, now)
        else:  # pending: the bank confirms bank_pending_s from now
            order.attempt = now
        return order

    # ------------------------------------------------------------------
    # Refunds

    def refund(self, request: RefundApply, now: Instant) -> Refund:
        """Register a refund (PENDING 601, or FAILED 620) or raise `PgRefused`."""
        paid = self._paid(request.mid, request.order_id, now)
        if paid.txn_id is not None and paid.txn_id != request.txn_id:
            raise PgRefused(CODE_REFUND_MISMATCH,
                            "Order details mismatch: txnId is not the payment of this order")
        if paid.problem is not None:
            raise paid.problem
        if (request.mid, request.ref_id) in self._refunds:
            raise PgRefused(CODE_REFUND_DUPLICATE,
                            f"Refund already raised: refId {request.ref_id!r} was used before")
        ledger = self._ledgers.setdefault((request.mid, request.order_id), _Ledger())
        for refund in ledger.refunds:
            self._settle_refund(refund, now)
        refunded = ledger.refunded()
        if refunded >= paid.amount_paise:
            raise PgRefused(CODE_REFUND_DONE, "Refund already successful for the full amount")
        if ledger.pending() is not None:
            raise PgRefused(CODE_REFUND_BUSY,
                            "Another refund on this order is in progress; try later")
        left = paid.amount_paise - refunded
        if request.amount_paise > left:
            raise PgRefused(CODE_REFUND_AMOUNT,
                            f"Invalid refund amount: at most {left // 100}.{left % 100:02d} "
                            "is left to refund")
        if request.amount_paise < MIN_PARTIAL_REFUND_PAISE and request.amount_paise != left:
            raise PgRefused(CODE_REFUND_UNDER_1, "Partial refund under Rs 1 is not allowed")
        rng = random.Random(f"{request.mid}:{request.ref_id}")
        refund_id = now.ist().strftime("%Y%m%d") + _digits(rng, REFUND_ID_DIGITS - 8)
        tail = request.amount_paise % 100
        if self.balance_low or tail == 20:
            refund = Refund(request=request, refund_id=refund_id,
                            order_amount_paise=paid.amount_paise, txn_time=paid.txn_time,
                            requested=now, status=RefundStatus.FAILED,
                            code=CODE_REFUND_BALANCE,
                            message="Refund failed: merchant balance is not enough",
                            decided=now)
        else:
            refund = Refund(request=request, refund_id=refund_id,
                            order_amount_paise=paid.amount_paise, txn_time=paid.txn_time,
                            requested=now, status=RefundStatus.PENDING,
                            code=CODE_REFUND_PENDING,
                            message="Refund request was raised for this transaction. "
                                    "But it is pending state",
                            hold=tail == 21)
        self._refunds[(request.mid, request.ref_id)] = refund
        ledger.refunds.append(refund)
        return refund

    def refund_status(self, mid: str, order_id: str, ref_id: str, now: Instant) -> Refund | None:
        refund = self._refunds.get((mid, ref_id))
        if refund is None or refund.order_id != order_id:
            return None
        self._settle_refund(refund, now)
        return refund

    def _settle_refund(self, refund: Refund, now: Instant) -> None:
        if refund.status is not RefundStatus.PENDING or refund.hold:
            return
        done = _shift(refund.requested, self._settings.refund_delay_s)
        if now.t >= done.t:
            self._finish_refund(refund, RefundStatus.SUCCESS, done)

    @staticmethod
    def _finish_refund(refund: Refund, status: RefundStatus, at: Instant) -> None:
        refund.status = status
        refund.decided = at
        if status is RefundStatus.SUCCESS:
            refund.code, refund.message = CODE_REFUND_SUCCESS, "Refund Successfull"
        else:
            refund.code = CODE_REFUND_BALANCE
            refund.message = "Refund failed: merchant balance is not enough"

    def finish_refund(self, ref_id: str, outcome: str, now: Instant,
                      mid: str | None = None) -> Refund:
        refund = self.find_refund(ref_id, mid)
        self._settle_refund(refund, now)
        if refund.status is not RefundStatus.PENDING:
            raise StateError(f"refund {ref_id!r} is already {refund.status.value}")
        if outcome not in (RefundStatus.SUCCESS, RefundStatus.FAILED):
            raise StateError(f"refund outcome must be success or failed, got {outcome!r}")
        self._finish_refund(refund, RefundStatus(outcome), now)
        return refund

    def _paid(self, mid: str, order_id: str, now: Instant) -> _Paid:
        order = self._orders.get((mid, order_id))
        if order is not None:
            self._settle_link(order, now)
            payment = order.payment
            problem = None if order.status is LinkStatus.PAID else PgRefused(
                CODE_REFUND_INVALID,
                f"Invalid refund request: the payment is {order.status.value}, not successful")
            return _Paid(txn_id=payment.txn_id if payment else None,
                         amount_paise=order.request.amount_paise,
                         txn_time=payment.txn_date if payment else "", problem=problem)
        if self._edc_sale_exists(mid, order_id):
            self._edc.sales(now)  # settle
            sale = self._edc.find(order_id, mid)
            acquirement = sale.payment.acquirementId if sale.payment else None
            problem = None
            if sale.outcome is None or not sale.outcome.paid:
                problem = PgRefused(CODE_REFUND_INVALID, "Invalid refund request: the sale is "
                                    f"{sale.status}, not successful")
            elif sale.voided:
                problem = PgRefused(CODE_REFUND_CANCELLED,
                                    "Cannot refund a cancelled (voided) transaction")
            return _Paid(txn_id=acquirement, amount_paise=int(sale.request.amount),
                         txn_time=pg_time(sale.decided) if sale.decided else "",
                         problem=problem)
        raise PgRefused(CODE_REFUND_NOT_FOUND, f"Record not found: no payment {order_id!r}")

    def _edc_sale_exists(self, mid: str, order_id: str) -> bool:
        try:
            self._edc.find(order_id, mid)
        except UnknownError:
            return False
        return True

    # ------------------------------------------------------------------
    # Controls and inspection

    def settle_all(self, now: Instant) -> None:
        for order in list(self._open.values()):
            self._settle_link(order, now)

    def take_settled(self) -> list[LinkOrder]:
        """Orders that became final since the last call, oldest first (for webhooks)."""
        settled, self._settled = self._settled, []
        return settled

    def find_link(self, order_id: str, mid: str | None = None) -> LinkOrder:
        matches = [o for (m, oid), o in self._orders.items()
                   if oid == order_id and mid in (None, m)]
        if not matches:
            raise UnknownError(f"no payment link order {order_id!r}")
        if len(matches) > 1:
            raise StateError(f"order {order_id!r} exists for several merchants: give the MID")
        return matches[0]

    def find_refund(self, ref_id: str, mid: str | None = None) -> Refund:
        matches = [r for (m, rid), r in self._refunds.items()
                   if rid == ref_id and mid in (None, m)]
        if not matches:
            raise UnknownError(f"no refund {ref_id!r}")
        if len(matches) > 1:
            raise StateError(f"refund {ref_id!r} exists for several merchants: give the MID")
        return matches[0]

    def links(self, now: Instant) -> list[LinkOrder]:
        self.settle_all(now)
        return list(self._orders.values())

    def refunds(self, now: Instant) -> list[Refund]:
        for refund in self._refunds.values():
            self._settle_refund(refund, now)
        return list(self._refunds.values())

    def reset(self) -> None:
        self._orders.clear()
        self._open.clear()
        self._refunds.clear()
        self._ledgers.clear()
        self._settled.clear()
        self.balance_low = False

"""Payment links (All-in-One Payment Request) and refunds: the engine's PG half.

Money rules, as for card sales:
- an order id reaches Send Payment Request at most once (a repeat is answered from the
  journal); "unknown" is resolved by Transaction Status, never by sending again;
- a bill closes only when Transaction Status says paid *and* the order id and amount
  match (Paytm's rule, reference §14);
- REFID rules of the seed: every refund has its own `refund_id`; a failed refund may be
  retried under a new id, a pending one may not (the agent refuses a second refund on an
  order while one is pending); the total refunded never exceeds what was paid.

Payment links do not hold the terminal: a lane can run a card sale and links at once.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from agent.engine import polling
from agent.engine.results import UNKNOWN_MESSAGE, Outcome, request_fields
from agent.errors import FieldError
from agent.journal import FINAL_STATES, Kind, TxnRecord, TxnState
from agent.paytm.clock import format_paytm, parse_paytm
from agent.paytm.codes import PG_STATUS_CODES, REFUND_CODES, Handling, cashier_message
from agent.paytm.outcome import Answered, NotSent, Unknown
from agent.paytm.pg import PgClient
from agent.paytm.pg_models import (
    LINK_CODES,
    PgStatusAnswer,
    PgStatusState,
    RefundRequest,
    RefundState,
    RefundStatusAnswer,
    SendLinkRequest,
)
from agent.receipts import rupees
from agent.register.messages import Accepted, Error, ErrorCode, Paylink, Refund, Resend

if TYPE_CHECKING:
    from agent.engine.engine import Engine, LanePort

log = logging.getLogger(__name__)

# After a link's expiry Paytm may still be confirming a payment with the bank; keep
# asking this long before concluding "not paid".
EXPIRY_GRACE_S = 60.0
EXPIRED_MESSAGE = "Payment link expired unpaid"

_LINK_FIELDS = {"merchantOrderId": "txn", "amount": "amount", "userPhoneNo": "phone",
                "posId": "pos_id", "expiry": "expiry_s"}
_REFUND_FIELDS = {"refId": "refund_id", "refundAmount": "amount", "orderId": "txn",
                  "txnId": "txn"}


class PgFlows:
    def __init__(self, engine: Engine, client: PgClient | None) -> None:
        self._engine = engine
        self._client = client

    @property
    def client(self) -> PgClient:
        if self._client is None:
            raise RuntimeError("payment links are not configured")
        return self._client

    # -- paylink --------------------------------------------------------------------------

    async def paylink(self, lane: LanePort, req: Paylink) -> None:
        engine = self._engine
        journal = engine.journal
        if self._client is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="Payment links are not enabled on this agent"))
            return
        if journal.find(Kind.SALE, req.txn) is not None:
            await lane.reply(Error(re=req.id, code=ErrorCode.DUPLICATE_TXN, txn=req.txn,
                                   message="Order id already used by a card sale"))
            return
        existing = journal.find(Kind.PAYLINK, req.txn)
        if existing is not None:
            stored = request_fields(existing)
            if existing.amount != req.amount or stored.get("phone4") != req.phone[-4:]:
                await lane.reply(Error(re=req.id, code=ErrorCode.DUPLICATE_TXN, txn=req.txn,
                                       message="Order id already used with another amount "
                                               "or phone"))
                return
            if not existing.not_sent:
                await engine.replay(lane, req.id, existing)
                return
        pos_id = lane.config.pos_id
        if not pos_id:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message=f"Lane {lane.name} has no pos_id for payment "
                                           "links"))
            return
        now = self._engine.now()
        expiry = now + timedelta(seconds=req.expiry_s)
        try:
            send = SendLinkRequest(order_id=req.txn, amount_paise=req.amount, pos_id=pos_id,
                                   phone=req.phone, expiry=expiry)
        except FieldError as exc:
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD, txn=req.txn,
                                   field=_LINK_FIELDS.get(exc.field, exc.field),
                                   message=exc.message[:80]))
            return
        # Only the last 4 digits of the customer's number are kept.
        stored_request = {"id": req.id, "type": "paylink", "txn": req.txn,
                          "amount": req.amount, "phone4": req.phone[-4:],
                          "expiry_s": req.expiry_s, "expiry": format_paytm(expiry),
                          "pos_id": pos_id}
        record = engine.mark_sending(existing, lane, kind=Kind.PAYLINK, txn=req.txn, tid="",
                                     amount=req.amount, request=stored_request,
                                     txn_time=format_paytm(now))
        outcome = await self.client.send_link(send)
        match outcome:
            case NotSent(reason=reason):
                await engine.not_sent(lane, req.id, record, reason,
                                      "Paytm could not be reached; no link was sent")
            case Unknown(reason=reason):
                # The SMS may have gone out: follow the order by status, never send again.
                await engine.follow_unknown(lane, req.id, record, reason)
            case Answered(response=answer) if answer.queued:
                journal.transition(record.row_id, TxnState.ACCEPTED, code=answer.code,
                                   message=answer.message, detail="SMS queued")
                await lane.reply(Accepted(re=req.id, txn=req.txn, kind="paylink"))
                engine.start_poller(journal.get(record.row_id))
            case Answered(response=answer):
                error = Error(re=req.id, code=ErrorCode.REJECTED, txn=req.txn,
                              paytm_code=answer.code,
                              message=cashier_message(LINK_CODES, answer.code, answer.message))
                journal.transition(record.row_id, TxnState.FAILED, code=answer.code,
                                   message=error.message, reply=engine.error_json(error),
                                   detail=answer.message)
                await lane.reply(error)

    async def resend(self, lane: LanePort, req: Resend) -> None:
        journal = self._engine.journal
        record = journal.find(Kind.PAYLINK, req.txn)
        if record is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_FOUND, txn=req.txn,
                                   message="No payment link with this order id"))
            return
        if record.state not in (TxnState.ACCEPTED, TxnState.PENDING) or self._expired(record):
            what = {TxnState.SUCCESS: "already paid", TxnState.FAILED: "closed"}.get(
                record.state, "no longer open")
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message=f"Payment link {what}: nothing to resend"))
            return
        outcome = await self.client.resend_link(req.txn)
        match outcome:
            case Answered(response=answer) if answer.queued:
                journal.note(record.row_id, "SMS sent again", answer.code)
                await lane.reply(Accepted(re=req.id, txn=req.txn, kind="paylink"))
            case Answered(response=answer):
                journal.note(record.row_id, f"resend refused: {answer.message}", answer.code)
                await lane.reply(Error(re=req.id, code=ErrorCode.REJECTED, txn=req.txn,
                                       paytm_code=answer.code,
                                       message=cashier_message(LINK_CODES, answer.code,
                                                               answer.message)))
            case NotSent() | Unknown():
                # Resending an SMS can never charge anyone: asking again is always safe.
                await lane.reply(Error(re=req.id, code=ErrorCode.CLOUD_UNAVAILABLE,
                                       txn=req.txn,
                                       message="Paytm did not confirm the SMS; try resend "
                                               "again"))

    def _expired(self, record: TxnRecord) -> bool:
        expiry = parse_paytm(str(request_fields(record).get("expiry", "")))
        return expiry is not None and self._engine.now() > expiry

    def _seconds_past_expiry(self, record: TxnRecord) -> float:
        expiry = parse_paytm(str(request_fields(record).get("expiry", "")))
        if expiry is None:
            return 0.0
        return (self._engine.now() - expiry).total_seconds()

    # -- refund ---------------------------------------------------------------------------

    async def refund(self, lane: LanePort, req: Refund) -> None:
        engine = self._engine
        journal = engine.journal
        if self._client is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="Refunds are not enabled on this agent"))
            return
        existing = journal.find(Kind.REFUND, req.refund_id)
        if existing is not None:
            if existing.parent != req.txn or existing.amount != req.amount:
                await lane.reply(Error(re=req.id, code=ErrorCode.DUPLICATE_TXN,
                                       txn=req.refund_id,
                                       message="Refund id already used for another refund"))
                return
            if not existing.not_sent:
                await engine.replay(lane, req.id, existing)
                return
        original = journal.find(Kind.SALE, req.txn) or journal.find(Kind.PAYLINK, req.txn)
        if original is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_FOUND, txn=req.txn,
                                   message="No sale or payment link with this id"))
            return
        if original.state is not TxnState.SUCCESS:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="Only paid transactions can be refunded"))
            return
        void = journal.find(Kind.VOID, req.txn)
        if void is not None and void.state is TxnState.SUCCESS:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="This sale was voided: nothing to refund"))
            return
        others = [r for r in journal.children(Kind.REFUND, req.txn)
                  if r.row_id != (existing.row_id if existing else -1)]
        pending = [r for r in others if r.state not in FINAL_STATES]
        if pending:
            # REFID rule: a pending refund must not be retried or doubled up.
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message=f"Refund {pending[0].txn} on this order is still "
                                           "pending"))
            return
        refunded = sum(int(r.amount) for r in others if r.state is TxnState.SUCCESS)
        left = int(original.amount) - refunded
        if int(req.amount) > left:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   field="amount",
                                   message=f"Refund above what is left ({rupees(left)})"))
            return
        paytm_txn_id = str(_payment(original).get("paytm_txn_id", ""))
        if not paytm_txn_id:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="Paytm's transaction id is not known; refund from "
                                           "the dashboard"))
            return
        try:
            refund = RefundRequest(order_id=req.txn, ref_id=req.refund_id,
                                   txn_id=paytm_txn_id, amount_paise=req.amount)
        except FieldError as exc:
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD, txn=req.txn,
                                   field=_REFUND_FIELDS.get(exc.field, exc.field),
                                   message=exc.message[:80]))
            return
        stored_request = {"id": req.id, "type": "refund", "txn": req.txn,
                          "refund_id": req.refund_id, "amount": req.amount,
                          "paytm_txn_id": paytm_txn_id, "original_kind": original.kind.value}
        now = self._engine.now()
        record = engine.mark_sending(existing, lane, kind=Kind.REFUND, txn=req.refund_id,
                                     tid=original.tid, amount=req.amount,
                                     request=stored_request, txn_time=format_paytm(now),
                                     parent=req.txn)
        outcome = await self.client.refund(refund)
        match outcome:
            case NotSent(reason=reason):
                await engine.not_sent(lane, req.id, record, reason,
                                      "Paytm could not be reached; nothing was refunded")
            case Unknown(reason=reason):
                await engine.follow_unknown(lane, req.id, record, reason)
            case Answered(response=answer):
                await self._after_refund(lane, req, record, answer.state, answer.code,
                                         answer.message)

    async def _after_refund(self, lane: LanePort, req: Refund, record: TxnRecord,
                            state: RefundState, code: str, message: str) -> None:
        engine = self._engine
        journal = engine.journal
        if state in (RefundState.SUCCESS, RefundState.PENDING, RefundState.DUPLICATE):
            # 617 (this refId was raised before) is our own earlier attempt: follow it.
            journal.transition(record.row_id, TxnState.ACCEPTED, code=code, message=message)
            await lane.reply(Accepted(re=req.id, txn=req.refund_id, kind="refund"))
            current = journal.get(record.row_id)
            if state is RefundState.SUCCESS:
                engine.finish(current, Outcome("success", code, "Refunded", {}))
            else:
                engine.start_poller(current)
            return
        error = Error(re=req.id, code=ErrorCode.REJECTED, txn=req.refund_id, paytm_code=code,
                      message=cashier_message(REFUND_CODES, code, message))
        journal.transition(record.row_id, TxnState.FAILED, code=code, message=error.message,
                           reply=engine.error_json(error), detail=message)
        await lane.reply(error)

    # -- polling --------------------------------------------------------------------------

    def next_delay(self, record: TxnRecord, checks: int) -> float | None:
        cfg = self._engine.config.polling
        elapsed = self._engine.elapsed(record)
        if record.kind is Kind.PAYLINK:
            if record.state is TxnState.UNKNOWN:
                return polling.reconcile_delay(elapsed)
            past = self._seconds_past_expiry(record)
            if past > EXPIRY_GRACE_S + cfg.unknown_after_s:
                self._engine.finish(record, Outcome("unknown", record.code, UNKNOWN_MESSAGE,
                                                    {}))
                return polling.reconcile_delay(elapsed)
            if checks == 0:
                return max(0.0, cfg.first_check_s - elapsed)
            # 8 checks a minute while the customer may pay (reference §15).
            return cfg.paylink_interval_s if past < EXPIRY_GRACE_S else cfg.slow_interval_s
        # Refunds: quick checks first (the cashier is waiting), then reference §17.
        if record.state is TxnState.UNKNOWN:
            return polling.scheduled_delay(elapsed, polling.REFUND_AT_S)
        if elapsed >= cfg.unknown_after_s:
            self._engine.finish(record, Outcome("unknown", record.code,
                                                "Refund pending at Paytm; still checking", {}))
            return polling.scheduled_delay(elapsed, polling.REFUND_AT_S)
        return polling.edc_delay(elapsed, cfg, checks_done=checks)

    async def check(self, record: TxnRecord) -> bool:
        journal = self._engine.journal
        if record.kind is Kind.PAYLINK:
            status = await self.client.status(record.txn)
            match status:
                case Answered(response=answer):
                    self._on_link_status(record, answer)
                    return True
                case NotSent(reason=reason) | Unknown(reason=reason):
                    journal.note(record.row_id, f"status check failed: {reason}")
                    return False
        ref_status = await self.client.refund_status(record.parent, record.txn)
        match ref_status:
            case Answered(response=refund_answer):
                self._on_refund_status(record, refund_answer)
                return True
            case NotSent(reason=reason) | Unknown(reason=reason):
                journal.note(record.row_id, f"refund status check failed: {reason}")
                return False

    def _on_link_status(self, record: TxnRecord, answer: PgStatusAnswer) -> None:
        engine = self._engine
        match answer.state:
            case PgStatusState.SUCCESS:
                if not answer.matches(record.txn, record.amount):
                    # Paytm's rule: never close a bill whose order id or amount differ.
                    log.error("payment link %s: Paytm reports order %s amount %s, expected "
                              "%s paise: not closing the bill", record.txn, answer.order_id,
                              answer.amount, record.amount)
                    engine.finish(record, Outcome(
                        "unknown", answer.code, "Paid amount differs: check with Paytm",
                        _link_payment(answer)),
                        [f"Paytm reports amount {answer.amount} for order {answer.order_id}"])
                    return
                engine.finish(record, Outcome("success", answer.code, "Paid",
                                              _link_payment(answer)))
            case PgStatusState.FAILED:
                engine.finish(record, Outcome(
                    "failed", answer.code,
                    cashier_message(PG_STATUS_CODES, answer.code, answer.message),
                    _link_payment(answer)))
            case PgStatusState.NOT_FOUND if self._seconds_past_expiry(record) > EXPIRY_GRACE_S:
                engine.finish(record, Outcome("failed", answer.code, EXPIRED_MESSAGE, {}))
            case PgStatusState.NOT_FOUND | PgStatusState.PENDING:
                if record.state is TxnState.ACCEPTED and answer.state is PgStatusState.PENDING:
                    engine.journal.transition(record.row_id, TxnState.PENDING,
                                              code=answer.code, message=answer.message)

    def _on_refund_status(self, record: TxnRecord, answer: RefundStatusAnswer) -> None:
        engine = self._engine
        match answer.state:
            case RefundState.SUCCESS:
                payment = {"paytm_txn_id": answer.refund_id} if answer.refund_id else {}
                engine.finish(record, Outcome("success", answer.code, "Refunded", payment))
            case RefundState.FAILED:
                engine.finish(record, Outcome(
                    "failed", answer.code,
                    answer.reject_message or cashier_message(REFUND_CODES, answer.code,
                                                             answer.message), {}))
            case RefundState.NOT_FOUND if engine.elapsed(record) >= \
                    engine.config.polling.not_found_grace_s:
                engine.finish(record, Outcome("failed", answer.code or "631",
                                              "Refund not received by Paytm", {}))
            case _:
                known = REFUND_CODES.get(answer.code)
                if record.state is TxnState.ACCEPTED and known is not None \
                        and known.handling is Handling.PENDING:
                    engine.journal.transition(record.row_id, TxnState.PENDING,
                                              code=answer.code, message=answer.message)


def _payment(record: TxnRecord) -> dict[str, object]:
    try:
        value = json.loads(record.payment) if record.payment else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _link_payment(answer: PgStatusAnswer) -> dict[str, str]:
    pairs = {"method": answer.payment_mode, "rrn": answer.bank_txn_id,
             "bank": answer.bank_name, "paytm_txn_id": answer.txn_id}
    return {k: v for k, v in pairs.items() if v}


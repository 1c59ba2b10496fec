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
The claims and the rules between kinds (refund vs void, refund totals) are the ledger's;
every answer goes through the reporter. This module never reaches back into the engine.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from agent.engine import polling
from agent.engine.flow import Flow, FlowParts
from agent.engine.ledger import AMOUNT_MISMATCH_MESSAGE, Refusal, amount_warning
from agent.engine.reporter import ARCHIVED, LanePort
from agent.engine.results import UNKNOWN_MESSAGE, Outcome, PaytmView, request_fields
from agent.errors import FieldError
from agent.journal import Kind, TxnRecord, TxnState
from agent.paytm.clock import format_paytm, parse_paytm
from agent.paytm.codes import PG_STATUS_CODES, REFUND_CODES, Handling, cashier_message
from agent.paytm.outcome import Answered, NotSent, Unknown
from agent.paytm.pg_models import (
    LINK_CODES,
    LinkAnswer,
    PgStatusAnswer,
    PgStatusState,
    RefundAnswer,
    RefundRequest,
    RefundState,
    RefundStatusAnswer,
    SendLinkRequest,
)
from agent.register.messages import Accepted, Error, ErrorCode, Paylink, Refund, Resend

log = logging.getLogger(__name__)

# After a link's expiry Paytm may still be confirming a payment with the bank; keep
# asking this long before concluding "not paid".
EXPIRY_GRACE_S = 60.0
EXPIRED_MESSAGE = "Payment link expired unpaid"
USED_BY_SALE = "Order id already used by a card sale"
LINK_MISMATCH = "Order id already used with another amount or phone"

_LINK_FIELDS = {"merchantOrderId": "txn", "amount": "amount", "userPhoneNo": "phone",
                "posId": "pos_id", "expiry": "expiry_s"}
_REFUND_FIELDS = {"refId": "refund_id", "refundAmount": "amount", "orderId": "txn",
                  "txnId": "txn"}


class PgCalls(Protocol):
    """What these flows need from Paytm's PG API (`agent.paytm.pg.PgClient`)."""

    async def send_link(self, req: SendLinkRequest) -> Answered[LinkAnswer] | NotSent | Unknown:
        ...

    async def resend_link(self, order_id: str) -> Answered[LinkAnswer] | NotSent | Unknown: ...

    async def status(self, order_id: str) -> Answered[PgStatusAnswer] | NotSent | Unknown: ...

    async def refund(self, req: RefundRequest) -> Answered[RefundAnswer] | NotSent | Unknown:
        ...

    async def refund_status(self, order_id: str, ref_id: str
                            ) -> Answered[RefundStatusAnswer] | NotSent | Unknown: ...


class PgFlows(Flow):
    def __init__(self, parts: FlowParts, client: PgCalls | None) -> None:
        super().__init__(parts)
        self._client = client

    @property
    def client(self) -> PgCalls:
        if self._client is None:
            raise RuntimeError("payment links are not configured")
        return self._client

    # -- paylink --------------------------------------------------------------------------

    async def probe(self, order_id: str) -> Answered[PgStatusAnswer] | NotSent | Unknown:
        """A Transaction Status of no transaction (the page's Paytm test of the PG API)."""
        if self._client is None:
            return NotSent("payment links are not configured on this agent")
        return await self._client.status(order_id)

    async def paylink(self, lane: LanePort, req: Paylink) -> None:
        journal = self._journal
        reporter = self._reporter
        if self._client is None:
            await reporter.refuse(lane, req.id, "paylink", req.txn, Refusal(
                ErrorCode.NOT_ALLOWED, "Payment links are not enabled on this agent", req.txn))
            return
        await self._ledger.wait_opened(Kind.PAYLINK, req.txn)
        if journal.find(Kind.SALE, req.txn) is not None \
                or self._ledger.opening(Kind.SALE, req.txn) is not None:
            await reporter.refuse(lane, req.id, "paylink", req.txn, Refusal(
                ErrorCode.DUPLICATE_TXN, USED_BY_SALE, req.txn))
            return
        existing = journal.find(Kind.PAYLINK, req.txn)
        if existing is not None:
            stored = request_fields(existing)
            if existing.amount != req.amount or stored.get("phone4") != req.phone[-4:]:
                await reporter.refuse(lane, req.id, "paylink", req.txn, Refusal(
                    ErrorCode.DUPLICATE_TXN, LINK_MISMATCH, req.txn))
                return
            if not existing.not_sent:
                await reporter.replay(lane, req.id, existing)
                return
        elif await self._repeat_of_archived(
                lane, req.id, Kind.PAYLINK, req.txn, other=Kind.SALE,
                other_message=USED_BY_SALE, mismatch=LINK_MISMATCH,
                same=lambda key: key.amount == req.amount,
                same_request=lambda row: request_fields(row).get("phone4") == req.phone[-4:]):
            return  # retention moved it out: answered from its archive, never sent again
        pos_id = lane.config.pos_id
        if not pos_id:
            await reporter.refuse(lane, req.id, "paylink", req.txn, Refusal(
                ErrorCode.NOT_ALLOWED, f"Lane {lane.name} has no pos_id for payment links",
                req.txn))
            return
        now = self._now()
        expiry = now + timedelta(seconds=req.expiry_s)
        try:
            send = SendLinkRequest(order_id=req.txn, amount_paise=req.amount, pos_id=pos_id,
                                   phone=req.phone, expiry=expiry)
        except FieldError as exc:
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD, txn=req.txn,
                                   field=_LINK_FIELDS.get(exc.field, exc.field),
                                   message=exc.message[:80]))
            return
        claim = self._ledger.claim(Kind.PAYLINK, req.txn, amount=req.amount)
        if isinstance(claim, Refusal):
            await reporter.refuse(lane, req.id, "paylink", req.txn, claim)
            return
        # Only the last 4 digits of the customer's number are kept.
        stored_request = {"id": req.id, "type": "paylink", "txn": req.txn,
                          "amount": req.amount, "phone4": req.phone[-4:],
                          "expiry_s": req.expiry_s, "expiry": format_paytm(expiry),
                          "pos_id": pos_id}
        await self._send(lane, req.id, req.txn, claim, existing, tid="", amount=req.amount,
                         request=stored_request, txn_time=format_paytm(now),
                         call=lambda: self.client.send_link(send), answered=self._after_link,
                         nothing_happened="Paytm could not be reached; no link was sent")

    async def _after_link(self, lane: LanePort, request_id: str, record: TxnRecord,
                          answer: LinkAnswer) -> None:
        if answer.queued:
            await self._reporter.accepted(lane, request_id, record, code=answer.code,
                                          message=answer.message, detail="SMS queued")
            return
        error = Error(re=request_id, code=ErrorCode.REJECTED, txn=record.txn,
                      paytm_code=answer.code,
                      message=cashier_message(LINK_CODES, answer.code, answer.message))
        await self._reporter.rejected(lane, error, record, code=answer.code,
                                      detail=answer.message)

    async def resend(self, lane: LanePort, req: Resend) -> None:
        journal = self._journal
        record = journal.find(Kind.PAYLINK, req.txn)
        if record is None:
            message = f"Payment link {ARCHIVED}" \
                if journal.find_archived(Kind.PAYLINK, req.txn) is not None \
                else "No payment link with this order id"
            await self._reporter.refuse(lane, req.id, "resend", req.txn, Refusal(
                ErrorCode.NOT_FOUND, message, req.txn))
            return
        if record.state not in (TxnState.ACCEPTED, TxnState.PENDING) or self._expired(record):
            what = {TxnState.SUCCESS: "already paid", TxnState.FAILED: "closed"}.get(
                record.state, "no longer open")
            await self._reporter.refuse(lane, req.id, "resend", req.txn, Refusal(
                ErrorCode.NOT_ALLOWED, f"Payment link {what}: nothing to resend", req.txn))
            return
        outcome = await self.client.resend_link(req.txn)
        match outcome:
            case Answered(response=answer) if answer.queued:
                await lane.reply(Accepted(re=req.id, txn=req.txn, kind="paylink"))
                await journal.note(record.row_id, "SMS sent again", answer.code)
            case Answered(response=answer):
                await lane.reply(Error(re=req.id, code=ErrorCode.REJECTED, txn=req.txn,
                                       paytm_code=answer.code,
                                       message=cashier_message(LINK_CODES, answer.code,
                                                               answer.message)))
                await journal.note(record.row_id, f"resend refused: {answer.message}",
                                   answer.code)
            case NotSent() | Unknown():
                # Resending an SMS can never charge anyone: asking again is always safe.
                await lane.reply(Error(re=req.id, code=ErrorCode.CLOUD_UNAVAILABLE,
                                       txn=req.txn,
                                       message="Paytm did not confirm the SMS; try resend "
                                               "again"))

    def _expired(self, record: TxnRecord) -> bool:
        expiry = parse_paytm(str(request_fields(record).get("expiry", "")))
        return expiry is not None and self._now() > expiry

    def _seconds_past_expiry(self, record: TxnRecord) -> float:
        expiry = parse_paytm(str(request_fields(record).get("expiry", "")))
        if expiry is None:
            return 0.0
        # The link's lifetime as it was when sent (two wall readings of one moment), then
        # measured on the money clock: a wall-clock jump cannot expire a live link.
        sent = record.sent_at if record.sent_at is not None else record.created_at
        return self._elapsed(record) - (expiry.timestamp() - sent)

    # -- refund ---------------------------------------------------------------------------

    async def refund(self, lane: LanePort, req: Refund) -> None:
        journal = self._journal
        reporter = self._reporter
        if self._client is None:
            await reporter.refuse(lane, req.id, "refund", req.refund_id, Refusal(
                ErrorCode.NOT_ALLOWED, "Refunds are not enabled on this agent", req.txn))
            return
        await self._ledger.wait_opened(Kind.REFUND, req.refund_id)
        existing = journal.find(Kind.REFUND, req.refund_id)
        if existing is not None:
            if existing.parent != req.txn or existing.amount != req.amount:
                await reporter.refuse(lane, req.id, "refund", req.refund_id, Refusal(
                    ErrorCode.DUPLICATE_TXN, "Refund id already used for another refund",
                    req.refund_id))
                return
            if not existing.not_sent:
                await reporter.replay(lane, req.id, existing)
                return
        original = journal.find(Kind.SALE, req.txn) or journal.find(Kind.PAYLINK, req.txn)
        if original is None:
            # No money moves on an archived original: its refund totals left with it.
            archived = journal.find_archived(Kind.SALE, req.txn) is not None \
                or journal.find_archived(Kind.PAYLINK, req.txn) is not None
            await reporter.refuse(lane, req.id, "refund", req.refund_id, Refusal(
                ErrorCode.NOT_FOUND,
                f"Sale {ARCHIVED}: refund from the dashboard" if archived
                else "No sale or payment link with this id", req.txn))
            return
        if existing is None and journal.find_archived(Kind.REFUND, req.refund_id) is not None:
            await reporter.refuse(lane, req.id, "refund", req.refund_id, Refusal(
                ErrorCode.DUPLICATE_TXN, f"Refund id already used by a refund {ARCHIVED}",
                req.refund_id))
            return
        if original.state is not TxnState.SUCCESS:
            await reporter.refuse(lane, req.id, "refund", req.refund_id, Refusal(
                ErrorCode.NOT_ALLOWED, "Only paid transactions can be refunded", req.txn))
            return
        paytm_txn_id = str(original.payment_details().get("paytm_txn_id", ""))
        if not paytm_txn_id:
            await reporter.refuse(lane, req.id, "refund", req.refund_id, Refusal(
                ErrorCode.NOT_ALLOWED,
                "Paytm's transaction id is not known; refund from the dashboard", req.txn))
            return
        try:
            refund = RefundRequest(order_id=req.txn, ref_id=req.refund_id,
                                   txn_id=paytm_txn_id, amount_paise=req.amount)
        except FieldError as exc:
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD, txn=req.txn,
                                   field=_REFUND_FIELDS.get(exc.field, exc.field),
                                   message=exc.message[:80]))
            return
        claim = self._ledger.claim(Kind.REFUND, req.refund_id, parent=req.txn,
                                   amount=req.amount, original_amount=original.amount)
        if isinstance(claim, Refusal):
            await reporter.refuse(lane, req.id, "refund", req.refund_id, claim)
            return
        stored_request = {"id": req.id, "type": "refund", "txn": req.txn,
                          "refund_id": req.refund_id, "amount": req.amount,
                          "paytm_txn_id": paytm_txn_id, "original_kind": original.kind.value}
        await self._send(lane, req.id, req.refund_id, claim, existing, tid=original.tid,
                         amount=req.amount, request=stored_request,
                         txn_time=format_paytm(self._now()),
                         call=lambda: self.client.refund(refund), answered=self._after_refund,
                         nothing_happened="Paytm could not be reached; nothing was refunded")

    async def _after_refund(self, lane: LanePort, request_id: str, record: TxnRecord,
                            answer: RefundAnswer) -> None:
        reporter = self._reporter
        if answer.state is RefundState.SUCCESS:
            current = await self._journal.transition(record.row_id, TxnState.ACCEPTED,
                                                     code=answer.code, message=answer.message)
            await lane.reply(Accepted(re=request_id, txn=record.txn, kind="refund"))
            await reporter.finish(current, Outcome("success", answer.code, "Refunded", {}))
            return
        if answer.state in (RefundState.PENDING, RefundState.DUPLICATE):
            # 617 (this refId was raised before) is our own earlier attempt: follow it.
            await reporter.accepted(lane, request_id, record, code=answer.code,
                                    message=answer.message)
            return
        error = Error(re=request_id, code=ErrorCode.REJECTED, txn=record.txn,
                      paytm_code=answer.code,
                      message=cashier_message(REFUND_CODES, answer.code, answer.message))
        await reporter.rejected(lane, error, record, code=answer.code, detail=answer.message)

    # -- polling --------------------------------------------------------------------------

    async def next_delay(self, record: TxnRecord, checks: int) -> float | None:
        cfg = self._config.polling
        elapsed = self._elapsed(record)
        if record.kind is Kind.PAYLINK:
            if record.state is TxnState.UNKNOWN:
                return polling.reconcile_delay(elapsed)
            past = self._seconds_past_expiry(record)
            if past > EXPIRY_GRACE_S + cfg.unknown_after_s:
                await self._reporter.finish(record, Outcome("unknown", record.code,
                                                            UNKNOWN_MESSAGE, {}))
                return polling.reconcile_delay(elapsed)
            if checks == 0:
                return max(0.0, cfg.first_check_s - elapsed)
            # 8 checks a minute while the customer may pay (reference §15).
            return cfg.paylink_interval_s if past < EXPIRY_GRACE_S else cfg.slow_interval_s
        # Refunds: quick checks first (the cashier is waiting), then reference §17.
        if record.state is TxnState.UNKNOWN:
            return polling.scheduled_delay(elapsed, polling.REFUND_AT_S)
        if elapsed >= cfg.unknown_after_s:
            await self._reporter.finish(record, Outcome(
                "unknown", record.code, "Refund pending at Paytm; still checking", {}))
            return polling.scheduled_delay(elapsed, polling.REFUND_AT_S)
        return polling.edc_delay(elapsed, cfg, checks_done=checks)

    async def check(self, record: TxnRecord) -> bool:
        journal = self._journal
        if record.kind is Kind.PAYLINK:
            status = await self.client.status(record.txn)
            match status:
                case Answered(response=answer):
                    await self._on_link_status(record, answer)
                    return True
                case NotSent(reason=reason) | Unknown(reason=reason):
                    await journal.note(record.row_id, f"status check failed: {reason}")
                    return False
        ref_status = await self.client.refund_status(record.parent, record.txn)
        match ref_status:
            case Answered(response=refund_answer):
                await self._on_refund_status(record, refund_answer)
                return True
            case NotSent(reason=reason) | Unknown(reason=reason):
                await journal.note(record.row_id, f"refund status check failed: {reason}")
                return False

    async def ask(self, record: TxnRecord) -> PaytmView:
        """Transaction Status of a link, Refund Status of a refund: the answer only (see
        `EdcFlows.ask`)."""
        if record.kind is Kind.PAYLINK:
            status = await self.client.status(record.txn)
            match status:
                case Answered(response=answer):
                    amount = None if answer.amount_paise is None else str(answer.amount_paise)
                    return PaytmView(answer.state.value, answer.txn_id or "", amount,
                                     answer.code, answer.message)
                case NotSent(reason=reason) | Unknown(reason=reason):
                    return PaytmView("unreachable", message=reason)
        refund = await self.client.refund_status(record.parent, record.txn)
        match refund:
            case Answered(response=ref_answer):
                state = ref_answer.state.value if ref_answer.state.value in (
                    "success", "failed", "not_found") else "pending"
                paid = None if ref_answer.refund_amount_paise is None \
                    else str(ref_answer.refund_amount_paise)
                return PaytmView(state, ref_answer.refund_id or "", paid, ref_answer.code,
                                 ref_answer.message)
            case NotSent(reason=reason) | Unknown(reason=reason):
                return PaytmView("unreachable", message=reason)

    async def _on_link_status(self, record: TxnRecord, answer: PgStatusAnswer) -> None:
        reporter = self._reporter
        match answer.state:
            case PgStatusState.SUCCESS:
                if not answer.matches(record.txn, record.amount):
                    paid = None if answer.amount_paise is None else str(answer.amount_paise)
                    warning = amount_warning(record, paid) or (
                        f"Paytm reports order {answer.order_id} amount {answer.amount}, "
                        f"asked {record.txn} for {record.amount} paise")
                    # Paytm's rule: never close a bill whose order id or amount differ.
                    log.error("payment link %s: %s: not closing the bill", record.txn,
                              warning)
                    await reporter.finish(record, Outcome(
                        "unknown", answer.code, AMOUNT_MISMATCH_MESSAGE,
                        _link_payment(answer)), [warning])
                    return
                await reporter.finish(record, Outcome("success", answer.code, "Paid",
                                                      _link_payment(answer)))
            case PgStatusState.FAILED:
                await reporter.finish(record, Outcome(
                    "failed", answer.code,
                    cashier_message(PG_STATUS_CODES, answer.code, answer.message),
                    _link_payment(answer)))
            case PgStatusState.NOT_FOUND if self._seconds_past_expiry(record) > EXPIRY_GRACE_S:
                await reporter.finish(record, Outcome("failed", answer.code, EXPIRED_MESSAGE,
                                                      {}))
            case PgStatusState.NOT_FOUND | PgStatusState.PENDING:
                if record.state is TxnState.ACCEPTED and answer.state is PgStatusState.PENDING:
                    await self._journal.transition(record.row_id, TxnState.PENDING,
                                                   code=answer.code, message=answer.message)

    async def _on_refund_status(self, record: TxnRecord, answer: RefundStatusAnswer) -> None:
        reporter = self._reporter
        if answer.state is not RefundState.NOT_FOUND:
            await self._answered_other(record)
        elif await self._not_found_evidence(record):
            await reporter.finish(record, Outcome("failed", answer.code or "631",
                                                  "Refund not received by Paytm", {}))
            return
        match answer.state:
            case RefundState.SUCCESS:
                payment = {"paytm_txn_id": answer.refund_id} if answer.refund_id else {}
                await reporter.finish(record, Outcome("success", answer.code, "Refunded",
                                                      payment))
            case RefundState.FAILED:
                await reporter.finish(record, Outcome(
                    "failed", answer.code,
                    answer.reject_message or cashier_message(REFUND_CODES, answer.code,
                                                             answer.message), {}))
            case _:
                known = REFUND_CODES.get(answer.code)
                if record.state is TxnState.ACCEPTED and known is not None \
                        and known.handling is Handling.PENDING:
                    await self._journal.transition(record.row_id, TxnState.PENDING,
                                                   code=answer.code, message=answer.message)


def _link_payment(answer: PgStatusAnswer) -> dict[str, str]:
    pairs = {"method": answer.payment_mode, "rrn": answer.bank_txn_id,
             "bank": answer.bank_name, "paytm_txn_id": answer.txn_id}
    return {k: v for k, v in pairs.items() if v}


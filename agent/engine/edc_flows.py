"""Card and UPI sales on the terminal, and their voids: the EDC half of the engine.

Each request goes: the ledger's claim (every rule, synchronously) → `sending` on disk
(only the claim can write it) → Paytm → the reporter. From the moment `sending` is on
disk, an exception in this flow becomes "follow by status" (`accepted`, a poller), never
`INTERNAL` and never a held terminal without a poller (`Flow._send`, `_follow_through`).
"""

from __future__ import annotations

import logging
from typing import Protocol

from agent.engine import polling
from agent.engine.flow import Flow, FlowParts
from agent.engine.ledger import AMOUNT_MISMATCH_MESSAGE, Refusal, amount_warning
from agent.engine.reporter import ARCHIVED, LanePort
from agent.engine.results import (
    NOT_RECEIVED_CODE,
    NOT_RECEIVED_MESSAGE,
    UNKNOWN_MESSAGE,
    Outcome,
    PaytmView,
    failure_message,
    payment_dict,
    rejection_message,
    success_message,
)
from agent.errors import FieldError
from agent.journal import Kind, TxnRecord, TxnState
from agent.paytm.clock import format_paytm, parse_paytm
from agent.paytm.codes import EDC_REQUEST_CODES, Handling
from agent.paytm.edc import (
    GstInfo,
    SaleRequest,
    StatusRequest,
    VoidRequest,
)
from agent.paytm.edc_answers import RequestAnswer, StatusAnswer, StatusState
from agent.paytm.outcome import Answered, NotSent, Unknown
from agent.receipts import display_info, print_info
from agent.register.messages import Error, ErrorCode, Sale, State, Status, Void

log = logging.getLogger(__name__)

EdcOutcome = Answered[RequestAnswer] | NotSent | Unknown
OTHER_KIND = "Transaction id already used for another kind"
SALE_MISMATCH = "Transaction id already used with another amount or terminal"
StatusOutcome = Answered[StatusAnswer] | NotSent | Unknown


class EdcCalls(Protocol):
    """What these flows need from Paytm's EDC API (`agent.paytm.edc.EdcClient`)."""

    async def sale(self, req: SaleRequest) -> EdcOutcome: ...

    async def status(self, req: StatusRequest) -> StatusOutcome: ...

    async def void(self, req: VoidRequest) -> EdcOutcome: ...


class EdcFlows(Flow):
    def __init__(self, parts: FlowParts, client: EdcCalls) -> None:
        super().__init__(parts)
        self._client = client

    # -- sale -----------------------------------------------------------------------------

    async def sale(self, lane: LanePort, req: Sale) -> None:
        tid = req.tid or lane.config.tid
        if tid != lane.config.tid:
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD, field="tid",
                                   txn=req.txn, message=f"Terminal {tid} is not on this lane"))
            return
        await self._ledger.wait_opened(Kind.SALE, req.txn)
        if self._journal.find(Kind.PAYLINK, req.txn) is not None \
                or self._ledger.opening(Kind.PAYLINK, req.txn) is not None:
            # Sales and payment-link orders share Paytm's order-id space (unique per MID).
            await self._reporter.refuse(lane, req.id, "sale", req.txn, Refusal(
                ErrorCode.DUPLICATE_TXN, OTHER_KIND, req.txn))
            return
        existing = self._journal.find(Kind.SALE, req.txn)
        if existing is not None:
            if existing.amount != req.amount or existing.tid != tid:
                await self._reporter.refuse(lane, req.id, "sale", req.txn, Refusal(
                    ErrorCode.DUPLICATE_TXN, SALE_MISMATCH, req.txn))
                return
            if not existing.not_sent:
                await self._reporter.replay(lane, req.id, existing)
                return
        elif await self._repeat_of_archived(
                lane, req.id, Kind.SALE, req.txn, other=Kind.PAYLINK,
                other_message=OTHER_KIND, mismatch=SALE_MISMATCH,
                same=lambda key: key.amount == req.amount and key.tid == tid):
            return  # retention moved it out: answered from its archive, never sold again
        display, display_warnings = display_info(dict(req.display or ()), lane.config.display)
        printed, print_warnings = print_info(dict(req.print or ()), lane.config.print)
        now = self._now()
        try:
            sale = SaleRequest(
                tid=tid, txn=req.txn, amount=req.amount, txn_time=now, reference=req.ref,
                payment_mode=req.mode, auto_accept=req.auto_accept, display_info=display,
                print_info=printed, extend_info=dict(req.extend or ()),
                gst=None if req.gst is None else GstInfo(
                    gst_in=req.gst.gst_in, breakup=req.gst.gst_brk_up,
                    invoice_no=req.gst.invoice_no, invoice_date=req.gst.invoice_date),
            )
        except FieldError as exc:
            # The register's message passed its own checks; Paytm's limits are stricter in
            # places (extendInfo ≤ 999 characters). Name the field as the register knows it.
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD,
                                   field=_register_field(exc.field), txn=req.txn,
                                   message=exc.message[:80]))
            return
        claim = self._ledger.claim(Kind.SALE, req.txn, tid=tid, amount=req.amount)
        if isinstance(claim, Refusal):
            await self._reporter.refuse(lane, req.id, "sale", req.txn, claim)
            return
        stored = {**req.to_json(), "id": req.id, "tid": tid, "display_info": display,
                  "print_info": printed, "warnings": [*display_warnings, *print_warnings]}
        await self._send(lane, req.id, req.txn, claim, existing, tid=tid, amount=req.amount,
                         request=stored, txn_time=format_paytm(now),
                         call=lambda: self._client.sale(sale), answered=self._after_request,
                         nothing_happened="Paytm could not be reached; nothing was charged")

    # -- void -----------------------------------------------------------------------------

    async def void(self, lane: LanePort, req: Void) -> None:
        await self._ledger.wait_opened(Kind.VOID, req.txn)
        sale = self._journal.find(Kind.SALE, req.txn)
        if sale is None:
            if self._journal.find(Kind.PAYLINK, req.txn) is not None:
                refusal = Refusal(ErrorCode.NOT_ALLOWED,
                                  "Payment links cannot be voided; use refund", req.txn)
            elif self._journal.find_archived(Kind.SALE, req.txn) is not None \
                    or self._journal.find_archived(Kind.PAYLINK, req.txn) is not None:
                # No money moves on an archived original: its void and refunds left with it.
                refusal = Refusal(ErrorCode.NOT_FOUND, f"Sale {ARCHIVED}: cannot void",
                                  req.txn)
            else:
                refusal = Refusal(ErrorCode.NOT_FOUND, "No sale with this id", req.txn)
            await self._reporter.refuse(lane, req.id, "void", req.txn, refusal)
            return
        existing = self._journal.find(Kind.VOID, req.txn)
        if existing is not None and not existing.not_sent:
            await self._reporter.replay(lane, req.id, existing)
            return
        reason = self._void_refusal(lane, sale)
        if reason is not None:
            await self._reporter.refuse(lane, req.id, "void", req.txn,
                                        Refusal(ErrorCode.NOT_ALLOWED, reason, req.txn))
            return
        claim = self._ledger.claim(Kind.VOID, req.txn, tid=sale.tid, parent=sale.txn)
        if isinstance(claim, Refusal):
            await self._reporter.refuse(lane, req.id, "void", req.txn, claim)
            return
        void = VoidRequest(tid=sale.tid, txn=sale.txn,
                           txn_time=parse_paytm(sale.txn_time) or self._now())
        await self._send(lane, req.id, req.txn, claim, existing, tid=sale.tid,
                         amount=sale.amount, request={**req.to_json(), "id": req.id},
                         txn_time=sale.txn_time, call=lambda: self._client.void(void),
                         answered=self._after_request,
                         nothing_happened="Paytm could not be reached; nothing was charged")

    def _void_refusal(self, lane: LanePort, sale: TxnRecord) -> str | None:
        if sale.state is not TxnState.SUCCESS:
            return "Only successful sales can be voided"
        sale_day = (parse_paytm(sale.txn_time) or self._now()).date()
        if sale_day != self._now().date():
            return "Sale is from an earlier day: use refund"
        if sale.tid != lane.config.tid:
            return f"Sale was made on terminal {sale.tid}, not on this lane"
        return None

    # -- the answer to a Sale or Void request ---------------------------------------------

    async def _after_request(self, lane: LanePort, request_id: str, record: TxnRecord,
                             answer: RequestAnswer) -> None:
        reporter = self._reporter
        if answer.accepted:
            await reporter.accepted(lane, request_id, record, code=answer.code,
                                    message=answer.message)
            return
        known = EDC_REQUEST_CODES.get(answer.code)
        if known is not None and known.handling is Handling.RETRY_STATUS:
            # A Paytm system error does not prove the request was dropped.
            await reporter.accepted(lane, request_id, record, state=TxnState.PENDING,
                                    code=answer.code,
                                    detail=f"Paytm error {answer.code}: checking status")
            return
        if known is not None and known.handling is Handling.DUPLICATE \
                and await self._known_to_paytm(record):
            # 0233: Paytm already has this id, on this terminal, for this amount: an
            # earlier attempt did reach it. Follow that one; never sell again.
            await reporter.accepted(lane, request_id, record, state=TxnState.PENDING,
                                    code=answer.code,
                                    detail="0233: following the earlier attempt")
            return
        error = Error(re=request_id, code=ErrorCode.REJECTED, txn=record.txn,
                      paytm_code=answer.code,
                      message=rejection_message(answer.code, answer.message))
        await reporter.rejected(lane, error, record, code=answer.code, detail=answer.message)

    async def _known_to_paytm(self, record: TxnRecord) -> bool:
        """Does Paytm know `record.txn` on our terminal with our amount? (after a 0233)"""
        outcome = await self._client.status(self._status_request(record))
        if not isinstance(outcome, Answered):
            # Cannot tell: treat as known, so the poller resolves it (the safe direction).
            return True
        answer = outcome.response
        if answer.state is StatusState.NOT_FOUND:
            return False
        return answer.amount is None or answer.amount == record.amount

    # -- a sale the journal lacks ----------------------------------------------------------

    async def discover(self, lane: LanePort, req: Status) -> bool:
        """Ask Paytm about a sale the journal lacks; journal and report it if Paytm knows it.

        Protocol §4: NOT_FOUND is for what "the agent and Paytm do not know". A sale made
        on this terminal but missing from the journal (another PC, a restored backup) is
        asked about before the answer is "not found".
        """
        tid = lane.config.tid
        outcome = await self._client.status(StatusRequest(tid=tid, txn=req.txn,
                                                          txn_time=self._now()))
        if not isinstance(outcome, Answered):
            return False
        answer = outcome.response
        amount = answer.amount or ""
        if answer.state is StatusState.NOT_FOUND or not (
                amount.isdigit() and amount[0] != "0" and len(amount) <= 12):
            return False
        await self._ledger.wait_opened(Kind.SALE, req.txn)
        existing = self._journal.find(Kind.SALE, req.txn)
        if existing is not None:
            # The register's own sale for this txn arrived while Paytm was being asked:
            # the journal row it made is the one to report.
            await self._reporter.report(lane, req.id, existing)
            return True
        txn_time = answer.payment.txn_time if answer.payment and answer.payment.txn_time \
            else format_paytm(self._now())
        # The status request stands in for the sale request the journal never saw: the
        # result answers it (re = its id).
        record = await self._journal.create(
            kind=Kind.SALE, txn=req.txn, lane=lane.name, tid=tid, amount=amount,
            request={"id": req.id, "type": "sale", "txn": req.txn, "amount": amount,
                     "discovered": True},
            txn_time=txn_time, states=(TxnState.PENDING,))
        log.warning("sale %s was unknown to the journal; Paytm knows it (%s): journaled",
                    req.txn, answer.state.value, extra={"lane": lane.name})
        if answer.state is StatusState.PENDING:
            self._ledger.hold(tid, req.txn, Kind.SALE)  # Paytm has it open on this terminal
            await lane.reply(State(re=req.id, txn=req.txn, kind="sale"))
            self._follow(record)
            return True
        await self.on_status(record, answer)
        return True

    # -- polling --------------------------------------------------------------------------

    async def next_delay(self, record: TxnRecord, checks: int) -> float | None:
        """Seconds until the next check; None when the schedule is exhausted."""
        cfg = self._config.polling
        elapsed = self._elapsed(record)
        if record.state is TxnState.UNKNOWN:
            return polling.reconcile_delay(elapsed)
        if elapsed >= cfg.unknown_after_s:
            await self._reporter.finish(record, Outcome("unknown", record.code,
                                                        UNKNOWN_MESSAGE, {}))
            return polling.reconcile_delay(elapsed)
        return polling.edc_delay(elapsed, cfg, checks_done=checks)

    def _status_request(self, record: TxnRecord) -> StatusRequest:
        """Status Enquiry of a journaled sale or void (with the sale's own time)."""
        return StatusRequest(tid=record.tid, txn=record.txn,
                             txn_time=parse_paytm(record.txn_time) or self._now(),
                             void=record.kind is Kind.VOID)

    async def check(self, record: TxnRecord) -> bool:
        """One status call; False when Paytm could not be asked (the caller backs off)."""
        outcome = await self._client.status(self._status_request(record))
        match outcome:
            case Answered(response=answer):
                await self.on_status(record, answer)
                return True
            case NotSent(reason=reason) | Unknown(reason=reason):
                await self._journal.note(record.row_id, f"status check failed: {reason}")
                return False

    async def on_status(self, record: TxnRecord, answer: StatusAnswer) -> None:
        reporter = self._reporter
        if answer.state is not StatusState.NOT_FOUND:
            await self._answered_other(record)
        match answer.state:
            case StatusState.SUCCESS:
                warning = amount_warning(record, answer.amount)
                if warning is not None:
                    log.error("%s %s: %s: not closing the bill", record.kind.value,
                              record.txn, warning)
                    await reporter.finish(record, Outcome(
                        "unknown", answer.code or "0000", AMOUNT_MISMATCH_MESSAGE,
                        payment_dict(answer.payment)), [warning])
                    return
                await reporter.finish(record, Outcome("success", answer.code or "0000",
                                                      success_message(record.kind),
                                                      payment_dict(answer.payment)))
            case StatusState.FAILED:
                await reporter.finish(record, Outcome("failed", answer.code,
                                                      failure_message(answer.code,
                                                                      answer.message),
                                                      payment_dict(answer.payment)))
            case StatusState.NOT_FOUND:
                if await self._not_found_evidence(record):
                    await reporter.finish(record, Outcome("failed", NOT_RECEIVED_CODE,
                                                          NOT_RECEIVED_MESSAGE, {}))
                else:
                    await self._journal.note(record.row_id, "Paytm does not know it yet",
                                             answer.code)
            case StatusState.PENDING:
                if record.state in (TxnState.SENDING, TxnState.ACCEPTED):
                    await self._journal.transition(record.row_id, TxnState.PENDING,
                                                   code=answer.code, message=answer.message)

    async def ask(self, record: TxnRecord) -> PaytmView:
        """Status Enquiry of a sale or void, its answer only returned (the journal, the
        ledger and the register are not touched): the sweep's second opinion on a row the
        journal already closed."""
        outcome = await self._client.status(self._status_request(record))
        match outcome:
            case Answered(response=answer):
                paytm_id = answer.payment.acquirement_id if answer.payment else None
                return PaytmView(answer.state.value, paytm_id or "", answer.amount,
                                 answer.code, answer.message)
            case NotSent(reason=reason) | Unknown(reason=reason):
                return PaytmView("unreachable", message=reason)

    async def probe(self, request: StatusRequest) -> StatusOutcome:
        """A Status Enquiry that belongs to no transaction (the page's connectivity test)."""
        return await self._client.status(request)


_REGISTER_FIELDS = {
    "transactionAmount": "amount",
    "merchantTransactionId": "txn",
    "merchantReferenceNo": "ref",
    "paytmTid": "tid",
    "displayInfo": "display",
    "printInfo": "print",
    "extendInfo": "extend",
    "merchantExtendedInfo.paymentMode": "mode",
    "merchantExtendedInfo.autoAccept": "auto_accept",
    "gstInformation": "gst",
}


def _register_field(paytm_field: str) -> str:
    head, _, rest = paytm_field.partition(".")
    if paytm_field in _REGISTER_FIELDS:
        return _REGISTER_FIELDS[paytm_field]
    if head in _REGISTER_FIELDS:
        return f"{_REGISTER_FIELDS[head]}.{rest}" if rest else _REGISTER_FIELDS[head]
    return paytm_field

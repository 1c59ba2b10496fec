"""The engine: the money-safety rules of protocol §5, in one place.

Nothing else decides whether a Sale may be sent. The rules, and where they live:

1. One in flight per terminal (§5.1): `_busy` maps a terminal id to the sale or void
   holding it. It is checked and set with no `await` in between, so two requests can
   never both pass; it is rebuilt from the journal on start.
2. Idempotent (§5.2): a request whose `txn` the journal knows is answered from the
   journal (`accepted` while in flight, the stored reply once final), never sent again.
   The only exception is a request that provably never reached Paytm (`NotSent`).
3. Unknown is not failure (§5.3): a Sale whose answer is lost becomes `pending` and is
   resolved by Status Enquiry; `CLOUD_UNAVAILABLE` only for `NotSent`.
4. Results survive (§5.4): `Journal.finish` commits the result and its outbox row
   before the lane is asked to send it; the lane marks it delivered on the ACK.
5. `unknown` frees the terminal (§5.5); reconciliation goes on in the background.
6. "Not found" becomes evidence after `not_found_grace_s` (§5.6).

Ordering rule: every journal write happens *before* the action or report it enables
(the `sending` row before the HTTP request, the result row before the frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent import __version__
from agent.config import Config, LaneConfig
from agent.engine import polling
from agent.engine.pg_flows import PgFlows
from agent.engine.results import (
    NOT_RECEIVED_CODE,
    NOT_RECEIVED_MESSAGE,
    UNKNOWN_MESSAGE,
    Outcome,
    failure_message,
    payment_dict,
    receipt_lines,
    rejection_message,
    request_fields,
    success_message,
)
from agent.errors import FieldError
from agent.journal import HOLDING_STATES, Journal, Kind, OutboxRecord, TxnRecord, TxnState
from agent.paytm.clock import IST, format_paytm, parse_paytm
from agent.paytm.codes import EDC_REQUEST_CODES, Handling
from agent.paytm.edc import (
    EdcClient,
    GstInfo,
    RequestAnswer,
    SaleRequest,
    StatusAnswer,
    StatusRequest,
    StatusState,
    VoidRequest,
)
from agent.paytm.outcome import Answered, CallRecord, NotSent, Unknown
from agent.paytm.pg import PgClient
from agent.receipts import display_info, print_info
from agent.register import fields
from agent.register.codec import decode_reply, encode
from agent.register.ids import new_id
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Last,
    Paylink,
    Payment,
    Ping,
    Pong,
    Refund,
    Request,
    Resend,
    Result,
    Sale,
    State,
    Status,
    Void,
)

log = logging.getLogger(__name__)

Reply = Accepted | State | Result | Error | Pong


class LanePort(Protocol):
    """What the engine needs from a lane: best-effort replies and tracked result delivery."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> LaneConfig: ...

    async def reply(self, message: Reply) -> bool: ...

    def deliver(self, outbox: OutboxRecord) -> None: ...

    @property
    def link_version(self) -> int: ...  # §6: what the lane sends now, for `pong`


@dataclass
class CloudHealth:
    """What the last calls to Paytm say about reachability (for `pong` and the web page)."""

    state: str = "unknown"  # ok | down | unknown
    last: CallRecord | None = None

    def observe(self, record: CallRecord) -> None:
        self.last = record
        self.state = {"answered": "ok", "not_sent": "down", "unknown": "unknown"}[record.outcome]


class Engine:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        edc: EdcClient,
        *,
        pg: PgClient | None = None,
        health: CloudHealth | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.journal = journal
        self.edc = edc
        self.health = health if health is not None else CloudHealth()
        self._wall = wall
        self._lanes: dict[str, LanePort] = {}
        self._busy: dict[str, str] = {}  # terminal id → txn of the sale/void holding it
        self._pollers: dict[int, asyncio.Task[None]] = {}
        self._wake: dict[int, asyncio.Event] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.pg_flows = PgFlows(self, pg)

    # -- lifecycle --------------------------------------------------------------------

    def attach(self, lane: LanePort) -> None:
        self._lanes[lane.name] = lane

    def recover(self) -> None:
        """Resume everything the journal says is unfinished. Runs before lanes take work.

        `sending` might have reached Paytm: it is resolved by Status Enquiry, never by
        sending the Sale again. Undelivered results are queued for their lanes.
        """
        for record in self.journal.not_final():
            if record.state is TxnState.RECEIVED:
                # Journaled but never marked sending: provably never left. Close it so the
                # register may send it again.
                self.journal.transition(record.row_id, TxnState.FAILED, not_sent=True,
                                        detail="never sent (agent stopped first)")
                continue
            if record.state in HOLDING_STATES and record.kind in (Kind.SALE, Kind.VOID):
                self._busy[record.tid] = record.txn
            log.info("resuming %s %s (%s)%s", record.kind.value, record.txn,
                     record.state.value, f" on terminal {record.tid}" if record.tid else "")
            self.start_poller(record)
        for outbox in self.journal.undelivered():
            lane = self._lanes.get(outbox.lane)
            if lane is None:
                log.warning("undelivered result %d for unknown lane %r kept in the journal",
                            outbox.row_id, outbox.lane)
                continue
            lane.deliver(outbox)

    async def stop(self) -> None:
        """Stop work; the journal holds everything needed to resume on the next start."""
        self._stopping = True
        tasks = [*self._pollers.values(), *self._handlers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pollers.clear()
        self._handlers.clear()

    # -- facts for pong, the web page and metrics ---------------------------------------

    def now(self) -> datetime:
        """The engine's clock in IST (injectable through `wall` for tests)."""
        return datetime.fromtimestamp(self._wall(), IST)

    def busy_terminals(self) -> dict[str, str]:
        return dict(self._busy)

    def polling_count(self) -> int:
        return len(self._pollers)

    # -- requests -------------------------------------------------------------------------

    def submit(self, lane: LanePort, request: Request,
               done: Callable[[], None] | None = None) -> None:
        """Handle a request in its own task so a slow Sale never blocks a `ping`."""
        task = asyncio.create_task(self.handle(lane, request), name=f"request {request.id}")
        self._handlers.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._handlers.discard(t)
            if done is not None:
                done()

        task.add_done_callback(finished)

    async def drain(self, timeout_s: float) -> None:
        """Let requests already being handled finish (a Sale awaiting Paytm's answer)."""
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=timeout_s)

    async def handle(self, lane: LanePort, request: Request) -> None:
        try:
            match request:
                case Sale():
                    await self._sale(lane, request)
                case Void():
                    await self._void(lane, request)
                case Status():
                    await self._status(lane, request)
                case Last():
                    await self._last(lane, request)
                case Ping():
                    await self._ping(lane, request)
                case Paylink():
                    await self.pg_flows.paylink(lane, request)
                case Resend():
                    await self.pg_flows.resend(lane, request)
                case Refund():
                    await self.pg_flows.refund(lane, request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("request %s on lane %s failed", request.id, lane.name,
                          extra={"lane": lane.name})
            await lane.reply(Error(re=request.id, code=ErrorCode.INTERNAL,
                                   message="Internal error; the agent logged the cause"))

    async def _ping(self, lane: LanePort, request: Ping) -> None:
        tid = lane.config.tid
        await lane.reply(Pong(re=request.id, version=__version__, lane=lane.name, tid=tid,
                              busy=tid in self._busy,
                              cloud=fields.cloud(self.health.state), link=lane.link_version))

    # -- sale -----------------------------------------------------------------------------

    async def _sale(self, lane: LanePort, req: Sale) -> None:
        tid = req.tid or lane.config.tid
        if tid != lane.config.tid:
            await lane.reply(Error(re=req.id, code=ErrorCode.INVALID_FIELD, field="tid",
                                   txn=req.txn, message=f"Terminal {tid} is not on this lane"))
            return
        if self._conflicts(req.txn, Kind.SALE):
            await lane.reply(Error(re=req.id, code=ErrorCode.DUPLICATE_TXN, txn=req.txn,
                                   message="Transaction id already used for another kind"))
            return
        existing = self.journal.find(Kind.SALE, req.txn)
        if existing is not None:
            if existing.amount != req.amount or existing.tid != tid:
                await lane.reply(Error(re=req.id, code=ErrorCode.DUPLICATE_TXN, txn=req.txn,
                                       message="Transaction id already used with another "
                                               "amount or terminal"))
                return
            if not existing.not_sent:
                await self.replay(lane, req.id, existing)
                return
        holder = self._busy.get(tid)
        if holder is not None:
            await lane.reply(Error(re=req.id, code=ErrorCode.TERMINAL_BUSY, txn=holder,
                                   message=f"Terminal busy with {holder}"))
            return

        display, display_warnings = display_info(dict(req.display or ()), lane.config.display)
        printed, print_warnings = print_info(dict(req.print or ()), lane.config.print)
        now = self.now()
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

        # From here until the terminal is freed, no other sale or void may use it.
        self._busy[tid] = req.txn
        stored = {**req.to_json(), "id": req.id, "tid": tid, "display_info": display,
                  "print_info": printed, "warnings": [*display_warnings, *print_warnings]}
        record = self.mark_sending(existing, lane, kind=Kind.SALE, txn=req.txn, tid=tid,
                                   amount=req.amount, request=stored,
                                   txn_time=format_paytm(now))
        # `sending` is on disk: from now on the Sale might reach Paytm.
        outcome = await self.edc.sale(sale)
        await self._after_request(lane, req.id, record, outcome)

    # -- void -----------------------------------------------------------------------------

    async def _void(self, lane: LanePort, req: Void) -> None:
        sale = self.journal.find(Kind.SALE, req.txn)
        if sale is None:
            code = ErrorCode.NOT_ALLOWED if self.journal.find(Kind.PAYLINK, req.txn) \
                else ErrorCode.NOT_FOUND
            message = ("Payment links cannot be voided; use refund" if code is
                       ErrorCode.NOT_ALLOWED else "No sale with this id")
            await lane.reply(Error(re=req.id, code=code, txn=req.txn, message=message))
            return
        existing = self.journal.find(Kind.VOID, req.txn)
        if existing is not None and not existing.not_sent:
            await self.replay(lane, req.id, existing)
            return
        if sale.state is not TxnState.SUCCESS:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="Only successful sales can be voided"))
            return
        sale_day = (parse_paytm(sale.txn_time) or self.now()).date()
        if sale_day != self.now().date():
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message="Sale is from an earlier day: use refund"))
            return
        if sale.tid != lane.config.tid:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_ALLOWED, txn=req.txn,
                                   message=f"Sale was made on terminal {sale.tid}, "
                                           "not on this lane"))
            return
        holder = self._busy.get(sale.tid)
        if holder is not None:
            await lane.reply(Error(re=req.id, code=ErrorCode.TERMINAL_BUSY, txn=holder,
                                   message=f"Terminal busy with {holder}"))
            return
        void = VoidRequest(tid=sale.tid, txn=sale.txn,
                           txn_time=parse_paytm(sale.txn_time) or self.now())
        self._busy[sale.tid] = req.txn
        stored = {**req.to_json(), "id": req.id}
        record = self.mark_sending(existing, lane, kind=Kind.VOID, txn=req.txn, tid=sale.tid,
                                   amount=sale.amount, request=stored,
                                   txn_time=sale.txn_time, parent=sale.txn)
        outcome = await self.edc.void(void)
        await self._after_request(lane, req.id, record, outcome)

    # -- the answer to a Sale or Void request ---------------------------------------------

    async def _after_request(
        self,
        lane: LanePort,
        request_id: str,
        record: TxnRecord,
        outcome: Answered[RequestAnswer] | NotSent | Unknown,
    ) -> None:
        kind = fields.kind(record.kind.value)
        match outcome:
            case NotSent(reason=reason):
                await self.not_sent(lane, request_id, record, reason,
                                    "Paytm could not be reached; nothing was charged")
            case Unknown(reason=reason):
                await self.follow_unknown(lane, request_id, record, reason)
            case Answered(response=answer) if answer.accepted:
                self.journal.transition(record.row_id, TxnState.ACCEPTED, code=answer.code,
                                        message=answer.message)
                await lane.reply(Accepted(re=request_id, txn=record.txn, kind=kind))
                self.start_poller(self.journal.get(record.row_id))
            case Answered(response=answer):
                known = EDC_REQUEST_CODES.get(answer.code)
                if known is not None and known.handling is Handling.RETRY_STATUS:
                    # A Paytm system error does not prove the request was dropped.
                    self.journal.transition(record.row_id, TxnState.PENDING, code=answer.code,
                                            detail=f"Paytm error {answer.code}: checking status")
                    await lane.reply(Accepted(re=request_id, txn=record.txn, kind=kind))
                    self.start_poller(self.journal.get(record.row_id))
                    return
                if known is not None and known.handling is Handling.DUPLICATE \
                        and await self._known_to_paytm(record):
                    # 0233: Paytm already has this id, on this terminal, for this amount:
                    # an earlier attempt did reach it. Follow that one; never sell again.
                    self.journal.transition(record.row_id, TxnState.PENDING, code=answer.code,
                                            detail="0233: following the earlier attempt")
                    await lane.reply(Accepted(re=request_id, txn=record.txn, kind=kind))
                    self.start_poller(self.journal.get(record.row_id))
                    return
                error = Error(re=request_id, code=ErrorCode.REJECTED, txn=record.txn,
                              paytm_code=answer.code,
                              message=rejection_message(answer.code, answer.message))
                self.journal.transition(record.row_id, TxnState.FAILED, code=answer.code,
                                        message=error.message, reply=_error_json(error),
                                        detail=answer.message)
                self._release(record)
                await lane.reply(error)

    def mark_sending(self, existing: TxnRecord | None, lane: LanePort, *, kind: Kind, txn: str,
                     tid: str, amount: str, request: Mapping[str, object], txn_time: str,
                     parent: str = "") -> TxnRecord:
        """Commit `sending`: the step that must be on disk before a request may reach Paytm.

        `existing` is a row whose earlier attempt provably never reached Paytm (not_sent):
        this is then its first send, under the same row.
        """
        if existing is None:
            return self.journal.create(kind=kind, txn=txn, lane=lane.name, tid=tid,
                                       amount=amount, request=dict(request), txn_time=txn_time,
                                       parent=parent,
                                       states=(TxnState.RECEIVED, TxnState.SENDING))
        return self.journal.transition(existing.row_id, TxnState.SENDING, not_sent=False,
                                       lane=lane.name,
                                       detail="sent again after CLOUD_UNAVAILABLE")

    async def not_sent(self, lane: LanePort, request_id: str, record: TxnRecord, reason: str,
                       message: str) -> None:
        """The request provably never reached Paytm: nothing happened there, and the same
        request may come again and will be sent then (protocol §4 CLOUD_UNAVAILABLE)."""
        error = Error(re=request_id, code=ErrorCode.CLOUD_UNAVAILABLE, txn=record.txn,
                      message=message)
        self.journal.transition(record.row_id, TxnState.FAILED, not_sent=True,
                                detail=f"not sent: {reason}", reply=_error_json(error))
        self._release(record)
        await lane.reply(error)

    async def follow_unknown(self, lane: LanePort, request_id: str, record: TxnRecord,
                             reason: str) -> None:
        """The request may have reached Paytm: never "failed", never sent again. The
        register hears `accepted`; the status poller finds out what happened."""
        self.journal.transition(record.row_id, TxnState.PENDING,
                                detail=f"answer unknown: {reason}")
        await lane.reply(Accepted(re=request_id, txn=record.txn,
                                  kind=fields.kind(record.kind.value)))
        self.start_poller(self.journal.get(record.row_id))

    async def _known_to_paytm(self, record: TxnRecord) -> bool:
        """Does Paytm know `record.txn` on our terminal with our amount? (after a 0233)"""
        outcome = await self.edc.status(StatusRequest(
            tid=record.tid, txn=record.txn,
            txn_time=parse_paytm(record.txn_time) or self.now(),
            void=record.kind is Kind.VOID))
        if not isinstance(outcome, Answered):
            # Cannot tell: treat as known, so the poller resolves it (the safe direction).
            return True
        answer = outcome.response
        if answer.state is StatusState.NOT_FOUND:
            return False
        return answer.amount is None or answer.amount == record.amount

    # -- status, last, replay -------------------------------------------------------------

    async def _status(self, lane: LanePort, req: Status) -> None:
        kind = Kind(req.kind)
        record = self.journal.find(kind, req.txn)
        # Protocol §4: NOT_FOUND is for what "the agent and Paytm do not know". A sale made
        # on this terminal but missing from the journal (another PC, a restored backup) is
        # asked about before the answer is "not found".
        if record is None and kind is Kind.SALE and not self._conflicts(req.txn, kind) \
                and await self._discover_sale(lane, req):
            return
        if record is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_FOUND, txn=req.txn,
                                   message="Neither the agent nor Paytm knows this txn"))
            return
        await self._report(lane, req.id, record)

    async def _discover_sale(self, lane: LanePort, req: Status) -> bool:
        """Ask Paytm about a sale the journal lacks; journal and report it if Paytm knows it."""
        tid = lane.config.tid
        outcome = await self.edc.status(StatusRequest(tid=tid, txn=req.txn, txn_time=self.now()))
        if not isinstance(outcome, Answered):
            return False
        answer = outcome.response
        amount = answer.amount or ""
        if answer.state is StatusState.NOT_FOUND or not (
                amount.isdigit() and amount[0] != "0" and len(amount) <= 12):
            return False
        existing = self.journal.find(Kind.SALE, req.txn)
        if existing is not None:
            # The register's own sale for this txn arrived while Paytm was being asked:
            # the journal row it made is the one to report.
            await self._report(lane, req.id, existing)
            return True
        txn_time = answer.payment.txn_time if answer.payment and answer.payment.txn_time \
            else format_paytm(self.now())
        # The status request stands in for the sale request the journal never saw: the
        # result answers it (re = its id).
        record = self.journal.create(
            kind=Kind.SALE, txn=req.txn, lane=lane.name, tid=tid, amount=amount,
            request={"id": req.id, "type": "sale", "txn": req.txn, "amount": amount,
                     "discovered": True},
            txn_time=txn_time, states=(TxnState.PENDING,))
        log.warning("sale %s was unknown to the journal; Paytm knows it (%s): journaled",
                    req.txn, answer.state.value, extra={"lane": lane.name})
        if answer.state is StatusState.PENDING:
            self._busy.setdefault(tid, req.txn)  # Paytm has it open on this terminal
            await lane.reply(State(re=req.id, txn=req.txn, kind="sale"))
            self.start_poller(record)
            return True
        self._on_status(record, answer)
        return True

    async def _last(self, lane: LanePort, req: Last) -> None:
        record = self.journal.last_for_lane(lane.name)
        if record is None:
            await lane.reply(Error(re=req.id, code=ErrorCode.NOT_FOUND,
                                   message="No transaction on this lane yet"))
            return
        await self._report(lane, req.id, record)

    async def _report(self, lane: LanePort, request_id: str, record: TxnRecord) -> None:
        """`result` when final (or unknown), else `state`; an unknown one is re-checked now."""
        if record.state is TxnState.UNKNOWN:
            self._poke(record.row_id)
        if record.state in (TxnState.SUCCESS, TxnState.FAILED, TxnState.UNKNOWN):
            stored = _load(record.reply)
            if stored.get("type") == "result":
                await lane.reply(_result_from_json(stored, re=request_id))
                return
            if stored.get("type") == "error" and stored.get("code") == "REJECTED":
                # Paytm refused it: for a status question that is a final failure.
                await lane.reply(self._rejected_result(record, request_id))
                return
            if stored.get("type") == "error":
                await lane.reply(_error_from_json(stored, re=request_id))
                return
        await lane.reply(State(re=request_id, txn=record.txn,
                               kind=fields.kind(record.kind.value)))

    async def replay(self, lane: LanePort, request_id: str, record: TxnRecord) -> None:
        """A repeated request: the stored reply if final, else `accepted`. Never sent again."""
        log.info("repeated %s %s answered from the journal (%s)", record.kind.value,
                 record.txn, record.state.value)
        self.journal.note(record.row_id, f"repeated request {request_id} answered from journal")
        if record.state in (TxnState.SUCCESS, TxnState.FAILED, TxnState.UNKNOWN):
            stored = _load(record.reply)
            if stored.get("type") == "result":
                await lane.reply(_result_from_json(stored, re=request_id))
                return
            if stored.get("type") == "error":
                await lane.reply(_error_from_json(stored, re=request_id))
                return
        await lane.reply(Accepted(re=request_id, txn=record.txn,
                                  kind=fields.kind(record.kind.value)))

    def _rejected_result(self, record: TxnRecord, request_id: str) -> Result:
        outcome = Outcome("failed", record.code, record.message, {})
        return self._result(record, outcome, re=request_id)

    # -- polling --------------------------------------------------------------------------

    def start_poller(self, record: TxnRecord) -> None:
        if self._stopping or record.row_id in self._pollers:
            return
        wake = self._wake.setdefault(record.row_id, asyncio.Event())
        task = asyncio.create_task(self._poll(record.row_id, wake),
                                   name=f"poll {record.kind.value} {record.txn}")
        self._pollers[record.row_id] = task

        def done(t: asyncio.Task[None], row_id: int = record.row_id) -> None:
            self._pollers.pop(row_id, None)
            self._wake.pop(row_id, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("poller for row %d crashed", row_id, exc_info=t.exception())

        task.add_done_callback(done)

    def _poke(self, row_id: int) -> None:
        """Ask Paytm now rather than at the next scheduled check (status request, web tool)."""
        event = self._wake.get(row_id)
        if event is not None:
            event.set()
        elif not self._stopping:
            record = self.journal.get(row_id)
            if record.state not in (TxnState.SUCCESS, TxnState.FAILED):
                self.start_poller(record)

    def recheck(self, row_id: int) -> None:
        self._poke(row_id)

    async def _poll(self, row_id: int, wake: asyncio.Event) -> None:
        """Ask Paytm about one transaction until it is final (or its schedule runs out)."""
        checks = 0
        failures = 0
        while True:
            record = self.journal.get(row_id)
            if record.is_final:
                return
            delay = self._next_delay(record, checks)
            if delay is None:
                log.warning("%s %s still %s after Paytm's schedule ran out: a person must "
                            "settle it", record.kind.value, record.txn, record.state.value)
                return
            if failures:
                delay = max(delay, polling.error_backoff(self.config.polling.interval_s,
                                                         failures - 1))
            if delay > 0:
                with contextlib.suppress(TimeoutError):  # the normal case: time to ask again
                    await asyncio.wait_for(wake.wait(), timeout=delay)
            wake.clear()
            record = self.journal.get(row_id)
            if record.is_final:
                return
            checks += 1
            if await self._check(record):
                failures = 0
            else:
                failures += 1

    def _next_delay(self, record: TxnRecord, checks: int) -> float | None:
        """Seconds until the next check; None when the schedule is exhausted."""
        if record.kind in (Kind.PAYLINK, Kind.REFUND):
            return self.pg_flows.next_delay(record, checks)
        cfg = self.config.polling
        elapsed = self.elapsed(record)
        if record.state is TxnState.UNKNOWN:
            return polling.reconcile_delay(elapsed)
        if elapsed >= cfg.unknown_after_s:
            self.finish(record, Outcome("unknown", record.code, UNKNOWN_MESSAGE, {}))
            return polling.reconcile_delay(elapsed)
        return polling.edc_delay(elapsed, cfg, checks_done=checks)

    async def _check(self, record: TxnRecord) -> bool:
        """One status call; False when Paytm could not be asked (the caller backs off)."""
        if record.kind in (Kind.PAYLINK, Kind.REFUND):
            return await self.pg_flows.check(record)
        outcome = await self.edc.status(StatusRequest(
            tid=record.tid, txn=record.txn,
            txn_time=parse_paytm(record.txn_time) or self.now(),
            void=record.kind is Kind.VOID))
        match outcome:
            case Answered(response=answer):
                self._on_status(record, answer)
                return True
            case NotSent(reason=reason) | Unknown(reason=reason):
                self.journal.note(record.row_id, f"status check failed: {reason}")
                return False

    def elapsed(self, record: TxnRecord) -> float:
        start = record.sent_at if record.sent_at is not None else record.created_at
        return max(0.0, self._wall() - start)

    def _on_status(self, record: TxnRecord, answer: StatusAnswer) -> None:
        match answer.state:
            case StatusState.SUCCESS:
                warnings: list[str] = []
                if answer.amount and answer.amount != record.amount:
                    warnings.append(f"Paytm reports amount {answer.amount} paise, "
                                    f"asked {record.amount}")
                    log.error("%s %s: Paytm amount %s differs from %s", record.kind.value,
                              record.txn, answer.amount, record.amount)
                self.finish(record, Outcome("success", answer.code or "0000",
                                             success_message(record.kind),
                                             payment_dict(answer.payment)), warnings)
            case StatusState.FAILED:
                self.finish(record, Outcome("failed", answer.code,
                                             failure_message(answer.code, answer.message),
                                             payment_dict(answer.payment)))
            case StatusState.NOT_FOUND:
                if self.elapsed(record) >= self.config.polling.not_found_grace_s:
                    self.finish(record, Outcome("failed", NOT_RECEIVED_CODE,
                                                 NOT_RECEIVED_MESSAGE, {}))
                else:
                    self.journal.note(record.row_id, "Paytm does not know it yet", answer.code)
            case StatusState.PENDING:
                if record.state in (TxnState.SENDING, TxnState.ACCEPTED):
                    self.journal.transition(record.row_id, TxnState.PENDING, code=answer.code,
                                            message=answer.message)

    # -- results --------------------------------------------------------------------------

    def finish(self, record: TxnRecord, outcome: Outcome, warnings: list[str] | None = None
                ) -> None:
        """Journal the result (and its outbox row), free the terminal, hand it to the lane."""
        first_report = record.state is not TxnState.UNKNOWN
        request = request_fields(record)
        # The first result answers the register's request; a later one comes on its own.
        re = str(request.get("id")) if first_report and request.get("id") else None
        stored_warnings = request.get("warnings")
        all_warnings = [*(str(w) for w in stored_warnings), *(warnings or [])] \
            if isinstance(stored_warnings, list) else list(warnings or [])
        result = self._result(record, outcome, re=re, warnings=all_warnings)
        state = {"success": TxnState.SUCCESS, "failed": TxnState.FAILED,
                 "unknown": TxnState.UNKNOWN}[outcome.status]
        payload = json.loads(_encode_text(result))
        _, outbox = self.journal.finish(record.row_id, state, result=payload, code=outcome.code,
                                        message=outcome.message, payment=outcome.payment or None)
        self._release(record)
        log.info("%s %s on lane %s: %s %s %s", record.kind.value, record.txn, record.lane,
                 outcome.status, outcome.code, outcome.message, extra={"lane": record.lane})
        lane = self._lanes.get(record.lane)
        if lane is not None:
            lane.deliver(outbox)
        else:
            log.warning("result for %s kept for lane %r, which is not running", record.txn,
                        record.lane)

    def _result(self, record: TxnRecord, outcome: Outcome, *, re: str | None,
                warnings: list[str] | None = None) -> Result:
        payment = Payment(**outcome.payment) if outcome.payment else None
        return Result(
            re=re, txn=record.txn, kind=fields.kind(record.kind.value),
            status=fields.status(outcome.status),
            code=outcome.code, message=outcome.message[:80], amount=record.amount,
            payment=payment,
            receipt=receipt_lines(record, outcome, self.config, self.now()),
            warnings=tuple(warnings or ()),
        )

    @staticmethod
    def error_json(error: Error) -> dict[str, object]:
        return _error_json(error)

    def _conflicts(self, txn: str, kind: Kind) -> bool:
        """Sales and payment-link orders share Paytm's order-id space (unique per MID)."""
        other = {Kind.SALE: Kind.PAYLINK, Kind.PAYLINK: Kind.SALE}.get(kind)
        return other is not None and self.journal.find(other, txn) is not None

    def _release(self, record: TxnRecord) -> None:
        if record.kind in (Kind.SALE, Kind.VOID) and self._busy.get(record.tid) == record.txn:
            del self._busy[record.tid]


def _error_json(error: Error) -> dict[str, object]:
    return _load(_encode_text(error))


def _encode_text(message: Reply) -> str:
    return encode(message).decode("ascii")


def _result_from_json(stored: dict[str, object], *, re: str) -> Result:
    """The stored result, re-addressed to the request now asking (with a fresh id)."""
    reply = decode_reply(json.dumps(stored, separators=(",", ":")).encode("ascii"))
    if not isinstance(reply, Result):
        raise TypeError("stored reply is not a result")
    return dataclasses.replace(reply, re=re, id=new_id())


def _error_from_json(stored: dict[str, object], *, re: str) -> Error:
    reply = decode_reply(json.dumps(stored, separators=(",", ":")).encode("ascii"))
    if not isinstance(reply, Error):
        raise TypeError("stored reply is not an error")
    return dataclasses.replace(reply, re=re, id=new_id())


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


def _load(text: str) -> dict[str, object]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

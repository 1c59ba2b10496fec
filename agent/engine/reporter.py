"""Answers to the register, each journaled first: results, refusals, `accepted`, replays.

Both flows (sales and voids; links and refunds) report through this one object, so the
rules of §5 that concern answers hold alike for every kind:

- a result is committed (state, reply and outbox row in one commit) before the lane is
  asked to send it, and its terminal is settled in the ledger in the same step;
- once `sending` is on disk, nothing reports `INTERNAL`: anything unexpected becomes
  "follow by status" (`accepted`, a poller) — `follow_unknown` cannot fail;
- a refusal is logged (one INFO line), counted, and noted on the row holding the
  terminal, so "why did till 3 say busy at 14:05?" has an answer;
- a repeated request is answered from the journal, with what happened to the sale since
  (`voided`, `refunded`) — or, once retention moved it out, from its archive
  (`replay_archived`): never sent to Paytm again.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from agent.config import Config, LaneConfig
from agent.engine.ledger import Ledger, Refusal
from agent.engine.results import (
    Outcome,
    payload_bytes,
    receipt_lines,
    request_fields,
    restore_result,
    stored_result,
)
from agent.journal import (
    ArchivedTxn,
    Journal,
    JournalError,
    OutboxRecord,
    TxnRecord,
    TxnState,
    later_steps,
    read_archived,
)
from agent.register import fields
from agent.register.codec import decode_reply, encode
from agent.register.ids import new_id
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Payment,
    Reply,
    Result,
    State,
)

log = logging.getLogger(__name__)

JOURNAL_DOWN_MESSAGE = "Agent cannot write its journal: nothing was charged"
# A transaction retention moved out (`[journal] keep_days`): the register's answers.
ARCHIVED = "archived (older than keep_days)"
ARCHIVE_UNREADABLE_MESSAGE = "Txn archived, its archive cannot be read: not sent again"
ARCHIVED_NOT_SENT_MESSAGE = "Txn archived, never charged: sell under a new txn"
RENDERED_KEPT = 1024  # results kept encoded for their delivery (~1 KB each)


class LanePort(Protocol):
    """What the engine needs from a lane: best-effort replies and tracked result delivery."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> LaneConfig: ...

    @property
    def link_version(self) -> int: ...  # §6: what the lane sends now, for `pong`

    async def reply(self, message: Reply) -> bool: ...

    def deliver(self, outbox: OutboxRecord) -> None: ...


class Reporter:
    def __init__(self, config: Config, journal: Journal, ledger: Ledger,
                 lanes: Mapping[str, LanePort], now: Callable[[], datetime],
                 follow: Callable[[TxnRecord], None]) -> None:
        self._config = config
        self._journal = journal
        self._ledger = ledger
        self._lanes = lanes
        self._now = now
        self._follow = follow  # start (or wake) the status poller of a row
        self.refusals: collections.Counter[str] = collections.Counter()
        # outbox id → the frame payload as encoded at finish: the first delivery (and its
        # resends) skips rebuilding the receipt (~0.3 ms); bounded, oldest dropped.
        self._rendered: collections.OrderedDict[int, bytes] = collections.OrderedDict()

    # -- refusals -----------------------------------------------------------------------

    async def refuse(self, lane: LanePort, request_id: str, kind: str, txn: str,
                     refusal: Refusal) -> None:
        self.refusals[refusal.code.value] += 1
        holder = f" (terminal held by {refusal.txn})" \
            if refusal.code is ErrorCode.TERMINAL_BUSY else ""
        log.info("lane %s: %s %s refused: %s %s%s", lane.name, kind, txn, refusal.code.value,
                 refusal.message, holder, extra={"lane": lane.name})
        await lane.reply(Error(re=request_id, code=refusal.code, txn=refusal.txn,
                               field=refusal.field, message=refusal.message))
        if refusal.holder is not None:
            # Noted on the holder's row, so its timeline answers "why was it busy?". The
            # holder's `sending` may still be on its way to disk: wait for it first.
            await self._ledger.wait_opened(refusal.holder, refusal.txn)
            record = self._journal.find(refusal.holder, refusal.txn)
            if record is not None:
                with contextlib.suppress(JournalError):  # logged and counted already
                    await self._journal.note(record.row_id,
                                             f"refused {kind} {txn} on lane {lane.name}: "
                                             f"{refusal.code.value}")

    async def journal_down(self, lane: LanePort, request_id: str, txn: str,
                           exc: JournalError) -> None:
        """`sending` could not be written: nothing was sent, and the register is told so."""
        self.refusals[ErrorCode.INTERNAL.value] += 1
        log.error("lane %s: %s not sent: %s", lane.name, txn, exc, extra={"lane": lane.name})
        await lane.reply(Error(re=request_id, code=ErrorCode.INTERNAL, txn=txn,
                               message=JOURNAL_DOWN_MESSAGE))

    # -- answers while in flight ------------------------------------------------------------

    async def accepted(self, lane: LanePort, request_id: str, record: TxnRecord, *,
                       state: TxnState = TxnState.ACCEPTED, code: str | None = None,
                       message: str | None = None, detail: str = "") -> None:
        """Paytm took it (or may have): journal, `accepted`, follow by status.

        The poller starts before this step's commit is on disk: asking Paytm's status is
        safe on the `sending` row already there, and needs nothing of this step. Its own
        writes queue behind this one (the writer keeps submission order: the transition is
        submitted below before the poller task first runs), and the register hears
        `accepted` only once it is journaled. On a slow disk this saves one fsync per sale
        in series."""
        self._follow(record)
        try:
            record = await self._journal.transition(record.row_id, state, code=code,
                                                    message=message, detail=detail)
        except JournalError as exc:
            # The row stays `sending`: still "might have reached Paytm", still followed.
            log.error("%s %s: %s; following it by status", record.kind.value, record.txn, exc)
        await lane.reply(Accepted(re=request_id, txn=record.txn,
                                  kind=fields.kind(record.kind.value)))

    async def follow_unknown(self, lane: LanePort, request_id: str, record: TxnRecord,
                             reason: str) -> None:
        """The request may have reached Paytm: never "failed", never sent again."""
        await self.accepted(lane, request_id, record, state=TxnState.PENDING,
                            detail=f"answer unknown: {reason}")

    async def not_sent(self, lane: LanePort, request_id: str, record: TxnRecord, reason: str,
                       message: str) -> None:
        """The request provably never reached Paytm: nothing happened there, and the same
        request may come again and will be sent then (protocol §4 CLOUD_UNAVAILABLE)."""
        error = Error(re=request_id, code=ErrorCode.CLOUD_UNAVAILABLE, txn=record.txn,
                      message=message)
        record = await self._journal.transition(record.row_id, TxnState.FAILED, not_sent=True,
                                                detail=f"not sent: {reason}",
                                                reply=error_json(error))
        self._ledger.settle(record)
        await lane.reply(error)

    async def rejected(self, lane: LanePort, error: Error, record: TxnRecord, *, code: str,
                       detail: str) -> None:
        """Paytm refused the request: final, the terminal is free, the register told why."""
        record = await self._journal.transition(record.row_id, TxnState.FAILED, code=code,
                                                message=error.message, reply=error_json(error),
                                                detail=detail)
        self._ledger.settle(record)
        await lane.reply(error)

    # -- results ----------------------------------------------------------------------------

    async def finish(self, record: TxnRecord, outcome: Outcome,
                     warnings: list[str] | None = None) -> None:
        """Journal the result (and its outbox row), settle the terminal, hand it to the lane."""
        if record.state is TxnState.UNKNOWN and outcome.status == "unknown":
            # Still unknown: the register already has that answer; a repeat adds nothing.
            if outcome.message != record.message:
                await self._journal.note(record.row_id, outcome.message, outcome.code)
            return
        first_report = record.state is not TxnState.UNKNOWN
        request = request_fields(record)
        # The first result answers the register's request; a later one comes on its own.
        re = str(request.get("id")) if first_report and request.get("id") else None
        stored_warnings = request.get("warnings")
        all_warnings = [*(str(w) for w in stored_warnings), *(warnings or [])] \
            if isinstance(stored_warnings, list) else list(warnings or [])
        printed_at = self._now()
        result = self.result(record, outcome, re=re, warnings=all_warnings, when=printed_at)
        state = {"success": TxnState.SUCCESS, "failed": TxnState.FAILED,
                 "unknown": TxnState.UNKNOWN}[outcome.status]
        # Journaled without its receipt lines (rebuilt on reading: `restore_result`).
        payload = stored_result(result, printed_at, payment_in_row=bool(outcome.payment))
        _, outbox = await self._journal.finish(record.row_id, state, result=payload,
                                               code=outcome.code, message=outcome.message,
                                               payment=outcome.payment or None,
                                               detail="; ".join(warnings or ()))
        self._rendered[outbox.row_id] = encode(result)
        while len(self._rendered) > RENDERED_KEPT:
            self._rendered.popitem(last=False)
        self._ledger.settle(record)
        log.info("%s %s on lane %s: %s %s %s", record.kind.value, record.txn, record.lane,
                 outcome.status, outcome.code, outcome.message, extra={"lane": record.lane})
        lane = self._lanes.get(record.lane)
        if lane is not None:
            lane.deliver(outbox)
        else:
            log.warning("result for %s kept for lane %r, which is not running", record.txn,
                        record.lane)

    def result(self, record: TxnRecord, outcome: Outcome, *, re: str | None,
               warnings: list[str] | None = None, when: datetime | None = None) -> Result:
        payment = Payment(**outcome.payment) if outcome.payment else None
        return Result(
            re=re, txn=record.txn, kind=fields.kind(record.kind.value),
            status=fields.status(outcome.status),
            code=outcome.code, message=outcome.message[:80], amount=record.amount,
            payment=payment,
            receipt=receipt_lines(record, outcome, self._config,
                                  when if when is not None else self._now()),
            warnings=tuple(warnings or ()),
        )

    def render(self, outbox: OutboxRecord) -> bytes:
        """The frame payload of a journaled result, as the register receives it (the
        receipt rebuilt when the journal kept none)."""
        known = self._rendered.get(outbox.row_id)
        if known is not None:
            return known
        return payload_bytes(outbox.payload, self._journal.get(outbox.txn_row), self._config)

    # -- answers from the journal -------------------------------------------------------------

    async def replay(self, lane: LanePort, request_id: str, record: TxnRecord) -> None:
        """A repeated request: the stored reply if final, else `accepted`. Never sent again."""
        log.info("repeated %s %s answered from the journal (%s)", record.kind.value,
                 record.txn, record.state.value, extra={"lane": lane.name})
        stored = self.stored_reply(record, request_id)
        await lane.reply(stored if stored is not None else Accepted(
            re=request_id, txn=record.txn, kind=fields.kind(record.kind.value)))
        with contextlib.suppress(JournalError):
            await self._journal.note(record.row_id,
                                     f"repeated request {request_id} answered from journal")

    async def replay_archived(self, lane: LanePort, request_id: str, key: ArchivedTxn, *,
                              status: bool = False,
                              check: Callable[[TxnRecord], Refusal | None] | None = None
                              ) -> None:
        """A request for a transaction retention moved to an archive: its stored reply, read
        back from the archive off the loop (with its void and refunds since). Never sent to
        Paytm: an archive that cannot be read is an `error`, not a new sale. `check` judges
        what only the archived row knows (a link's phone); `status`: a status question.
        Nothing is noted: the archived row is in no journal any more."""
        try:
            family = await read_archived(self._journal, key)
        except JournalError as exc:
            self.refusals[ErrorCode.INTERNAL.value] += 1
            log.error("lane %s: %s %s is archived and cannot be read back (%s): answered "
                      "with an error, not sent again", lane.name, key.kind.value, key.txn,
                      exc, extra={"lane": lane.name})
            await lane.reply(Error(re=request_id, code=ErrorCode.INTERNAL, txn=key.txn,
                                   message=ARCHIVE_UNREADABLE_MESSAGE))
            return
        record = family.record
        refusal = check(record) if check is not None else None
        if refusal is None and record.not_sent and not status:
            # It never reached Paytm, but its row is gone: a new sale needs a new txn.
            refusal = Refusal(ErrorCode.NOT_ALLOWED, ARCHIVED_NOT_SENT_MESSAGE, key.txn)
        if refusal is not None:
            await self.refuse(lane, request_id, key.kind.value, key.txn, refusal)
            return
        voided, refunded = later_steps(family.void, family.refunds)
        stored = self.stored_reply(record, request_id, status=status,
                                   history=(voided, str(refunded) if refunded else None))
        log.info("%s %s %s answered from its archive %s (%s)",
                 "status of" if status else "repeated", key.kind.value, key.txn, key.month,
                 record.state.value, extra={"lane": lane.name})
        await lane.reply(stored if stored is not None else Error(
            re=request_id, code=ErrorCode.INTERNAL, txn=key.txn,
            message=ARCHIVE_UNREADABLE_MESSAGE))

    async def report(self, lane: LanePort, request_id: str, record: TxnRecord) -> None:
        """`result` when final (or unknown), else `state`; an unknown one is re-checked now."""
        if record.state is TxnState.UNKNOWN:
            self._follow(record)
        stored = self.stored_reply(record, request_id, status=True)
        await lane.reply(stored if stored is not None else State(
            re=request_id, txn=record.txn, kind=fields.kind(record.kind.value)))

    def stored_reply(self, record: TxnRecord, request_id: str, *, status: bool = False,
                     history: tuple[bool, str | None] | None = None
                     ) -> Result | Error | None:
        """`history`: (voided, refunded) when the journal cannot tell (an archived row)."""
        if record.state not in (TxnState.SUCCESS, TxnState.FAILED, TxnState.UNKNOWN):
            return None
        stored = _load(record.reply)
        if stored.get("type") == "result":
            result = _result_from_json(stored, record, self._config, re=request_id)
            voided, refunded = history if history is not None \
                else self._ledger.history(record)
            return dataclasses.replace(result, voided=voided or None, refunded=refunded)
        if status and stored.get("type") == "error" and stored.get("code") == "REJECTED":
            # Paytm refused it: for a status question that is a final failure.
            return self.result(record, Outcome("failed", record.code, record.message, {}),
                               re=request_id)
        if stored.get("type") == "error":
            return _error_from_json(stored, re=request_id)
        return None


def error_json(error: Error) -> dict[str, object]:
    return _load(_encode_text(error))


def _encode_text(message: Reply) -> str:
    return encode(message).decode("ascii")


def _result_from_json(stored: dict[str, Any], record: TxnRecord, config: Config, *,
                      re: str) -> Result:
    """The stored result (its receipt rebuilt), re-addressed to the request now asking
    (with a fresh id)."""
    reply = restore_result(stored, record, config)
    if reply is None:
        raise TypeError("stored reply is not a result")
    return dataclasses.replace(reply, re=re, id=new_id())


def _error_from_json(stored: dict[str, object], *, re: str) -> Error:
    reply = decode_reply(json.dumps(stored, separators=(",", ":")).encode("ascii"))
    if not isinstance(reply, Error):
        raise TypeError("stored reply is not an error")
    return dataclasses.replace(reply, re=re, id=new_id())


def _load(text: str) -> dict[str, object]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

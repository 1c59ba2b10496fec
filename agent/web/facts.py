"""What the technician page shows, read from the agent into plain frozen dataclasses.

The HTML pages render these and the JSON API returns them (`as_json`), so the two can
never disagree. Nothing here changes anything, and nothing here ever holds the merchant
key or the password hash: the config view masks `password_hash`, and every string that
leaves goes through the secrets registry once more (`agent.logs.SECRETS`).
"""

from __future__ import annotations

import dataclasses
import json
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.config import Config
from agent.engine.results import restored_json
from agent.journal import FINAL_STATES, JournalReader, Kind, TxnRecord, TxnState, later_steps
from agent.logs import REDACTED, LogLine
from agent.paytm.clock import IST
from agent.paytm.codes import (
    EDC_REQUEST_CODES,
    EDC_STATUS_CODES,
    PG_STATUS_CODES,
    REFUND_CODES,
    ResultCode,
)
from agent.paytm.outcome import CallRecord
from agent.receipts import rupees
from drivers.base import TransportState
from drivers.url import SerialSpec

if TYPE_CHECKING:
    from agent.web.view import AgentView, LaneView

# Paytm's timestamps have whole seconds and our sale times are written from the host
# clock; beyond this the technician should fix the clock (NTP) before Paytm minds.
SKEW_WARN_S = 30.0
ATTENTION_LIST_MAX = 50  # unknown transactions counted for the red box ("50+")
SECRET_CONFIG_KEYS = frozenset({"password_hash"})


# -- overview ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFacts:
    api: str
    txn: str
    outcome: str  # answered | not_sent | unknown
    code: str
    latency_ms: float
    at: float  # wall clock, epoch seconds
    reason: str
    clock_skew_s: float | None


@dataclass(frozen=True, slots=True)
class PaytmFacts:
    state: str  # ok | down | unknown
    base_url: str
    last: CallFacts | None
    clock_skew_s: float | None
    skew_warning: bool


@dataclass(frozen=True, slots=True)
class Attention:
    kind: str  # unknown | undelivered | lane_down | paytm_down | clock
    text: str
    href: str


@dataclass(frozen=True, slots=True)
class InFlight:
    txn: str
    kind: str
    state: str
    row: int | None
    amount: str  # paise


@dataclass(frozen=True, slots=True)
class LaneFacts:
    name: str
    tid: str
    pos_id: str
    link: str
    kind: str  # serial | usb | tcp | fd
    state: str  # transport: up | down | connecting | reconnecting
    since: float
    last_error: str
    reconnects: int
    baudrate: str
    bytes_in: int
    bytes_out: int
    link_down: bool  # protocol S3: the register did not acknowledge; waits for it to talk
    counters: dict[str, int]  # the link layer's counters (frames, NAKs, retransmissions...)
    undelivered: int  # results queued for the register on this lane
    requests: int
    in_flight: InFlight | None
    last: InFlight | None  # the lane's newest transaction, whatever its state
    detail: dict[str, str]
    link_protocol: str = "auto"  # the lane's protocol= option (§6)
    link_version: int = 1  # the link version the lane sends now

    @property
    def up(self) -> bool:
        return self.state == TransportState.UP and not self.link_down


@dataclass(frozen=True, slots=True)
class Overview:
    version: str
    host: str
    started_at: float
    uptime_s: float
    config_file: str
    journal_path: str
    journal_bytes: int
    journal_rows: int
    paytm: PaytmFacts
    today_since: float  # midnight IST
    today: dict[str, int]  # sales today by status
    in_flight: int
    polling: int
    lanes: list[LaneFacts]
    attention: list[Attention]


def _call(record: CallRecord) -> CallFacts:
    return CallFacts(api=record.api, txn=record.txn, outcome=record.outcome,
                     code=record.code or "", latency_ms=round(record.latency_s * 1000, 1),
                     at=record.wall_time.timestamp(), reason=record.reason or "",
                     clock_skew_s=record.clock_skew_s)


def paytm_facts(agent: AgentView) -> PaytmFacts:
    last = agent.health.last
    skew = last.clock_skew_s if last is not None else None
    return PaytmFacts(state=agent.health.state, base_url=agent.config.paytm.edc_base_url,
                      last=_call(last) if last is not None else None, clock_skew_s=skew,
                      skew_warning=skew is not None and abs(skew) > SKEW_WARN_S)


def midnight_ist(now: float) -> float:
    day = datetime.fromtimestamp(now, IST).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def lane_facts(agent: AgentView) -> list[LaneFacts]:
    busy = agent.engine.busy_terminals() if agent.engine is not None else {}
    return [_lane(agent, lane, busy) for lane in agent.lanes]


def _lane(agent: AgentView, lane: LaneView, busy: dict[str, str]) -> LaneFacts:
    status = lane.transport.status
    config = lane.config
    baudrate = status.detail.get("baudrate", "")
    if not baudrate and config.spec is not None and isinstance(config.spec.target, SerialSpec):
        baudrate = str(config.spec.target.baudrate)
    txn = busy.get(config.tid)
    in_flight = None
    if txn is not None:
        record = _holding(agent, txn)
        in_flight = InFlight(txn=txn, kind=record.kind.value if record else "",
                             state=record.state.value if record else "",
                             row=record.row_id if record else None,
                             amount=record.amount if record else "")
    newest = agent.journal.last_for_lane(lane.name)
    last = None if newest is None else InFlight(
        txn=newest.txn, kind=newest.kind.value, state=newest.state.value, row=newest.row_id,
        amount=newest.amount)
    return LaneFacts(
        name=lane.name, tid=config.tid, pos_id=config.pos_id, link=status.url,
        kind=status.kind, state=status.state.value, since=status.since,
        last_error=status.last_error or "", reconnects=status.reconnects,
        baudrate=baudrate, bytes_in=status.bytes_in, bytes_out=status.bytes_out,
        link_down=lane.link.down, counters=lane.link.counters.as_dict(),
        undelivered=lane.undelivered, requests=lane.requests, in_flight=in_flight,
        last=last, detail=dict(status.detail), link_protocol=lane.link.protocol.value,
        link_version=lane.link.link_version)


def _holding(agent: AgentView, txn: str) -> TxnRecord | None:
    """The sale or void holding a terminal: the newest of that id that is not final."""
    records = agent.journal.find_any(txn)
    for record in reversed(records):
        if record.kind in (Kind.SALE, Kind.VOID) and record.state not in FINAL_STATES:
            return record
    return records[-1] if records else None


def attention(agent: AgentView, lanes: list[LaneFacts], paytm: PaytmFacts) -> list[Attention]:
    """Everything a person must look at, most urgent first."""
    items: list[Attention] = []
    health = agent.journal.health
    if not health.ok:
        items.append(Attention(
            "journal", f"The journal cannot be written ({health.error}): new sales are "
            "refused and results wait until it can (free disk space, check the disk; a "
            "journal deleted, replaced or damaged: stop the agent, restore the last backup, "
            "start it — docs/install.md, \"Recovering the journal\")", "/"))
    unknown = agent.journal.search(state=TxnState.UNKNOWN.value, limit=ATTENTION_LIST_MAX + 1)
    if unknown:
        count = f"{ATTENTION_LIST_MAX}+" if len(unknown) > ATTENTION_LIST_MAX else len(unknown)
        items.append(Attention(
            "unknown", f"{count} transaction(s) with an unknown result: do not hand over "
            "goods or repeat the payment until Paytm answers (the agent keeps asking)",
            "/transactions?status=unknown"))
    undelivered = agent.journal.undelivered()
    if undelivered:
        lanes_named = ", ".join(sorted({o.lane for o in undelivered}))
        items.append(Attention(
            "undelivered", f"{len(undelivered)} result(s) not acknowledged by the register "
            f"(lane {lanes_named}): the cashier may not have seen them", "/tools#resend"))
    for lane in lanes:
        if lane.state != TransportState.UP:
            why = f": {lane.last_error}" if lane.last_error else ""
            items.append(Attention("lane_down", f"Lane {lane.name}: {lane.link} is "
                                   f"{lane.state}{why}", "/lanes"))
        elif lane.link_down:
            items.append(Attention("lane_down", f"Lane {lane.name}: the register stopped "
                                   "acknowledging; results wait until it talks again",
                                   "/lanes"))
    if paytm.state == "down" and paytm.last is not None:
        items.append(Attention("paytm_down", f"Paytm unreachable: {paytm.last.reason}",
                               "/tools#paytm"))
    engine = agent.engine
    if engine is not None and engine.clock_watch.jumps:
        jump = engine.clock_watch.jumps[-1]
        items.append(Attention("clock", f"The PC's clock jumped {jump.delta_s:+.0f} s at "
                               f"{datetime.fromtimestamp(jump.at, IST):%Y-%m-%d %H:%M:%S}: "
                               "payment timing is unaffected (monotonic clock); times shown "
                               "before and after the jump do not compare", "/"))
    if paytm.skew_warning and paytm.clock_skew_s is not None:
        items.append(Attention("clock", f"This PC's clock differs from Paytm's by "
                               f"{paytm.clock_skew_s:+.0f} s: fix the time (NTP)", "/"))
    return items


def _by_status(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, status), n in counts.items():
        out[status] = out.get(status, 0) + n
    return out


def overview(agent: AgentView, now: float) -> Overview:
    lanes = lane_facts(agent)
    paytm = paytm_facts(agent)
    since = midnight_ist(now)
    engine = agent.engine
    return Overview(
        version=__version__, host=socket.gethostname(), started_at=agent.started_at,
        uptime_s=max(0.0, now - agent.started_at), config_file=agent.config.source or "",
        journal_path=agent.journal.path, journal_bytes=agent.journal.size_bytes(),
        journal_rows=agent.journal.count(), paytm=paytm, today_since=since,
        today=_by_status(agent.journal.sale_outcomes(since)),
        in_flight=len(engine.busy_terminals()) if engine is not None else 0,
        polling=engine.polling_count() if engine is not None else 0,
        lanes=lanes, attention=attention(agent, lanes, paytm))


# -- transactions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxnRow:
    row: int
    kind: str
    txn: str
    lane: str
    tid: str
    amount: str  # paise, as journaled
    amount_text: str  # ₹1,234.50
    state: str
    code: str
    message: str
    parent: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class EventFacts:
    at: float
    state: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class OutboxFacts:
    id: int
    lane: str
    created_at: float
    delivered_at: float | None
    superseded: bool
    status: str  # the result's status as sent
    receipt: list[str]


@dataclass(frozen=True, slots=True)
class CodeFacts:
    code: str
    name: str
    meaning: str


@dataclass(frozen=True, slots=True)
class TxnDetail:
    txn: TxnRow
    txn_time: str
    sent_at: float | None
    not_sent: bool
    request: dict[str, Any]  # the register's request as journaled
    payment: dict[str, Any]  # as Paytm sent it (card number masked by Paytm)
    reply: dict[str, Any]  # the final reply exactly as sent to the register
    receipt: list[str]  # the receipt lines of that reply
    codes: list[CodeFacts]
    events: list[EventFacts]
    outbox: list[OutboxFacts]
    can_recheck: bool
    undelivered: list[int] = field(default_factory=list)  # outbox ids that may be resent
    related: list[TxnRow] = field(default_factory=list)  # its void and refunds
    original: TxnRow | None = None  # a void's or refund's sale (or link)
    later: str = ""  # what happened to a sale since: "voided", "refunded ₹40.00 of ₹100.00"


def amount_text(paise: str) -> str:
    try:
        return rupees(paise)
    except ValueError:
        return paise


def txn_row(record: TxnRecord) -> TxnRow:
    return TxnRow(row=record.row_id, kind=record.kind.value, txn=record.txn, lane=record.lane,
                  tid=record.tid, amount=record.amount, amount_text=amount_text(record.amount),
                  state=record.state.value, code=record.code, message=record.message,
                  parent=record.parent, created_at=record.created_at,
                  updated_at=record.updated_at)


def _object(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text}
    return value if isinstance(value, dict) else {"value": value}


def _receipt(reply: dict[str, Any]) -> list[str]:
    lines = reply.get("receipt")
    return [str(line) for line in lines] if isinstance(lines, list) else []


# Which of Paytm's code tables a transaction's codes come from, in the order to look:
# the EDC APIs for sales and voids, the All-in-One APIs for payment links and refunds
# (`01` paid, `10` refunded, `601` refund pending). Codes overlap between tables, so the
# transaction's own APIs are asked first.
_CODE_TABLES: dict[str, tuple[dict[str, ResultCode], ...]] = {
    "sale": (EDC_STATUS_CODES, EDC_REQUEST_CODES),
    "void": (EDC_STATUS_CODES, EDC_REQUEST_CODES),
    "paylink": (PG_STATUS_CODES,),
    "refund": (REFUND_CODES, PG_STATUS_CODES),
}
_ALL_CODE_TABLES = (EDC_STATUS_CODES, EDC_REQUEST_CODES, PG_STATUS_CODES, REFUND_CODES)


def _known_code(code: str, kind: str) -> ResultCode | None:
    for table in (*_CODE_TABLES.get(kind, ()), *_ALL_CODE_TABLES):
        if code in table:
            return table[code]
    return None


def code_facts(codes: list[str], kind: str = "sale") -> list[CodeFacts]:
    seen: list[CodeFacts] = []
    for code in codes:
        if not code or any(c.code == code for c in seen):
            continue
        known = _known_code(code, kind)
        seen.append(CodeFacts(code, known.name if known else "",
                              known.meaning if known else "not in the agent's code table"))
    return seen


def txn_detail(agent: AgentView, record: TxnRecord) -> TxnDetail:
    return txn_detail_from(agent.journal, record, agent.config)


def txn_detail_from(journal: JournalReader, record: TxnRecord, config: Config) -> TxnDetail:
    """The page's view of one transaction from any reader (`edc-agent show` has no agent)."""
    events = journal.events(record.row_id)
    outbox = journal.outbox_for(record.row_id)
    # Results journaled since schema 3 keep no receipt lines: rebuilt here as sent.
    reply = restored_json(record.reply, record, config) or _object(record.reply)
    outbox_facts = []
    for o in outbox:
        payload = restored_json(o.payload, record, config) or _object(o.payload)
        outbox_facts.append(OutboxFacts(
            id=o.row_id, lane=o.lane, created_at=o.created_at, delivered_at=o.delivered_at,
            superseded=o.superseded, status=str(payload.get("status", "")),
            receipt=_receipt(payload)))
    return TxnDetail(
        txn=txn_row(record), txn_time=record.txn_time, sent_at=record.sent_at,
        not_sent=record.not_sent, request=_object(record.request),
        payment=_object(record.payment), reply=reply, receipt=_receipt(reply),
        codes=code_facts([record.code, *(e.code for e in events)], record.kind),
        events=[EventFacts(e.at, e.state, e.code, e.detail) for e in events],
        outbox=outbox_facts, can_recheck=can_recheck(record),
        undelivered=[o.row_id for o in outbox if o.delivered_at is None and not o.superseded],
        **_relations(journal, record))


def _relations(journal: JournalReader, record: TxnRecord) -> dict[str, Any]:
    """A sale's void and refunds and what they did to it; a child's original."""
    if record.kind in (Kind.VOID, Kind.REFUND):
        original = journal.find(Kind.SALE, record.parent) or \
            journal.find(Kind.PAYLINK, record.parent)
        return {"original": txn_row(original) if original is not None else None}
    void = journal.find(Kind.VOID, record.txn) if record.kind is Kind.SALE else None
    refunds = journal.children(Kind.REFUND, record.txn)
    related = [txn_row(r) for r in ([void] if void is not None else []) + refunds]
    voided, refunded = later_steps(void, refunds)
    later = ["voided"] if voided else []
    if refunded:
        later.append(f"refunded {amount_text(str(refunded))} of {amount_text(record.amount)}")
    return {"related": related, "later": ", ".join(later)}


def can_recheck(record: TxnRecord) -> bool:
    """Anything Paytm may still change: not final, and past `received` (which was never
    sent). The engine picks the status call that fits the kind."""
    return not record.is_final and record.state is not TxnState.RECEIVED


# -- log and config ---------------------------------------------------------------------

LEVELS = ("debug", "info", "warning", "error")
_LEVEL_RANK = {"DEBUG": 0, "INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}


@dataclass(frozen=True, slots=True)
class LogFacts:
    at: float
    level: str
    logger: str
    lane: str
    text: str


def log_lines(lines: list[LogLine], *, level: str, lane: str, query: str,
              limit: int) -> list[LogFacts]:
    """Newest first: lines at `level` or above, tagged with `lane` or naming it."""
    floor = _LEVEL_RANK[level.upper()]
    out: list[LogFacts] = []
    for line in reversed(lines):
        if _LEVEL_RANK.get(line.level, 1) < floor:
            continue
        if lane and line.lane != lane and not _names_lane(line.text, lane):
            continue
        if query and query.lower() not in line.text.lower():
            continue
        out.append(LogFacts(line.at, line.level, line.logger, line.lane, line.text))
        if len(out) >= limit:
            break
    return out


def _names_lane(text: str, lane: str) -> bool:
    # The agent's messages say "lane NAME" or "link NAME" (LogLine.lane is set only by
    # callers that pass extra={"lane": ...}).
    for word in ("lane ", "link "):
        start = text.find(word + lane)
        while start >= 0:
            end = start + len(word) + len(lane)
            if end == len(text) or not (text[end].isalnum() or text[end] in "_.-"):
                return True
            start = text.find(word + lane, start + 1)
    return False


@dataclass(frozen=True, slots=True)
class ConfigSection:
    name: str
    items: list[tuple[str, str]]


def config_facts(config: Config) -> list[ConfigSection]:
    """The effective configuration, secrets as •••; lanes are one section each."""
    sections: list[ConfigSection] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in ("lanes", "source"):
            continue
        sections.append(ConfigSection(f.name, _items(value)))
    for lane in config.lanes:
        sections.append(ConfigSection(f"lanes: {lane.name}", _items(lane)))
    return sections


def _items(obj: object) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    if not dataclasses.is_dataclass(obj):
        return items
    for f in dataclasses.fields(obj):
        if f.name == "spec":  # parsed from `link`, shown there
            continue
        value = getattr(obj, f.name)
        if f.name in SECRET_CONFIG_KEYS:
            shown = REDACTED if value else "(not set)"
        elif isinstance(value, bool):
            shown = "true" if value else "false"  # as written in TOML
        elif isinstance(value, tuple):
            shown = ", ".join(
                "=".join(str(x) for x in v) if isinstance(v, tuple) else str(v) for v in value)
        elif value is None:
            shown = ""
        else:
            shown = str(value)
        items.append((f.name, shown))
    return items


def as_json(value: object) -> object:
    """Dataclasses (and lists of them) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def attention_now(agent: AgentView) -> list[Attention]:
    return attention(agent, lane_facts(agent), paytm_facts(agent))

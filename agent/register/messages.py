"""Typed register messages (register-protocol.md §3): one frozen dataclass per `type`.

Each class checks its fields in `__post_init__` with the rules of `agent.register.fields`,
so no message object can break the protocol, and reads itself from a decoded JSON
object with `from_json(id, obj)`, which checks the fields in the order of the protocol's
table and raises `FieldError` naming the first bad one. `to_json()` gives the members
other than `v`, `type` and `id`; absent optional fields are left out (never `null`).

`REQUEST_TYPES` and `REPLY_TYPES` map the `type` strings to the classes; both are
literal, read-only mappings. Encoding and decoding of whole payloads is in
`agent.register.codec`.

Decisions where the protocol is silent:
- `gst`: `{}` carries none of the four members and means "no GST" (`gst=None`); an
  object with some but not all of them names the first missing member, e.g.
  `gst.invoiceNo`. A bad member is named the same way. `display`/`print`/`extend`
  problems name the object itself (their keys are free text).
- `null` is not a value of any field: `"ref": null` is INVALID_FIELD `ref`, not "absent".
- `tid` is 1-8 letters or digits (Paytm's paytmTid, as the config accepts it);
  whether the lane may use it is the engine's decision.
- Replies get their own `id` from `agent.register.ids.new_id` unless one is given.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Final, TypeVar

from agent.errors import FieldError
from agent.register import fields
from agent.register.fields import Cloud, Entries, Kind, Mode
from agent.register.ids import new_id

T = TypeVar("T")

PAYMENT_MEMBER_MAX = 64  # longer payment details are clipped (they come from Paytm)
CODE_MAX = 16  # Paytm result codes are 4 characters; anything longer is not a code
LABEL_MAX = 64  # version, lane, field names


class ErrorCode(enum.StrEnum):
    """§4."""

    INVALID_MESSAGE = "INVALID_MESSAGE"
    INVALID_FIELD = "INVALID_FIELD"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    TERMINAL_BUSY = "TERMINAL_BUSY"
    DUPLICATE_TXN = "DUPLICATE_TXN"
    NOT_FOUND = "NOT_FOUND"
    NOT_ALLOWED = "NOT_ALLOWED"
    REJECTED = "REJECTED"
    CLOUD_UNAVAILABLE = "CLOUD_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class _Reader:
    """Members of a decoded JSON object, each checked by its rule when read."""

    def __init__(self, obj: Mapping[str, object], prefix: str = "") -> None:
        self._obj = obj
        self._prefix = prefix

    def required(self, key: str, check: Callable[[object, str], T]) -> T:
        if key not in self._obj:
            raise FieldError(self._prefix + key, "is required")
        return check(self._obj[key], self._prefix + key)

    def optional(self, key: str, check: Callable[[object, str], T]) -> T | None:
        if key not in self._obj:
            return None
        return check(self._obj[key], self._prefix + key)

    def default(self, key: str, check: Callable[[object, str], T], default: T) -> T:
        if key not in self._obj:
            return default
        return check(self._obj[key], self._prefix + key)


def _opt(value: T | None, check: Callable[[object, str], T], field: str) -> None:
    if value is not None:
        check(value, field)


def _entries_json(pairs: Entries) -> dict[str, object]:
    return dict(pairs)


# --------------------------------------------------------------------------- register → agent


@dataclass(frozen=True, slots=True)
class Gst:
    """`gst` of a sale: all four members (an empty object is `None` on the `Sale`)."""

    gst_in: str
    gst_brk_up: str
    invoice_no: str
    invoice_date: str  # YYYYMMDDHHmmss

    def __post_init__(self) -> None:
        fields.nonempty(self.gst_in, "gst.gstIn")
        fields.nonempty(self.gst_brk_up, "gst.gstBrkUp")
        fields.nonempty(self.invoice_no, "gst.invoiceNo", fields.INVOICE_NO_MAX)
        fields.invoice_date(self.invoice_date, "gst.invoiceDate")

    @classmethod
    def from_json(cls, value: object, field: str = "gst") -> Gst | None:
        if not isinstance(value, dict):
            raise FieldError(field, "must be an object")
        if not value:
            return None
        r = _Reader(value, field + ".")
        return cls(
            gst_in=r.required("gstIn", fields.nonempty),
            gst_brk_up=r.required("gstBrkUp", fields.nonempty),
            invoice_no=r.required(
                "invoiceNo", lambda v, f: fields.nonempty(v, f, fields.INVOICE_NO_MAX)),
            invoice_date=r.required("invoiceDate", fields.invoice_date),
        )

    def to_json(self) -> dict[str, object]:
        return {"gstIn": self.gst_in, "gstBrkUp": self.gst_brk_up,
                "invoiceNo": self.invoice_no, "invoiceDate": self.invoice_date}


@dataclass(frozen=True, slots=True)
class Sale:
    TYPE: ClassVar[str] = "sale"

    id: str
    txn: str
    amount: str  # paise
    ref: str | None = None
    tid: str | None = None  # None: the lane's own terminal
    mode: Mode = "ALL"
    auto_accept: bool | None = None
    display: Entries | None = None  # ≤ 3 entries for the terminal's pop-up
    print: Entries | None = None  # entries for the terminal slip
    extend: Entries | None = None  # echoed back
    gst: Gst | None = None

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.txn(self.txn)
        fields.amount(self.amount)
        _opt(self.ref, fields.ref, "ref")
        _opt(self.tid, fields.tid, "tid")
        fields.mode(self.mode)
        _opt(self.auto_accept, fields.boolean, "auto_accept")
        if self.display is not None:
            fields.entries(self.display, "display", fields.DISPLAY_MAX_ENTRIES)
        _opt(self.print, fields.entries, "print")
        _opt(self.extend, fields.entries, "extend")
        if self.gst is not None and not isinstance(self.gst, Gst):
            raise FieldError("gst", "must be an object")

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Sale:
        r = _Reader(obj)
        return cls(
            id=id,
            txn=r.required("txn", fields.txn),
            amount=r.required("amount", fields.amount),
            ref=r.optional("ref", fields.ref),
            tid=r.optional("tid", fields.tid),
            mode=r.default("mode", fields.mode, "ALL"),
            auto_accept=r.optional("auto_accept", fields.boolean),
            display=r.optional(
                "display", lambda v, f: fields.entries(v, f, fields.DISPLAY_MAX_ENTRIES)),
            print=r.optional("print", fields.entries),
            extend=r.optional("extend", fields.entries),
            gst=r.optional("gst", Gst.from_json),
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"txn": self.txn, "amount": self.amount}
        if self.ref is not None:
            out["ref"] = self.ref
        if self.tid is not None:
            out["tid"] = self.tid
        out["mode"] = self.mode
        if self.auto_accept is not None:
            out["auto_accept"] = self.auto_accept
        if self.display is not None:
            out["display"] = _entries_json(self.display)
        if self.print is not None:
            out["print"] = _entries_json(self.print)
        if self.extend is not None:
            out["extend"] = _entries_json(self.extend)
        if self.gst is not None:
            out["gst"] = self.gst.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Void:
    TYPE: ClassVar[str] = "void"

    id: str
    txn: str  # the sale to cancel

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.txn(self.txn)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Void:
        return cls(id=id, txn=_Reader(obj).required("txn", fields.txn))

    def to_json(self) -> dict[str, object]:
        return {"txn": self.txn}


@dataclass(frozen=True, slots=True)
class Paylink:
    TYPE: ClassVar[str] = "paylink"

    id: str
    txn: str  # order id
    amount: str
    phone: str
    expiry_s: int = fields.EXPIRY_DEFAULT_S

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.txn(self.txn)
        fields.amount(self.amount)
        fields.phone(self.phone)
        fields.expiry_s(self.expiry_s)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Paylink:
        r = _Reader(obj)
        return cls(
            id=id,
            txn=r.required("txn", fields.txn),
            amount=r.required("amount", fields.amount),
            phone=r.required("phone", fields.phone),
            expiry_s=r.default("expiry_s", fields.expiry_s, fields.EXPIRY_DEFAULT_S),
        )

    def to_json(self) -> dict[str, object]:
        return {"txn": self.txn, "amount": self.amount, "phone": self.phone,
                "expiry_s": self.expiry_s}


@dataclass(frozen=True, slots=True)
class Resend:
    TYPE: ClassVar[str] = "resend"

    id: str
    txn: str  # an open paylink order

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.txn(self.txn)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Resend:
        return cls(id=id, txn=_Reader(obj).required("txn", fields.txn))

    def to_json(self) -> dict[str, object]:
        return {"txn": self.txn}


@dataclass(frozen=True, slots=True)
class Refund:
    TYPE: ClassVar[str] = "refund"

    id: str
    txn: str  # the original sale or paylink order
    refund_id: str
    amount: str

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.txn(self.txn)
        fields.txn(self.refund_id, "refund_id")
        fields.amount(self.amount)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Refund:
        r = _Reader(obj)
        return cls(
            id=id,
            txn=r.required("txn", fields.txn),
            refund_id=r.required("refund_id", fields.txn),
            amount=r.required("amount", fields.amount),
        )

    def to_json(self) -> dict[str, object]:
        return {"txn": self.txn, "refund_id": self.refund_id, "amount": self.amount}


@dataclass(frozen=True, slots=True)
class Status:
    TYPE: ClassVar[str] = "status"

    id: str
    txn: str  # the refund_id when kind is "refund"
    kind: Kind = "sale"

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.txn(self.txn)
        fields.kind(self.kind)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Status:
        r = _Reader(obj)
        return cls(id=id, txn=r.required("txn", fields.txn),
                   kind=r.default("kind", fields.kind, "sale"))

    def to_json(self) -> dict[str, object]:
        return {"txn": self.txn, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class Last:
    TYPE: ClassVar[str] = "last"

    id: str

    def __post_init__(self) -> None:
        fields.message_id(self.id)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Last:
        return cls(id=id)

    def to_json(self) -> dict[str, object]:
        return {}


@dataclass(frozen=True, slots=True)
class Ping:
    TYPE: ClassVar[str] = "ping"

    id: str

    def __post_init__(self) -> None:
        fields.message_id(self.id)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Ping:
        return cls(id=id)

    def to_json(self) -> dict[str, object]:
        return {}


@dataclass(frozen=True, slots=True)
class Totals:
    """The day's totals of this lane (an X-report); `day` absent: today (IST)."""

    TYPE: ClassVar[str] = "totals"

    id: str
    day: str | None = None  # YYYY-MM-DD

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        _opt(self.day, fields.day, "day")

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Totals:
        return cls(id=id, day=_Reader(obj).optional("day", fields.day))

    def to_json(self) -> dict[str, object]:
        return {} if self.day is None else {"day": self.day}


# --------------------------------------------------------------------------- agent → register


@dataclass(frozen=True, slots=True)
class Accepted:
    TYPE: ClassVar[str] = "accepted"

    re: str
    txn: str
    kind: Kind
    id: str = dataclasses.field(default_factory=new_id, kw_only=True)

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.message_id(self.re, "re")
        fields.txn(self.txn)
        fields.kind(self.kind)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Accepted:
        r = _Reader(obj)
        return cls(re=r.required("re", fields.message_id), txn=r.required("txn", fields.txn),
                   kind=r.required("kind", fields.kind), id=id)

    def to_json(self) -> dict[str, object]:
        return {"re": self.re, "txn": self.txn, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class State:
    TYPE: ClassVar[str] = "state"

    re: str
    txn: str
    kind: Kind
    state: str = "pending"
    id: str = dataclasses.field(default_factory=new_id, kw_only=True)

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.message_id(self.re, "re")
        fields.txn(self.txn)
        fields.kind(self.kind)
        fields.one_of(self.state, "state", ("pending",))

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> State:
        r = _Reader(obj)
        return cls(re=r.required("re", fields.message_id), txn=r.required("txn", fields.txn),
                   kind=r.required("kind", fields.kind),
                   state=r.required("state", lambda v, f: fields.one_of(v, f, ("pending",))),
                   id=id)

    def to_json(self) -> dict[str, object]:
        return {"re": self.re, "txn": self.txn, "kind": self.kind, "state": self.state}


_PAYMENT_KEYS: Final = ("method", "rrn", "auth_code", "card", "scheme", "card_type", "bank",
                        "paytm_txn_id")


@dataclass(frozen=True, slots=True)
class Payment:
    """`payment` of a result; members Paytm did not give are None and left out.

    Each member is clipped to 64 characters so a result always fits one frame.
    """

    method: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    card: str | None = None  # masked as Paytm sends it
    scheme: str | None = None
    card_type: str | None = None
    bank: str | None = None
    paytm_txn_id: str | None = None

    def __post_init__(self) -> None:
        for key in _PAYMENT_KEYS:
            value = getattr(self, key)
            if value is not None:
                text = fields.string(value, "payment." + key)
                object.__setattr__(self, key, fields.clip(text, PAYMENT_MEMBER_MAX))

    @classmethod
    def from_json(cls, value: object, field: str = "payment") -> Payment:
        if not isinstance(value, dict):
            raise FieldError(field, "must be an object")
        r = _Reader(value, field + ".")
        return cls(**{key: r.optional(key, fields.string) for key in _PAYMENT_KEYS})

    def to_json(self) -> dict[str, object]:
        return {key: getattr(self, key) for key in _PAYMENT_KEYS
                if getattr(self, key) is not None}


@dataclass(frozen=True, slots=True)
class Result:
    """A final (or `unknown`) answer. `re` is None when the agent sends it on its own.

    `message` is clipped to 80 characters. `receipt` is always sent (maybe empty);
    `warnings` only when there are some. `codec.fit` trims an oversized result.
    """

    TYPE: ClassVar[str] = "result"

    re: str | None
    txn: str
    kind: Kind
    status: fields.Status
    code: str  # Paytm's result code, e.g. "0000"
    message: str
    amount: str  # paise
    payment: Payment | None = None
    receipt: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # What happened to a sale since (on `status`, `last` and repeats): `voided` is true once
    # a void succeeded; `refunded` sums the successful refunds (absent when none).
    voided: bool | None = None
    refunded: str | None = None
    id: str = dataclasses.field(default_factory=new_id, kw_only=True)

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        _opt(self.re, fields.message_id, "re")
        _opt(self.voided, fields.boolean, "voided")
        _opt(self.refunded, fields.amount, "refunded")
        fields.txn(self.txn)
        fields.kind(self.kind)
        fields.status(self.status)
        code = fields.string(self.code, "code")
        if len(code) > CODE_MAX:
            raise FieldError("code", f"must be at most {CODE_MAX} characters")
        object.__setattr__(self, "message", fields.clip(fields.string(self.message, "message")))
        fields.amount(self.amount)
        if self.payment is not None and not isinstance(self.payment, Payment):
            raise FieldError("payment", "must be an object")
        object.__setattr__(self, "receipt", fields.text_list(self.receipt, "receipt"))
        object.__setattr__(self, "warnings", fields.text_list(self.warnings, "warnings"))

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Result:
        r = _Reader(obj)
        return cls(
            re=r.optional("re", fields.message_id),
            txn=r.required("txn", fields.txn),
            kind=r.required("kind", fields.kind),
            status=r.required("status", fields.status),
            code=r.required("code", fields.string),
            message=r.required("message", fields.string),
            amount=r.required("amount", fields.amount),
            payment=r.optional("payment", Payment.from_json),
            receipt=r.required("receipt", fields.text_list),
            warnings=r.default("warnings", fields.text_list, ()),
            voided=r.optional("voided", fields.boolean),
            refunded=r.optional("refunded", fields.amount),
            id=id,
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.re is not None:
            out["re"] = self.re
        out.update(txn=self.txn, kind=self.kind, status=self.status, code=self.code,
                   message=self.message, amount=self.amount)
        if self.payment is not None:
            out["payment"] = self.payment.to_json()
        out["receipt"] = list(self.receipt)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.voided:
            out["voided"] = True
        if self.refunded is not None:
            out["refunded"] = self.refunded
        return out


def _error_code(value: object, field: str) -> ErrorCode:
    text = fields.string(value, field)
    try:
        return ErrorCode(text)
    except ValueError:
        raise FieldError(field, "is not an error code of protocol §4") from None


@dataclass(frozen=True, slots=True)
class Error:
    """`error`. `re` is None only for INVALID_MESSAGE when no valid `id` could be read."""

    TYPE: ClassVar[str] = "error"

    re: str | None
    code: ErrorCode
    message: str
    field: str | None = None
    txn: str | None = None
    paytm_code: str | None = None
    id: str = dataclasses.field(default_factory=new_id, kw_only=True)

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        _opt(self.re, fields.message_id, "re")
        object.__setattr__(self, "code", _error_code(self.code, "code"))
        object.__setattr__(self, "message", fields.clip(fields.string(self.message, "message")))
        if self.field is not None:
            fields.nonempty(self.field, "field", LABEL_MAX)
        _opt(self.txn, fields.txn, "txn")
        if self.paytm_code is not None:
            fields.nonempty(self.paytm_code, "paytm_code", CODE_MAX)

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Error:
        r = _Reader(obj)
        return cls(
            re=r.optional("re", fields.message_id),
            code=r.required("code", _error_code),
            message=r.required("message", fields.string),
            field=r.optional("field", fields.string),
            txn=r.optional("txn", fields.txn),
            paytm_code=r.optional("paytm_code", fields.string),
            id=id,
        )

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.re is not None:
            out["re"] = self.re
        out["code"] = self.code.value
        out["message"] = self.message
        if self.field is not None:
            out["field"] = self.field
        if self.txn is not None:
            out["txn"] = self.txn
        if self.paytm_code is not None:
            out["paytm_code"] = self.paytm_code
        return out


@dataclass(frozen=True, slots=True)
class Pong:
    TYPE: ClassVar[str] = "pong"

    re: str
    version: str
    lane: str
    tid: str
    busy: bool
    cloud: Cloud
    # §6: the link version the agent now sends on this link; optional, so a pong of an
    # agent (or a test double) that does not say is still valid.
    link: int | None = dataclasses.field(default=None, kw_only=True)
    id: str = dataclasses.field(default_factory=new_id, kw_only=True)

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.message_id(self.re, "re")
        fields.nonempty(self.version, "version", LABEL_MAX)
        fields.nonempty(self.lane, "lane", LABEL_MAX)
        fields.tid(self.tid)
        fields.boolean(self.busy, "busy")
        fields.cloud(self.cloud)
        _opt(self.link, fields.link_version, "link")

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Pong:
        r = _Reader(obj)
        return cls(
            re=r.required("re", fields.message_id),
            version=r.required("version", fields.string),
            lane=r.required("lane", fields.string),
            tid=r.required("tid", fields.string),
            busy=r.required("busy", fields.boolean),
            cloud=r.required("cloud", fields.cloud),
            link=r.optional("link", fields.link_version),
            id=id,
        )

    def to_json(self) -> dict[str, object]:
        obj: dict[str, object] = {"re": self.re, "version": self.version, "lane": self.lane,
                                  "tid": self.tid, "busy": self.busy, "cloud": self.cloud}
        if self.link is not None:
            obj["link"] = self.link
        return obj


@dataclass(frozen=True, slots=True)
class Tally:
    """How many and how much: {"count": N, "amount": "PAISE"}."""

    count: int
    amount: str  # a sum of paise ("0" when none)

    def __post_init__(self) -> None:
        fields.count(self.count, "count")
        fields.total(self.amount, "amount")

    @classmethod
    def from_json(cls, value: object, field: str) -> Tally:
        if not isinstance(value, dict):
            raise FieldError(field, "must be an object")
        r = _Reader(value, field + ".")
        return cls(count=r.required("count", fields.count),
                   amount=r.required("amount", fields.total))

    def to_json(self) -> dict[str, object]:
        return {"count": self.count, "amount": self.amount}


TALLY_NAMES = ("sales", "voids", "refunds", "failed", "unknown")
METHOD_NAMES = ("card", "upi", "paylink")


@dataclass(frozen=True, slots=True)
class DayFigures:
    """A day's figures (issue 13): `net` = sales − voids − refunds, in paise."""

    sales: Tally
    voids: Tally
    refunds: Tally
    net: str
    failed: Tally
    unknown: Tally

    def __post_init__(self) -> None:
        fields.total(self.net, "net", signed=True)

    @classmethod
    def from_json(cls, value: object, prefix: str = "") -> DayFigures:
        if not isinstance(value, dict):
            raise FieldError(prefix.rstrip(".") or "figures", "must be an object")
        r = _Reader(value, prefix)
        tallies = {name: r.required(name, Tally.from_json) for name in TALLY_NAMES}
        return cls(net=r.required("net", lambda v, f: fields.total(v, f, signed=True)),
                   **tallies)

    def to_json(self) -> dict[str, object]:
        return {"sales": self.sales.to_json(), "voids": self.voids.to_json(),
                "refunds": self.refunds.to_json(), "net": self.net,
                "failed": self.failed.to_json(), "unknown": self.unknown.to_json()}


@dataclass(frozen=True, slots=True)
class TotalsReport:
    """The answer to `totals`: the lane's figures, by method, and an X-report to print
    (every line at most the lane's receipt width)."""

    TYPE: ClassVar[str] = "totals"

    re: str
    day: str
    lane: str
    tid: str
    figures: DayFigures
    by_method: tuple[tuple[str, DayFigures], ...]
    receipt: tuple[str, ...] = ()
    id: str = dataclasses.field(default_factory=new_id, kw_only=True)

    def __post_init__(self) -> None:
        fields.message_id(self.id)
        fields.message_id(self.re, "re")
        fields.day(self.day)
        fields.nonempty(self.lane, "lane", LABEL_MAX)
        fields.tid(self.tid)
        for method, _ in self.by_method:
            fields.one_of(method, "by_method", METHOD_NAMES)
        object.__setattr__(self, "receipt", fields.text_list(self.receipt, "receipt"))

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> TotalsReport:
        r = _Reader(obj)
        methods = r.required("by_method", _object)
        by_method = tuple((m, DayFigures.from_json(methods[m], f"by_method.{m}."))
                          for m in METHOD_NAMES if m in methods)
        return cls(re=r.required("re", fields.message_id), day=r.required("day", fields.day),
                   lane=r.required("lane", fields.string), tid=r.required("tid", fields.string),
                   figures=DayFigures.from_json(obj), by_method=by_method,
                   receipt=r.required("receipt", fields.text_list), id=id)

    def to_json(self) -> dict[str, object]:
        return {"re": self.re, "day": self.day, "lane": self.lane, "tid": self.tid,
                **self.figures.to_json(),
                "by_method": {m: f.to_json() for m, f in self.by_method},
                "receipt": list(self.receipt)}


def _object(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise FieldError(field, "must be an object")
    return value


Request = Sale | Void | Paylink | Resend | Refund | Status | Last | Ping | Totals
Reply = Accepted | State | Result | Error | Pong | TotalsReport
Message = Request | Reply

# §3.1: the types a register may send. Literal and read-only: adding a type is a code change.
REQUEST_TYPES: Final[Mapping[str, type[Request]]] = MappingProxyType({
    "sale": Sale,
    "void": Void,
    "paylink": Paylink,
    "resend": Resend,
    "refund": Refund,
    "status": Status,
    "last": Last,
    "ping": Ping,
    "totals": Totals,  # an addition to v1 (docs/protocol.md §3.3)
})

# §3.2: the types the agent sends.
REPLY_TYPES: Final[Mapping[str, type[Reply]]] = MappingProxyType({
    "accepted": Accepted,
    "state": State,
    "result": Result,
    "error": Error,
    "pong": Pong,
    "totals": TotalsReport,
})

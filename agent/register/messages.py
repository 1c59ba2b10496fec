"""Typed register messages (register-protocol.md §3): one frozen dataclass per `type`.

Each attribute declares once, in its annotation, how it travels:

    txn: Annotated[str, Wire(fields.txn)]
    mode: Annotated[Mode, Wire(fields.mode, optional=True)] = "ALL"

`Wire` holds the rule (a checker of `agent.register.fields`, which also gives the value its
typed form), the member's name on the wire when it differs, whether it may be absent, and
when and how `to_json` writes it. From those declarations, and nothing else:
- `from_json(id, obj)` reads the members in declaration order (the order of the protocol's
  table), checks each as it reads it and raises `FieldError` naming the first bad one;
- `__post_init__` checks a message built in code with the same rules, so no message
  object can break the protocol;
- `to_json()` gives the members other than `v`, `type` and `id`, in declaration order;
  absent optional members are left out (never `null`).
Each member is checked once: a decoded message is built without `__init__`.

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
- `by_method` of a totals report leaves out the methods it does not know.
"""

# No `from __future__ import annotations`: the `Wire` declarations are read from the
# evaluated annotations (dataclasses.Field.type).

import dataclasses
import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Self, TypeVar

from agent.errors import FieldError
from agent.register import fields
from agent.register.fields import Cloud, Entries, Kind, Mode
from agent.register.ids import new_id

PAYMENT_MEMBER_MAX = 64  # longer payment details are clipped (they come from Paytm)
CODE_MAX = 16  # Paytm result codes are 4 characters; anything longer is not a code
LABEL_MAX = 64  # version, lane, field names
TALLY_NAMES = ("sales", "voids", "refunds", "failed", "unknown")
METHOD_NAMES = ("card", "upi", "paylink")


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


# --------------------------------------------------------------------------- declarations

# A rule: the value as `json.loads` gave it (or as code passed it) and the field name for
# the error; returns the value in its typed form or raises FieldError.
Check = Callable[[object, str], object]


def _same(value: object) -> object:
    return value


def _is_none(value: object) -> bool:
    return value is None


@dataclass(frozen=True, slots=True)
class Wire:
    """How one attribute travels. Only `check` is needed for a required plain member."""

    check: Check
    key: str | None = None  # the member's name on the wire, when not the attribute's
    optional: bool = False  # absent on the wire: the attribute's default (None if none)
    omit: Callable[[Any], bool] = _is_none  # left out of `to_json` when this is true
    encode: Callable[[Any], object] = _same  # the member's JSON value
    flat: bool = False  # a nested object whose members sit beside this object's own
    envelope: bool = False  # the message `id`: in the envelope (codec), not in the body


_ID: Final = Wire(fields.message_id, envelope=True)


@dataclass(frozen=True, slots=True)
class _Member:
    attr: str
    key: str
    wire: Wire
    absent: object  # its value when absent on the wire (if `wire.optional`)


_MEMBERS: dict[type, tuple[_Member, ...]] = {}  # each class's, read on its first use


def _members(cls: type) -> tuple[_Member, ...]:
    known = _MEMBERS.get(cls)
    if known is not None:
        return known
    members: list[_Member] = []
    for f in dataclasses.fields(cls):
        wire = next((m for m in getattr(f.type, "__metadata__", ()) if isinstance(m, Wire)),
                    None)
        if wire is None:
            raise TypeError(f"{cls.__name__}.{f.name} declares no Wire")
        absent = None if f.default is dataclasses.MISSING else f.default
        members.append(_Member(f.name, wire.key or f.name, wire, absent))
    _MEMBERS[cls] = tuple(members)
    return _MEMBERS[cls]


class _Body:
    """A message or a nested object: checked, read and written by its `Wire` declarations."""

    __slots__ = ()
    # How a member is named in the error when the object is built in code (on the wire the
    # reader knows where the object sits: `by_method.card.sales.count`).
    PREFIX: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for member in _members(type(self)):
            value = getattr(self, member.attr)
            if value is None and member.wire.optional and member.absent is None:
                continue
            checked = member.wire.check(value, self.PREFIX + member.key)
            if checked is not value:  # the typed form: a tuple for a list, an enum, clipped
                object.__setattr__(self, member.attr, checked)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for member in _members(type(self)):
            value = getattr(self, member.attr)
            if member.wire.envelope or member.wire.omit(value):
                continue
            if member.wire.flat:
                out.update(value.to_json())
            else:
                out[member.key] = member.wire.encode(value)
        return out


B = TypeVar("B", bound=_Body)


def _read(cls: type[B], obj: Mapping[str, object], prefix: str, **given: object) -> B:
    """`obj`'s members checked in declaration order; `given` holds the envelope's `id`."""
    values: dict[str, object] = {}
    for member in _members(cls):
        wire = member.wire
        if wire.envelope:
            values[member.attr] = wire.check(given[member.attr], member.key)
        elif wire.flat:
            values[member.attr] = wire.check(obj, prefix.rstrip("."))
        elif member.key in obj:
            values[member.attr] = wire.check(obj[member.key], prefix + member.key)
        elif wire.optional:
            values[member.attr] = member.absent
        else:
            raise FieldError(prefix + member.key, "is required")
    # Every member is checked already: build the object without __init__, whose
    # __post_init__ would check them all a second time.
    built = object.__new__(cls)
    for attr, value in values.items():
        object.__setattr__(built, attr, value)
    return built


class _Message(_Body):
    __slots__ = ()
    TYPE: ClassVar[str]

    @classmethod
    def from_json(cls, id: str, obj: Mapping[str, object]) -> Self:
        return _read(cls, obj, "", id=id)


class _Nested(_Body):
    """An object inside a message (`gst`, `payment`, a tally, a day's figures)."""

    __slots__ = ()

    @classmethod
    def from_json(cls, value: object, field: str) -> Self:
        if not isinstance(value, dict):
            raise FieldError(field, "must be an object")
        return _read(cls, value, field + "." if field else "")


N = TypeVar("N", bound=_Nested)


def _nested(cls: type[N]) -> Callable[[object, str], N]:
    """The rule of a nested object: read from a JSON object, or already built in code."""

    def check(value: object, field: str) -> N:
        return value if isinstance(value, cls) else cls.from_json(value, field)

    return check


# --------------------------------------------------------------------------- rules and forms
# The rules of `fields` that take more than the value and the field name, and the JSON
# forms of what is not already JSON.


def _label(value: object, field: str) -> str:
    return fields.nonempty(value, field, LABEL_MAX)


def _message(value: object, field: str) -> str:
    return fields.clip(fields.string(value, field))


def _display(value: object, field: str) -> Entries:
    return fields.entries(value, field, fields.DISPLAY_MAX_ENTRIES)


def _invoice_no(value: object, field: str) -> str:
    return fields.nonempty(value, field, fields.INVOICE_NO_MAX)


def _payment_member(value: object, field: str) -> str:
    return fields.clip(fields.string(value, field), PAYMENT_MEMBER_MAX)


def _result_code(value: object, field: str) -> str:
    code = fields.string(value, field)
    if len(code) > CODE_MAX:
        raise FieldError(field, f"must be at most {CODE_MAX} characters")
    return code


def _paytm_code(value: object, field: str) -> str:
    return fields.nonempty(value, field, CODE_MAX)


def _error_code(value: object, field: str) -> ErrorCode:
    text = fields.string(value, field)
    try:
        return ErrorCode(text)
    except ValueError:
        raise FieldError(field, "is not an error code of protocol §4") from None


def _pending(value: object, field: str) -> str:
    return fields.one_of(value, field, ("pending",))


def _net(value: object, field: str) -> str:
    return fields.total(value, field, signed=True)


def _pairs_json(pairs: Entries) -> dict[str, str]:
    return dict(pairs)


def _list_json(lines: tuple[str, ...]) -> list[str]:
    return list(lines)


def _object_json(value: _Body) -> dict[str, object]:
    return value.to_json()


def _code_json(code: ErrorCode) -> str:
    return code.value


_ENTRIES: Final = Wire(fields.entries, optional=True, encode=_pairs_json)


# --------------------------------------------------------------------------- register → agent


@dataclass(frozen=True, slots=True)
class Gst(_Nested):
    """`gst` of a sale: all four members (an empty object is `None` on the `Sale`)."""

    PREFIX: ClassVar[str] = "gst."

    gst_in: Annotated[str, Wire(fields.nonempty, key="gstIn")]
    gst_brk_up: Annotated[str, Wire(fields.nonempty, key="gstBrkUp")]
    invoice_no: Annotated[str, Wire(_invoice_no, key="invoiceNo")]
    invoice_date: Annotated[str, Wire(fields.invoice_date, key="invoiceDate")]  # YYYYMMDDHHmmss


def _gst(value: object, field: str) -> Gst | None:
    if isinstance(value, dict) and not value:
        return None  # `{}`: no GST (see the decisions above)
    return _nested(Gst)(value, field)


@dataclass(frozen=True, slots=True)
class Sale(_Message):
    TYPE: ClassVar[str] = "sale"

    id: Annotated[str, _ID]
    txn: Annotated[str, Wire(fields.txn)]
    amount: Annotated[str, Wire(fields.amount)]  # paise
    ref: Annotated[str | None, Wire(fields.ref, optional=True)] = None
    # None: the lane's own terminal
    tid: Annotated[str | None, Wire(fields.tid, optional=True)] = None
    mode: Annotated[Mode, Wire(fields.mode, optional=True)] = "ALL"
    auto_accept: Annotated[bool | None, Wire(fields.boolean, optional=True)] = None
    # ≤ 3 entries for the terminal's pop-up
    display: Annotated[Entries | None, Wire(_display, optional=True, encode=_pairs_json)] = None
    print: Annotated[Entries | None, _ENTRIES] = None  # entries for the terminal slip
    extend: Annotated[Entries | None, _ENTRIES] = None  # echoed back
    gst: Annotated[Gst | None, Wire(_gst, optional=True, encode=_object_json)] = None


@dataclass(frozen=True, slots=True)
class Void(_Message):
    TYPE: ClassVar[str] = "void"

    id: Annotated[str, _ID]
    txn: Annotated[str, Wire(fields.txn)]  # the sale to cancel


@dataclass(frozen=True, slots=True)
class Paylink(_Message):
    TYPE: ClassVar[str] = "paylink"

    id: Annotated[str, _ID]
    txn: Annotated[str, Wire(fields.txn)]  # order id
    amount: Annotated[str, Wire(fields.amount)]
    phone: Annotated[str, Wire(fields.phone)]
    expiry_s: Annotated[int, Wire(fields.expiry_s, optional=True)] = fields.EXPIRY_DEFAULT_S


@dataclass(frozen=True, slots=True)
class Resend(_Message):
    TYPE: ClassVar[str] = "resend"

    id: Annotated[str, _ID]
    txn: Annotated[str, Wire(fields.txn)]  # an open paylink order


@dataclass(frozen=True, slots=True)
class Refund(_Message):
    TYPE: ClassVar[str] = "refund"

    id: Annotated[str, _ID]
    txn: Annotated[str, Wire(fields.txn)]  # the original sale or paylink order
    refund_id: Annotated[str, Wire(fields.txn)]
    amount: Annotated[str, Wire(fields.amount)]


@dataclass(frozen=True, slots=True)
class Status(_Message):
    TYPE: ClassVar[str] = "status"

    id: Annotated[str, _ID]
    txn: Annotated[str, Wire(fields.txn)]  # the refund_id when kind is "refund"
    kind: Annotated[Kind, Wire(fields.kind, optional=True)] = "sale"


@dataclass(frozen=True, slots=True)
class Last(_Message):
    TYPE: ClassVar[str] = "last"

    id: Annotated[str, _ID]


@dataclass(frozen=True, slots=True)
class Ping(_Message):
    TYPE: ClassVar[str] = "ping"

    id: Annotated[str, _ID]


@dataclass(frozen=True, slots=True)
class Totals(_Message):
    """The day's totals of this lane (an X-report); `day` absent: today (IST)."""

    TYPE: ClassVar[str] = "totals"

    id: Annotated[str, _ID]
    day: Annotated[str | None, Wire(fields.day, optional=True)] = None  # YYYY-MM-DD


# --------------------------------------------------------------------------- agent → register

# A reply's `id` is our own, from `new_id`, unless one is given (a decoded reply's).


@dataclass(frozen=True, slots=True)
class Accepted(_Message):
    TYPE: ClassVar[str] = "accepted"

    re: Annotated[str, Wire(fields.message_id)]
    txn: Annotated[str, Wire(fields.txn)]
    kind: Annotated[Kind, Wire(fields.kind)]
    id: Annotated[str, _ID] = dataclasses.field(default_factory=new_id, kw_only=True)


@dataclass(frozen=True, slots=True)
class State(_Message):
    TYPE: ClassVar[str] = "state"

    re: Annotated[str, Wire(fields.message_id)]
    txn: Annotated[str, Wire(fields.txn)]
    kind: Annotated[Kind, Wire(fields.kind)]
    state: Annotated[str, Wire(_pending)] = "pending"  # required on the wire
    id: Annotated[str, _ID] = dataclasses.field(default_factory=new_id, kw_only=True)


@dataclass(frozen=True, slots=True)
class Payment(_Nested):
    """`payment` of a result; members Paytm did not give are None and left out.

    Each member is clipped to 64 characters so a result always fits one frame.
    """

    PREFIX: ClassVar[str] = "payment."

    method: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    rrn: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    auth_code: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    # masked as Paytm sends it
    card: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    scheme: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    card_type: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    bank: Annotated[str | None, Wire(_payment_member, optional=True)] = None
    paytm_txn_id: Annotated[str | None, Wire(_payment_member, optional=True)] = None


@dataclass(frozen=True, slots=True)
class Result(_Message):
    """A final (or `unknown`) answer. `re` is None when the agent sends it on its own.

    `message` is clipped to 80 characters. `receipt` is always sent (maybe empty);
    `warnings` only when there are some. `codec.fit` trims an oversized result.
    """

    TYPE: ClassVar[str] = "result"

    re: Annotated[str | None, Wire(fields.message_id, optional=True)]
    txn: Annotated[str, Wire(fields.txn)]
    kind: Annotated[Kind, Wire(fields.kind)]
    status: Annotated[fields.Status, Wire(fields.status)]
    code: Annotated[str, Wire(_result_code)]  # Paytm's result code, e.g. "0000"
    message: Annotated[str, Wire(_message)]
    amount: Annotated[str, Wire(fields.amount)]  # paise
    payment: Annotated[Payment | None, Wire(_nested(Payment), optional=True,
                                            encode=_object_json)] = None
    receipt: Annotated[tuple[str, ...], Wire(fields.text_list, encode=_list_json)] = ()
    warnings: Annotated[tuple[str, ...], Wire(fields.text_list, optional=True,
                                              omit=operator.not_, encode=_list_json)] = ()
    # What happened to a sale since (on `status`, `last` and repeats): `voided` is true once
    # a void succeeded (sent only then); `refunded` sums the successful refunds (absent when
    # none).
    voided: Annotated[bool | None, Wire(fields.boolean, optional=True,
                                        omit=operator.not_)] = None
    refunded: Annotated[str | None, Wire(fields.amount, optional=True)] = None
    id: Annotated[str, _ID] = dataclasses.field(default_factory=new_id, kw_only=True)


@dataclass(frozen=True, slots=True)
class Error(_Message):
    """`error`. `re` is None only for INVALID_MESSAGE when no valid `id` could be read."""

    TYPE: ClassVar[str] = "error"

    re: Annotated[str | None, Wire(fields.message_id, optional=True)]
    code: Annotated[ErrorCode, Wire(_error_code, encode=_code_json)]
    message: Annotated[str, Wire(_message)]
    field: Annotated[str | None, Wire(_label, optional=True)] = None
    txn: Annotated[str | None, Wire(fields.txn, optional=True)] = None
    paytm_code: Annotated[str | None, Wire(_paytm_code, optional=True)] = None
    id: Annotated[str, _ID] = dataclasses.field(default_factory=new_id, kw_only=True)


@dataclass(frozen=True, slots=True)
class Pong(_Message):
    TYPE: ClassVar[str] = "pong"

    re: Annotated[str, Wire(fields.message_id)]
    version: Annotated[str, Wire(_label)]
    lane: Annotated[str, Wire(_label)]
    tid: Annotated[str, Wire(fields.tid)]
    busy: Annotated[bool, Wire(fields.boolean)]
    cloud: Annotated[Cloud, Wire(fields.cloud)]
    # §6: the link version the agent now sends on this link; optional, so a pong of an
    # agent (or a test double) that does not say is still valid.
    link: Annotated[int | None, Wire(fields.link_version, optional=True)] = dataclasses.field(
        default=None, kw_only=True)
    id: Annotated[str, _ID] = dataclasses.field(default_factory=new_id, kw_only=True)


@dataclass(frozen=True, slots=True)
class Tally(_Nested):
    """How many and how much: {"count": N, "amount": "PAISE"}."""

    count: Annotated[int, Wire(fields.count)]
    amount: Annotated[str, Wire(fields.total)]  # a sum of paise ("0" when none)


_TALLY: Final = Wire(_nested(Tally), encode=_object_json)


@dataclass(frozen=True, slots=True)
class DayFigures(_Nested):
    """A day's figures (issue 13): `net` = sales − voids − refunds, in paise."""

    sales: Annotated[Tally, _TALLY]
    voids: Annotated[Tally, _TALLY]
    refunds: Annotated[Tally, _TALLY]
    net: Annotated[str, Wire(_net)]
    failed: Annotated[Tally, _TALLY]
    unknown: Annotated[Tally, _TALLY]


ByMethod = tuple[tuple[str, DayFigures], ...]


def _by_method(value: object, field: str) -> ByMethod:
    figures = _nested(DayFigures)
    if isinstance(value, dict):  # from the wire: in METHOD_NAMES order, unknown ones left out
        return tuple((m, figures(value[m], f"{field}.{m}")) for m in METHOD_NAMES if m in value)
    if not isinstance(value, tuple):
        raise FieldError(field, "must be an object")
    for method, day in value:
        fields.one_of(method, field, METHOD_NAMES)
        figures(day, f"{field}.{method}")
    return value


def _by_method_json(by_method: ByMethod) -> dict[str, object]:
    return {method: figures.to_json() for method, figures in by_method}


@dataclass(frozen=True, slots=True)
class TotalsReport(_Message):
    """The answer to `totals`: the lane's figures, by method, and an X-report to print
    (every line at most the lane's receipt width)."""

    TYPE: ClassVar[str] = "totals"

    re: Annotated[str, Wire(fields.message_id)]
    day: Annotated[str, Wire(fields.day)]
    lane: Annotated[str, Wire(_label)]
    tid: Annotated[str, Wire(fields.tid)]
    figures: Annotated[DayFigures, Wire(_nested(DayFigures), flat=True)]  # sales, ..., net
    by_method: Annotated[ByMethod, Wire(_by_method, encode=_by_method_json)]
    receipt: Annotated[tuple[str, ...], Wire(fields.text_list, encode=_list_json)] = ()
    id: Annotated[str, _ID] = dataclasses.field(default_factory=new_id, kw_only=True)


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

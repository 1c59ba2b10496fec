"""Field rules of the register protocol (register-protocol.md §3), one checker per rule.

Every checker takes the value as it came out of `json.loads` (so `object`), checks its
JSON type and its range, and returns it typed, or raises `FieldError` naming the field.
The message classes declare one checker per attribute (`messages.Wire`); decoding and
`__post_init__` both use it, so a message object can only exist when every field obeys
the rule it would be checked against on the wire. The rules the agent shares beyond the
register (paise, terminal id) live in `agent.rules`.

Python's `bool` is a subclass of `int`: `true` is *not* the integer 1 here, and `1` is
not a boolean. Floats are never integers, even `1.0` (the wire text must be an integer).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Literal, cast, get_args

from agent import rules
from agent.errors import FieldError

# A message id (§3): 1–36 characters of A–Z a–z 0–9 _ -.
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")
# txn, refund_id (§3.1): 8–32 characters of A–Z a–z 0–9.
TXN_RE = re.compile(r"[A-Za-z0-9]{8,32}")
# A day's sum (`totals`): may be 0, may exceed one sale's 12 digits; `net` may be negative
# (today's refunds of yesterday's sales).
TOTAL_RE = re.compile(r"-?(0|[1-9][0-9]{0,17})")
DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PHONE_RE = re.compile(r"[0-9]{10}")
PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")
INVOICE_DATE_RE = re.compile(r"[0-9]{14}")

REF_MAX = 32
DISPLAY_MAX_ENTRIES = 3
INVOICE_NO_MAX = 20
EXPIRY_MIN_S = 60
EXPIRY_MAX_S = 86400
EXPIRY_DEFAULT_S = 900
LINK_VERSIONS = (1, 2)  # `link` of a pong (§6)
MESSAGE_MAX = 80  # error and result `message`: at most 80 characters for the cashier

Mode = Literal["ALL", "CARD", "QR"]
Kind = Literal["sale", "void", "paylink", "refund"]
Status = Literal["success", "failed", "unknown"]
Cloud = Literal["ok", "down", "unknown"]
MODES: tuple[str, ...] = get_args(Mode)
KINDS: tuple[str, ...] = get_args(Kind)
STATUSES: tuple[str, ...] = get_args(Status)
CLOUD_STATES: tuple[str, ...] = get_args(Cloud)

# An object of string entries, kept as ordered pairs so a message stays immutable and hashable.
Entries = tuple[tuple[str, str], ...]


def is_message_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    return value


def boolean(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(field, "must be true or false")
    return value


def integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, "must be an integer")
    return value


def link_version(value: object, field: str = "link") -> int:
    """`link` of a pong (§6): the link version the agent sends on that link, 1 or 2."""
    number = integer(value, field)
    if number not in LINK_VERSIONS:
        raise FieldError(field, "must be 1 or 2")
    return number


def message_id(value: object, field: str = "id") -> str:
    text = string(value, field)
    if ID_RE.fullmatch(text) is None:
        raise FieldError(field, "must be 1-36 characters of A-Z a-z 0-9 _ -")
    return text


def txn(value: object, field: str = "txn") -> str:
    text = string(value, field)
    if TXN_RE.fullmatch(text) is None:
        raise FieldError(field, "must be 8-32 characters of A-Z a-z 0-9")
    return text


def amount(value: object, field: str = "amount") -> str:
    text = string(value, field)
    if not rules.is_paise(text):  # §3 paise: the agent's one rule (agent.rules)
        raise FieldError(field, "must be paise: 1-12 digits without a leading zero")
    return text


def total(value: object, field: str, *, signed: bool = False) -> str:
    """A sum of paise as a string: "0", "123450", or (`signed`) "-500"."""
    text = string(value, field)
    if TOTAL_RE.fullmatch(text) is None or (text.startswith("-") and not signed):
        raise FieldError(field, "must be a sum of paise: digits without a leading zero"
                         + (", maybe negative" if signed else ""))
    return text


def count(value: object, field: str) -> int:
    number = integer(value, field)
    if number < 0:
        raise FieldError(field, "must be 0 or more")
    return number


def day(value: object, field: str = "day") -> str:
    """An IST calendar day, YYYY-MM-DD."""
    text = string(value, field)
    try:
        if DAY_RE.fullmatch(text) is None:
            raise ValueError(text)
        datetime.date.fromisoformat(text)
    except ValueError:
        raise FieldError(field, "must be a day: YYYY-MM-DD") from None
    return text


def ref(value: object, field: str = "ref") -> str:
    text = string(value, field)
    if not 1 <= len(text) <= REF_MAX or PRINTABLE_RE.fullmatch(text) is None:
        raise FieldError(field, f"must be 1-{REF_MAX} printable ASCII characters")
    return text


def tid(value: object, field: str = "tid") -> str:
    text = string(value, field)
    if not rules.is_tid(text):  # Paytm's paytmTid, as the config accepts it
        raise FieldError(field, "must be a Paytm terminal id: 1-8 letters or digits")
    return text


def one_of(value: object, field: str, choices: tuple[str, ...]) -> str:
    text = string(value, field)
    if text not in choices:
        raise FieldError(field, "must be one of " + ", ".join(choices))
    return text


def mode(value: object, field: str = "mode") -> Mode:
    return cast(Mode, one_of(value, field, MODES))


def kind(value: object, field: str = "kind") -> Kind:
    return cast(Kind, one_of(value, field, KINDS))


def status(value: object, field: str = "status") -> Status:
    return cast(Status, one_of(value, field, STATUSES))


def cloud(value: object, field: str = "cloud") -> Cloud:
    return cast(Cloud, one_of(value, field, CLOUD_STATES))


def phone(value: object, field: str = "phone") -> str:
    text = string(value, field)
    if PHONE_RE.fullmatch(text) is None:
        raise FieldError(field, "must be 10 digits")
    return text


def expiry_s(value: object, field: str = "expiry_s") -> int:
    number = integer(value, field)
    if not EXPIRY_MIN_S <= number <= EXPIRY_MAX_S:
        raise FieldError(field, f"must be {EXPIRY_MIN_S}-{EXPIRY_MAX_S} seconds")
    return number


def entries(value: object, field: str, max_entries: int | None = None) -> Entries:
    """A JSON object whose values are all strings (or the pairs a message already holds)."""
    items: list[tuple[object, object]]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        items = list(value)
    else:
        raise FieldError(field, "must be an object of string entries")
    if max_entries is not None and len(items) > max_entries:
        raise FieldError(field, f"must have at most {max_entries} entries")
    pairs: list[tuple[str, str]] = []
    for key, entry in items:
        if not isinstance(key, str) or not isinstance(entry, str):
            raise FieldError(field, "must be an object of string entries")
        pairs.append((key, entry))
    return tuple(pairs)


def invoice_date(value: object, field: str) -> str:
    """`YYYYMMDDHHmmss`, and a date-time that exists (no 30 February, no 24:00)."""
    text = string(value, field)
    if INVOICE_DATE_RE.fullmatch(text) is None:
        raise FieldError(field, "must be YYYYMMDDHHmmss")
    try:
        datetime.datetime(
            int(text[0:4]), int(text[4:6]), int(text[6:8]),
            int(text[8:10]), int(text[10:12]), int(text[12:14]),
        )
    except ValueError:
        raise FieldError(field, "must be a real date and time (YYYYMMDDHHmmss)") from None
    return text


def nonempty(value: object, field: str, max_len: int | None = None) -> str:
    text = string(value, field)
    if not text or (max_len is not None and len(text) > max_len):
        limit = f"1-{max_len} characters" if max_len is not None else "a non-empty string"
        raise FieldError(field, f"must be {limit}")
    return text


def text_list(value: object, field: str) -> tuple[str, ...]:
    """A JSON list of strings (or the tuple a message already holds)."""
    if not isinstance(value, list | tuple):
        raise FieldError(field, "must be a list of strings")
    lines: list[str] = []
    for line in value:
        if not isinstance(line, str):
            raise FieldError(field, "must be a list of strings")
        lines.append(line)
    return tuple(lines)


def clip(text: str, limit: int = MESSAGE_MAX) -> str:
    """`text` cut to `limit` characters; a cut is marked with "..." so it is not mistaken."""
    return text if len(text) <= limit else text[: limit - 3] + "..."

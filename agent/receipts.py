"""Receipts and terminal display data. Pure functions: data in, lines and dicts out.

Two jobs:
- map the register's `display` / `print` objects onto Paytm's `displayInfo` /
  `printInfo`, cut to limits Paytm accepts (never a `1810` from Paytm) with a
  warning the register can show;
- build the `receipt` lines of every final result, each at most the lane's width.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

# Its home is agent.rules, which the PG client may import (it may not import this module).
from agent.rules import rupees_plain as rupees_plain  # noqa: PLC0414

# Reference §10.1: displayInfo is a Map(3); per-entry limits are Unconfirmed, so stay
# well inside what every integration reports working.
DISPLAY_MAX_ENTRIES = 3
DISPLAY_KEY_MAX = 10
DISPLAY_VALUE_MAX = 20
# Reference §10.2: printInfo limits Unconfirmed; a 2-inch slip fits ~24 characters.
PRINT_MAX_ENTRIES = 5
PRINT_KEY_MAX = 20
PRINT_VALUE_MAX = 24

RUPEE = "₹"


def _ascii(text: str) -> str:
    """Terminals render ASCII reliably; anything else becomes '?'."""
    return "".join(ch if 0x20 <= ord(ch) <= 0x7E else "?" for ch in text)


def _fit_map(
    entries: Iterable[tuple[str, str]],
    defaults: Iterable[tuple[str, str]],
    *,
    name: str,
    max_entries: int,
    key_max: int,
    value_max: int,
) -> tuple[dict[str, str], list[str]]:
    merged: dict[str, str] = dict(defaults)
    merged.update(entries)  # the register's entries win over the lane defaults
    warnings: list[str] = []
    out: dict[str, str] = {}
    for key, value in merged.items():
        if len(out) == max_entries:
            warnings.append(f"{name}: only {max_entries} entries fit; dropped {key!r} and after")
            break
        clean_key, clean_value = _ascii(key)[:key_max], _ascii(value)[:value_max]
        if clean_key != key or clean_value != value:
            warnings.append(f"{name}: {key!r} cut to fit the terminal")
        if clean_key in out:
            warnings.append(f"{name}: {key!r} clashes with another key after cutting; dropped")
            continue
        out[clean_key] = clean_value
    return out, warnings


def display_info(
    display: Mapping[str, str], defaults: Iterable[tuple[str, str]] = ()
) -> tuple[dict[str, str], list[str]]:
    """Paytm `displayInfo` from the register's `display` plus lane defaults, and warnings."""
    return _fit_map(display.items(), defaults, name="display", max_entries=DISPLAY_MAX_ENTRIES,
                    key_max=DISPLAY_KEY_MAX, value_max=DISPLAY_VALUE_MAX)


def print_info(
    printed: Mapping[str, str], defaults: Iterable[tuple[str, str]] = ()
) -> tuple[dict[str, str], list[str]]:
    """Paytm `printInfo` from the register's `print` plus lane defaults, and warnings."""
    return _fit_map(printed.items(), defaults, name="print", max_entries=PRINT_MAX_ENTRIES,
                    key_max=PRINT_KEY_MAX, value_max=PRINT_VALUE_MAX)


def rupees(paise: str | int) -> str:
    """'123450' → '₹1,234.50', Indian digit grouping (₹1,23,456.00 for a lakh and more)."""
    value = int(paise)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 100)
    digits = str(whole)
    if len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        digits = ",".join([*groups, tail])
    return f"{sign}{RUPEE}{digits}.{frac:02d}"


MASK_MAX_X = 8  # a 21-character MID masks to 12 characters so it fits a 24-column slip


def mask(value: str, keep: int = 4) -> str:
    """Show only the last `keep` characters of an id on paper."""
    if len(value) <= keep:
        return value
    return "X" * min(len(value) - keep, MASK_MAX_X) + value[-keep:]


_TITLES = {"sale": "SALE", "void": "VOID", "paylink": "UPI PAYMENT LINK", "refund": "REFUND"}
_STATUS_WORDS = {
    ("sale", "success"): "APPROVED",
    ("sale", "failed"): "DECLINED",
    ("void", "success"): "VOIDED",
    ("void", "failed"): "VOID FAILED",
    ("paylink", "success"): "PAID",
    ("paylink", "failed"): "NOT PAID",
    ("refund", "success"): "REFUNDED",
    ("refund", "failed"): "REFUND FAILED",
}


@dataclass(frozen=True, slots=True)
class ReceiptData:
    kind: str  # sale | void | paylink | refund
    status: str  # success | failed | unknown
    when: datetime  # IST
    mid: str
    tid: str
    txn: str
    amount: str  # paise
    message: str = ""
    reference: str = ""
    rrn: str = ""
    auth_code: str = ""
    card: str = ""  # masked as Paytm sent it
    scheme: str = ""
    method: str = ""  # CARD, UPI, ...
    bank: str = ""
    paytm_txn_id: str = ""
    parent: str = ""  # void/refund: the original transaction
    printed: tuple[tuple[str, str], ...] = field(default=())


def status_words(kind: str, status: str) -> str:
    if status == "unknown":
        return "STATUS UNKNOWN"
    return _STATUS_WORDS.get((kind, status), status.upper())


def build_receipt(
    data: ReceiptData,
    *,
    width: int = 40,
    header: Iterable[str] = (),
    footer: Iterable[str] = (),
) -> tuple[str, ...]:
    """Receipt lines, every one at most `width` characters."""
    lines: list[str] = []

    def centred(text: str) -> None:
        for part in textwrap.wrap(text, width) or [""]:
            lines.append(part.center(width).rstrip())

    def pair(left: str, right: str) -> None:
        if len(left) + 1 + len(right) <= width:
            lines.append(left + " " * (width - len(left) - len(right)) + right)
            return
        lines.extend(textwrap.wrap(left, width) or [""])
        # The value goes under its label, right-aligned like every other value. One
        # longer than the width (a 35-digit Paytm txn id on 32 columns) is cut into
        # pieces of equal length, so no short orphan ("132") is left on the last line.
        pieces = -(-len(right) // width)  # ceil
        size = -(-len(right) // pieces)
        lines.extend(right[i:i + size].rjust(width) for i in range(0, len(right), size))

    def field_line(label: str, value: str) -> None:
        if value:
            pair(label, value)

    rule = "-" * width
    for text in header:
        centred(text)
    if lines:
        lines.append(rule)
    centred(_TITLES.get(data.kind, data.kind.upper()))
    pair(data.when.strftime("%d-%m-%Y"), data.when.strftime("%H:%M:%S IST"))
    field_line("MID", mask(data.mid))
    field_line("TID", mask(data.tid))
    field_line("Txn", data.txn)
    if data.parent:
        field_line("Original txn", data.parent)
    field_line("Ref", data.reference)
    field_line("RRN", data.rrn)
    field_line("Auth code", data.auth_code)
    if data.card:
        field_line("Card", f"{data.scheme} {data.card}".strip())
    elif data.method:
        field_line("Paid by", data.method)
    field_line("Bank", data.bank)
    field_line("Paytm txn", data.paytm_txn_id)
    lines.append(rule)
    pair("AMOUNT", rupees(data.amount))
    lines.append(rule)
    centred(status_words(data.kind, data.status))
    if data.status != "success" and data.message:
        centred(data.message)
    if data.status == "unknown":
        centred("Do not hand over goods yet: the agent keeps checking with Paytm")
    if data.printed:
        lines.append(rule)
        for key, value in data.printed:
            pair(key, value)
    footer_lines = list(footer)
    if footer_lines:
        lines.append(rule)
        for text in footer_lines:
            centred(text)
    return tuple(line[:width] for line in lines)

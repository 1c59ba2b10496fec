"""Reading fields out of Paytm's JSON answers, shared by the EDC and PG parsers.

Paytm's answers are loosely typed (ids and amounts arrive as strings or numbers, absent
values as null or "null"); these two readers are the only places that decide what counts
as "a value".
"""

from __future__ import annotations

from collections.abc import Mapping


def raw_text(value: object) -> str:
    """A member as received when it is a string; "" for anything else."""
    return value if isinstance(value, str) else ""


def detail(mapping: Mapping[str, object], key: str) -> str | None:
    """An optional detail field: None when missing, null, "null", empty or not a scalar."""
    value = mapping.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # some gateways send ids and amounts as numbers
        return str(value)
    if isinstance(value, str) and value.strip() and value.strip().lower() != "null":
        return value
    return None

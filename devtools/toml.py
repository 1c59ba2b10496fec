"""A small TOML writer: nested dicts of our config's value types → TOML text.

    dumps({"paytm": {"mid": "M"}, "lanes": [{"name": "till-1"}]})
    →  [paytm]            (a dict: a table)
       mid = "M"
       [[lanes]]          (a list of dicts: an array of tables)
       name = "till-1"

Enough for agent configs (strings, numbers, booleans, lists of those, tables, arrays of
tables); anything else is a TypeError, never a file the agent reads differently.
tests/devtools/test_toml.py reads every output back with tomllib.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias, TypeGuard

Scalar: TypeAlias = str | int | float | bool
Value: TypeAlias = "Scalar | Sequence[Scalar] | Table | Sequence[Table]"
Table: TypeAlias = Mapping[str, "Value"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# What a basic string must escape: `"`, `\` and the control characters but tab (TOML 1.0).
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def dumps(table: Table) -> str:
    lines: list[str] = []
    _table(table, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(table: Table, path: tuple[str, ...], lines: list[str]) -> None:
    # Plain keys first: after a [header], every `key = value` belongs to that header.
    nested: list[tuple[str, Table | Sequence[Table]]] = []
    for key, value in table.items():
        if isinstance(value, Mapping) or _is_tables(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        here = (*path, key)
        header = ".".join(_key(k) for k in here)
        if isinstance(value, Mapping):
            lines += ["", f"[{header}]"]
            _table(value, here, lines)
        else:
            for item in value:
                lines += ["", f"[[{header}]]"]
                _table(item, here, lines)


def _is_tables(value: Value) -> TypeGuard[Sequence[Table]]:
    return (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
            and all(isinstance(item, Mapping) for item in value))


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):  # before int: True is an int too
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # "0.2", "1e-05", "60.0": each a TOML float
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}: {value!r}")


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'

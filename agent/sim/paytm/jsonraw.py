"""The raw text of a top-level JSON member, as the sender wrote it.

A string-mode signature is over the exact text of `body` (reference §2.4), so the emulator
must verify that text, not a re-serialised copy. Its own small scanner rather than the
client's `agent.paytm.jsontext`, for the same reason as signature.py.
"""

from __future__ import annotations

import json

_SPACE = " \t\n\r"  # JSON's whitespace
_CLOSE = {"{": "}", "[": "]"}


def _string_end(text: str, i: int) -> int:
    """`text[i]` opens a string; the index just past its closing quote."""
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _value_end(text: str, i: int) -> int:
    """The index just past the JSON value starting at `text[i]` (the text is valid JSON)."""
    if text[i] == '"':
        return _string_end(text, i)
    if text[i] in _CLOSE:
        open_ = [_CLOSE[text[i]]]
        i += 1
        while open_:
            if text[i] == '"':
                i = _string_end(text, i)
                continue
            if text[i] in _CLOSE:
                open_.append(_CLOSE[text[i]])
            elif text[i] == open_[-1]:
                open_.pop()
            i += 1
        return i
    while i < len(text) and text[i] not in _SPACE + ",]}":
        i += 1  # a number, true, false or null
    return i


def _skip_space(text: str, i: int) -> int:
    while text[i] in _SPACE:
        i += 1
    return i


def member_raw(text: str, name: str) -> str | None:
    """The text of member `name` of the object `text`; None if no such member or no object.

    A name given twice means its last value, as json.loads reads it.
    """
    try:
        if not isinstance(json.loads(text), dict):
            return None
    except (ValueError, RecursionError):
        return None
    # From here the text is a valid JSON object, so the scan needs no error handling.
    found: str | None = None
    i = _skip_space(text, _skip_space(text, 0) + 1)  # past "{"
    while text[i] != "}":
        key_end = _string_end(text, i)
        key = json.loads(text[i:key_end])
        start = _skip_space(text, _skip_space(text, key_end) + 1)  # past ":"
        end = _value_end(text, start)
        if key == name:
            found = text[start:end]
        i = _skip_space(text, end)
        if text[i] == ",":
            i = _skip_space(text, i + 1)
    return found

"""Exact JSON text of a top-level member, for string-mode signatures.

Paytm signs the *text* of `body` (reference §2.4): verifying a re-serialised copy
would fail on any difference in spacing, key order or escapes. `member_text`
returns the substring of the document that holds the member's value, exactly
as received.
"""

from __future__ import annotations

import json

_decoder = json.JSONDecoder()
_WS = " \t\n\r"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def member_spans(text: str) -> dict[str, tuple[int, int]] | None:
    """Spans of each top-level member value, or None when `text` is not a JSON object.

    A key that appears twice keeps its last span, as `json.loads` keeps the last value.
    """
    try:
        i = _skip(text, 0)
        if i >= len(text) or text[i] != "{":
            return None
        i = _skip(text, i + 1)
        spans: dict[str, tuple[int, int]] = {}
        if i < len(text) and text[i] == "}":
            return spans if _skip(text, i + 1) == len(text) else None
        while True:
            if i >= len(text) or text[i] != '"':
                return None
            key, i = _decoder.raw_decode(text, i)
            i = _skip(text, i)
            if i >= len(text) or text[i] != ":":
                return None
            start = _skip(text, i + 1)
            _, end = _decoder.raw_decode(text, start)
            spans[key] = (start, end)
            i = _skip(text, end)
            if i < len(text) and text[i] == ",":
                i = _skip(text, i + 1)
                continue
            if i < len(text) and text[i] == "}":
                return spans if _skip(text, i + 1) == len(text) else None
            return None
    except (json.JSONDecodeError, RecursionError):
        return None


def member_text(text: str, name: str) -> str | None:
    """The exact text of top-level member `name`, or None if absent or not a JSON object."""
    spans = member_spans(text)
    if spans is None or name not in spans:
        return None
    start, end = spans[name]
    return text[start:end]

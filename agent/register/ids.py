"""Message ids for what we send (register-protocol.md §3).

An id must be unique per sender on a link for at least 24 h, and the receiver drops a
frame whose id it saw among its last 32 messages (R7). A counter alone would restart at
1 with the process and the register would silently drop our first results after an
agent restart, so every source starts from a random prefix.
"""

from __future__ import annotations

import itertools
import secrets

from agent.register import fields


class IdSource:
    """`ids()` returns the next id: `<prefix>-<counter in hex>`, at most 36 characters."""

    def __init__(self, prefix: str | None = None) -> None:
        # 10 random hex digits: two processes on one link collide once in 10^12 starts.
        self._prefix = prefix if prefix is not None else secrets.token_hex(5)
        if not fields.is_message_id(self._prefix) or len(self._prefix) > 18:
            raise ValueError(f"id prefix must be 1-18 characters of A-Z a-z 0-9 _ -: "
                             f"{self._prefix!r}")
        self._count = itertools.count(1)

    @property
    def prefix(self) -> str:
        return self._prefix

    def __call__(self) -> str:
        # The counter stays below 2^64 (16 hex digits) for any process lifetime: ≤ 36 chars.
        return f"{self._prefix}-{next(self._count):x}"


# Ids of replies built without an explicit id (one process = one sender on every link).
new_id = IdSource()

"""Payload bytes ⇄ typed messages (register-protocol.md §3), for both ends of a link.

    decode_request(payload)  the agent's side: a typed request, or the `error` reply to send
    decode_reply(payload)    the register's side: a typed reply, or `MessageError`
    encode(message)          compact ASCII JSON, always within one frame (≤ 4096 bytes)
    message_id(payload)      the `id` for the link layer's duplicate check (R7)

Decoding order, so the code of an `error` is predictable (§3, §4):
1. not ASCII, not JSON, not an object, `v` missing or not the integer 1, `type` missing or
   not a string, `id` missing or not a valid id → INVALID_MESSAGE;
2. `type` not one of §3.1 → UNKNOWN_TYPE;
3. the first field (in the order of the protocol's table) missing, of the wrong type or out
   of range → INVALID_FIELD with `field` naming it.
`re` is set whenever the payload is a JSON object whose `id` is a valid id (1-36 characters
of A-Z a-z 0-9 _ -), even if `v` or `type` is wrong; an `id` that breaks the rule is not
echoed. A key given twice anywhere in the message (top level or nested) is INVALID_MESSAGE
naming the key: `"amount":"100","amount":"999999"` must never reach Paytm as either
value; `re` is still set unless `id` itself is the repeated key, and `message_id`
returns None only then. `NaN`/`Infinity` are not JSON. Bytes outside ASCII are
INVALID_MESSAGE; the link layer already refuses anything outside 0x20-0x7E (R2).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import NoReturn

from agent.errors import AgentError, FieldError
from agent.register import fields
from agent.register.messages import (
    REPLY_TYPES,
    REQUEST_TYPES,
    Error,
    ErrorCode,
    Message,
    Reply,
    Request,
    Result,
)

MAX_PAYLOAD = 4096  # protocol §2: a frame's payload is 2-4096 bytes
PROTOCOL_VERSION = 1


class MessageError(AgentError):
    """A payload is not a valid message; `code`, `field` and `re` say what an `error` would."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None,
                 re: str | None = None) -> None:
        self.code = code
        self.message = message
        self.field = field
        self.re = re
        super().__init__(f"{code.value}: {message}")


class MessageTooLargeError(AgentError):
    """A message does not fit one frame (4096 bytes) and cannot be trimmed."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"message of {size} bytes does not fit a frame ({MAX_PAYLOAD} bytes)")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


class _Pairs:
    """`object_pairs_hook` that builds dicts and remembers the first repeated key."""

    def __init__(self) -> None:
        self.repeated: str | None = None

    def __call__(self, pairs: list[tuple[str, object]]) -> dict[str, object]:
        obj: dict[str, object] = {}
        for key, value in pairs:
            if key in obj and self.repeated is None:
                self.repeated = key
            obj[key] = value
        return obj


def _parse(payload: bytes) -> tuple[object, str | None]:
    """`json.loads` and the first key given twice in any object (None when none)."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise MessageError(ErrorCode.INVALID_MESSAGE, "payload is not ASCII") from None
    pairs = _Pairs()
    try:
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=pairs)
    except RecursionError:
        raise MessageError(ErrorCode.INVALID_MESSAGE, "JSON nested too deeply") from None
    except ValueError:  # JSONDecodeError, NaN, integers longer than Python's digit limit
        raise MessageError(ErrorCode.INVALID_MESSAGE, "payload is not JSON") from None
    return obj, pairs.repeated


def _top_id_repeated(payload: bytes) -> bool:
    """Whether the top-level object itself has `id` twice (then no `re` can be trusted)."""
    seen: list[int] = []

    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen.append(sum(1 for key, _ in pairs if key == "id"))
        return dict(pairs)

    json.loads(payload.decode("ascii"), object_pairs_hook=hook)
    return bool(seen) and seen[-1] > 1  # the top-level object is completed last


def _load(payload: bytes) -> object:
    """`json.loads`, with every way it can fail turned into INVALID_MESSAGE."""
    obj, repeated = _parse(payload)
    if repeated is not None:
        re = None
        if isinstance(obj, dict) and not _top_id_repeated(payload):
            raw_id = obj.get("id")
            re = raw_id if isinstance(raw_id, str) and fields.is_message_id(raw_id) else None
        raise MessageError(ErrorCode.INVALID_MESSAGE,
                           fields.clip(f"key {repeated!r} appears twice"), re=re)
    return obj


def _envelope(payload: bytes) -> tuple[dict[str, object], str, str]:
    """The object, its `type` and its `id`, or MessageError INVALID_MESSAGE (with `re`)."""
    obj = _load(payload)
    if not isinstance(obj, dict):
        raise MessageError(ErrorCode.INVALID_MESSAGE, "not a JSON object")
    raw_id = obj.get("id")
    re = raw_id if isinstance(raw_id, str) and fields.is_message_id(raw_id) else None

    def invalid(message: str) -> MessageError:
        return MessageError(ErrorCode.INVALID_MESSAGE, message, re=re)

    version = obj.get("v")
    if "v" not in obj:
        raise invalid("v is missing")
    # `type(...) is int`: JSON true is a bool, and bool is an int subclass; 1.0 is a float.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise invalid("v must be the integer 1")
    kind = obj.get("type")
    if "type" not in obj:
        raise invalid("type is missing")
    if not isinstance(kind, str):
        raise invalid("type must be a string")
    if "id" not in obj:
        raise invalid("id is missing")
    if re is None:
        raise invalid("id must be 1-36 characters of A-Z a-z 0-9 _ -")
    return obj, kind, re


def _unknown_type(kind: str) -> str:
    return fields.clip(f"unknown type {kind!r}")


def decode_request(payload: bytes) -> Request | Error:
    """What a register sent: a typed request, or the `error` to answer it with. Never raises."""
    try:
        obj, kind, id = _envelope(payload)
    except MessageError as exc:
        return Error(re=exc.re, code=exc.code, message=exc.message)
    cls = REQUEST_TYPES.get(kind)
    if cls is None:
        return Error(re=id, code=ErrorCode.UNKNOWN_TYPE, message=_unknown_type(kind))
    try:
        return cls.from_json(id, obj)
    except FieldError as exc:
        return Error(re=id, code=ErrorCode.INVALID_FIELD,
                     message=fields.clip(f"{exc.field} {exc.message}"), field=exc.field)


def decode_reply(payload: bytes) -> Reply:
    """What the agent sent, as a register reads it; `MessageError` when it breaks §3."""
    obj, kind, id = _envelope(payload)
    cls = REPLY_TYPES.get(kind)
    if cls is None:
        raise MessageError(ErrorCode.UNKNOWN_TYPE, _unknown_type(kind), re=id)
    try:
        return cls.from_json(id, obj)
    except FieldError as exc:
        raise MessageError(ErrorCode.INVALID_FIELD, f"{exc.field} {exc.message}",
                           field=exc.field, re=id) from None


def message_id(payload: bytes) -> str | None:
    """The valid `id` of a JSON object payload, else None. Never raises (R7 on garbage)."""
    try:
        obj = _load(payload)
    except MessageError as exc:
        return exc.re  # a repeated key: the id, unless `id` is the repeated key
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    return value if isinstance(value, str) and fields.is_message_id(value) else None


def _dump(message: Message) -> bytes:
    body: dict[str, object] = {"v": PROTOCOL_VERSION, "type": message.TYPE, "id": message.id}
    body.update(message.to_json())
    # ensure_ascii escapes everything outside 0x20-0x7E (also DEL and control characters),
    # so the payload only holds bytes a frame may carry (§2).
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def fit(result: Result, limit: int = MAX_PAYLOAD) -> Result:
    """`result` trimmed to encode within `limit` bytes (the same object when it already does).

    Only an oversized result is touched, in this order until it fits:
    1. each warning longer than 80 characters is clipped to 80;
    2. receipt lines are dropped from the end, keeping as many as fit;
    3. warnings are dropped from the end.
    A last warning says what was done, e.g. "trimmed to fit one frame: receipt 31/40
    lines, warnings 2/2". Everything else in a result is bounded by its own rules, so a
    result without receipt lines and warnings always fits.
    """
    if len(_dump(result)) <= limit:
        return result
    lines = result.receipt
    warnings = tuple(fields.clip(w) for w in result.warnings)
    clipped = " (clipped to 80 characters)" if warnings != result.warnings else ""

    def trimmed(n_lines: int, n_warnings: int) -> Result:
        note = (f"trimmed to fit one frame: receipt {n_lines}/{len(lines)} lines, "
                f"warnings {n_warnings}/{len(warnings)}{clipped}")
        return dataclasses.replace(result, receipt=lines[:n_lines],
                                   warnings=(*warnings[:n_warnings], note))

    def fits(candidate: Result) -> bool:
        return len(_dump(candidate)) <= limit

    if fits(trimmed(0, len(warnings))):
        keep_warnings = len(warnings)
        keep_lines = _largest(len(lines), lambda n: fits(trimmed(n, keep_warnings)))
    else:
        keep_lines = 0
        if not fits(trimmed(0, 0)):
            raise MessageTooLargeError(len(_dump(trimmed(0, 0))))
        keep_warnings = _largest(len(warnings), lambda n: fits(trimmed(0, n)))
    return trimmed(keep_lines, keep_warnings)


def _largest(upper: int, ok: Callable[[int], bool]) -> int:
    """The largest n in 0..upper with ok(n), given ok(0) and ok monotone (binary search)."""
    low, high = 0, upper
    while low < high:
        mid = (low + high + 1) // 2
        if ok(mid):
            low = mid
        else:
            high = mid - 1
    return low


def encode(message: Message) -> bytes:
    """The payload of `message`: compact ASCII JSON, `v`, `type`, `id` first, ≤ 4096 bytes.

    A `result` that would be larger is trimmed by `fit`; any other message that would be
    larger raises MessageTooLargeError (only a register's own oversized request can).
    """
    if isinstance(message, Result):
        message = fit(message)
    payload = _dump(message)
    if len(payload) > MAX_PAYLOAD:
        raise MessageTooLargeError(len(payload))
    return payload

"""The capture for support bundles: the last frames of each lane and the last Paytm calls,
in bounded in-memory rings (nothing is written to disk until a bundle is asked for).

    Link.observer ("in"/"out", bytes) ──► LaneFrames  (deque, FRAMES_PER_LANE)
    SignedCaller exchanges (Exchange) ──► PaytmCalls  (deque, PAYTM_CALLS)

Masked when recorded, so a secret never sits in memory waiting for a bundle: checksum and
signature values become •••, a phone number keeps its last four digits (the register's
`phone` of a payment link, Paytm's userPhoneNo…), every registered secret (`SECRETS`) is
redacted. Card numbers stay as Paytm masks them ("5412XXXXXXXX0825"). A frame's hex is
that of its masked bytes.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from agent.link.codec import (
    ACK,
    ENQ,
    ETX,
    NAK,
    STX,
    ControlReceived,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    PartialDropped,
    lrc,
)
from agent.logs import REDACTED, SECRETS
from agent.paytm.pipeline import PHONE_KEPT_DIGITS, Exchange

FRAMES_PER_LANE = 500
PAYTM_CALLS = 200
DEFAULT_FRAME_GAP_S = 0.5
_CONTROL_NAMES = {ACK: "ACK", NAK: "NAK", ENQ: "ENQ"}

# "key": "value" members whose value is a checksum or a signature (any case, any prefix).
_SIGNED_RE = re.compile(
    r'("[A-Za-z_]*(?:checksum|signature|CHECKSUM|Checksum|Signature|SIGNATURE)[A-Za-z_]*"'
    r'\s*:\s*")([^"\\]*)(")')
# Members that hold a phone number: phone, userPhoneNo, phoneNumber, mobile, customerMobile…
_PHONE_KEY_RE = re.compile(
    r'("[A-Za-z_]*(?:phone|Phone|PHONE|mobile|Mobile|MOBILE|msisdn|MSISDN)[A-Za-z_0-9]*"'
    r'\s*:\s*")(\+?[0-9 -]{5,20})(")')
# The safety net: a bare Indian mobile number (10 digits from 6-9, maybe +91/91/0 before it)
# that is no part of a longer number.
_BARE_PHONE_RE = re.compile(r"(?<![0-9])(?:\+?91|0)?([6-9][0-9]{9})(?![0-9])")


def mask_number(digits: str) -> str:
    kept = digits[-PHONE_KEPT_DIGITS:]
    return "X" * max(0, len(digits) - len(kept)) + kept


def mask_text(text: str) -> str:
    """`text` as a bundle may hold it: signatures •••, phone numbers to their last four
    digits, registered secrets •••."""
    text = _SIGNED_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _PHONE_KEY_RE.sub(lambda m: m.group(1) + mask_number(m.group(2)) + m.group(3),
                             text)
    text = _BARE_PHONE_RE.sub(lambda m: mask_number(m.group(0)), text)
    return SECRETS.redact(text)


def _mask_ascii(data: bytes) -> bytes:
    """Masking that keeps a frame's bytes ASCII (the masks are ASCII except •••, which a
    frame never needs: register frames carry no signatures)."""
    return mask_text(data.decode("ascii", errors="replace")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    at: float  # wall clock
    direction: str  # in (from the register) | out (to it)
    kind: str  # frame | rejected | ACK | NAK | ENQ | partial | bytes
    hex: str  # the bytes on the wire (masked), hex
    decoded: str  # the payload as text (masked), or what the control byte means


class LaneFrames:
    """The last FRAMES_PER_LANE frames and control bytes of one lane, both ways."""

    def __init__(self, lane: str, frame_gap_s: float = DEFAULT_FRAME_GAP_S,
                 capacity: int = FRAMES_PER_LANE,
                 clock: Callable[[], float] = time.time) -> None:
        self.lane = lane
        self.frames: deque[CapturedFrame] = deque(maxlen=capacity)
        self._clock = clock
        self._gap_s = frame_gap_s
        self._decoders = {"in": FrameDecoder(frame_gap_s), "out": FrameDecoder(frame_gap_s)}

    def observe(self, direction: str, data: bytes) -> None:
        """Link.observer: bytes read or written, split back into frames."""
        now = self._clock()
        decoder = self._decoders.get(direction)
        if decoder is None:
            return
        for event in decoder.feed(data, time.monotonic()):
            if isinstance(event, FrameReceived):
                self._add(now, direction, "frame", event.payload, framed=True)
            elif isinstance(event, FrameRejected):
                self._add(now, direction, "rejected", event.payload, framed=True,
                          note=f" ({event.reason.value})")
            elif isinstance(event, ControlReceived):
                name = _CONTROL_NAMES.get(event.byte, f"0x{event.byte:02x}")
                self.frames.append(CapturedFrame(now, direction, name, f"{event.byte:02x}",
                                                 name))
            elif isinstance(event, PartialDropped):
                self.frames.append(CapturedFrame(
                    now, direction, "partial", "",
                    f"partial frame of {event.length} bytes dropped"))

    def _add(self, now: float, direction: str, kind: str, payload: bytes, *,
             framed: bool, note: str = "") -> None:
        masked = _mask_ascii(payload)
        wire = bytes([STX]) + masked + bytes([ETX, lrc(masked)]) if framed else masked
        self.frames.append(CapturedFrame(now, direction, kind, wire.hex(),
                                         masked.decode("utf-8", errors="replace") + note))

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in list(self.frames)]


@dataclass(frozen=True, slots=True)
class CapturedCall:
    at: float
    api: str
    subject: str
    url: str
    outcome: str
    status: int | None
    latency_s: float
    request: str  # masked
    answer: str  # masked


class PaytmCalls:
    """The last PAYTM_CALLS Paytm calls, request and answer, masked when recorded."""

    def __init__(self, capacity: int = PAYTM_CALLS,
                 clock: Callable[[], float] = time.time) -> None:
        self.calls: deque[CapturedCall] = deque(maxlen=capacity)
        self._clock = clock

    def observe(self, exchange: Exchange) -> None:
        self.calls.append(CapturedCall(
            at=self._clock(), api=exchange.api, subject=exchange.subject, url=exchange.url,
            outcome=exchange.outcome, status=exchange.status,
            latency_s=round(exchange.latency_s, 4),
            request=mask_text(exchange.request.decode("utf-8", errors="replace")),
            answer=mask_text(exchange.answer.decode("utf-8", errors="replace"))))

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in list(self.calls)]


class Capture:
    """One agent's capture: a frame ring per lane and one ring of Paytm calls."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.lanes: dict[str, LaneFrames] = {}
        self.paytm = PaytmCalls(clock=clock)

    def lane(self, name: str, frame_gap_s: float = DEFAULT_FRAME_GAP_S) -> LaneFrames:
        found = self.lanes.get(name)
        if found is None:
            found = self.lanes[name] = LaneFrames(name, frame_gap_s, clock=self._clock)
        return found

    def snapshot(self) -> dict[str, Any]:
        """A copy, taken on the loop; a bundle is written from it in a thread."""
        return {"frames": {name: lane.snapshot() for name, lane in self.lanes.items()},
                "paytm_calls": self.paytm.snapshot()}


def dumps_lines(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for r in rows)

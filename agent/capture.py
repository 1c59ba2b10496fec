"""The capture for support bundles: the last frames of each lane and the last Paytm calls,
in bounded in-memory rings (nothing is written to disk until a bundle is asked for).

    Link.observer ("in"/"out", bytes) ──► LaneFrames  (deque, FRAMES_PER_LANE)
    SignedCaller exchanges (Exchange) ──► PaytmCalls  (deque, PAYTM_CALLS)

The hot path only appends the bytes to a deque (one lane's link calls the observer on every
read and write: decoding and masking there cost 130 µs a frame); a bundle's `snapshot`
splits them into frames and masks them, off the lanes' way: checksum and signature values
become •••, a phone number keeps its last four digits (the register's `phone` of a
payment link, Paytm's userPhoneNo…), every registered secret (`SECRETS`) is redacted. Card
numbers stay as Paytm masks them ("5412XXXXXXXX0825"). A frame's hex is that of its
masked bytes. Memory: at most 2 × 500 reads/writes a lane (a busy lane's ~0.5 MB) and 200
calls.
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
    FRAME_GAP_S,
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
    """The last FRAMES_PER_LANE frames and control bytes of one lane, both ways.

    On the lane's hot path only the bytes are kept (a deque append: the link calls this
    for every read and write); they are split back into frames and masked when a bundle
    asks for them (`snapshot`)."""

    def __init__(self, lane: str, frame_gap_s: float = FRAME_GAP_S,
                 capacity: int = FRAMES_PER_LANE,
                 clock: Callable[[], float] = time.time) -> None:
        self.lane = lane
        self.capacity = capacity
        # One entry per read or write: a write is one frame or one control byte; a read
        # is usually one too. Twice the frames kept, so that `capacity` survive decoding.
        self.chunks: deque[tuple[float, str, bytes]] = deque(maxlen=2 * capacity)
        self._clock = clock
        self.frame_gap_s = frame_gap_s

    def observe(self, direction: str, data: bytes) -> None:
        """Link.observer: bytes read ("in") or written ("out")."""
        self.chunks.append((self._clock(), direction, data))

    def frames(self) -> list[CapturedFrame]:
        """The chunks split back into frames (per direction, as the link decodes them),
        masked, oldest first, at most `capacity`."""
        decoders = {"in": FrameDecoder(self.frame_gap_s), "out": FrameDecoder(self.frame_gap_s)}
        out: list[CapturedFrame] = []
        for at, direction, data in list(self.chunks):
            decoder = decoders.get(direction)
            if decoder is None:
                continue
            for event in decoder.feed(data, at):
                if isinstance(event, FrameReceived):
                    out.append(_frame(at, direction, "frame", event.payload))
                elif isinstance(event, FrameRejected):
                    out.append(_frame(at, direction, "rejected", event.payload,
                                      f" ({event.reason.value})"))
                elif isinstance(event, ControlReceived):
                    name = _CONTROL_NAMES.get(event.byte, f"0x{event.byte:02x}")
                    out.append(CapturedFrame(at, direction, name, f"{event.byte:02x}", name))
                elif isinstance(event, PartialDropped):
                    out.append(CapturedFrame(at, direction, "partial", "",
                                             f"partial frame of {event.length} bytes dropped"))
        return out[-self.capacity:]

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.frames()]


def _frame(at: float, direction: str, kind: str, payload: bytes,
           note: str = "") -> CapturedFrame:
    masked = _mask_ascii(payload)
    wire = bytes([STX]) + masked + bytes([ETX, lrc(masked)])
    return CapturedFrame(at, direction, kind, wire.hex(),
                         masked.decode("utf-8", errors="replace") + note)


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
    """The last PAYTM_CALLS Paytm calls, request and answer (masked when read)."""

    def __init__(self, capacity: int = PAYTM_CALLS,
                 clock: Callable[[], float] = time.time) -> None:
        self.exchanges: deque[tuple[float, Exchange]] = deque(maxlen=capacity)
        self._clock = clock

    def observe(self, exchange: Exchange) -> None:
        self.exchanges.append((self._clock(), exchange))

    def calls(self) -> list[CapturedCall]:
        return [CapturedCall(
            at=at, api=e.api, subject=e.subject, url=e.url, outcome=e.outcome,
            status=e.status, latency_s=round(e.latency_s, 4),
            request=mask_text(e.request.decode("utf-8", errors="replace")),
            answer=mask_text(e.answer.decode("utf-8", errors="replace")))
            for at, e in list(self.exchanges)]

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.calls()]


class Capture:
    """One agent's capture: a frame ring per lane and one ring of Paytm calls."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.lanes: dict[str, LaneFrames] = {}
        self.paytm = PaytmCalls(clock=clock)

    def lane(self, name: str, frame_gap_s: float = FRAME_GAP_S) -> LaneFrames:
        found = self.lanes.get(name)
        if found is None:
            found = self.lanes[name] = LaneFrames(name, frame_gap_s, clock=self._clock)
        return found

    def copy(self) -> Capture:
        """The rings as they are now: cheap (references to the bytes), for the loop; the
        copy's `snapshot` (decoding, masking) then runs in a thread."""
        twin = Capture(self._clock)
        for name, lane in self.lanes.items():
            copied = twin.lane(name, lane.frame_gap_s)
            copied.capacity = lane.capacity
            copied.chunks = deque(lane.chunks, maxlen=lane.chunks.maxlen)
        twin.paytm.exchanges = deque(self.paytm.exchanges, maxlen=self.paytm.exchanges.maxlen)
        return twin

    def snapshot(self) -> dict[str, Any]:
        """Frames and calls, decoded and masked, as JSON-ready data. Blocking work (a
        thousand frames a lane): call it on a copy, off the loop."""
        return {"frames": {name: lane.snapshot() for name, lane in self.lanes.items()},
                "paytm_calls": self.paytm.snapshot()}


def dumps_lines(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for r in rows)

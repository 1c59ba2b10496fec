"""Frame codec of the register protocol (§2): pure, no asyncio, no I/O, no clock.

A frame on the wire:

    +------+---------------------------------+------+------+
    | STX  | payload                         | ETX  | LRC  |
    | 0x02 | 2..4096 bytes, each 0x20..0x7E  | 0x03 | 1 B  |
    +------+---------------------------------+------+------+
           |<------ LRC = XOR of these bytes ------>|
                  (every payload byte and ETX; not STX)

Outside a frame a single control byte may travel: ENQ (link check), ACK, NAK, EOT.

The decoder turns bytes into events; the caller (agent.link.layer) writes the
answers the protocol names:

    FrameReceived   R1: the caller ACKs, then hands the payload on
    FrameRejected   R2 (bad LRC, byte outside 0x20..0x7E), R3 (oversize),
                    payload shorter than 2 bytes: the caller NAKs
    ControlReceived R6: ENQ/ACK/NAK outside a frame
    PartialDropped  R5: a partial frame went silent for frame_gap_s; nothing is sent

Decisions the protocol leaves open, made here:

- The LRC is the single byte right after ETX, whatever its value (0x02 included):
  it is never read as a new STX or as a control byte.
- Control bytes (EOT/ENQ/ACK/NAK) and any other byte outside 0x20..0x7E *inside* a
  frame are payload bytes that break R2: the frame is NAKed once its LRC arrives.
- R3: the moment the payload would exceed 4096 bytes the frame is rejected (NAK
  now, not at ETX) and nothing more is buffered. Bytes are then skipped until an
  STX (a new frame), or until the oversized frame's own ETX and LRC have gone by
  (then the decoder is outside a frame again and answers ENQ/ACK/NAK per R6), or
  until frame_gap_s of silence. Skipping the LRC matters: it may be 0x02 or 0x05.
- R4: an STX inside a frame (before ETX) restarts the frame; the dropped part is
  counted in `restarts`, no event and no answer.
- R5: the silence is measured from the chunk that brought the last byte to the
  chunk that brings the next one ("now" is passed in by the caller); a gap of
  exactly frame_gap_s drops the partial frame. `expire(now)` lets a timer drop it
  without waiting for the next byte.
- EOT and any other byte outside a frame are ignored and counted in `ignored`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final

from agent.errors import LinkError

STX: Final = 0x02
ETX: Final = 0x03
EOT: Final = 0x04
ENQ: Final = 0x05
ACK: Final = 0x06
NAK: Final = 0x15

MIN_PAYLOAD: Final = 2
MAX_PAYLOAD: Final = 4096
FRAME_GAP_S: Final = 0.5  # R5: a partial frame is dropped after this much silence

# Clock readings are floats; 0.7 - 0.2 is 0.49999999999999994. A gap this close to
# frame_gap_s counts as the full gap.
_GAP_EPSILON_S: Final = 1e-9

_BAD_PAYLOAD_BYTE = re.compile(rb"[^\x20-\x7e]")
# What ends a run of plain bytes in each state (searched in C, not byte by byte).
_IDLE_STOP = re.compile(rb"[\x02\x05\x06\x15]")  # STX or a control byte we act on
_FRAME_STOP = re.compile(rb"[\x02\x03]")  # STX restarts (R4), ETX ends the payload


class InvalidPayloadError(LinkError):
    """A payload cannot be framed: its length or one of its bytes breaks protocol §2."""

    def __init__(self, payload: bytes, reason: str) -> None:
        self.payload = payload
        self.reason = reason
        super().__init__(f"cannot frame payload ({len(payload)} bytes): {reason}")


class RejectReason(enum.StrEnum):
    BAD_LRC = "bad_lrc"  # R2
    BAD_BYTE = "bad_byte"  # R2: a payload byte outside 0x20..0x7E
    OVERSIZE = "oversize"  # R3
    TOO_SHORT = "too_short"  # payload under MIN_PAYLOAD bytes


@dataclass(frozen=True, slots=True)
class FrameReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class FrameRejected:
    reason: RejectReason
    # What was received (up to MAX_PAYLOAD bytes), for the log; not part of equality.
    payload: bytes = field(default=b"", compare=False)


@dataclass(frozen=True, slots=True)
class ControlReceived:
    byte: int  # ENQ, ACK or NAK


@dataclass(frozen=True, slots=True)
class PartialDropped:
    length: int = field(default=0, compare=False)  # payload bytes that were dropped


Event = FrameReceived | FrameRejected | ControlReceived | PartialDropped


def lrc(payload: bytes) -> int:
    """XOR of every payload byte and of ETX."""
    # XOR-fold the bytes as one big integer: halve it until one byte is left.
    # Runs in C; a Python loop over a 4 KB payload would dominate the decoder.
    width = len(payload)
    value = int.from_bytes(payload, "little")
    while width > 1:
        half = (width + 1) // 2
        value = (value & ((1 << (8 * half)) - 1)) ^ (value >> (8 * half))
        width = half
    return value ^ ETX


def check_payload(payload: bytes) -> None:
    """Raise InvalidPayloadError unless `payload` may be framed."""
    if not MIN_PAYLOAD <= len(payload) <= MAX_PAYLOAD:
        raise InvalidPayloadError(
            payload, f"length must be {MIN_PAYLOAD}..{MAX_PAYLOAD} bytes"
        )
    bad = _BAD_PAYLOAD_BYTE.search(payload)
    if bad is not None:
        raise InvalidPayloadError(
            payload, f"byte 0x{bad.group()[0]:02x} at offset {bad.start()} is outside 0x20..0x7e"
        )


def encode_frame(payload: bytes) -> bytes:
    """STX payload ETX LRC (layout in the module comment)."""
    check_payload(payload)
    return b"\x02" + payload + bytes((ETX, lrc(payload)))


class _State(enum.Enum):
    IDLE = enum.auto()  # outside a frame
    PAYLOAD = enum.auto()  # after STX, collecting payload bytes
    LRC = enum.auto()  # after ETX: the next byte is the LRC
    SKIP = enum.auto()  # after an oversize payload: skipping its remaining bytes
    SKIP_LRC = enum.auto()  # after the oversized frame's ETX: its LRC byte is skipped


class FrameDecoder:
    """Bytes in, events out (protocol §2 R1–R6). Holds at most MAX_PAYLOAD bytes."""

    def __init__(self, frame_gap_s: float = FRAME_GAP_S) -> None:
        self.frame_gap_s = frame_gap_s
        self._state = _State.IDLE
        self._buf = bytearray()
        self._last_at: float | None = None  # when the last byte of the open frame arrived
        self.ignored = 0  # bytes outside a frame that mean nothing (EOT, noise)
        self.restarts = 0  # R4: partial frames cut short by an STX

    @property
    def idle(self) -> bool:
        """True outside a frame (nothing buffered, nothing being skipped)."""
        return self._state is _State.IDLE

    @property
    def buffered(self) -> int:
        """Payload bytes held for the open frame (never more than MAX_PAYLOAD)."""
        return len(self._buf)

    def expire(self, now: float) -> list[Event]:
        """R5: drop the open partial frame if nothing arrived for frame_gap_s."""
        if self._state is _State.IDLE or self._last_at is None:
            return []
        if now - self._last_at < self.frame_gap_s - _GAP_EPSILON_S:
            return []
        events: list[Event] = []
        if self._state in (_State.PAYLOAD, _State.LRC):
            events.append(PartialDropped(len(self._buf)))
        # SKIP/SKIP_LRC: that frame was already rejected (NAKed); just stop skipping.
        self._reset()
        return events

    def feed(self, data: bytes, now: float) -> list[Event]:
        """Decode `data`, which arrived at time `now` (seconds, any monotonic origin)."""
        events = self.expire(now)
        i = 0
        n = len(data)
        while i < n:
            state = self._state
            if state is _State.IDLE:
                m = _IDLE_STOP.search(data, i)
                if m is None:
                    self.ignored += n - i
                    break
                j = m.start()
                self.ignored += j - i
                byte = data[j]
                if byte == STX:
                    self._state = _State.PAYLOAD
                else:
                    events.append(ControlReceived(byte))
                i = j + 1
            elif state is _State.PAYLOAD:
                m = _FRAME_STOP.search(data, i)
                j = n if m is None else m.start()
                if j > i:
                    room = MAX_PAYLOAD - len(self._buf)
                    if j - i > room:
                        # R3: reject now, keep nothing more; skip the rest of this frame.
                        self._buf += data[i : i + room]
                        events.append(FrameRejected(RejectReason.OVERSIZE, bytes(self._buf)))
                        self._buf.clear()
                        self._state = _State.SKIP
                        i += room + 1
                        continue
                    self._buf += data[i:j]
                if m is None:
                    break
                if data[j] == STX:
                    self.restarts += 1  # R4
                    self._buf.clear()
                else:
                    self._state = _State.LRC
                i = j + 1
            elif state is _State.LRC:
                events.append(self._complete(data[i]))
                self._reset()
                i += 1
            elif state is _State.SKIP:
                m = _FRAME_STOP.search(data, i)
                if m is None:
                    break
                j = m.start()
                self._state = _State.PAYLOAD if data[j] == STX else _State.SKIP_LRC
                i = j + 1
            else:  # SKIP_LRC: the oversized frame's LRC, whatever its value
                self._state = _State.IDLE
                i += 1
        if n:
            self._last_at = None if self._state is _State.IDLE else now
        return events

    def _complete(self, received_lrc: int) -> Event:
        payload = bytes(self._buf)
        if received_lrc != lrc(payload):
            return FrameRejected(RejectReason.BAD_LRC, payload)
        if _BAD_PAYLOAD_BYTE.search(payload) is not None:
            return FrameRejected(RejectReason.BAD_BYTE, payload)
        if len(payload) < MIN_PAYLOAD:
            return FrameRejected(RejectReason.TOO_SHORT, payload)
        return FrameReceived(payload)

    def _reset(self) -> None:
        self._state = _State.IDLE
        self._buf.clear()
        self._last_at = None

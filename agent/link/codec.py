"""Frame codec of the register protocol (§2, and link v2 of §6): pure, no asyncio, no I/O, no clock.

A v1 frame on the wire:

    +------+---------------------------------+------+------+
    | STX  | payload                         | ETX  | LRC  |
    | 0x02 | 2..4096 bytes, each 0x20..0x7E  | 0x03 | 1 B  |
    +------+---------------------------------+------+------+
           |<------ LRC = XOR of these bytes ------>|
                  (every payload byte and ETX; not STX)

A v2 frame (§6) and a v2 answer:

    +------+-----+---------------------------------+------+-------------+
    | SOH  | seq | payload                         | ETX  | crc         |
    | 0x01 | 1 B | 2..4096 bytes, each 0x20..0x7E  | 0x03 | 4 hex digits|
    +------+-----+---------------------------------+------+-------------+
           |<------- CRC-16/CCITT-FALSE over these bytes ------>|

    +---------+-----+--------------+
    | ACK/NAK | seq | crc          |   seq: '0'..'9' 'A'..'F', or '?' when unreadable
    | 1 B     | 1 B | 4 hex digits |   crc: over the control byte and seq
    +---------+-----+--------------+

Outside a frame a single control byte may travel: ENQ (link check), ACK, NAK, EOT.

The decoder turns bytes into events; the caller (agent.link.layer) writes the
answers the protocol names:

    FrameReceived   R1/V1: the caller ACKs (in the frame's version), then hands it on
    FrameRejected   R2/V2 (bad LRC/CRC, byte outside 0x20..0x7E), R3 (oversize),
                    payload shorter than 2 bytes: the caller NAKs
    ControlReceived R6/V4: ENQ/ACK/NAK outside a frame (every ACK/NAK byte, also
                    the first byte of a v2 answer: a v1 sender takes it, a v2 sender
                    waits for the AnswerReceived that may follow)
    AnswerReceived  V3: a well-formed `ACK seq crc` / `NAK seq crc`
    AnswerMalformed V3: ACK/NAK followed by printable bytes that are not a valid
                    answer (a flipped bit, or a v1 peer's noise); ignored by senders
    PartialDropped  R5: a partial frame went silent for frame_gap_s; nothing is sent

Decisions the protocol leaves open, made here:

- The LRC is the single byte right after ETX, whatever its value (0x02 included):
  it is never read as a new STX or as a control byte.
- Control bytes (EOT/ENQ/ACK/NAK) and any other byte outside 0x20..0x7E *inside* a
  frame are payload bytes that break R2: the frame is NAKed once its LRC arrives.
  In a v1 frame that includes SOH (v1 peers never restart on it); in a v2 frame,
  STX and SOH restart the frame (§6 V2), also in the crc digits, which can never
  legally hold them.
- R3: the moment the payload would exceed 4096 bytes the frame is rejected (NAK
  now, not at ETX) and nothing more is buffered. Bytes are then skipped until an
  STX (a new frame), or until the oversized frame's own ETX and LRC have gone by
  (then the decoder is outside a frame again and answers ENQ/ACK/NAK per R6), or
  until frame_gap_s of silence. Skipping the LRC matters: it may be 0x02 or 0x05.
  A v2 frame skips its 4 crc digits the same way.
- R4: an STX inside a frame (before ETX) restarts the frame; the dropped part is
  counted in `restarts`, no event and no answer.
- R5: the silence is measured from the chunk that brought the last byte to the
  chunk that brings the next one ("now" is passed in by the caller); a gap of
  exactly frame_gap_s drops the partial frame. `expire(now)` lets a timer drop it
  without waiting for the next byte.
- EOT and any other byte outside a frame are ignored and counted in `ignored`.
- v2 answers: after an ACK/NAK outside a frame, up to 5 printable bytes are read
  as its seq and crc. A byte outside 0x20..0x7E ends that early (the ACK was bare:
  a v1 answer) and is then decoded as usual, so an STX or ENQ right after a bare
  ACK is never lost. The crc must be 4 *upper-case* hex digits: 'A' and 'a' differ
  in one bit, and accepting both would let that flip through. A gap of frame_gap_s
  also ends it.
- `v2=False` gives the v1 decoder exactly (protocol=1): SOH is a byte like any other
  and ACK/NAK are never followed by an answer tail.
"""

from __future__ import annotations

import binascii
import enum
import re
from dataclasses import dataclass, field
from typing import Final

from agent.errors import LinkError

SOH: Final = 0x01
STX: Final = 0x02
ETX: Final = 0x03
EOT: Final = 0x04
ENQ: Final = 0x05
ACK: Final = 0x06
NAK: Final = 0x15

MIN_PAYLOAD: Final = 2
MAX_PAYLOAD: Final = 4096
FRAME_GAP_S: Final = 0.5  # R5: a partial frame is dropped after this much silence

# §6: the seq byte of frame number n (mod 16) is SEQ_DIGITS[n]; '?' answers a frame
# whose seq could not be read.
SEQ_DIGITS: Final = b"0123456789ABCDEF"
SEQ_COUNT: Final = len(SEQ_DIGITS)
UNREADABLE_SEQ: Final = ord("?")
CRC_DIGITS: Final = 4
ANSWER_LEN: Final = 1 + 1 + CRC_DIGITS  # control, seq, crc
_CRC_INIT: Final = 0xFFFF  # CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection

# Clock readings are floats; 0.7 - 0.2 is 0.49999999999999994. A gap this close to
# frame_gap_s counts as the full gap.
_GAP_EPSILON_S: Final = 1e-9

_BAD_PAYLOAD_BYTE = re.compile(rb"[^\x20-\x7e]")
_CRC_TEXT = re.compile(rb"[0-9A-F]{4}")  # upper case only (see the module comment)
# What ends a run of plain bytes in each state (searched in C, not byte by byte).
_IDLE_STOP = re.compile(rb"[\x02\x05\x06\x15]")  # STX or a control byte we act on
_IDLE_STOP_V2 = re.compile(rb"[\x01\x02\x05\x06\x15]")  # ... or SOH
_FRAME_STOP = re.compile(rb"[\x02\x03]")  # STX restarts (R4), ETX ends the payload
_FRAME_STOP_V2 = re.compile(rb"[\x01\x02\x03]")  # STX or SOH restarts (V2)
_RESTART = re.compile(rb"[\x01\x02]")  # among crc digits: STX or SOH restarts


class InvalidPayloadError(LinkError):
    """A payload cannot be framed: its length or one of its bytes breaks protocol §2."""

    def __init__(self, payload: bytes, reason: str) -> None:
        self.payload = payload
        self.reason = reason
        super().__init__(f"cannot frame payload ({len(payload)} bytes): {reason}")


class RejectReason(enum.StrEnum):
    BAD_LRC = "bad_lrc"  # R2
    BAD_CRC = "bad_crc"  # V2: crc digits wrong, not 4 upper-case hex digits, or not matching
    BAD_SEQ = "bad_seq"  # V2: seq is not 0-9 A-F
    BAD_BYTE = "bad_byte"  # R2/V2: a payload byte outside 0x20..0x7E
    OVERSIZE = "oversize"  # R3
    TOO_SHORT = "too_short"  # payload under MIN_PAYLOAD bytes


@dataclass(frozen=True, slots=True)
class FrameReceived:
    payload: bytes
    version: int = 1
    seq: int | None = None  # v2: 0..15, the frame's number mod 16
    crc: int | None = None  # v2: its CRC (with seq, what V1 compares to spot a repeat)


@dataclass(frozen=True, slots=True)
class FrameRejected:
    reason: RejectReason
    # What was received (up to MAX_PAYLOAD bytes), for the log; not part of equality.
    payload: bytes = field(default=b"", compare=False)
    version: int = 1


@dataclass(frozen=True, slots=True)
class ControlReceived:
    byte: int  # ENQ, ACK or NAK


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    control: int  # ACK or NAK
    seq: int | None  # 0..15, or None for '?'


@dataclass(frozen=True, slots=True)
class AnswerMalformed:
    control: int
    data: bytes = field(compare=False)  # the bytes after the control byte


@dataclass(frozen=True, slots=True)
class PartialDropped:
    length: int = field(default=0, compare=False)  # payload bytes that were dropped


Event = (FrameReceived | FrameRejected | ControlReceived | AnswerReceived | AnswerMalformed
         | PartialDropped)


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


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of `data` (check value 0x29B1 for b"123456789")."""
    # binascii.crc_hqx is exactly this CRC (poly 0x1021, MSB first, no final XOR)
    # when started at 0xFFFF; it runs in C.
    return binascii.crc_hqx(data, _CRC_INIT)


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


def seq_byte(seq: int | None) -> int:
    if seq is None:
        return UNREADABLE_SEQ
    if not 0 <= seq < SEQ_COUNT:
        raise ValueError(f"seq must be 0..{SEQ_COUNT - 1}, got {seq}")
    return SEQ_DIGITS[seq]


def _crc_text(data: bytes) -> bytes:
    return b"%04X" % crc16(data)


def encode_frame_v2(payload: bytes, seq: int) -> bytes:
    """SOH seq payload ETX crc (layout in the module comment)."""
    check_payload(payload)
    covered = bytes((seq_byte(seq),)) + payload + b"\x03"
    return b"\x01" + covered + _crc_text(covered)


def encode_answer(control: int, seq: int | None) -> bytes:
    """`ACK seq crc` / `NAK seq crc`; seq None writes '?' (a frame whose seq was unreadable)."""
    if control not in (ACK, NAK):
        raise ValueError(f"an answer is ACK or NAK, not 0x{control:02x}")
    covered = bytes((control, seq_byte(seq)))
    return covered + _crc_text(covered)


class _State(enum.Enum):
    IDLE = enum.auto()  # outside a frame
    PAYLOAD = enum.auto()  # after STX, collecting payload bytes
    LRC = enum.auto()  # after ETX: the next byte is the LRC
    SKIP = enum.auto()  # after an oversize payload: skipping its remaining bytes
    SKIP_LRC = enum.auto()  # after the oversized frame's ETX: its LRC byte is skipped
    SEQ = enum.auto()  # after SOH: the next byte is seq
    PAYLOAD2 = enum.auto()  # v2 payload
    CRC = enum.auto()  # after a v2 ETX: collecting 4 crc digits
    SKIP2 = enum.auto()  # oversize v2 payload being skipped
    SKIP_CRC = enum.auto()  # the oversized v2 frame's crc digits being skipped
    ANSWER = enum.auto()  # after ACK/NAK outside a frame: maybe a v2 answer's seq and crc


_OUTSIDE: Final = frozenset({_State.IDLE, _State.ANSWER})
_V2_FRAME: Final = frozenset({_State.SEQ, _State.PAYLOAD2, _State.CRC})


class FrameDecoder:
    """Bytes in, events out (protocol §2 R1–R6, §6 V1–V4). Holds at most MAX_PAYLOAD bytes."""

    def __init__(self, frame_gap_s: float = FRAME_GAP_S, *, v2: bool = True) -> None:
        self.frame_gap_s = frame_gap_s
        self.v2 = v2
        self._idle_stop = _IDLE_STOP_V2 if v2 else _IDLE_STOP
        self._state = _State.IDLE
        self._buf = bytearray()
        self._tail = bytearray()  # v2: crc digits of a frame, or seq+crc of an answer
        self._seq = 0  # v2: the seq byte of the open frame
        self._control = 0  # the ACK/NAK whose answer tail is being read
        self._last_at: float | None = None  # when the last byte of the open frame arrived
        self.ignored = 0  # bytes outside a frame that mean nothing (EOT, noise)
        self.restarts = 0  # R4: partial frames cut short by an STX (or SOH in v2)

    @property
    def idle(self) -> bool:
        """True outside a frame (nothing buffered, nothing being skipped)."""
        # Reading an answer tail is outside a frame: nothing for R5 to drop.
        return self._state in _OUTSIDE

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
        if self._state in (_State.PAYLOAD, _State.LRC) or self._state in _V2_FRAME:
            events.append(PartialDropped(len(self._buf)))
        elif self._state is _State.ANSWER and self._tail:
            events.append(AnswerMalformed(self._control, bytes(self._tail)))
        # SKIP*: that frame was already rejected (NAKed); just stop skipping.
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
                m = self._idle_stop.search(data, i)
                if m is None:
                    self.ignored += n - i
                    break
                j = m.start()
                self.ignored += j - i
                byte = data[j]
                if byte == STX:
                    self._state = _State.PAYLOAD
                elif byte == SOH:
                    self._state = _State.SEQ
                else:
                    events.append(ControlReceived(byte))
                    if self.v2 and byte != ENQ:
                        self._state = _State.ANSWER
                        self._control = byte
                i = j + 1
            elif state is _State.PAYLOAD or state is _State.PAYLOAD2:
                v2 = state is _State.PAYLOAD2
                m = (_FRAME_STOP_V2 if v2 else _FRAME_STOP).search(data, i)
                j = n if m is None else m.start()
                if j > i:
                    room = MAX_PAYLOAD - len(self._buf)
                    if j - i > room:
                        # R3: reject now, keep nothing more; skip the rest of this frame.
                        self._buf += data[i : i + room]
                        events.append(FrameRejected(RejectReason.OVERSIZE, bytes(self._buf),
                                                    2 if v2 else 1))
                        self._buf.clear()
                        self._state = _State.SKIP2 if v2 else _State.SKIP
                        i += room + 1
                        continue
                    self._buf += data[i:j]
                if m is None:
                    break
                i = j + 1
                if data[j] == ETX:
                    self._state = _State.CRC if v2 else _State.LRC
                else:
                    self._restart(data[j])
            elif state is _State.LRC:
                events.append(self._complete(data[i]))
                self._reset()
                i += 1
            elif state is _State.SEQ:
                byte = data[i]
                i += 1
                if byte in (STX, SOH):
                    self._restart(byte)
                else:
                    self._seq = byte
                    self._state = _State.PAYLOAD2
            elif state is _State.CRC or state is _State.SKIP_CRC:
                # The digits still missing, taken in one slice (not byte by byte).
                piece = data[i : i + CRC_DIGITS - len(self._tail)]
                m = _RESTART.search(piece)
                if m is not None:
                    # A lost digit followed by the next frame: take the next frame,
                    # not its first bytes as crc digits.
                    i += m.start() + 1
                    self._restart(piece[m.start()])
                    continue
                self._tail += piece
                i += len(piece)
                if len(self._tail) == CRC_DIGITS:
                    if state is _State.CRC:
                        events.append(self._complete_v2())
                    self._reset()
            elif state is _State.ANSWER:
                byte = data[i]
                if not 0x20 <= byte <= 0x7E:
                    # A bare ACK/NAK (v1) or a cut answer; this byte is decoded afresh.
                    if self._tail:
                        events.append(AnswerMalformed(self._control, bytes(self._tail)))
                    self._reset()
                    continue
                self._tail.append(byte)
                i += 1
                if len(self._tail) == ANSWER_LEN - 1:
                    events.append(self._complete_answer())
                    self._reset()
            elif state is _State.SKIP or state is _State.SKIP2:
                m = (_FRAME_STOP_V2 if state is _State.SKIP2 else _FRAME_STOP).search(data, i)
                if m is None:
                    break
                j = m.start()
                i = j + 1
                if data[j] == ETX:
                    self._state = _State.SKIP_CRC if state is _State.SKIP2 else _State.SKIP_LRC
                else:
                    self._restart(data[j], count=False)
            else:  # SKIP_LRC: the oversized frame's LRC, whatever its value
                self._state = _State.IDLE
                i += 1
        if n:
            self._last_at = None if self._state is _State.IDLE else now
        return events

    def _restart(self, byte: int, *, count: bool = True) -> None:
        """R4: STX (or, where v2 allows it, SOH) starts the frame again."""
        if count:
            self.restarts += 1
        self._buf.clear()
        self._tail.clear()
        self._state = _State.PAYLOAD if byte == STX else _State.SEQ

    def _complete(self, received_lrc: int) -> Event:
        payload = bytes(self._buf)
        if received_lrc != lrc(payload):
            return FrameRejected(RejectReason.BAD_LRC, payload)
        if _BAD_PAYLOAD_BYTE.search(payload) is not None:
            return FrameRejected(RejectReason.BAD_BYTE, payload)
        if len(payload) < MIN_PAYLOAD:
            return FrameRejected(RejectReason.TOO_SHORT, payload)
        return FrameReceived(payload)

    def _complete_v2(self) -> Event:
        payload = bytes(self._buf)
        covered = bytes((self._seq,)) + payload + b"\x03"
        text = bytes(self._tail)
        expected = crc16(covered)
        if _CRC_TEXT.fullmatch(text) is None or int(text, 16) != expected:
            return FrameRejected(RejectReason.BAD_CRC, payload, 2)
        seq = SEQ_DIGITS.find(self._seq)
        if seq < 0:
            return FrameRejected(RejectReason.BAD_SEQ, payload, 2)
        if _BAD_PAYLOAD_BYTE.search(payload) is not None:
            return FrameRejected(RejectReason.BAD_BYTE, payload, 2)
        if len(payload) < MIN_PAYLOAD:
            return FrameRejected(RejectReason.TOO_SHORT, payload, 2)
        return FrameReceived(payload, 2, seq, expected)

    def _complete_answer(self) -> Event:
        tail = bytes(self._tail)
        seq_b, text = tail[0], tail[1:]
        if (_CRC_TEXT.fullmatch(text) is None
                or int(text, 16) != crc16(bytes((self._control, seq_b)))):
            return AnswerMalformed(self._control, tail)
        if seq_b == UNREADABLE_SEQ:
            return AnswerReceived(self._control, None)
        seq = SEQ_DIGITS.find(seq_b)
        if seq < 0:
            return AnswerMalformed(self._control, tail)
        return AnswerReceived(self._control, seq)

    def _reset(self) -> None:
        self._state = _State.IDLE
        self._buf.clear()
        self._tail.clear()
        self._last_at = None

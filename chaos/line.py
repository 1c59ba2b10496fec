"""Damage on a register line that the protocol can always detect: the campaign's fault model.

The proxy between a register and the agent cuts each direction's byte stream into units
(`FrameSplitter`): a whole frame, or one byte outside a frame. A unit may be spoiled:

    +------+----------------------+------+------+
    | STX  | payload (printable)  | ETX  | LRC  |     frame: ONE fault at most
    +------+----------------------+------+------+
      drop    flip one bit / drop   drop   drop
      (*)     (never into STX, ETX
               or a control byte)

    ACK / NAK / ENQ outside a frame: dropped, never flipped

(*) not when the LRC is itself STX, ENQ, ACK or NAK: without its STX the frame is read
    outside a frame, the payload and ETX are ignored (R6) and the LRC acts as a control
    byte — an ENQ is answered ACK, which the sender takes for the ACK of the lost frame.

What this model leaves out, on purpose, is the damage no receiver can detect with a
one-byte XOR LRC and one-byte control symbols (see tests/link/pipes.py, `LineFaults`):
a bit that turns STX into ACK (0x02 ^ 0x04) or NAK into ENQ (0x15 ^ 0x10), a payload '"'
into STX (0x22 ^ 0x20), or two faults in one frame that cancel in the LRC. Such damage
can forge an ACK, and a forged ACK loses a frame whatever the link does. The campaign
asks for exactly-once results, so it only makes damage the protocol can detect;
docs/reliability.md says what the rest would do.

After a fault on a lane, both directions of that lane stay clean for `quiet_s`
(`QuietGate`), longer than the retransmissions that repair it take (S1/S2: 1 s per
send). Two faults racing on one exchange are a second way to forge an ACK (a late ACK
of one frame taken for the next, layer.py's module comment), so they are kept apart.

Lanes on link v2 (protocol §6) get `RawFaults` instead, with `confuse`: symbols turned
into symbols one bit away (STX <-> ACK, SOH -> ENQ, NAK -> ENQ, ETX -> SOH...), the very
damage left out above. v2's CRC and numbered ACKs must make it harmless: the campaign
counts results marked delivered that the register never received (chaos.verdict).

Everything here is pure: bytes in, bytes out, time passed in, a seeded RNG.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Final

from agent.link.codec import ACK, ENQ, EOT, ETX, MAX_PAYLOAD, NAK, SOH, STX

# Bytes a flip must never produce: framing and control symbols (tests/link/pipes.py).
FRAMING_AND_CONTROL: Final = frozenset({0x02, 0x03, 0x04, 0x05, 0x06, 0x15})
# An LRC equal to one of these acts on its own once the frame's STX is lost.
ACTING_LRC: Final = frozenset({STX, ENQ, ACK, NAK})
CONTROLS: Final = frozenset({ENQ, ACK, NAK})
# Symbols of either link version, and the symbols one bit flip away from each.
SYMBOLS: Final = frozenset({SOH, STX, ETX, EOT, ENQ, ACK, NAK})
CONFUSIONS: Final[dict[int, tuple[int, ...]]] = {
    byte: tuple(byte ^ (1 << bit) for bit in range(8) if byte ^ (1 << bit) in SYMBOLS)
    for byte in sorted(SYMBOLS)
}
# A frame longer than this (STX + payload + ETX + LRC) is not one of a well-formed sender.
MAX_FRAME: Final = MAX_PAYLOAD + 3


class FaultKind(enum.StrEnum):
    FLIP = "flip"  # one bit of one payload byte
    DROP_FRAME_BYTE = "drop_frame_byte"  # one byte of a frame (STX, payload, ETX or LRC)
    DROP_CONTROL = "drop_control"  # an ACK, NAK or ENQ outside a frame
    SYMBOL_FLIP = "symbol_flip"  # raw model: a symbol turned into another, one bit away


@dataclass(frozen=True, slots=True)
class Unit:
    data: bytes
    frame: bool  # a whole frame; False: one byte outside a frame, or a cut-off partial


class FrameSplitter:
    """Cuts a well-formed sender's stream into units. Holds at most one partial frame."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._after_etx = False

    @property
    def partial(self) -> int:
        return len(self._partial)

    def feed(self, data: bytes) -> list[Unit]:
        units: list[Unit] = []
        for byte in data:
            if not self._partial:
                if byte == STX:
                    self._partial.append(byte)
                else:
                    units.append(Unit(bytes((byte,)), frame=False))
                continue
            if self._after_etx:  # the LRC, whatever its value
                self._partial.append(byte)
                units.append(Unit(bytes(self._partial), frame=True))
                self._reset()
                continue
            if byte == STX:
                # A sender killed mid-frame, then restarted: pass the stub on untouched.
                units.append(Unit(bytes(self._partial), frame=False))
                self._reset()
                self._partial.append(byte)
                continue
            self._partial.append(byte)
            if byte == ETX:
                self._after_etx = True
            elif len(self._partial) > MAX_FRAME:
                units.append(Unit(bytes(self._partial), frame=False))
                self._reset()
        return units

    def flush(self) -> bytes:
        """The partial frame as it is (its sender went quiet mid-frame), forgotten here."""
        out = bytes(self._partial)
        self._reset()
        return out

    def _reset(self) -> None:
        self._partial.clear()
        self._after_etx = False


@dataclass
class QuietGate:
    """One per lane, shared by both directions: at most one fault per `quiet_s`."""

    quiet_s: float
    enabled: bool = True
    _next_at: float = field(default=float("-inf"))

    def open(self, now: float) -> bool:
        return self.enabled and now >= self._next_at

    def spend(self, now: float) -> None:
        self._next_at = now + self.quiet_s


@dataclass
class FaultCounts:
    flip: int = 0
    drop_frame_byte: int = 0
    drop_control: int = 0
    symbol_flip: int = 0

    def add(self, kind: FaultKind) -> None:
        setattr(self, kind.value, getattr(self, kind.value) + 1)

    def total(self) -> int:
        return self.flip + self.drop_frame_byte + self.drop_control + self.symbol_flip


def flip_choices(byte: int) -> list[int]:
    """Bits of `byte` whose flip gives neither framing nor a control byte."""
    return [bit for bit in range(8) if byte ^ (1 << bit) not in FRAMING_AND_CONTROL]


def drop_choices(frame: bytes) -> list[int]:
    """Offsets of `frame` whose loss the receiver detects (see the module comment)."""
    first = 1 if frame[-1] in ACTING_LRC else 0
    return list(range(first, len(frame)))


def spoil(unit: Unit, rng: random.Random) -> tuple[bytes, FaultKind] | None:
    """One detectable fault on `unit`, or None when the model has none for it."""
    data = unit.data
    if not unit.frame:
        if len(data) == 1 and data[0] in CONTROLS:
            return b"", FaultKind.DROP_CONTROL
        return None
    if len(data) < 4 or data[0] != STX or data[-2] != ETX:
        return None
    if rng.random() < 0.5:
        offset = rng.randrange(1, len(data) - 2)  # a payload byte
        bits = flip_choices(data[offset])
        if bits:
            out = bytearray(data)
            out[offset] ^= 1 << rng.choice(bits)
            return bytes(out), FaultKind.FLIP
    offset = rng.choice(drop_choices(data))
    return data[:offset] + data[offset + 1:], FaultKind.DROP_FRAME_BYTE


class DetectableFaults:
    """One direction of one lane: spoils units with probability `rate`, through the gate."""

    def __init__(self, seed: int, rate: float, gate: QuietGate,
                 counts: FaultCounts | None = None, confuse: float = 0.0) -> None:
        self._rng = random.Random(seed)
        self.rate = rate
        self.gate = gate
        self.counts = counts if counts is not None else FaultCounts()
        self.confuse = confuse  # RawFaults only: probability per symbol byte

    def apply(self, unit: Unit, now: float) -> bytes:
        if self._rng.random() >= self.rate or not self.gate.open(now):
            return unit.data
        spoiled = spoil(unit, self._rng)
        if spoiled is None:
            return unit.data
        data, kind = spoiled
        self.counts.add(kind)
        self.gate.spend(now)
        return data


class RawFaults(DetectableFaults):
    """For showing the limit, not for the guarantees: flips any bit of any byte and drops
    any byte, several per frame, no quiet period (a noisy cable as it is). Some of this
    damage cannot be detected by the protocol; docs/reliability.md shows what it does."""

    def apply(self, unit: Unit, now: float) -> bytes:
        if not self.gate.enabled:
            return unit.data
        out = bytearray()
        for byte in unit.data:
            if self.confuse and byte in CONFUSIONS and self._rng.random() < self.confuse:
                self.counts.add(FaultKind.SYMBOL_FLIP)
                out.append(self._rng.choice(CONFUSIONS[byte]))
                continue
            roll = self._rng.random()
            if roll < self.rate / 2:
                self.counts.add(FaultKind.DROP_CONTROL if not unit.frame
                                else FaultKind.DROP_FRAME_BYTE)
                continue
            flip = 1 << self._rng.randrange(8) if roll < self.rate else 0
            if flip:
                self.counts.add(FaultKind.FLIP)
            out.append(byte ^ flip)
        return bytes(out)

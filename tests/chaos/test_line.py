"""The campaign's line-fault model (chaos.line): every fault it makes is one the receiver
detects, so the exactly-once guarantees may be demanded under it."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.link.codec import (
    ACK,
    ENQ,
    ETX,
    MAX_PAYLOAD,
    MIN_PAYLOAD,
    NAK,
    SOH,
    STX,
    ControlReceived,
    Event,
    FrameDecoder,
    FrameReceived,
    encode_answer,
    encode_frame,
    encode_frame_v2,
    lrc,
)
from chaos.line import (
    ACTING_LRC,
    CONFUSIONS,
    FRAMING_AND_CONTROL,
    SYMBOLS,
    DetectableFaults,
    FaultCounts,
    FaultKind,
    FrameSplitter,
    QuietGate,
    RawFaults,
    Unit,
    drop_choices,
    flip_choices,
    spoil,
)

GAP_S = 0.5
payloads = st.binary(min_size=MIN_PAYLOAD, max_size=300).map(
    lambda b: bytes(0x20 + x % 0x5F for x in b))
controls = st.sampled_from([ACK, NAK, ENQ]).map(lambda b: bytes((b,)))
streams = st.lists(st.one_of(payloads.map(encode_frame), controls), max_size=8)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


@settings(max_examples=200, deadline=None)
@given(streams, st.lists(st.integers(0, 10_000), max_size=10))
def test_splitter_gives_back_the_units_however_the_bytes_are_cut(
        units: list[bytes], cuts: list[int]) -> None:
    splitter = FrameSplitter()
    got: list[Unit] = []
    for chunk in split(b"".join(units), cuts):
        got += splitter.feed(chunk)
    assert [u.data for u in got] == units
    assert all(u.frame == (len(u.data) > 1) for u in got)
    assert splitter.partial == 0


def test_splitter_passes_a_cut_off_frame_on_untouched() -> None:
    splitter = FrameSplitter()
    frame = encode_frame(b'{"v":1}')
    assert splitter.feed(frame[:4]) == []
    assert splitter.partial == 4
    # The sender died and came back: its next frame starts with STX.
    assert splitter.feed(frame) == [Unit(frame[:4], frame=False), Unit(frame, frame=True)]
    assert splitter.feed(frame[:3]) == []
    assert splitter.flush() == frame[:3] and splitter.partial == 0


def test_choices_never_make_framing_or_acting_bytes() -> None:
    for byte in range(0x20, 0x7F):
        for bit in flip_choices(byte):
            assert byte ^ (1 << bit) not in FRAMING_AND_CONTROL
    assert 5 not in flip_choices(ord('"'))  # '"' ^ 0x20 is STX
    for value in range(256):
        frame = b"\x02ab\x03" + bytes((value,))
        assert (0 in drop_choices(frame)) == (value not in ACTING_LRC)


def _no_forgery(original: bytes, events: list[Event]) -> None:
    """Nothing the receiver decoded can pass for the frame or for an ACK."""
    for event in events:
        assert not isinstance(event, FrameReceived) or event.payload == original
        assert not isinstance(event, ControlReceived)


@settings(max_examples=500, deadline=None)
@given(payloads, st.integers(0, 2**32))
def test_a_spoiled_frame_is_never_taken_for_good(payload: bytes, seed: int) -> None:
    frame = encode_frame(payload)
    spoiled = spoil(Unit(frame, frame=True), random.Random(seed))
    assert spoiled is not None
    data, kind = spoiled
    assert kind in (FaultKind.FLIP, FaultKind.DROP_FRAME_BYTE)
    assert len(data) == len(frame) - (kind is FaultKind.DROP_FRAME_BYTE)
    decoder = FrameDecoder(GAP_S)
    events = decoder.feed(data, 0.0)
    assert not any(isinstance(e, FrameReceived) for e in events)
    _no_forgery(payload, events)
    # The partial it may leave goes after the gap; the repeat then gets through (S2).
    events = decoder.expire(GAP_S) + decoder.feed(frame, GAP_S)
    assert [e for e in events if isinstance(e, FrameReceived)] == [FrameReceived(payload)]


@settings(max_examples=300, deadline=None)
@given(payloads, st.integers(0, 2**32), st.sampled_from([ACK, NAK]))
def test_an_answer_right_behind_a_spoiled_frame_forges_nothing(
        payload: bytes, seed: int, answer: int) -> None:
    # The sender ACKs or NAKs the peer's frame right after its own spoiled one (no gap):
    # with the LRC lost, that byte is read as the LRC. Either the check fails (NAK, and the
    # peer repeats its frame), or it matches and the frame is the very one sent.
    spoiled = spoil(Unit(encode_frame(payload), frame=True), random.Random(seed))
    assert spoiled is not None
    events = FrameDecoder(GAP_S).feed(spoiled[0] + bytes((answer,)), 0.0)
    for event in events:
        assert not isinstance(event, FrameReceived) or event.payload == payload
        if isinstance(event, ControlReceived):
            # Read outside any frame: the real answer itself, not something forged.
            assert event.byte == answer


def test_lrc_that_acts_keeps_its_stx() -> None:
    payload = next(p for p in (f'{{"id":"{i}"}}'.encode() for i in range(1000))
                   if lrc(p) == ENQ)
    frame = encode_frame(payload)
    for seed in range(200):
        spoiled = spoil(Unit(frame, frame=True), random.Random(seed))
        assert spoiled is not None and spoiled[0][:1] == b"\x02"


def test_controls_are_only_dropped_and_other_bytes_left_alone() -> None:
    rng = random.Random(1)
    for byte in (ACK, NAK, ENQ):
        assert spoil(Unit(bytes((byte,)), frame=False), rng) == (b"", FaultKind.DROP_CONTROL)
    assert spoil(Unit(b"\x04", frame=False), rng) is None
    assert spoil(Unit(b"\x02abc", frame=False), rng) is None  # a cut-off stub


def test_the_gate_allows_one_fault_per_quiet_period_for_both_directions() -> None:
    gate = QuietGate(quiet_s=3.0)
    a = DetectableFaults(1, rate=1.0, gate=gate)
    b = DetectableFaults(2, rate=1.0, gate=gate, counts=a.counts)
    frame = Unit(encode_frame(b'{"v":1}'), frame=True)
    assert a.apply(frame, 0.0) != frame.data
    assert b.apply(frame, 1.0) == frame.data  # the other direction waits too
    assert a.apply(frame, 2.9) == frame.data
    assert b.apply(frame, 3.0) != frame.data
    assert a.counts.total() == 2
    gate.enabled = False
    assert a.apply(frame, 100.0) == frame.data


def test_frames_of_every_size_can_be_spoiled() -> None:
    rng = random.Random(5)
    for size in (MIN_PAYLOAD, 3, MAX_PAYLOAD):
        frame = encode_frame(b"a" * size)
        for _ in range(20):
            assert spoil(Unit(frame, frame=True), rng) is not None


# -- link v2 lanes: raw faults with symbol flips ----------------------------------------

def test_symbol_flips_turn_symbols_into_symbols_one_bit_away() -> None:
    assert set(CONFUSIONS[STX]) == {0x03, ACK}  # STX <-> ACK: the flip v1 cannot survive
    assert ENQ in CONFUSIONS[NAK] and ENQ in CONFUSIONS[SOH]
    for byte, others in CONFUSIONS.items():
        assert others
        for other in others:
            assert bin(byte ^ other).count("1") == 1 and other in SYMBOLS


def test_raw_faults_with_symbol_flips_only_touch_symbols() -> None:
    counts = FaultCounts()
    faults = RawFaults(7, 0.0, QuietGate(0.0), counts, confuse=1.0)
    frame = encode_frame_v2(b'{"v":1,"type":"ping","id":"p1"}', 0)
    out = faults.apply(Unit(frame, frame=False), 0.0)
    assert len(out) == len(frame)
    changed = [i for i, (a, b) in enumerate(zip(frame, out, strict=True)) if a != b]
    assert changed == [0, len(frame) - 5]  # SOH and ETX; nothing printable
    assert counts.symbol_flip == 2 and counts.total() == 2
    assert out[0] in CONFUSIONS[SOH] and out[-5] in CONFUSIONS[ETX]


def test_v2_frames_pass_the_splitter_as_single_bytes_untouched() -> None:
    # The splitter knows v1 frames only; a v2 lane uses raw faults, which need no units.
    frame = encode_frame_v2(b'{"v":1}', 3) + encode_answer(ACK, 3)
    units = FrameSplitter().feed(frame)
    assert b"".join(u.data for u in units) == frame
    assert not any(u.frame for u in units)

"""Frame codec: byte tables, byte-at-a-time feeding, R2–R6 edge cases, time passed in."""

from __future__ import annotations

import pytest

from agent.errors import LinkError
from agent.link.codec import (
    ACK,
    ENQ,
    EOT,
    ETX,
    MAX_PAYLOAD,
    NAK,
    STX,
    ControlReceived,
    Event,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    InvalidPayloadError,
    PartialDropped,
    RejectReason,
    encode_frame,
    lrc,
)

PING = b'{"v":1,"type":"ping","id":"p1"}'
PING_FRAME = bytes.fromhex(
    "02 7b 22 76 22 3a 31 2c 22 74 79 70 65 22 3a 22 70 69 6e 67 22 2c 22 69 64 22 3a 22 70 31"
    " 22 7d 03 3c"
)


def frame(payload: bytes, lrc_byte: int | None = None) -> bytes:
    """A frame built by hand (so tests can break it), LRC computed unless given."""
    check = lrc(payload) if lrc_byte is None else lrc_byte
    return bytes([STX]) + payload + bytes([ETX, check])


def payload_with_lrc(target: int, length: int = 8) -> bytes:
    """A valid payload whose LRC is `target` (the last byte adjusts the XOR)."""
    body = b"A" * (length - 1)
    last = target ^ lrc(body + b"\x00")  # lrc(body + x) = lrc(body + 0) ^ x
    assert 0x20 <= last <= 0x7E, hex(last)
    payload = body + bytes([last])
    assert lrc(payload) == target
    return payload


# -- encoder -----------------------------------------------------------------------

ENCODE_TABLE: list[tuple[bytes, bytes]] = [
    (PING, PING_FRAME),
    (b"{}", bytes.fromhex("02 7b 7d 03 05")),  # LRC equal to ENQ
    (b"  ", bytes.fromhex("02 20 20 03 03")),  # LRC equal to ETX
    (b"AC", bytes.fromhex("02 41 43 03 01")),
    (b"~~", bytes.fromhex("02 7e 7e 03 03")),
]


@pytest.mark.parametrize(("payload", "expected"), ENCODE_TABLE)
def test_encode_table(payload: bytes, expected: bytes) -> None:
    assert encode_frame(payload) == expected


def test_example_lrc_is_0x3c() -> None:
    assert lrc(PING) == 0x3C


def test_lrc_of_every_length_matches_a_plain_xor() -> None:
    data = bytes(range(0x20, 0x7F)) * 50
    for n in range(len(data) + 1):
        expected = ETX
        for b in data[:n]:
            expected ^= b
        assert lrc(data[:n]) == expected, n


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"x",  # below the 2-byte minimum
        b"x" * (MAX_PAYLOAD + 1),
        b"ab\x1f",
        b"ab\x7f",
        b"\x02ab",
        b"ab\x03",
        b"ab\x06",
        "é".encode(),
    ],
)
def test_encode_refuses(payload: bytes) -> None:
    with pytest.raises(InvalidPayloadError) as info:
        encode_frame(payload)
    assert isinstance(info.value, LinkError)
    assert info.value.payload == payload


def test_encode_limits_inclusive() -> None:
    assert encode_frame(b"ab")[1:3] == b"ab"
    big = b"a" * MAX_PAYLOAD
    assert encode_frame(big) == b"\x02" + big + bytes([ETX, lrc(big)])


# -- decoder: byte tables ------------------------------------------------------------

R = RejectReason
DECODE_TABLE: list[tuple[str, bytes, list[Event]]] = [
    ("protocol example", PING_FRAME, [FrameReceived(PING)]),
    ("two frames back to back", frame(b"ab") + frame(b"cd"),
     [FrameReceived(b"ab"), FrameReceived(b"cd")]),
    ("bad LRC (R2)", frame(b"ab", 0x01), [FrameRejected(R.BAD_LRC)]),
    ("control byte inside a frame (R2)", frame(b"a\x06b"), [FrameRejected(R.BAD_BYTE)]),
    ("NAK inside a frame (R2)", frame(b"a\x15b"), [FrameRejected(R.BAD_BYTE)]),
    ("EOT inside a frame (R2)", frame(b"a\x04b"), [FrameRejected(R.BAD_BYTE)]),
    ("DEL inside a frame (R2)", frame(b"a\x7fb"), [FrameRejected(R.BAD_BYTE)]),
    ("high byte inside a frame (R2)", frame(b"a\xe9b"), [FrameRejected(R.BAD_BYTE)]),
    ("empty payload", frame(b""), [FrameRejected(R.TOO_SHORT)]),
    ("one-byte payload", frame(b"a"), [FrameRejected(R.TOO_SHORT)]),
    ("STX restarts the frame (R4)", b"\x02abc" + frame(b"xy"), [FrameReceived(b"xy")]),
    ("STX right after STX (R4)", b"\x02" + frame(b"xy"), [FrameReceived(b"xy")]),
    ("ENQ outside a frame (R6)", bytes([ENQ]), [ControlReceived(ENQ)]),
    ("ACK and NAK outside a frame (R6)", bytes([ACK, NAK]),
     [ControlReceived(ACK), ControlReceived(NAK)]),
    ("EOT and garbage ignored (R6)", b"\x04hello\x00\xff\x03\x7f", []),
    ("garbage between frames", b"zz\x03\x00" + frame(b"ab") + b"\x04\x01 junk" + frame(b"cd"),
     [FrameReceived(b"ab"), FrameReceived(b"cd")]),
    ("LRC byte 0x02 is the LRC, not an STX", frame(payload_with_lrc(STX)) + frame(b"ok"),
     [FrameReceived(payload_with_lrc(STX)), FrameReceived(b"ok")]),
    ("LRC byte 0x03", frame(payload_with_lrc(ETX)), [FrameReceived(payload_with_lrc(ETX))]),
    ("LRC byte ENQ is not a link check", frame(payload_with_lrc(ENQ)),
     [FrameReceived(payload_with_lrc(ENQ))]),
    ("LRC byte ACK", frame(payload_with_lrc(ACK)) + bytes([ACK]),
     [FrameReceived(payload_with_lrc(ACK)), ControlReceived(ACK)]),
    ("frame, then ENQ", frame(b"ab") + bytes([ENQ]),
     [FrameReceived(b"ab"), ControlReceived(ENQ)]),
    ("unfinished frame: nothing yet", b"\x02abc", []),
    ("unfinished frame waiting for its LRC", b"\x02abc\x03", []),
]


@pytest.mark.parametrize(("stream", "expected"),
                         [(s, e) for _, s, e in DECODE_TABLE],
                         ids=[name for name, _, _ in DECODE_TABLE])
def test_decode_table_whole(stream: bytes, expected: list[Event]) -> None:
    assert FrameDecoder().feed(stream, 0.0) == expected


@pytest.mark.parametrize(("stream", "expected"),
                         [(s, e) for _, s, e in DECODE_TABLE],
                         ids=[name for name, _, _ in DECODE_TABLE])
def test_decode_table_one_byte_at_a_time(stream: bytes, expected: list[Event]) -> None:
    dec = FrameDecoder()
    events: list[Event] = []
    for i, b in enumerate(stream):
        events += dec.feed(bytes([b]), i * 0.001)  # 1 ms apart: no gap
    assert events == expected


def test_rejected_frame_carries_what_arrived() -> None:
    (event,) = FrameDecoder().feed(frame(b"abc", 0x00), 0.0)
    assert isinstance(event, FrameRejected)
    assert event.reason is R.BAD_LRC
    assert event.payload == b"abc"


def test_ignored_and_restart_counters() -> None:
    dec = FrameDecoder()
    dec.feed(b"\x04xyz\x02ab\x02" + frame(b"cd")[1:], 0.0)
    assert dec.ignored == 4
    assert dec.restarts == 1


# -- decoder: R3 oversize ------------------------------------------------------------

def test_oversize_is_rejected_once_and_decoder_resyncs() -> None:
    big = b"a" * (MAX_PAYLOAD + 1)
    stream = frame(big) + frame(b"ok")
    dec = FrameDecoder()
    assert dec.feed(stream, 0.0) == [FrameRejected(R.OVERSIZE), FrameReceived(b"ok")]


def test_oversize_rejected_as_the_4097th_byte_arrives_byte_by_byte() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"\x02", 0.0) == []
    for _ in range(MAX_PAYLOAD):
        assert dec.feed(b"a", 0.0) == []
    assert dec.buffered == MAX_PAYLOAD
    assert dec.feed(b"a", 0.0) == [FrameRejected(R.OVERSIZE)]
    assert dec.buffered == 0
    # The rest of that frame is skipped without buffering, ETX and its LRC included.
    for _ in range(10_000):
        assert dec.feed(b"b", 0.0) == []
        assert dec.buffered == 0
    assert dec.feed(bytes([ETX, STX]), 0.0) == []  # that STX is the dropped frame's LRC
    assert dec.idle
    assert dec.feed(frame(b"ok"), 0.0) == [FrameReceived(b"ok")]


def test_exactly_max_payload_is_accepted() -> None:
    big = b"z" * MAX_PAYLOAD
    assert FrameDecoder().feed(frame(big), 0.0) == [FrameReceived(big)]


def test_after_oversize_control_bytes_wait_for_the_frame_end() -> None:
    dec = FrameDecoder()
    events = dec.feed(b"\x02" + b"a" * (MAX_PAYLOAD + 5) + bytes([ENQ]), 0.0)
    assert events == [FrameRejected(R.OVERSIZE)]  # that ENQ was inside the dropped frame
    assert dec.feed(bytes([ETX, ENQ, ENQ]), 0.0) == [ControlReceived(ENQ)]  # LRC, then ENQ


def test_stx_after_oversize_starts_a_new_frame() -> None:
    dec = FrameDecoder()
    stream = b"\x02" + b"a" * (MAX_PAYLOAD + 100) + frame(b"ok")
    assert dec.feed(stream, 0.0) == [FrameRejected(R.OVERSIZE), FrameReceived(b"ok")]


# -- decoder: R5 gap, time passed in -------------------------------------------------

def test_gap_of_500ms_drops_the_partial_frame() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    assert dec.feed(b"\x02abc", 10.0) == []
    assert dec.feed(b"def\x03", 10.2) == []
    # 500 ms after the last byte: dropped silently; the rest is garbage outside a frame.
    events = dec.feed(b"ghi" + bytes([ETX, 0x41]), 10.7)
    assert events == [PartialDropped()]
    assert dec.idle
    assert dec.feed(frame(b"ok"), 10.8) == [FrameReceived(b"ok")]


def test_gap_just_under_the_limit_keeps_the_frame() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    payload = b"abcdef"
    full = frame(payload)
    assert dec.feed(full[:3], 1.0) == []
    assert dec.feed(full[3:], 1.499) == [FrameReceived(payload)]


@pytest.mark.parametrize(("t0", "t1"), [(0.0, 0.5), (0.2, 0.7), (1.1, 1.6), (1e6, 1e6 + 0.5)])
def test_gap_of_exactly_frame_gap_drops_despite_float_rounding(t0: float, t1: float) -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    dec.feed(b"\x02ab", t0)
    assert dec.feed(b"\x03", t1) == [PartialDropped()]


def test_gap_while_waiting_for_the_lrc() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    dec.feed(b"\x02ab\x03", 0.0)
    # The late byte is not taken as the LRC: the partial frame went silent first.
    assert dec.feed(bytes([lrc(b"ab")]), 0.6) == [PartialDropped()]


def test_partial_dropped_carries_the_length() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    dec.feed(b"\x02abcd", 0.0)
    (event,) = dec.expire(0.5)
    assert isinstance(event, PartialDropped)
    assert event.length == 4


def test_expire_without_new_bytes() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    dec.feed(b"\x02abc", 3.0)
    assert dec.expire(3.4) == []
    assert not dec.idle
    assert dec.expire(3.5) == [PartialDropped()]
    assert dec.idle and dec.buffered == 0
    assert dec.expire(9.0) == []


def test_gap_outside_a_frame_means_nothing() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    assert dec.feed(b"junk", 0.0) == []
    assert dec.feed(frame(b"ab"), 100.0) == [FrameReceived(b"ab")]


def test_gap_after_oversize_stops_skipping_silently() -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    assert dec.feed(b"\x02" + b"a" * (MAX_PAYLOAD + 1), 0.0) == [FrameRejected(R.OVERSIZE)]
    assert dec.feed(bytes([ENQ]), 0.1) == []  # still inside the dropped frame
    assert dec.feed(bytes([ENQ]), 0.7) == [ControlReceived(ENQ)]  # no PartialDropped: NAKed


def test_frame_spread_over_slow_bytes_survives() -> None:
    # 200 ms between bytes (a slow register): never a 500 ms gap.
    dec = FrameDecoder(frame_gap_s=0.5)
    events: list[Event] = []
    for i, b in enumerate(PING_FRAME):
        events += dec.feed(bytes([b]), i * 0.2)
    assert events == [FrameReceived(PING)]


def test_eot_is_ignored() -> None:
    dec = FrameDecoder()
    assert dec.feed(bytes([EOT]), 0.0) == []
    assert dec.ignored == 1

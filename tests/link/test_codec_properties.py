"""Property tests of the frame codec (hypothesis)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.link.codec import (
    ACK,
    ENQ,
    ETX,
    MAX_PAYLOAD,
    MIN_PAYLOAD,
    NAK,
    STX,
    Event,
    FrameDecoder,
    FrameReceived,
    encode_frame,
)

printable = st.binary(min_size=MIN_PAYLOAD, max_size=MAX_PAYLOAD).map(
    lambda b: bytes(0x20 + x % 0x5F for x in b)
)
# Streams rich in the bytes that matter, so the interesting paths are hit often.
protocol_bytes = st.sampled_from([STX, ETX, ENQ, ACK, NAK, 0x04, 0x20, 0x41, 0x7E, 0x7F, 0xFF])
streams = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.lists(protocol_bytes, max_size=64).map(bytes),
        printable.map(encode_frame),
        st.integers(MAX_PAYLOAD - 2, MAX_PAYLOAD + 3).map(lambda n: b"\x02" + b"a" * n),
    ),
    max_size=12,
).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(printable)
def test_round_trip(payload: bytes) -> None:
    assert FrameDecoder().feed(encode_frame(payload), 0.0) == [FrameReceived(payload)]


@settings(max_examples=50)
@given(st.lists(printable, min_size=1, max_size=5), st.lists(st.integers(0, 30_000)), st.binary())
def test_round_trip_any_chunking_with_garbage_between(
    payloads: list[bytes], cuts: list[int], garbage: bytes
) -> None:
    # Garbage without STX between frames is ignored; control bytes in it become events.
    junk = garbage.replace(b"\x02", b"")
    stream = b"".join(junk + encode_frame(p) for p in payloads)
    dec = FrameDecoder()
    events: list[Event] = []
    for chunk in split(stream, cuts):
        events += dec.feed(chunk, 0.0)
    assert [e for e in events if isinstance(e, FrameReceived)] == [
        FrameReceived(p) for p in payloads
    ]


@settings(max_examples=300)
@given(streams, st.lists(st.integers(0, 100_000), max_size=20))
def test_any_stream_any_chunking_never_raises_and_stays_bounded(
    stream: bytes, cuts: list[int]
) -> None:
    whole = FrameDecoder().feed(stream, 0.0)
    dec = FrameDecoder()
    events: list[Event] = []
    for chunk in split(stream, cuts):
        events += dec.feed(chunk, 0.0)
        assert dec.buffered <= MAX_PAYLOAD
    # Without gaps in time, how the bytes are cut does not change what is decoded.
    assert events == whole


@settings(max_examples=200)
@given(st.lists(st.tuples(st.binary(max_size=200), st.floats(0.0, 1.0)), max_size=30))
def test_any_stream_with_gaps_never_raises(chunks: list[tuple[bytes, float]]) -> None:
    dec = FrameDecoder(frame_gap_s=0.5)
    now = 0.0
    for data, step in chunks:
        now += step
        dec.feed(data, now)
        assert dec.buffered <= MAX_PAYLOAD
        dec.expire(now + step / 2)

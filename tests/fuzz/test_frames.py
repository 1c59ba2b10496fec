"""Fuzzing the frame decoder (agent/link/codec.py) against a byte-at-a-time reference.

Beyond tests/link/test_codec_properties.py: streams are built from valid, damaged and
oversized frames of both link versions, v2 answers, control bytes and garbage, cut
anywhere and spread over time (R5 gaps included), and every event must equal the
reference decoder's (tests/fuzz/oracles.py), with v2 decoding on (auto/2) and off (1).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.link.codec import (
    ACK,
    ENQ,
    ETX,
    MAX_PAYLOAD,
    NAK,
    SOH,
    STX,
    encode_answer,
    encode_frame,
    encode_frame_v2,
)
from tests.fuzz.budget import budget
from tests.fuzz.oracles import check_encode_frame, check_frame_stream
from tests.fuzz.strategies import mutated_bytes

GAP_S = 0.5
payloads = st.one_of(
    st.binary(min_size=2, max_size=64),
    st.integers(MAX_PAYLOAD - 3, MAX_PAYLOAD).map(lambda n: b"a" * n),
).map(lambda b: bytes(0x20 + x % 0x5F for x in b))
seqs = st.integers(0, 15)
frames = st.one_of(
    payloads.map(encode_frame),
    st.builds(encode_frame_v2, payloads, seqs),
    st.builds(encode_answer, st.sampled_from([ACK, NAK]), st.none() | seqs),
)
pieces = st.one_of(
    frames,
    frames.flatmap(mutated_bytes),
    st.sampled_from([SOH, STX, ETX, ENQ, ACK, NAK, 0x04, 0x20, 0x30, 0x3F, 0x41, 0x7E,
                     0x7F, 0xFF]).map(lambda b: bytes((b,))),
    st.binary(max_size=32),
    st.integers(MAX_PAYLOAD - 2, MAX_PAYLOAD + 4).map(lambda n: b"\x02" + b"b" * n),
    st.integers(MAX_PAYLOAD - 2, MAX_PAYLOAD + 4).map(lambda n: b"\x010" + b"b" * n),
    st.just(b"\x02{}\x03"),  # ETX then nothing: the LRC is whatever comes next
    st.just(b"\x01A{}\x03"),  # ETX then nothing: the crc digits are what comes next
    st.just(b"\x06\x30"),  # an answer cut after its seq
)


@st.composite
def timed_chunks(draw: st.DrawFn) -> list[tuple[bytes, float]]:
    stream = b"".join(draw(st.lists(pieces, max_size=10)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(stream)), max_size=12))))
    now = 0.0
    chunks: list[tuple[bytes, float]] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        # Mostly back to back; sometimes just under, at, or past the R5 gap.
        now += draw(st.sampled_from([0.0, 0.0, 0.001, GAP_S - 0.001, GAP_S, GAP_S + 0.2]))
        chunks.append((stream[a:b], now))
    return chunks


@pytest.mark.parametrize("v2", [True, False], ids=["v2-on", "v1-only"])
@budget(200)
@given(chunks=timed_chunks())
def test_decoder_agrees_with_the_reference(v2: bool, chunks: list[tuple[bytes, float]]) -> None:
    check_frame_stream(chunks, GAP_S, v2=v2)


@budget(200)
@given(st.one_of(st.binary(max_size=64), payloads, payloads.flatmap(mutated_bytes),
                 st.integers(MAX_PAYLOAD - 1, MAX_PAYLOAD + 2).map(lambda n: b"c" * n)))
def test_encode_frame_takes_exactly_the_valid_payloads(payload: bytes) -> None:
    check_encode_frame(payload)

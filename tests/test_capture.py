"""The capture rings: bounded, split back into frames as the link sees them, masked."""

from __future__ import annotations

import json

from agent.capture import FRAMES_PER_LANE, PAYTM_CALLS, Capture, mask_text
from agent.link.codec import ACK, encode_frame
from agent.paytm.pipeline import Exchange


def test_frames_are_bounded_and_split_back_into_frames() -> None:
    capture = Capture(clock=lambda: 1.0)
    lane = capture.lane("till-1", 0.5)
    for i in range(FRAMES_PER_LANE * 3):
        frame = encode_frame(json.dumps({"v": 1, "type": "ping", "id": f"p{i}"}).encode())
        lane.observe("in", frame[:5])  # a frame read in two parts
        lane.observe("in", frame[5:])
        lane.observe("out", bytes([ACK]))
    assert len(lane.chunks) == 2 * FRAMES_PER_LANE
    frames = capture.copy().snapshot()["frames"]["till-1"]
    assert 0 < len(frames) <= FRAMES_PER_LANE
    assert frames[-1]["kind"] == "ACK" and frames[-1]["direction"] == "out"
    last_in = [f for f in frames if f["direction"] == "in"][-1]
    assert json.loads(last_in["decoded"])["id"] == f"p{FRAMES_PER_LANE * 3 - 1}"
    assert bytes.fromhex(last_in["hex"])[0] == 0x02


def test_calls_are_bounded_and_masked() -> None:
    capture = Capture()
    body = ('{"head":{"signature":"abc123SIG","checksumhash":"XYZ"},'
            '"body":{"userPhoneNo":"9876543210","mid":"M1","CHECKSUMHASH":"q"}}')
    for i in range(PAYTM_CALLS + 5):
        capture.paytm.observe(Exchange("send_link", f"L{i}", "https://x/y", body.encode(),
                                       200, b'{"head":{"signature":"S"}}', "answered", 0.1))
    calls = capture.copy().snapshot()["paytm_calls"]
    assert len(calls) == PAYTM_CALLS and calls[0]["subject"] == "L5"
    request = calls[-1]["request"]
    assert "abc123SIG" not in request and '"checksumhash":"•••"' in request
    assert '"CHECKSUMHASH":"•••"' in request and '"userPhoneNo":"XXXXXX3210"' in request
    assert calls[-1]["answer"] == '{"head":{"signature":"•••"}}'


def test_bare_phone_numbers_are_masked_but_not_other_numbers() -> None:
    text = "call +919876543210 or 09876543210 or 8123456789; rrn 859423868964, tid 12345678"
    masked = mask_text(text)
    assert "9876543210" not in masked and "8123456789" not in masked
    assert masked.count("3210") == 2 and "6789" in masked
    assert "859423868964" in masked and "12345678" in masked

"""Flip detection of link v1 and v2 (protocol §6), measured, not argued.

    python -m bench.flips [--json bench/results/flips.json]

1. Exhaustive: every single-bit and every double-bit flip of sample frames and
   answers is fed to the real decoder (agent.link.codec.FrameDecoder, v1 and v2 on,
   as a lane with protocol=auto reads). A flip is *accepted* when the decoder hands
   on a frame (the original can no longer arrive intact), counted apart for v2
   frames and v1 frames (a protocol=2 link NAKs the latter; an auto link takes
   them), and *forges an acknowledgement* when it yields what a sender of that
   version takes for ACK: a bare ACK byte for a v1 sender, `ACK seq crc` for a v2
   sender.
2. The restart window (R4, kept by §6): a payload byte one bit from SOH restarts the
   frame; over `--restart-frames` result frames with varied ids and RRNs, every such
   flip is paired with every later flip, and the pairs that give a valid v2 frame are
   counted.
3. Analytic, for long frames: a double flip of a v2 frame passes the CRC only
   when its CRC difference is zero, i.e. two data bits 32767 bits apart (the period
   of x mod the CCITT polynomial), or one data bit whose CRC difference equals the
   change one flipped hex digit makes. The script finds the shortest
   seq+payload+ETX for which either exists.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.link.codec import (
    ACK,
    NAK,
    SEQ_DIGITS,
    SOH,
    AnswerReceived,
    ControlReceived,
    Event,
    FrameDecoder,
    FrameReceived,
    encode_answer,
    encode_frame,
    encode_frame_v2,
)

RESULTS = Path(__file__).resolve().parent / "results" / "flips.json"
PING = b'{"v":1,"type":"ping","id":"p1"}'
RESULT = (b'{"v":1,"type":"result","id":"r7Qm2","re":"s1","txn":"ORDER20240611A","kind":"sale",'
          b'"status":"success","code":"0000","message":"Paid","amount":"15000",'
          b'"payment":{"method":"CARD","rrn":"416300012345","auth_code":"A1B2C3"},'
          b'"receipt":["PAID Rs 150.00","CARD XXXX1234"]}')
CRC_BITS = 16
CRC_PERIOD_BITS = 32767  # x has this order modulo 0x11021 (x^16 + x^12 + x^5 + 1)


@dataclass
class Tally:
    sample: str
    version: int
    length: int  # bytes on the wire
    single: int = 0
    single_accepted_v2: int = 0
    single_accepted_v1: int = 0
    single_forged_ack: int = 0
    double: int = 0
    double_accepted_v2: int = 0
    double_accepted_v1: int = 0
    double_forged_ack: int = 0


def flips(data: bytes, count: int) -> Iterator[bytes]:
    for bits in itertools.combinations(range(len(data) * 8), count):
        damaged = bytearray(data)
        for bit in bits:
            damaged[bit // 8] ^= 1 << (bit % 8)
        yield bytes(damaged)


def _takes_for_ack(event: Event, version: int) -> bool:
    if version == 2:
        return isinstance(event, AnswerReceived) and event.control == ACK
    return isinstance(event, ControlReceived) and event.byte == ACK


def outcome(data: bytes, version: int) -> tuple[bool, bool, bool]:
    """(accepted as a v2 frame, as a v1 frame, forged an ACK a `version` sender takes)."""
    accepted_v2 = accepted_v1 = forged = False
    for event in FrameDecoder().feed(data, 0.0):
        if isinstance(event, FrameReceived):
            accepted_v2 |= event.version == 2
            accepted_v1 |= event.version == 1
        else:
            forged |= _takes_for_ack(event, version)
    return accepted_v2, accepted_v1, forged


def measure(sample: str, data: bytes, version: int) -> Tally:
    tally = Tally(sample, version, len(data))
    for count in (1, 2):
        for damaged in flips(data, count):
            as_v2, as_v1, forged = outcome(damaged, version)
            if count == 1:
                tally.single += 1
                tally.single_accepted_v2 += as_v2
                tally.single_accepted_v1 += as_v1
                tally.single_forged_ack += forged
            else:
                tally.double += 1
                tally.double_accepted_v2 += as_v2
                tally.double_accepted_v1 += as_v1
                tally.double_forged_ack += forged
    return tally


def restart_search(frames: int, seed: int = 1) -> dict[str, int]:
    """Double flips of v2 result frames that pass as a v2 frame through an SOH restart."""
    rng = random.Random(seed)
    with_pair = pairs = total = 0
    for k in range(frames):
        rrn = "".join(rng.choice("0123456789") for _ in range(12)).encode()
        ident = "".join(rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ")
                        for _ in range(5)).encode()
        frame = encode_frame_v2(RESULT.replace(b"416300012345", rrn).replace(b"r7Qm2", ident),
                                k % 16)
        bits = len(frame) * 8
        total += bits * (bits - 1) // 2
        hits = 0
        for i in range(2, len(frame) - 5):  # payload bytes
            for bit in range(8):
                if frame[i] ^ (1 << bit) != SOH:
                    continue
                base = bytearray(frame)
                base[i] = SOH
                for later in range((i + 1) * 8, bits):
                    damaged = bytearray(base)
                    damaged[later // 8] ^= 1 << (later % 8)
                    hits += any(isinstance(e, FrameReceived) and e.version == 2
                                for e in FrameDecoder().feed(bytes(damaged), 0.0))
        pairs += hits
        with_pair += hits > 0
    return {"frames": frames, "frames_with_a_pair": with_pair, "pairs": pairs,
            "double_flips": total}


def _hex_digit_changes() -> set[int]:
    """XOR of the old and new value of a hex digit that one bit flip turns into another."""
    changes = set()
    for digit in SEQ_DIGITS:
        for bit in range(8):
            other = digit ^ (1 << bit)
            if other in SEQ_DIGITS:
                changes.add(SEQ_DIGITS.index(digit) ^ SEQ_DIGITS.index(other))
    return changes


def shortest_weak_frame() -> dict[str, int]:
    """Shortest covered length (seq+payload+ETX, bytes) with an undetectable double flip."""
    changes = _hex_digit_changes()
    syndrome = 1  # CRC difference of a flip of the last covered bit: x^16 mod p, built up
    for _ in range(CRC_BITS):
        syndrome = ((syndrome << 1) ^ 0x1021) & 0xFFFF if syndrome & 0x8000 else syndrome << 1
    data_and_digit = None
    for distance in range(1, 8 * 4098 + 1):  # bit distance from the end of the covered bytes
        for nibble in range(4):
            if (syndrome >> (4 * nibble)) & 0xF in changes and \
                    syndrome == ((syndrome >> (4 * nibble)) & 0xF) << (4 * nibble):
                data_and_digit = (distance + 7) // 8
                break
        if data_and_digit is not None:
            break
        syndrome = ((syndrome << 1) ^ 0x1021) & 0xFFFF if syndrome & 0x8000 else syndrome << 1
    return {
        "data_bit_and_crc_digit_bytes": data_and_digit or 0,
        "two_data_bits_bytes": (CRC_PERIOD_BITS + 1 + 7) // 8,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--restart-frames", type=int, default=1000)
    args = parser.parse_args()
    started = time.monotonic()
    samples: list[tuple[str, bytes, int]] = [
        ("ping, v1", encode_frame(PING), 1),
        ("ping, v2 (the §6 example)", encode_frame_v2(PING, 0), 2),
        ("result, v1", encode_frame(RESULT), 1),
        ("result, v2", encode_frame_v2(RESULT, 0xB), 2),
        ("ACK, v1", bytes((ACK,)), 1),
        *((f"ACK {chr(SEQ_DIGITS[s])}, v2", encode_answer(ACK, s), 2) for s in range(16)),
        *((f"NAK {chr(SEQ_DIGITS[s])}, v2", encode_answer(NAK, s), 2) for s in range(16)),
        ("NAK ?, v2", encode_answer(NAK, None), 2),
    ]
    tallies = [measure(name, data, version) for name, data, version in samples]
    weak = shortest_weak_frame()
    restart = restart_search(args.restart_frames)
    print("sample                       bytes  flips: accepted as v2 / as v1 / forged ACK")
    for t in tallies:
        print(f"{t.sample:28} {t.length:4}   single {t.single}: {t.single_accepted_v2} / "
              f"{t.single_accepted_v1} / {t.single_forged_ack}   double {t.double}: "
              f"{t.double_accepted_v2} / {t.double_accepted_v1} / {t.double_forged_ack}")
    print(f"v2: shortest covered length with an undetectable double flip: "
          f"{weak['data_bit_and_crc_digit_bytes']} bytes (data bit + crc digit), "
          f"{weak['two_data_bits_bytes']} bytes (two data bits)")
    print(f"v2 restart window: {restart['pairs']} of {restart['double_flips']} double flips "
          f"of {restart['frames']} result frames pass as a v2 frame through an SOH restart "
          f"({restart['frames_with_a_pair']} frames have such a pair)")
    print(f"{time.monotonic() - started:.1f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"samples": [asdict(t) for t in tallies],
                                         "v2_shortest_weak": weak,
                                         "v2_restart_window": restart}, indent=2) + "\n")


if __name__ == "__main__":
    main()

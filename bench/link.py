"""Link benchmark: frame decoder throughput, and the ACK round trip of a 200-byte
request frame over a pty pair, set beside the time the same bytes need on a wire;
each for link v1 (STX … LRC, bare ACK) and v2 (SOH seq … CRC-16, `ACK seq crc`, §6).

    python -m bench.link [--round-trips 1000] [--json bench/results/link.json]

Round trip: the agent runs in a child process as in production (asyncio,
drivers.serial_port.SerialTransport opening the pty slave by path through
pyserial, agent.link.layer.Link, a consumer taking the payloads). The parent
plays the register with blocking os.write/os.read on the pty master and times
each exchange from the write of the whole frame to the read of the ACK. A pty
has no wire, so what is measured is the agent's own share (plus two syscalls
and the kernel's pty hop); it is compared with the wire time of the frame and
its ACK at 9600 and 115200 baud (10 bits per byte: start, 8 data, stop).
Target (issue 3): the agent's share under 5% of the wire time at 115200 baud.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import select
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Runnable as `python bench/link.py` from anywhere, not only as `python -m bench.link`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.link.codec import (
    ACK,
    SEQ_COUNT,
    FrameDecoder,
    encode_answer,
    encode_frame,
    encode_frame_v2,
)
from agent.link.layer import ACK_DEADLINE_S, Link
from agent.link.timings import LinkTimings
from devtools.pty import open_pty
from drivers.base import TransportState
from drivers.serial_port import SerialTransport
from drivers.url import SerialSpec

REQUEST_PAYLOAD_BYTES = 200
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
BAUD_RATES = (9600, 115200)
TARGET_SHARE = 0.05  # of the wire time at 115200 baud
WARMUP_ROUND_TRIPS = 50
ANSWER_TIMEOUT_S = 2.0  # per round trip; far above anything sane
AGENT_READY_TIMEOUT_S = 10.0
RESULTS = Path(__file__).resolve().parent / "results" / "link.json"


def request_payload(n: int = 0, size: int = REQUEST_PAYLOAD_BYTES) -> bytes:
    """A sale request padded with `ref` to exactly `size` bytes."""
    head = {"v": 1, "type": "sale", "id": f"bench-{n:06d}", "txn": f"BENCH{n:010d}",
            "amount": "15000", "ref": ""}
    base = len(json.dumps(head, separators=(",", ":")))
    head["ref"] = "R" * (size - base)
    payload = json.dumps(head, separators=(",", ":")).encode()
    assert len(payload) == size, len(payload)
    return payload


# -- decoder throughput ---------------------------------------------------------------------


def frame_of(payload: bytes, n: int, version: int) -> bytes:
    return encode_frame_v2(payload, n % SEQ_COUNT) if version == 2 else encode_frame(payload)


def answer_of(n: int, version: int) -> bytes:
    return encode_answer(ACK, n % SEQ_COUNT) if version == 2 else bytes((ACK,))


def decoder_throughput(payload_size: int, chunk: int, total_bytes: int,
                       version: int = 1) -> dict[str, Any]:
    frame = frame_of(request_payload(0, payload_size) if payload_size >= 80
                     else b"x" * payload_size, 0, version)
    count = max(1, total_bytes // len(frame))
    stream = frame * count
    chunks = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    best = float("inf")
    frames = 0
    for _ in range(3):
        dec = FrameDecoder()
        frames = 0
        t0 = time.perf_counter()
        for c in chunks:
            frames += len(dec.feed(c, 0.0))
        best = min(best, time.perf_counter() - t0)
    assert frames == count, (frames, count)
    return {
        "link": version,
        "payload_bytes": payload_size,
        "chunk_bytes": chunk,
        "stream_bytes": len(stream),
        "frames": count,
        "seconds": best,
        "mb_per_s": len(stream) / best / 1e6,
        "frames_per_s": count / best,
    }


# -- round trip over a pty --------------------------------------------------------------------


def _agent_process(path: str, ready_fd: int, stop_fd: int) -> None:
    asyncio.run(_agent(path, ready_fd, stop_fd))


async def _agent(path: str, ready_fd: int, stop_fd: int) -> None:
    loop = asyncio.get_running_loop()
    transport = SerialTransport(SerialSpec(path=path, baudrate=115200))
    await transport.open()
    link = Link(transport, LinkTimings(), name="bench")
    await link.start()
    stop = asyncio.Event()
    loop.add_reader(stop_fd, stop.set)

    async def consume() -> None:
        while True:
            await link.receive()

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(AGENT_READY_TIMEOUT_S):
        await transport.wait_state(TransportState.UP)
    os.write(ready_fd, b"R")
    await stop.wait()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await link.stop()
    await transport.close()


def _read_exactly(fd: int, n: int, timeout_s: float) -> bytes:
    out = b""
    while len(out) < n:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            raise TimeoutError("no answer from the agent")
        data = os.read(fd, n - len(out))
        if not data:
            raise EOFError("pty closed")
        out += data
    return out


def pty_round_trips(n: int, version: int = 1) -> dict[str, Any]:
    """The agent's link runs protocol=auto (the default), so it answers each version."""
    master, slave, path = open_pty(raw=False)
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_agent_process, args=(path, ready_w, stop_r), daemon=True)
    proc.start()
    try:
        ready, _, _ = select.select([ready_r], [], [], AGENT_READY_TIMEOUT_S)
        if not ready:
            raise TimeoutError("the agent process did not come up")
        os.read(ready_r, 1)
        frames = [frame_of(request_payload(i), i, version)
                  for i in range(n + WARMUP_ROUND_TRIPS)]
        samples: list[float] = []
        for i, frame in enumerate(frames):
            expected = answer_of(i, version)
            t0 = time.perf_counter()
            os.write(master, frame)
            answer = _read_exactly(master, len(expected), ANSWER_TIMEOUT_S)
            elapsed = time.perf_counter() - t0
            if answer != expected:
                raise RuntimeError(f"round trip {i}: answer {answer.hex(' ')}, expected "
                                   f"{expected.hex(' ')}")
            if i >= WARMUP_ROUND_TRIPS:
                samples.append(elapsed)
    finally:
        os.write(stop_w, b"S")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        for fd in (master, slave, ready_r, ready_w, stop_r, stop_w):
            os.close(fd)
    samples.sort()
    frame_len = len(frames[0])
    wire_bytes = frame_len + len(answer_of(0, version))  # the frame and its ACK
    wire = {str(b): wire_bytes * BITS_PER_BYTE / b for b in BAUD_RATES}
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return {
        "link": version,
        "round_trips": len(samples),
        "frame_bytes": frame_len,
        "wire_bytes": wire_bytes,
        "p50_s": p50,
        "p99_s": p99,
        "max_s": samples[-1],
        "mean_s": statistics.fmean(samples),
        "wire_time_s": wire,
        "share_of_wire_115200_p50": p50 / wire["115200"],
        "share_of_wire_115200_p99": p99 / wire["115200"],
        "target_share": TARGET_SHARE,
        "meets_target_p50": p50 / wire["115200"] < TARGET_SHARE,
        "meets_target_p99": p99 / wire["115200"] < TARGET_SHARE,
        "ack_deadline_s": ACK_DEADLINE_S,
        "within_ack_deadline_all": samples[-1] < ACK_DEADLINE_S,
    }


# -- report ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--decoder-mb", type=float, default=8.0,
                        help="megabytes decoded per throughput case")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    total = int(args.decoder_mb * 1e6)
    cases = [
        decoder_throughput(size, chunk, share, version)
        for version in (1, 2)
        for size, chunk, share in ((REQUEST_PAYLOAD_BYTES, 4096, total), (4096, 65536, total),
                                   (REQUEST_PAYLOAD_BYTES, 64, total // 4),
                                   (REQUEST_PAYLOAD_BYTES, 1, total // 40))
    ]
    print("Frame decoder (best of 3)")
    print(f"  {'link':>4} {'payload B':>9} {'chunk B':>8} {'frames':>8} {'MB/s':>9} "
          f"{'frames/s':>11}")
    for c in cases:
        print(f"  {'v' + str(c['link']):>4} {c['payload_bytes']:>9} {c['chunk_bytes']:>8} "
              f"{c['frames']:>8} {c['mb_per_s']:>9.1f} {c['frames_per_s']:>11,.0f}")

    trips = [pty_round_trips(args.round_trips, version) for version in (1, 2)]
    for rt in trips:
        _print_round_trip(rt)

    result = {
        "benchmark": "link",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "decoder": cases,
        "pty_round_trip": trips[0],
        "pty_round_trip_v2": trips[1],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {args.json}")
    return 0


def _print_round_trip(rt: dict[str, Any]) -> None:
    ms = 1000.0
    print()
    print(f"Round trip over a pty, link v{rt['link']}: {rt['frame_bytes']}-byte frame "
          f"({REQUEST_PAYLOAD_BYTES}-byte payload) + {rt['wire_bytes'] - rt['frame_bytes']}"
          f"-byte ACK, {rt['round_trips']} round trips")
    print(f"  {'':24} {'ms':>9} {'share of wire @115200':>22}")
    for key, label in (("p50_s", "measured p50"), ("p99_s", "measured p99"),
                       ("max_s", "measured max")):
        share = rt[key] / rt["wire_time_s"]["115200"]
        print(f"  {label:24} {rt[key] * ms:>9.3f} {share:>21.2%}")
    for baud in BAUD_RATES:
        print(f"  {'wire time @' + str(baud):24} {rt['wire_time_s'][str(baud)] * ms:>9.3f}")
    verdict = "meets" if rt["meets_target_p99"] else (
        "p50 meets, p99 misses" if rt["meets_target_p50"] else "misses")
    print(f"  target: agent share < {TARGET_SHARE:.0%} of the wire time at 115200 -> {verdict}")
    print(f"  R1: every ACK within {ACK_DEADLINE_S * ms:.0f} ms of the frame: "
          f"{'yes' if rt['within_ack_deadline_all'] else 'NO'}")


if __name__ == "__main__":
    raise SystemExit(main())

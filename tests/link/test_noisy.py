"""Two links over a line that flips and drops bytes (seeded): every message exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

from agent.errors import UndeliveredError
from agent.link.codec import lrc
from agent.link.layer import Link
from agent.link.timings import LinkProtocol, LinkTimings

from .pipes import LineFaults, noisy_pair
from .test_layer import json_id, link_on

NOISY = LinkTimings(ack_timeout_s=0.05, retries=3, frame_gap_s=0.03)
# A payload whose LRC is one of these could, after its STX is lost on the line,
# be read outside a frame as a control byte (an ENQ answered with ACK is then
# taken by the sender for the ACK of the broken frame): a limit of a one-byte
# LRC in the protocol, not of the link. The test keeps LRCs printable.
_PRINTABLE = range(0x20, 0x7F)


def message(sender: str, n: int) -> bytes:
    """A message from `sender` whose LRC is a printable byte (see above)."""
    for pad in range(256):
        payload = json.dumps(
            {"v": 1, "type": "ping", "id": f"{sender}{n}", "pad": "x" * (pad % 16) + str(pad)},
            separators=(",", ":"),
        ).encode()
        if lrc(payload) in _PRINTABLE:
            return payload
    raise AssertionError("no padding gives a printable LRC")


async def send_all(link: Link, payloads: list[bytes]) -> int:
    """Send each payload until it is delivered (as the engine resends); count give-ups."""
    gave_up = 0
    for payload in payloads:
        while True:
            try:
                await link.send(payload)
                break
            except UndeliveredError:
                gave_up += 1
    return gave_up


async def receive_n(link: Link, n: int) -> list[bytes]:
    return [await link.receive() for _ in range(n)]


async def test_noisy_line_delivers_every_message_exactly_once_both_ways() -> None:
    n = 120
    a_end, b_end = noisy_pair(seed=20240611, flip=0.004, drop=0.004, max_per_write=1,
                                  detectable_only=True)
    to_b = [message("a", i) for i in range(n)]
    to_a = [message("b", i) for i in range(n)]
    async with link_on(a_end, NOISY, name="a") as a, link_on(b_end, NOISY, name="b") as b:
        results = await asyncio.wait_for(
            asyncio.gather(send_all(a, to_b), send_all(b, to_a), receive_n(b, n), receive_n(a, n)),
            timeout=60,
        )
        got_b, got_a = results[2], results[3]
        assert got_b == to_b  # each once, in order
        assert got_a == to_a
        # Nothing more is waiting: no message came out twice.
        assert a.queued == 0 and b.queued == 0
        # The line really was noisy and the link really worked for it.
        faults = [end.faults for end in (a_end, b_end)]
        assert all(isinstance(f, LineFaults) for f in faults)
        damage = sum(f.flipped + f.dropped for f in faults if isinstance(f, LineFaults))
        assert damage >= 20
        assert a.counters.retransmissions + b.counters.retransmissions >= 10
        assert a.counters.rejected + b.counters.rejected >= 1


async def test_heavy_noise_never_wedges_the_link() -> None:
    # Several faults per frame: some damage may even pass the LRC, so this test does
    # not ask for exactly-once; it asks that nothing crashes or hangs and that the
    # link serves clean traffic as soon as the line is quiet again.
    a_end, b_end = noisy_pair(seed=7, flip=0.03, drop=0.03)
    async with link_on(a_end, NOISY, name="a", id_of=json_id) as a, link_on(
        b_end, NOISY, name="b", id_of=json_id
    ) as b:

        async def drain(link: Link) -> None:
            while True:
                await link.receive()

        drains = [asyncio.create_task(drain(a)), asyncio.create_task(drain(b))]
        try:
            for i in range(30):
                for sender in (a, b):
                    with contextlib.suppress(UndeliveredError):
                        await asyncio.wait_for(sender.send(message(sender.name, i)), 5)
        finally:
            for task in drains:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
        assert not a.closed and not b.closed
        assert a.decoder.buffered <= 4096 and b.decoder.buffered <= 4096
        a_end.faults = b_end.faults = None  # the line goes quiet
        await asyncio.wait_for(a.send(message("final-a", 0)), 5)
        await asyncio.wait_for(b.send(message("final-b", 0)), 5)
        assert message("final-a", 0) in await asyncio.wait_for(receive_until(b, "final-a0"), 5)
        assert message("final-b", 0) in await asyncio.wait_for(receive_until(a, "final-b0"), 5)


async def receive_until(link: Link, ident: str) -> list[bytes]:
    seen: list[bytes] = []
    while True:
        payload = await link.receive()
        seen.append(payload)
        if json_id(payload) == ident:
            return seen


# -- link v2 (§6): the same line, then one that v1 cannot survive -------------------------

V2 = LinkProtocol.V2


async def test_noisy_line_delivers_every_message_exactly_once_both_ways_v2() -> None:
    # The v1 test above, repeated on v2 links; no LRC padding is needed any more.
    n = 120
    a_end, b_end = noisy_pair(seed=20240611, flip=0.004, drop=0.004, max_per_write=1,
                              detectable_only=True)
    to_b = [v2_message("a", i) for i in range(n)]
    to_a = [v2_message("b", i) for i in range(n)]
    async with link_on(a_end, NOISY, name="a", protocol=V2) as a, link_on(
        b_end, NOISY, name="b", protocol=V2
    ) as b:
        results = await asyncio.wait_for(
            asyncio.gather(send_all(a, to_b), send_all(b, to_a), receive_n(b, n), receive_n(a, n)),
            timeout=60,
        )
        assert results[2] == to_b
        assert results[3] == to_a
        assert a.queued == 0 and b.queued == 0
        assert a.counters.retransmissions + b.counters.retransmissions >= 10


def v2_message(sender: str, n: int) -> bytes:
    return json.dumps({"v": 1, "type": "result", "id": f"{sender}{n}", "txn": f"T{n:09d}",
                       "status": "success"}, separators=(",", ":")).encode()


async def send_and_log(link: Link, payloads: list[bytes]) -> list[bytes]:
    """Send each payload until it is delivered; the list of those the link says it
    delivered (as the lane marks a result delivered in the journal)."""
    delivered: list[bytes] = []
    for payload in payloads:
        while True:
            try:
                await link.send(payload)
            except UndeliveredError:
                continue
            delivered.append(payload)
            break
    return delivered


async def receive_until_marker(link: Link, marker: bytes) -> list[bytes]:
    got: list[bytes] = []
    while (payload := await link.receive()) != marker:
        got.append(payload)
    return got


@dataclass
class HeavyRun:
    lost: list[bytes]  # marked delivered by the sender, never received
    sent: tuple[list[bytes], list[bytes]]
    got: tuple[list[bytes], list[bytes]]
    faults: list[LineFaults]
    links: tuple[Link, Link]


async def heavy_noise_run(protocol: LinkProtocol, seed: int = 424242, n: int = 40) -> HeavyRun:
    # Any bit of any byte, several per frame, and symbols turned into symbols one bit away
    # (STX <-> ACK, SOH -> ENQ, NAK -> ENQ, ...): the damage that forges ACKs under v1.
    a_end, b_end = noisy_pair(seed=seed, flip=0.006, drop=0.004, confuse=0.05)
    to_b = [v2_message("a", i) for i in range(n)]
    to_a = [v2_message("b", i) for i in range(n)]
    marker_a, marker_b = v2_message("end-a", 0), v2_message("end-b", 0)
    async with link_on(a_end, NOISY, name="a", id_of=json_id, protocol=protocol) as a, link_on(
        b_end, NOISY, name="b", id_of=json_id, protocol=protocol
    ) as b:
        receivers = asyncio.gather(receive_until_marker(b, marker_a),
                                   receive_until_marker(a, marker_b))
        sent_a, sent_b = await asyncio.wait_for(
            asyncio.gather(send_and_log(a, to_b), send_and_log(b, to_a)), timeout=60)
        faults = [f for f in (a_end.faults, b_end.faults) if isinstance(f, LineFaults)]
        a_end.faults = b_end.faults = None  # quiet: the markers go through
        await asyncio.wait_for(asyncio.gather(a.send(marker_a), b.send(marker_b)), 10)
        got_b, got_a = await asyncio.wait_for(receivers, 10)
    lost = [p for p in sent_a if p not in got_b] + [p for p in sent_b if p not in got_a]
    return HeavyRun(lost, (sent_a, sent_b), (got_b, got_a), faults, (a, b))


async def test_heavy_noise_with_symbol_flips_marks_nothing_delivered_that_was_not_received_v2(
) -> None:
    # Under v2 only `ACK seq crc` with the frame's own seq acknowledges a frame, so a
    # payload the sender counts as delivered is one the receiver took.
    run = await heavy_noise_run(V2)
    assert run.lost == []  # the count the issue asks for
    to_b, to_a = run.sent
    assert run.got == (to_b, to_a)  # and nothing else: exactly once, in order
    # The line really did what v1 cannot survive (see the next test). About 30 symbol
    # flips per run (17–42 over 15 runs: how many frames get repeated is up to timing).
    assert sum(f.confused for f in run.faults) >= 5
    assert sum(f.flipped + f.dropped for f in run.faults) >= 50
    assert sum(link.counters.malformed_answers + link.counters.ignored_answers
               + link.counters.stray_controls for link in run.links) >= 1


async def test_the_same_noise_loses_messages_under_v1() -> None:
    # The contrast that gives the test above its teeth: v1 links on the same line mark
    # messages delivered that never arrived (a forged bare ACK: STX flipped into ACK,
    # NAK into ENQ). Several per run on every seed tried; one is enough here.
    run = await heavy_noise_run(LinkProtocol.V1)
    assert len(run.lost) >= 1

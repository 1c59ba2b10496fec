"""Link layer over in-memory pipes: R1–R7 and S1–S3 as the peer sees them on the wire.

Timings are shrunk (ack_timeout_s=0.05) so retransmissions take milliseconds; the
tests wait on bytes, futures and events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from agent.errors import LinkError, UndeliveredError
from agent.link.codec import ACK, ENQ, EOT, MAX_PAYLOAD, NAK, encode_frame, lrc
from agent.link.layer import ACK_DEADLINE_S, Link, LinkClosedError
from agent.link.timings import LinkProtocol, LinkTimings

from .pipes import ByteWatcher, MemoryTransport, drop_first, pipe_pair

FAST = LinkTimings(ack_timeout_s=0.05, retries=3, frame_gap_s=0.05)


def json_id(payload: bytes) -> str | None:
    try:
        msg = json.loads(payload)
    except ValueError:
        return None
    value = msg.get("id") if isinstance(msg, dict) else None
    return value if isinstance(value, str) else None


def msg(ident: str, **extra: object) -> bytes:
    return json.dumps({"v": 1, "type": "ping", "id": ident, **extra},
                      separators=(",", ":")).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def link_on(
    end: MemoryTransport,
    timings: LinkTimings = FAST,
    *,
    name: str = "agent",
    id_of: Callable[[bytes], str | None] = json_id,
    clock: Callable[[], float] = time.monotonic,
    receive_queue_max: int = 1024,
    protocol: LinkProtocol = LinkProtocol.AUTO,
) -> AsyncIterator[Link]:
    link = Link(end, timings, name=name, id_of=id_of, clock=clock,
                receive_queue_max=receive_queue_max, protocol=protocol)
    await link.start()
    try:
        yield link
    finally:
        await link.stop()


@asynccontextmanager
async def agent_and_peer(
    timings: LinkTimings = FAST,
    *,
    name: str = "agent",
    id_of: Callable[[bytes], str | None] = json_id,
    clock: Callable[[], float] = time.monotonic,
    receive_queue_max: int = 1024,
    protocol: LinkProtocol = LinkProtocol.AUTO,
) -> AsyncIterator[tuple[Link, MemoryTransport, ByteWatcher]]:
    """A Link on one end; the test plays the register on the other end byte by byte."""
    agent_end, peer = pipe_pair()
    async with link_on(agent_end, timings, name=name, id_of=id_of, clock=clock,
                       receive_queue_max=receive_queue_max,
                       protocol=protocol) as link, ByteWatcher(peer) as seen:
        yield link, peer, seen


def agent_side(link: Link) -> MemoryTransport:
    assert isinstance(link.transport, MemoryTransport)
    return link.transport


async def wait_receive(link: Link, timeout_s: float = 5.0) -> bytes:
    return await asyncio.wait_for(link.receive(), timeout_s)


# -- receiving: R1–R7 ------------------------------------------------------------------


async def test_good_frame_is_acked_within_deadline_then_delivered() -> None:
    async with agent_and_peer() as (link, peer, seen):
        payload = msg("p1")
        sent_at = time.monotonic()
        await peer.write(encode_frame(payload))
        await seen.wait_len(1)
        elapsed = time.monotonic() - sent_at
        assert bytes(seen.data) == bytes([ACK])
        assert elapsed < ACK_DEADLINE_S
        assert await wait_receive(link) == payload
        c = link.counters
        assert (c.frames_in, c.bytes_in, c.bytes_out, c.naks_sent) == (1, len(payload) + 3, 1, 0)


async def test_ack_is_written_before_the_payload_is_handed_on() -> None:
    agent_end, peer = pipe_pair()
    async with link_on(agent_end) as link:
        await peer.write(encode_frame(msg("p1")))
        await wait_receive(link)
        assert bytes(agent_end.written) == bytes([ACK])


async def test_the_protocol_example_frame() -> None:
    example = bytes.fromhex("02 7b 22 76 22 3a 31 2c 22 74 79 70 65 22 3a 22 70 69 6e 67 22 2c"
                            " 22 69 64 22 3a 22 70 31 22 7d 03 3c")
    async with agent_and_peer() as (link, peer, seen):
        await peer.write(example)
        assert await wait_receive(link) == b'{"v":1,"type":"ping","id":"p1"}'
        assert bytes(seen.data) == bytes([ACK])


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (b"\x02" + msg("a") + bytes([0x03, lrc(msg("a")) ^ 0x01]), "bad LRC"),
        (b"\x02" + b"a\x06b" + bytes([0x03, lrc(b"a\x06b")]), "control byte inside"),
        (b"\x02" + b"x" + bytes([0x03, lrc(b"x")]), "payload too short"),
    ],
)
async def test_bad_frame_gets_one_nak_and_is_not_delivered(bad: bytes, why: str) -> None:
    async with agent_and_peer() as (link, peer, seen):
        await peer.write(bad)
        await seen.wait_len(1)
        assert bytes(seen.data) == bytes([NAK]), why
        await peer.write(encode_frame(msg("good")))
        await seen.wait_len(2)
        assert await wait_receive(link) == msg("good")  # the bad one never came out
        assert bytes(seen.data) == bytes([NAK, ACK])
        assert (link.counters.rejected, link.counters.naks_sent) == (1, 1)


async def test_oversize_gets_one_nak_then_the_link_serves_the_next_frame() -> None:
    async with agent_and_peer() as (link, peer, seen):
        huge = b"a" * (MAX_PAYLOAD + 1000)
        await peer.write(b"\x02" + huge + bytes([0x03, lrc(huge)]))
        await seen.wait_len(1)
        await peer.write(encode_frame(msg("next")))
        assert await wait_receive(link) == msg("next")
        await seen.wait_len(2)
        assert bytes(seen.data) == bytes([NAK, ACK])
        assert link.decoder.buffered == 0


async def test_enq_is_answered_and_eot_and_garbage_are_not() -> None:
    async with agent_and_peer() as (link, peer, seen):
        await peer.write(bytes([EOT]) + b"noise\x00\xff\x03\x7f")
        await peer.write(bytes([ENQ]))
        await seen.wait_len(1)
        await peer.write(bytes([ENQ]))
        await seen.wait_len(2)
        assert bytes(seen.data) == bytes([ACK, ACK])
        assert link.counters.enq_received == 2
        assert link.counters.stray_controls == 0


async def test_stray_ack_and_nak_are_ignored() -> None:
    async with agent_and_peer() as (link, peer, seen):
        await peer.write(bytes([ACK, NAK, ENQ]))
        await seen.wait_len(1)
        assert bytes(seen.data) == bytes([ACK])  # only the ENQ got an answer
        assert link.counters.stray_controls == 2


async def test_partial_frame_dropped_after_the_gap_without_answer() -> None:
    clock = FakeClock()
    slow = LinkTimings(ack_timeout_s=0.05, retries=3, frame_gap_s=0.5)
    async with agent_and_peer(timings=slow, clock=clock) as (link, peer, seen):
        await peer.write(b"\x02" + msg("lost")[:10])
        await agent_side(link).drained.wait()  # the reader has taken it, at the old time
        clock.now += 0.5  # R5: 500 ms of silence, by the link's clock
        await peer.write(msg("lost")[10:] + b"\x03" + bytes([ENQ]))
        await seen.wait_len(1)
        # The tail of the dropped frame was noise outside a frame; only the ENQ answered.
        assert bytes(seen.data) == bytes([ACK])
        assert link.counters.partial_dropped == 1
        assert link.counters.naks_sent == 0


async def test_partial_frame_under_the_gap_survives() -> None:
    clock = FakeClock()
    slow = LinkTimings(ack_timeout_s=0.05, retries=3, frame_gap_s=0.5)
    async with agent_and_peer(timings=slow, clock=clock) as (link, peer, _seen):
        frame = encode_frame(msg("slow"))
        for byte in frame:
            clock.now += 0.4
            await peer.write(bytes([byte]))
            await agent_side(link).drained.wait()  # one byte per read, 400 ms apart
        assert await wait_receive(link) == msg("slow")
        assert link.counters.partial_dropped == 0


async def test_duplicate_id_is_acked_again_but_not_delivered_again() -> None:
    async with agent_and_peer() as (link, peer, seen):
        frame = encode_frame(msg("dup"))
        await peer.write(frame)
        await seen.wait_len(1)
        await peer.write(frame)  # the register did not see our ACK and repeats (R7)
        await seen.wait_len(2)
        await peer.write(encode_frame(msg("next")))
        await seen.wait_len(3)
        assert bytes(seen.data) == bytes([ACK, ACK, ACK])
        assert await wait_receive(link) == msg("dup")
        assert await wait_receive(link) == msg("next")
        assert link.counters.duplicates == 1
        assert link.queued == 0


async def test_r7_remembers_exactly_the_last_32_ids() -> None:
    async with agent_and_peer() as (link, peer, seen):
        for i in range(33):
            await peer.write(encode_frame(msg(f"m{i}")))
        await seen.wait_len(33)
        for i in range(33):
            assert await wait_receive(link) == msg(f"m{i}")
        # m1..m32 are the last 32: duplicates. m0 has fallen out: delivered again.
        await peer.write(b"".join(encode_frame(msg(i)) for i in ("m32", "m1", "m0")))
        await seen.wait_len(36)
        assert bytes(seen.data) == bytes([ACK]) * 36
        assert await wait_receive(link) == msg("m0")
        assert link.counters.duplicates == 2
        assert link.queued == 0


async def test_payload_without_id_is_never_taken_for_a_duplicate() -> None:
    async with agent_and_peer() as (link, peer, seen):
        frame = encode_frame(b"not json")
        await peer.write(frame + frame)
        await seen.wait_len(2)
        assert await wait_receive(link) == b"not json"
        assert await wait_receive(link) == b"not json"


async def test_id_of_that_raises_does_not_stop_the_link() -> None:
    def broken(payload: bytes) -> str | None:
        raise ValueError("bug in id_of")

    async with agent_and_peer(id_of=broken) as (link, peer, seen):
        await peer.write(encode_frame(msg("a")))
        assert await wait_receive(link) == msg("a")
        assert bytes(seen.data) == bytes([ACK])


async def test_a_full_receive_queue_naks_and_the_repeat_gets_through() -> None:
    async with agent_and_peer(receive_queue_max=4) as (link, peer, seen):
        for i in range(6):
            await peer.write(encode_frame(msg(f"q{i}")))
        await seen.wait_len(6)
        assert bytes(seen.data) == bytes([ACK] * 4 + [NAK] * 2)
        assert link.queued == 4
        assert link.counters.queue_full == 2
        for i in range(4):
            assert await wait_receive(link) == msg(f"q{i}")
        await peer.write(encode_frame(msg("q4")))  # S2: the register repeats the NAKed frame
        assert await wait_receive(link) == msg("q4")
        assert bytes(seen.data)[-1] == ACK


async def test_burst_of_10000_frames_gets_the_right_replies_and_stays_bounded() -> None:
    n = 10_000
    cap = 64
    # Frames straddle 4 KiB reads; on a starved CPU two reads can be more than the
    # short FAST gap apart, which R5 would rightly call a silence. Not this test's point.
    timings = LinkTimings(ack_timeout_s=0.05, frame_gap_s=5.0)
    async with agent_and_peer(timings, receive_queue_max=cap) as (link, peer, seen):
        frames = []
        expected = bytearray()
        for i in range(n):
            body = msg(f"b{i}")
            if i % 7 == 3:
                frames.append(b"\x02" + body + bytes([0x03, lrc(body) ^ 0x20]))  # bad LRC
                expected.append(NAK)
            else:
                frames.append(encode_frame(body))
                expected.append(ACK)
        got: list[bytes] = []
        peak = 0

        async def consume() -> None:
            nonlocal peak
            while len(got) < expected.count(ACK):
                peak = max(peak, link.queued)
                got.append(await link.receive())

        consumer = asyncio.create_task(consume())
        await peer.write(b"".join(frames))  # all at once: the reader takes 4 KiB per read
        await asyncio.wait_for(consumer, 30)
        await seen.wait_len(n, timeout_s=30)
        assert bytes(seen.data) == bytes(expected)  # one reply per frame, in order
        assert got == [msg(f"b{i}") for i in range(n) if i % 7 != 3]
        assert peak <= cap
        assert link.decoder.buffered == 0
        c = link.counters
        assert (c.frames_in, c.rejected, c.queue_full) == (expected.count(ACK),
                                                           expected.count(NAK), 0)


# -- sending: S1–S3 --------------------------------------------------------------------


async def test_send_completes_on_ack() -> None:
    async with agent_and_peer() as (link, peer, seen):
        payload = msg("s1")
        sending = asyncio.create_task(link.send(payload))
        await seen.wait_for(lambda d: d == encode_frame(payload))
        await peer.write(bytes([ACK]))
        await asyncio.wait_for(sending, 5)
        assert (link.counters.frames_out, link.counters.retransmissions) == (1, 0)


async def test_nak_makes_the_same_bytes_go_again_at_once() -> None:
    async with agent_and_peer(timings=LinkTimings(ack_timeout_s=5.0)) as (link, peer, seen):
        frame = encode_frame(msg("s2"))
        sending = asyncio.create_task(link.send(msg("s2")))
        await seen.wait_for(lambda d: d == frame)
        await peer.write(bytes([NAK]))
        # With a 5 s ack timeout, only the NAK can explain a second copy this soon.
        await seen.wait_for(lambda d: d == frame * 2, timeout_s=2.0)
        await peer.write(bytes([ACK]))
        await asyncio.wait_for(sending, 5)
        c = link.counters
        assert (c.frames_out, c.retransmissions, c.naks_received) == (2, 1, 1)


async def test_undelivered_after_four_sends_then_up_on_the_next_byte() -> None:
    async with agent_and_peer() as (link, peer, seen):
        payload = msg("lost")
        frame = encode_frame(payload)
        with pytest.raises(UndeliveredError) as info:
            await asyncio.wait_for(link.send(payload), 5)
        assert info.value.payload == payload
        await seen.wait_len(4 * len(frame))
        assert bytes(seen.data) == frame * 4  # exactly 4 sends, identical bytes
        c = link.counters
        assert (c.frames_out, c.retransmissions, c.undelivered) == (4, 3, 1)
        assert link.down
        waiting = asyncio.create_task(link.wait_up())
        await asyncio.sleep(0)
        assert not waiting.done()
        await peer.write(bytes([EOT]))  # any byte from the register
        await asyncio.wait_for(waiting, 5)
        assert not link.down


async def test_retries_zero_means_one_send() -> None:
    timings = LinkTimings(ack_timeout_s=0.02, retries=0)
    async with agent_and_peer(timings=timings) as (link, _peer, _seen):
        with pytest.raises(UndeliveredError):
            await link.send(msg("once"))
        assert link.counters.frames_out == 1


async def test_write_refused_while_down_counts_as_a_send_and_a_replug_recovers() -> None:
    agent_end, register_end = pipe_pair()
    async with link_on(agent_end) as agent, link_on(register_end, name="register") as register:
        agent_end.set_down()
        sending = asyncio.create_task(agent.send(msg("after-replug")))
        await asyncio.wait_for(agent_end.write_failed.wait(), 5)
        agent_end.set_up()  # the adapter is back; the next attempt gets through
        await asyncio.wait_for(sending, 5)
        assert await wait_receive(register) == msg("after-replug")
        assert agent.counters.write_failures >= 1
        assert agent.counters.retransmissions >= 1


async def test_write_refused_on_every_attempt_is_undelivered() -> None:
    agent_end, _peer = pipe_pair()
    async with link_on(agent_end) as link:
        agent_end.set_down()
        with pytest.raises(UndeliveredError):
            await asyncio.wait_for(link.send(msg("x")), 5)
        assert link.counters.write_failures == 4
        assert link.counters.frames_out == 0
        assert link.down


async def test_stop_and_wait_one_frame_outstanding_for_concurrent_senders() -> None:
    async with agent_and_peer(timings=LinkTimings(ack_timeout_s=5.0)) as (link, peer, seen):
        first, second = encode_frame(msg("c1")), encode_frame(msg("c2"))
        t1 = asyncio.create_task(link.send(msg("c1")))
        t2 = asyncio.create_task(link.send(msg("c2")))
        await seen.wait_for(lambda d: d == first)
        for _ in range(5):
            await asyncio.sleep(0)  # give the second sender every chance to jump in
        assert bytes(seen.data) == first
        await peer.write(bytes([ACK]))
        await asyncio.wait_for(t1, 5)
        await seen.wait_for(lambda d: d == first + second)
        await peer.write(bytes([ACK]))
        await asyncio.wait_for(t2, 5)


async def test_peer_frames_are_acked_while_we_wait_for_our_ack() -> None:
    async with agent_and_peer(timings=LinkTimings(ack_timeout_s=5.0)) as (link, peer, seen):
        ours = encode_frame(msg("ours"))
        sending = asyncio.create_task(link.send(msg("ours")))
        await seen.wait_for(lambda d: d == ours)
        await peer.write(encode_frame(msg("theirs")))
        await seen.wait_for(lambda d: d == ours + bytes([ACK]))
        assert await wait_receive(link) == msg("theirs")
        assert not sending.done()
        await peer.write(bytes([ACK]))
        await asyncio.wait_for(sending, 5)


async def test_invalid_payload_is_refused_before_anything_is_sent() -> None:
    async with agent_and_peer() as (link, _peer, seen):
        with pytest.raises(LinkError):
            await link.send(b"caf\xc3\xa9")
        assert link.counters.bytes_out == 0
        assert seen.data == b""


# -- two links talking -------------------------------------------------------------------


async def test_lost_ack_means_retransmission_and_duplicate_suppression() -> None:
    register_end, agent_end = pipe_pair()
    agent_end.tap = drop_first(ACK)
    async with link_on(register_end, name="register") as register, link_on(agent_end) as agent:
        await asyncio.wait_for(register.send(msg("sale-1")), 5)
        await asyncio.wait_for(register.send(msg("sale-2")), 5)
        assert await wait_receive(agent) == msg("sale-1")
        assert await wait_receive(agent) == msg("sale-2")  # sale-1 came out once only
        assert register.counters.retransmissions == 1
        assert agent.counters.duplicates == 1
        assert agent.counters.frames_in == 3


async def test_check_measures_the_enq_round_trip() -> None:
    a_end, b_end = pipe_pair()
    async with link_on(a_end, name="a") as a, link_on(b_end, name="b"):
        rtt = await a.check(timeout_s=5.0)
        assert 0.0 <= rtt < 5.0


async def test_check_times_out_against_a_silent_peer() -> None:
    async with agent_and_peer() as (link, _peer, seen):
        with pytest.raises(LinkError, match="no answer"):
            await link.check(timeout_s=0.02)
        assert bytes(seen.data) == bytes([ENQ])


async def test_check_answered_nak_is_an_error() -> None:
    async with agent_and_peer() as (link, peer, seen):
        checking = asyncio.create_task(link.check(timeout_s=5.0))
        await seen.wait_len(1)
        await peer.write(bytes([NAK]))
        with pytest.raises(LinkError, match="NAK"):
            await asyncio.wait_for(checking, 5)


# -- lifecycle -----------------------------------------------------------------------------


async def test_stop_is_idempotent_and_wakes_everyone() -> None:
    agent_end, _peer = pipe_pair()
    link = Link(agent_end, LinkTimings(ack_timeout_s=5.0), name="x")
    await link.start()
    receiving = asyncio.create_task(link.receive())
    sending = asyncio.create_task(link.send(msg("never")))
    await asyncio.sleep(0)
    await link.stop()
    await link.stop()
    with pytest.raises(LinkClosedError):
        await asyncio.wait_for(receiving, 5)
    with pytest.raises(LinkClosedError):
        await asyncio.wait_for(sending, 5)
    with pytest.raises(LinkClosedError):
        await link.start()
    with pytest.raises(LinkClosedError):
        await link.wait_up()


async def test_send_before_start_is_an_error() -> None:
    agent_end, _peer = pipe_pair()
    link = Link(agent_end, FAST)
    with pytest.raises(LinkError, match="not started"):
        await link.send(msg("early"))
    with pytest.raises(LinkError, match="not started"):
        await link.check()
    await link.stop()


async def test_stop_wakes_a_send_paused_on_a_down_pipe_and_a_down_waiter() -> None:
    agent_end, _peer = pipe_pair()
    link = Link(agent_end, LinkTimings(ack_timeout_s=30.0, retries=0), name="x")
    await link.start()
    agent_end.set_down()
    sending = asyncio.create_task(link.send(msg("x")))
    await asyncio.wait_for(agent_end.write_failed.wait(), 5)
    await link.stop()  # well before the 30 s pause would end
    with pytest.raises(LinkClosedError):
        await asyncio.wait_for(sending, 5)


async def test_wait_up_raises_when_the_link_stops_while_down() -> None:
    agent_end, _peer = pipe_pair()
    async with link_on(agent_end, LinkTimings(ack_timeout_s=0.01, retries=0)) as link:
        with pytest.raises(UndeliveredError):
            await link.send(msg("x"))
        waiting = asyncio.create_task(link.wait_up())
        await asyncio.sleep(0)
        await link.stop()
        with pytest.raises(LinkClosedError):
            await asyncio.wait_for(waiting, 5)


async def test_transport_closed_under_the_link_closes_it() -> None:
    agent_end, _peer = pipe_pair()
    async with link_on(agent_end) as link:
        receiving = asyncio.create_task(link.receive())
        await agent_end.close()
        with pytest.raises(LinkClosedError):
            await asyncio.wait_for(receiving, 5)
        assert link.closed


async def test_frames_are_hex_dumped_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.link.layer")
    async with agent_and_peer(name="till-7") as (link, peer, _seen):
        await peer.write(encode_frame(b"hi"))
        await wait_receive(link)
    text = caplog.text
    assert "till-7" in text
    assert "68 69" in text  # the payload in
    assert "out: 06" in text  # our ACK

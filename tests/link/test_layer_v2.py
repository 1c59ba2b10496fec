"""Link layer v2 over in-memory pipes (protocol §6 V1–V4, protocol=1|2|auto), byte for byte.

The test plays the register on the far end; it waits on bytes and events, never on sleeps.
"""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import UndeliveredError
from agent.link.codec import ACK, ENQ, NAK, encode_answer, encode_frame, encode_frame_v2
from agent.link.timings import LinkProtocol, LinkTimings

from .pipes import ByteWatcher, MemoryTransport, pipe_pair
from .test_layer import agent_and_peer, link_on, msg, wait_receive

ACK_0 = bytes.fromhex("06 30 38 31 46 41")  # §6: ACK 0 81FA
NAK_UNREADABLE = bytes.fromhex("15 3f 32 36 33 35")  # §6: NAK ? 2635
V2 = LinkProtocol.V2
V1 = LinkProtocol.V1


class Peer:
    """The register end: writes bytes, and reads what the link writes, frame by frame."""

    def __init__(self, end: MemoryTransport, seen: ByteWatcher) -> None:
        self.end = end
        self.seen = seen
        self.taken = 0

    async def write(self, data: bytes) -> None:
        await self.end.write(data)

    async def next_bytes(self, n: int) -> bytes:
        await self.seen.wait_len(self.taken + n)
        out = bytes(self.seen.data[self.taken : self.taken + n])
        self.taken += n
        return out

    def rest(self) -> bytes:
        return bytes(self.seen.data[self.taken :])


# -- receiving (V1, V2, V4) ---------------------------------------------------------------

async def test_spec_frame_is_answered_with_the_spec_ack_then_delivered() -> None:
    async with agent_and_peer() as (link, peer, seen):
        await peer.write(encode_frame_v2(msg("p1"), 0))
        assert await wait_receive(link) == msg("p1")
        await seen.wait_len(6)
        assert bytes(seen.data) == ACK_0
        assert link.link_version == 2  # auto: the peer spoke v2, so does the link now


async def test_bad_crc_is_answered_nak_unreadable() -> None:
    async with agent_and_peer() as (link, peer, seen):
        good = encode_frame_v2(msg("p1"), 3)
        await peer.write(good[:-1] + (b"0" if good[-1:] != b"0" else b"1"))
        await seen.wait_len(6)
        assert bytes(seen.data) == NAK_UNREADABLE
        await peer.write(good)
        assert await wait_receive(link) == msg("p1")
        await seen.wait_len(12)
        assert bytes(seen.data)[6:] == encode_answer(ACK, 3)
        assert link.counters.rejected == 1
        assert link.link_version == 2  # only the valid frame counts


async def test_enq_gets_a_bare_ack_on_a_v2_link() -> None:
    async with agent_and_peer(protocol=V2) as (link, peer, seen):
        await peer.write(bytes([ENQ]))
        await seen.wait_len(1)
        assert bytes(seen.data) == bytes([ACK])
        assert link.counters.enq_received == 1


async def test_repeat_with_same_seq_and_crc_is_acked_again_not_handed_on() -> None:
    # No R7 here (id_of finds no id): the seq and crc alone spot the repeat (V1).
    async with agent_and_peer(id_of=lambda p: None) as (link, peer, seen):
        frame = encode_frame_v2(msg("r1"), 5)
        await peer.write(frame)
        await seen.wait_len(6)
        await peer.write(frame)  # our ACK was lost: the register repeats the same bytes
        await seen.wait_len(12)
        await peer.write(encode_frame_v2(msg("r2"), 6))
        await seen.wait_len(18)
        assert bytes(seen.data) == (encode_answer(ACK, 5) * 2) + encode_answer(ACK, 6)
        assert await wait_receive(link) == msg("r1")
        assert await wait_receive(link) == msg("r2")
        assert link.queued == 0
        assert link.counters.duplicates == 1


async def test_same_seq_with_another_crc_is_a_new_frame() -> None:
    async with agent_and_peer(id_of=lambda p: None) as (link, peer, seen):
        await peer.write(encode_frame_v2(msg("a"), 0))
        await peer.write(encode_frame_v2(msg("b"), 0))
        assert await wait_receive(link) == msg("a")
        assert await wait_receive(link) == msg("b")
        await seen.wait_len(12)
        assert bytes(seen.data) == ACK_0 * 2


async def test_r7_still_applies_to_v2() -> None:
    async with agent_and_peer() as (link, peer, seen):
        await peer.write(encode_frame_v2(msg("same"), 1))
        await peer.write(encode_frame_v2(msg("same"), 2))  # new seq, old id
        await peer.write(encode_frame_v2(msg("next"), 3))
        assert await wait_receive(link) == msg("same")
        assert await wait_receive(link) == msg("next")
        await seen.wait_len(18)
        assert bytes(seen.data) == b"".join(encode_answer(ACK, s) for s in (1, 2, 3))
        assert link.counters.duplicates == 1


async def test_queue_full_is_answered_nak_with_the_frames_seq() -> None:
    async with agent_and_peer(receive_queue_max=1) as (link, peer, seen):
        await peer.write(encode_frame_v2(msg("a"), 0))
        await seen.wait_len(6)
        await peer.write(encode_frame_v2(msg("b"), 1))
        await seen.wait_len(12)
        assert bytes(seen.data)[6:] == encode_answer(NAK, 1)
        assert link.counters.queue_full == 1


async def test_protocol_2_answers_a_v1_frame_with_a_bare_nak() -> None:
    async with agent_and_peer(protocol=V2) as (link, peer, seen):
        await peer.write(encode_frame(msg("old")))
        await seen.wait_len(1)
        assert bytes(seen.data) == bytes([NAK])
        await peer.write(encode_frame_v2(msg("new"), 0))
        assert await wait_receive(link) == msg("new")  # the v1 one never came out
        assert link.counters.wrong_version == 1


async def test_protocol_1_ignores_a_v2_frame() -> None:
    async with agent_and_peer(protocol=V1) as (link, peer, seen):
        await peer.write(encode_frame_v2(msg("new"), 0) + bytes([ENQ]))
        await seen.wait_len(1)
        assert bytes(seen.data) == bytes([ACK])  # the ENQ's answer, nothing for the frame
        await peer.write(encode_frame(msg("old")))
        assert await wait_receive(link) == msg("old")
        assert link.queued == 0
        assert link.link_version == 1


# -- versions: auto follows the last valid frame -----------------------------------------

async def test_auto_sends_v1_until_the_first_v2_frame_then_follows_each_frame() -> None:
    async with agent_and_peer() as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        assert link.link_version == 1
        send = asyncio.create_task(link.send(msg("s1")))
        assert await peer.next_bytes(len(encode_frame(msg("s1")))) == encode_frame(msg("s1"))
        await peer.write(bytes([ACK]))
        await send
        # The register speaks v2: answered in v2, and the link sends v2 from now on.
        await peer.write(encode_frame_v2(msg("r1"), 0))
        assert await peer.next_bytes(6) == ACK_0
        await wait_receive(link)
        assert link.link_version == 2
        send = asyncio.create_task(link.send(msg("s2")))
        assert await peer.next_bytes(len(encode_frame_v2(msg("s2"), 0))) == encode_frame_v2(
            msg("s2"), 0)
        await peer.write(ACK_0)
        await send
        # A v1 frame again: answered bare, and v1 it is.
        await peer.write(encode_frame(msg("r2")))
        assert await peer.next_bytes(1) == bytes([ACK])
        await wait_receive(link)
        assert link.link_version == 1


async def test_protocol_2_sends_v2_from_the_first_frame() -> None:
    async with agent_and_peer(protocol=V2) as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        assert link.link_version == 2
        send = asyncio.create_task(link.send(msg("p1")))
        assert await peer.next_bytes(len(encode_frame_v2(msg("p1"), 0))) == encode_frame_v2(
            msg("p1"), 0)
        await peer.write(ACK_0)
        await send


# -- sending (V3) ----------------------------------------------------------------------

SLOW_ACK = LinkTimings(ack_timeout_s=5.0, retries=3, frame_gap_s=0.05)


async def test_bare_ack_never_acknowledges_a_v2_frame() -> None:
    async with agent_and_peer(SLOW_ACK, protocol=V2) as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        frame = encode_frame_v2(msg("p1"), 0)
        send = asyncio.create_task(link.send(msg("p1")))
        assert await peer.next_bytes(len(frame)) == frame
        await peer.write(bytes([ACK]))  # v1's answer, or an STX flipped into ACK
        await peer.write(bytes([ENQ]))  # a marker: once it is answered, the ACK was read
        assert await peer.next_bytes(1) == bytes([ACK])
        assert not send.done()
        await peer.write(encode_answer(ACK, 1))  # the wrong seq
        await peer.write(bytes([ACK]) + b"0" + b"81FB")  # malformed: crc off by one
        await peer.write(bytes([ENQ]))
        assert await peer.next_bytes(1) == bytes([ACK])
        assert not send.done()
        await peer.write(ACK_0)
        await asyncio.wait_for(send, 5)
        c = link.counters
        assert (c.ignored_answers, c.malformed_answers, c.retransmissions) == (1, 1, 0)


async def test_late_ack_for_an_earlier_frame_never_acknowledges_the_next() -> None:
    # Frame 0 is given up on (no answer to any of its sends); its ACK comes late, after
    # frame 1 was written. Under v1 that ACK would mark frame 1 delivered.
    timings = LinkTimings(ack_timeout_s=0.05, retries=1, frame_gap_s=0.05)
    async with agent_and_peer(timings, protocol=V2) as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        first = encode_frame_v2(msg("p0"), 0)
        with pytest.raises(UndeliveredError):
            await link.send(msg("p0"))
        assert await peer.next_bytes(2 * len(first)) == first * 2  # a repeat keeps its seq
        second = encode_frame_v2(msg("p1"), 1)
        send = asyncio.create_task(link.send(msg("p1")))
        assert await peer.next_bytes(len(second)) == second
        await peer.write(ACK_0)  # the late ACK of frame 0
        # Frame 1 is not taken as delivered: its send repeats it, then gives up.
        assert await peer.next_bytes(len(second)) == second
        with pytest.raises(UndeliveredError):
            await send
        assert link.counters.ignored_answers == 1


async def test_nak_with_its_seq_or_unreadable_repeats_nak_for_another_seq_does_not() -> None:
    async with agent_and_peer(SLOW_ACK, protocol=V2) as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        frame = encode_frame_v2(msg("p1"), 0)
        send = asyncio.create_task(link.send(msg("p1")))
        assert await peer.next_bytes(len(frame)) == frame
        await peer.write(encode_answer(NAK, 0))
        assert await peer.next_bytes(len(frame)) == frame
        await peer.write(NAK_UNREADABLE)
        assert await peer.next_bytes(len(frame)) == frame
        await peer.write(encode_answer(NAK, 7) + bytes([ENQ]))
        assert await peer.next_bytes(1) == bytes([ACK])  # the ENQ; no repeat for NAK 7
        await peer.write(ACK_0)
        await asyncio.wait_for(send, 5)
        assert link.counters.retransmissions == 2
        assert link.counters.naks_received == 2


async def test_seq_counts_each_new_frame_and_wraps_after_f() -> None:
    async with agent_and_peer(protocol=V2) as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        for n in range(18):
            frame = encode_frame_v2(msg(f"m{n}"), n % 16)
            send = asyncio.create_task(link.send(msg(f"m{n}")))
            assert await peer.next_bytes(len(frame)) == frame
            await peer.write(encode_answer(ACK, n % 16))
            await send


async def test_check_still_works_on_a_v2_link() -> None:
    async with agent_and_peer(protocol=V2) as (link, peer_end, seen):
        peer = Peer(peer_end, seen)
        check = asyncio.create_task(link.check())
        assert await peer.next_bytes(1) == bytes([ENQ])
        await peer.write(bytes([ACK]))
        assert await check >= 0


async def test_two_v2_links_talk() -> None:
    a_end, b_end = pipe_pair()
    async with link_on(a_end, protocol=V2) as a, link_on(b_end, protocol=V2) as b:
        for n in range(20):
            await asyncio.wait_for(a.send(msg(f"a{n}")), 5)
            await asyncio.wait_for(b.send(msg(f"b{n}")), 5)
            assert await wait_receive(b) == msg(f"a{n}")
            assert await wait_receive(a) == msg(f"b{n}")
        assert a.counters.retransmissions == b.counters.retransmissions == 0


async def test_auto_link_meets_a_v2_link() -> None:
    # The auto side (an agent lane) starts in v1; the v2 side NAKs that until the auto
    # side has heard v2 from it; from then on both speak v2.
    a_end, b_end = pipe_pair()
    async with link_on(a_end) as auto, link_on(b_end, protocol=V2) as strict:
        await asyncio.wait_for(strict.send(msg("hello")), 5)
        assert await wait_receive(auto) == msg("hello")
        assert auto.link_version == 2
        await asyncio.wait_for(auto.send(msg("result")), 5)
        assert await wait_receive(strict) == msg("result")
        assert strict.counters.wrong_version == 0

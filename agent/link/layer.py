"""The link state machine of one register link (protocol §2, link v2 of §6): ACK/NAK,
stop-and-wait, R7.

One `Link` sits on one `Transport`. A reader task turns incoming bytes into
events (agent.link.codec) and answers them at once; `send()` frames a payload and
waits for its answer; `receive()` hands on accepted payloads.

Lifecycle: the caller owns the transport. It opens it (before or after
`start()`; a transport's read() simply waits while the pipe is down) and closes
it after `stop()`. The link never opens, closes or reconnects the pipe.

Ordering rules:

- R1: a good frame is ACKed *before* its payload is queued for `receive()`, from
  the reader task, which never waits for the consumer. The queue is capped at
  `receive_queue_max` payloads (RECEIVE_QUEUE_MAX, at most 4 KiB each): a good
  frame arriving while the queue is full is answered NAK (not ACK, so it is not
  lost: the sender repeats it per S2) and its id is not remembered for R7. A
  consumer that keeps up never sees this; a stalled one cannot make the link
  grow without bound.
- R7: the ids of the last 32 accepted messages are kept; a good frame whose id
  is among them is ACKed again and not queued a second time (`duplicates`).
- S1/S2: the answer listener is installed before the frame is written, so an
  ACK racing the write is never missed. One frame (or ENQ, for `check()`) is
  outstanding at a time; concurrent `send()` callers queue on a lock in FIFO order.
  An ACK/NAK with nobody waiting is counted in `stray_controls` and ignored. (v1: a
  late ACK for a frame already given up on, arriving after the next frame was
  written, is taken for that frame's ACK: a bare ACK names no frame.)
- V3: a v2 frame is acknowledged only by `ACK seq crc` with its own seq; a bare
  ACK (which is also the first byte of every v2 answer), an answer for another
  seq, or a malformed one is ignored, so that late ACK cannot acknowledge it.
  `NAK` with its seq or `?` makes it repeat. A repeat keeps its bytes (and seq).
- Versions (§6): `protocol=1` decodes v1 only (a v2 frame is ignored: SOH is noise
  to a v1 decoder); `protocol=2` answers a v1 frame with a bare NAK and sends v2;
  `auto` answers each frame in its own version and sends new frames in the
  version of the last valid frame received (v1 until the first). The version of
  a message is fixed when its first send starts; a switch affects the next one.
- V1: a v2 frame with the seq and crc of the last v2 frame ACKed on this link is
  a repeat (our ACK was lost): ACKed again, not handed on (`duplicates`).
- A write that raises TransportDownError counts as a failed send; the next
  attempt comes ack_timeout_s later, as after a missing ACK, so a replugged
  adapter gets the remaining attempts.
- S3: after the last failed send `send()` raises UndeliveredError and `down`
  is True until any byte arrives from the peer; `wait_up()` waits for that.
- Every write (frame, ACK, NAK) is one `transport.write` call under a write lock,
  so an ACK never lands inside a frame we are sending.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent.errors import LinkError, UndeliveredError
from agent.link.codec import (
    ACK,
    ENQ,
    NAK,
    SEQ_COUNT,
    AnswerMalformed,
    AnswerReceived,
    ControlReceived,
    Event,
    FrameDecoder,
    FrameReceived,
    FrameRejected,
    PartialDropped,
    check_payload,
    encode_answer,
    encode_frame,
    encode_frame_v2,
)
from agent.link.timings import ACK_DEADLINE_S, LinkProtocol, LinkTimings
from drivers.base import Transport
from drivers.errors import TransportClosedError, TransportDownError

__all__ = [
    "ACK_DEADLINE_S",
    "CHECK_TIMEOUT_S",
    "RECEIVE_QUEUE_MAX",
    "RECENT_IDS",
    "Link",
    "LinkClosedError",
    "LinkCounters",
]

_log = logging.getLogger(__name__)

RECENT_IDS: Final = 32  # R7: ids of the last 32 accepted messages
RECEIVE_QUEUE_MAX: Final = 1024  # accepted payloads waiting for receive(); beyond: NAK
CHECK_TIMEOUT_S: Final = 1.0  # check(): wait this long for the ACK to our ENQ

_ACK_BYTE: Final = bytes((ACK,))
_NAK_BYTE: Final = bytes((NAK,))
_ENQ_BYTE: Final = bytes((ENQ,))
# V2: every rejected v2 frame is answered `NAK ?`, even when its seq looks readable:
# a frame that failed its CRC may carry a damaged seq.
_NAK_UNREADABLE: Final = encode_answer(NAK, None)


class LinkClosedError(LinkError):
    """The link was stopped, or its transport closed; nothing more is sent or received."""


@dataclass
class LinkCounters:
    """What the diagnostics page shows for a link. Mutated only by its `Link`."""

    frames_in: int = 0  # good frames received (duplicates and queue-full NAKs included)
    frames_out: int = 0  # frames written, retransmissions included
    bytes_in: int = 0
    bytes_out: int = 0
    naks_sent: int = 0  # R2/R3 rejections and queue-full refusals
    naks_received: int = 0
    retransmissions: int = 0  # S2: sends after the first one of a message
    undelivered: int = 0  # S3
    duplicates: int = 0  # R7: good frames ACKed again and not handed on
    rejected: int = 0  # R2/R3/too short: frames answered NAK
    partial_dropped: int = 0  # R5
    queue_full: int = 0  # good frames NAKed because receive() fell behind
    enq_received: int = 0  # R6 link checks answered
    stray_controls: int = 0  # ACK/NAK with no frame of ours waiting for an answer
    write_failures: int = 0  # writes refused by a transport that was down
    wrong_version: int = 0  # v1 frames NAKed under protocol=2
    ignored_answers: int = 0  # V3: v2 answers for another seq while a v2 frame waited
    malformed_answers: int = 0  # V3: ACK/NAK followed by a tail that is not a valid answer

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class _Hex:
    """Hex dump computed only if the DEBUG record is emitted."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __str__(self) -> str:
        return self._data.hex(" ")


class Link:
    def __init__(
        self,
        transport: Transport,
        timings: LinkTimings = LinkTimings(),  # noqa: B008  (frozen dataclass: safe default)
        *,
        name: str = "",
        id_of: Callable[[bytes], str | None] = lambda p: None,
        clock: Callable[[], float] = time.monotonic,
        receive_queue_max: int = RECEIVE_QUEUE_MAX,
        protocol: LinkProtocol = LinkProtocol.AUTO,
    ) -> None:
        if timings.retries < 0 or timings.ack_timeout_s <= 0 or receive_queue_max < 1:
            raise ValueError("link timings and queue size must be positive")
        self.transport = transport
        self.timings = timings
        self.name = name
        self.counters = LinkCounters()
        self._id_of = id_of
        self._clock = clock
        self._queue_max = receive_queue_max
        self.protocol = protocol
        self._decoder = FrameDecoder(timings.frame_gap_s, v2=protocol is not LinkProtocol.V1)
        # The version new frames are sent in (§6): fixed unless protocol=auto.
        self._send_version = 2 if protocol is LinkProtocol.V2 else 1
        self._next_seq = 0  # §6: our first v2 frame is '0'
        self._last_v2: tuple[int, int] | None = None  # V1: (seq, crc) of the last v2 frame ACKed
        self._recent: collections.deque[str] = collections.deque(maxlen=RECENT_IDS)
        self._inbox: collections.deque[bytes] = collections.deque()
        self._inbox_changed = asyncio.Event()
        self._send_lock = asyncio.Lock()  # one frame (or ENQ) outstanding
        self._write_lock = asyncio.Lock()  # one write at a time: no ACK inside a frame
        self._answer: asyncio.Future[int] | None = None  # ACK/NAK for what we sent
        self._awaiting_seq: int | None = None  # V3: seq of the v2 frame awaiting its answer
        self._up = asyncio.Event()
        self._up.set()
        self._reader: asyncio.Task[None] | None = None
        self._gap_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._stopped = asyncio.Event()  # set with _closed; wakes a send paused on a down pipe
        self._full_logged = False  # a queue-full episode has been logged at WARNING
        # Diagnostics (agent/capture.py): called with ("in", bytes read) and ("out", bytes
        # written) as they pass; it must not block or raise.
        self.observer: Callable[[str, bytes], None] | None = None

    # -- state ---------------------------------------------------------------

    @property
    def down(self) -> bool:
        """S3: True after an undelivered message until the next byte from the peer."""
        return not self._up.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def link_version(self) -> int:
        """The version (1 or 2) the next frame will be sent in (`link` in `pong`)."""
        return self._send_version

    @property
    def queued(self) -> int:
        """Accepted payloads waiting for `receive()` (never more than receive_queue_max)."""
        return len(self._inbox)

    @property
    def decoder(self) -> FrameDecoder:
        return self._decoder

    async def wait_up(self) -> None:
        """Return once the link is not down (at once if it is not); LinkClosedError
        if the link is or gets stopped."""
        if not self._closed:
            await self._up.wait()
        if self._closed:
            raise LinkClosedError(f"link {self.name!r} is closed")

    # -- lifecycle -----------------------------------------------------------

    def _check_started(self) -> None:
        # Without the reader nobody would see the answer: every send would time out.
        if self._reader is None and not self._closed:
            raise LinkError(f"link {self.name!r} is not started")

    async def start(self) -> None:
        """Start the reader task. The caller opens the transport (see module comment)."""
        if self._closed:
            raise LinkClosedError(f"link {self.name!r} was stopped; make a new Link")
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(
                self._read_loop(), name=f"link-reader:{self.name}"
            )

    async def stop(self) -> None:
        """Stop the reader; pending send/check/receive calls raise LinkClosedError."""
        self._shut("link stopped")
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                # Our own cancel of the reader ends here; a cancel of stop() itself
                # must still propagate.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    def _shut(self, why: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopped.set()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(LinkClosedError(f"link {self.name!r}: {why}"))
        self._inbox_changed.set()
        self._up.set()  # wake wait_up(), which then sees the link closed
        _log.debug("link %s: %s", self.name, why)

    # -- receiving -------------------------------------------------------------

    async def receive(self) -> bytes:
        """The next accepted payload (already ACKed, R7 duplicates filtered out)."""
        while not self._inbox:
            if self._closed:
                raise LinkClosedError(f"link {self.name!r} is closed")
            self._inbox_changed.clear()
            await self._inbox_changed.wait()
        return self._inbox.popleft()

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.transport.read()
                if not data:
                    continue
                self.counters.bytes_in += len(data)
                if self.observer is not None:
                    self.observer("in", data)
                if not self._up.is_set():
                    _log.info("link %s: peer is talking again; link up", self.name)
                    self._up.set()
                for event in self._decoder.feed(data, self._clock()):
                    await self._handle(event)
                    if self._inbox and isinstance(event, FrameReceived):
                        # One read may hold a hundred frames. Give the consumer a turn
                        # after each, so the queue cap bites only when it truly stalls.
                        await asyncio.sleep(0)
                self._arm_gap_timer()
                # A transport with data buffered returns without suspending; yield so
                # a flood of bytes cannot starve the consumer and the rest of the agent.
                await asyncio.sleep(0)
        except (TransportClosedError, LinkClosedError):
            self._shut("transport closed")
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("link %s: reader failed", self.name)
            self._shut("reader failed")

    async def _handle(self, event: Event) -> None:
        match event:
            case FrameReceived():
                await self._accept(event)
            case FrameRejected(reason=reason, payload=payload, version=version):
                self.counters.rejected += 1
                _log.debug("link %s: v%s frame rejected (%s), NAK: %s",
                            self.name, version, reason, _Hex(payload))
                await self._answer_peer(_NAK_UNREADABLE if version == 2 else _NAK_BYTE)
            case ControlReceived(byte=byte):
                self._on_control(byte)
                if byte == ENQ:
                    await self._answer_peer(_ACK_BYTE)  # V4: bare ACK in both versions
            case AnswerReceived():
                self._on_answer(event)
            case AnswerMalformed(control=control, data=data):
                self.counters.malformed_answers += 1
                _log.debug("link %s: malformed answer ignored: %s", self.name,
                           _Hex(bytes((control,)) + data))
            case PartialDropped(length=length):
                self.counters.partial_dropped += 1
                _log.debug("link %s: partial frame of %s bytes dropped (R5)", self.name, length)

    async def _accept(self, frame: FrameReceived) -> None:
        c = self.counters
        payload = frame.payload
        if frame.version == 2 and frame.seq is not None and frame.crc is not None:
            ack, nak = encode_answer(ACK, frame.seq), encode_answer(NAK, frame.seq)
            this_v2: tuple[int, int] | None = (frame.seq, frame.crc)
        else:
            if self.protocol is LinkProtocol.V2:
                # §6: a v2-only link answers a v1 frame with a bare NAK.
                c.wrong_version += 1
                c.rejected += 1
                _log.debug("link %s: v1 frame on a protocol=2 link, NAK: %s",
                           self.name, _Hex(payload))
                await self._answer_peer(_NAK_BYTE)
                return
            ack, nak, this_v2 = _ACK_BYTE, _NAK_BYTE, None
        if self.protocol is LinkProtocol.AUTO and self._send_version != frame.version:
            _log.info("link %s: peer speaks link v%s; sending v%s from now on",
                      self.name, frame.version, frame.version)
            self._send_version = frame.version
        c.frames_in += 1
        _log.debug("link %s: v%s frame in: %s", self.name, frame.version, _Hex(payload))
        if this_v2 is not None and this_v2 == self._last_v2:
            c.duplicates += 1
            _log.debug("link %s: repeat of frame %s, ACK again (V1)", self.name, this_v2[0])
            await self._answer_peer(ack)
            return
        try:
            msg_id = self._id_of(payload)
        except Exception:  # a bug in id_of must not stop the link; no id, no R7
            _log.exception("link %s: id_of failed", self.name)
            msg_id = None
        if msg_id is not None and msg_id in self._recent:
            c.duplicates += 1
            _log.debug("link %s: duplicate id %s, ACK again (R7)", self.name, msg_id)
            await self._answer_peer(ack)
            if this_v2 is not None:
                self._last_v2 = this_v2
            return
        if len(self._inbox) >= self._queue_max:
            c.queue_full += 1
            # Once per episode at WARNING: a stalled consumer under a flood would
            # otherwise log every frame.
            level = logging.DEBUG if self._full_logged else logging.WARNING
            self._full_logged = True
            _log.log(level, "link %s: %s payloads not yet taken; NAK", self.name,
                     len(self._inbox))
            await self._answer_peer(nak)
            return
        self._full_logged = False
        # R1: ACK first, then hand on. Only this task adds to the inbox, so the room
        # checked above is still there after the write.
        await self._answer_peer(ack)
        if this_v2 is not None:
            self._last_v2 = this_v2
        if msg_id is not None:
            self._recent.append(msg_id)
        self._inbox.append(payload)
        self._inbox_changed.set()

    def _on_control(self, byte: int) -> None:
        if byte == ENQ:
            self.counters.enq_received += 1
            return
        answer = self._answer
        if answer is not None and not answer.done():
            if self._awaiting_seq is not None:
                # V3: a bare ACK/NAK answers no v2 frame. It may be the head of an
                # `ACK seq crc`; _on_answer decides once the rest has arrived.
                return
            if byte == NAK:
                self.counters.naks_received += 1
            answer.set_result(byte)
        else:
            if byte == NAK:
                self.counters.naks_received += 1
            self.counters.stray_controls += 1
            _log.debug("link %s: %s with nothing outstanding, ignored",
                       self.name, "ACK" if byte == ACK else "NAK")

    def _on_answer(self, event: AnswerReceived) -> None:
        answer, seq = self._answer, self._awaiting_seq
        if answer is None or answer.done() or seq is None:
            return  # its head byte was already counted or taken (v1 send) by _on_control
        if event.control == ACK and event.seq == seq:
            answer.set_result(ACK)
        elif event.control == NAK and event.seq in (seq, None):
            self.counters.naks_received += 1
            answer.set_result(NAK)
        else:
            self.counters.ignored_answers += 1
            _log.debug("link %s: %s for seq %s while frame %s waits, ignored (V3)", self.name,
                       "ACK" if event.control == ACK else "NAK",
                       "?" if event.seq is None else event.seq, seq)

    async def _answer_peer(self, control: bytes) -> None:
        if control[0] == NAK:
            self.counters.naks_sent += 1
        try:
            await self._write(control)
        except TransportDownError as exc:
            # The peer will repeat its frame (S2) once the pipe is back.
            _log.debug("link %s: could not answer %s: %s", self.name, _Hex(control), exc)

    def _arm_gap_timer(self) -> None:
        # R5 without waiting for the next byte, so partial_dropped is current.
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if not self._decoder.idle:
            loop = asyncio.get_running_loop()
            self._gap_timer = loop.call_later(self.timings.frame_gap_s, self._on_gap)

    def _on_gap(self) -> None:
        self._gap_timer = None
        for event in self._decoder.expire(self._clock()):
            if isinstance(event, PartialDropped):
                self.counters.partial_dropped += 1
                _log.debug("link %s: partial frame of %s bytes dropped (R5)",
                           self.name, event.length)

    # -- sending ---------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            if self._closed:
                raise LinkClosedError(f"link {self.name!r} is closed")
            try:
                await self.transport.write(data)
            except TransportDownError:
                self.counters.write_failures += 1
                raise
            except TransportClosedError as exc:
                raise LinkClosedError(f"link {self.name!r}: transport closed") from exc
            self.counters.bytes_out += len(data)
            _log.debug("link %s: out: %s", self.name, _Hex(data))
            if self.observer is not None:
                self.observer("out", data)

    async def send(self, payload: bytes) -> None:
        """Deliver one payload (S1–S3); UndeliveredError after 1 + retries sends."""
        check_payload(payload)  # InvalidPayloadError before anything is sent
        self._check_started()
        loop = asyncio.get_running_loop()
        c = self.counters
        async with self._send_lock:
            # The version is fixed here, under the lock: every repeat sends the same bytes.
            seq: int | None = None
            if self._send_version == 2:
                seq = self._next_seq
                self._next_seq = (seq + 1) % SEQ_COUNT
                frame = encode_frame_v2(payload, seq)
            else:
                frame = encode_frame(payload)
            for attempt in range(1 + self.timings.retries):
                if self._closed:
                    raise LinkClosedError(f"link {self.name!r} is closed")
                if attempt:
                    c.retransmissions += 1
                answer: asyncio.Future[int] = loop.create_future()
                self._answer = answer  # listener before the write
                self._awaiting_seq = seq
                try:
                    try:
                        await self._write(frame)
                    except TransportDownError as exc:
                        self._answer = None  # nothing was sent, nothing to answer
                        _log.info("link %s: send %s of %s failed: %s",
                                  self.name, attempt + 1, 1 + self.timings.retries, exc)
                        await self._pause(self.timings.ack_timeout_s)
                        continue
                    c.frames_out += 1
                    try:
                        async with asyncio.timeout(self.timings.ack_timeout_s):
                            reply = await answer
                    except TimeoutError:
                        _log.debug("link %s: no answer in %ss (send %s)",
                                   self.name, self.timings.ack_timeout_s, attempt + 1)
                        continue
                finally:
                    self._answer = None
                    self._awaiting_seq = None
                if reply == ACK:
                    return
                _log.debug("link %s: NAK (send %s)", self.name, attempt + 1)
            if self._closed:
                raise LinkClosedError(f"link {self.name!r} is closed")
            c.undelivered += 1
            self._up.clear()
            _log.warning("link %s: undelivered after %s sends; link down until the peer "
                         "talks", self.name, 1 + self.timings.retries)
            raise UndeliveredError(payload)

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if the link is stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopped.wait()

    async def check(self, timeout_s: float = CHECK_TIMEOUT_S) -> float:
        """ENQ → ACK round trip in seconds (the technician's link test).

        Waits its turn behind a frame being sent; `timeout_s` counts from the ENQ.
        Raises LinkError on timeout, on a NAK, or when the ENQ cannot be written.
        """
        self._check_started()
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            if self._closed:
                raise LinkClosedError(f"link {self.name!r} is closed")
            answer: asyncio.Future[int] = loop.create_future()
            self._answer = answer
            try:
                try:
                    await self._write(_ENQ_BYTE)
                except TransportDownError as exc:
                    raise LinkError(f"link {self.name!r}: cannot send ENQ: {exc}") from exc
                started = self._clock()
                try:
                    async with asyncio.timeout(timeout_s):
                        reply = await answer
                except TimeoutError:
                    raise LinkError(
                        f"link {self.name!r}: no answer to ENQ within {timeout_s}s"
                    ) from None
                elapsed = self._clock() - started
            finally:
                self._answer = None
        if reply != ACK:
            raise LinkError(f"link {self.name!r}: ENQ answered NAK")
        return elapsed

"""A register: sends requests over a `Link` and collects the agent's replies (protocol §3).

The core of `edc-agent register`, also driven in-process by the demo and the end-to-end
tests. It prints nothing: every frame it sends or receives goes to a `transcript`
callback (the console formats it; a test records it).

Ordering rules:

- A request's listener is installed *before* its frame is written: the agent may answer
  before `Link.send` returns (our ACK wait and its reply race on the wire).
- A reply belongs to the waiting request whose id is its `re`. A `result` without `re`
  (sent by the agent on its own) belongs to a waiting sale/void/paylink/refund of the
  same `txn` and kind; an `error` without `re` to a waiting `raw` request whose id
  could not be read. Anything else is unsolicited: it is reported, and a `result` among
  it is queued for `next_result()`.
- A `result` may come before the `accepted` of its request; the request is final on
  the result, and the late `accepted` is reported as unsolicited.
- The agent sends a `result` again until its frame is ACKed, and again on its own
  after `unknown`: the link layer drops repeats of one frame (R7); a repeat in a new
  frame is reported with `again=True` once its (txn, kind, status) was seen, and is
  not queued for `next_result()` a second time.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from agent.link.layer import Link, LinkClosedError
from agent.register.codec import MessageError, decode_reply, encode, message_id
from agent.register.messages import (
    Accepted,
    Error,
    Paylink,
    Pong,
    Refund,
    Reply,
    Request,
    Result,
    Sale,
    State,
    TotalsReport,
    Void,
)

_log = logging.getLogger(__name__)

SEEN_RESULTS_MAX: Final = 1024  # (txn, kind, status) remembered for "again"
UNSOLICITED_MAX: Final = 256  # results queued for next_result(); the oldest go first

# Which replies end a request of each type (§3.1 "answered with").
FINAL_REPLIES: Final[Mapping[str, tuple[type[Reply], ...]]] = MappingProxyType({
    "sale": (Result, Error),
    "void": (Result, Error),
    "paylink": (Result, Error),
    "refund": (Result, Error),
    "resend": (Accepted, Error),
    "status": (Result, State, Error),
    "last": (Result, State, Error),
    "ping": (Pong, Error),
    "totals": (TotalsReport, Error),
})


@dataclass(frozen=True, slots=True)
class Sent:
    payload: bytes
    message: Request | None  # None for a raw payload
    link: int = 1  # the link version (§6) the frame went out in


@dataclass(frozen=True, slots=True)
class Received:
    payload: bytes
    message: Reply | None  # None when the payload breaks §3 (then `problem` says how)
    problem: MessageError | None = None
    again: bool = False  # a result whose (txn, kind, status) was already reported
    unsolicited: bool = False  # answers no request that is waiting
    link: int = 1  # the link version (§6) of the last valid frame, as the link saw it


TranscriptEvent = Sent | Received


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and what came back for it while we waited."""

    request: Request | None  # None for a raw payload
    payload: bytes
    replies: tuple[Reply, ...]
    final: Reply | None  # None: no final reply within the wait

    @property
    def timed_out(self) -> bool:
        return self.final is None


@dataclass(eq=False)
class _Pending:
    id: str | None
    final_types: tuple[type[Reply], ...]  # empty: any reply is final (raw of unknown type)
    txns: frozenset[str] = frozenset()  # a result without `re` for these belongs here
    kind: str | None = None
    replies: list[Reply] = field(default_factory=list)
    final: Reply | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, reply: Reply) -> None:
        self.replies.append(reply)
        if self.final is None and (not self.final_types or isinstance(reply, self.final_types)):
            self.final = reply
            self.done.set()


def _result_owner(message: Request) -> tuple[frozenset[str], str | None]:
    match message:
        case Sale(txn=txn) | Void(txn=txn) | Paylink(txn=txn):
            return frozenset({txn}), message.TYPE
        case Refund(txn=txn, refund_id=refund_id):
            return frozenset({txn, refund_id}), "refund"
    return frozenset(), None


def _raw_type(payload: bytes) -> str | None:
    try:
        obj = json.loads(payload.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) else None


class RegisterClient:
    """Requests and replies over one started `Link` (the caller starts and stops the link)."""

    def __init__(
        self,
        link: Link,
        *,
        transcript: Callable[[TranscriptEvent], None] | None = None,
    ) -> None:
        self.link = link
        self._transcript = transcript
        self._pending: list[_Pending] = []
        self._seen: collections.OrderedDict[tuple[str, str, str], None] = (
            collections.OrderedDict())
        self._results: collections.deque[Result] = collections.deque(maxlen=UNSOLICITED_MAX)
        self._results_changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        """True once the link stopped delivering (stopped, transport closed) or stop()."""
        return self._closed.is_set()

    async def start(self) -> None:
        if self._reader is None and not self.closed:
            self._reader = asyncio.get_running_loop().create_task(
                self._read_loop(), name=f"register-client:{self.link.name}")

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.wait([reader])
        self._close()

    async def __aenter__(self) -> RegisterClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- requests ----------------------------------------------------------------------

    async def request(self, message: Request, wait_s: float) -> Exchange:
        """Send `message`; wait up to `wait_s` for its final reply (§3.1).

        Raises UndeliveredError when the frame is not ACKed (S3) and LinkClosedError
        when the link ends while waiting. Running out of time is not an error:
        `Exchange.final` is None then.
        """
        txns, kind = _result_owner(message)
        pending = _Pending(id=message.id, final_types=FINAL_REPLIES[message.TYPE],
                           txns=txns, kind=kind)
        return await self._exchange(message, encode(message), pending, wait_s)

    async def request_raw(self, payload: bytes, wait_s: float) -> Exchange:
        """Send `payload` as it is; the replies are collected as for its `type` if known."""
        kind = _raw_type(payload)
        pending = _Pending(id=message_id(payload),
                           final_types=FINAL_REPLIES.get(kind or "", ()))
        return await self._exchange(None, payload, pending, wait_s)

    async def _exchange(self, message: Request | None, payload: bytes, pending: _Pending,
                        wait_s: float) -> Exchange:
        if self.closed:
            raise LinkClosedError(f"link {self.link.name!r} is closed")
        self._pending.append(pending)  # listener before the write
        try:
            # The version is read before the send: the link fixes it when the send starts.
            self._report(Sent(payload, message, link=self.link.link_version))
            await self.link.send(payload)
            closed = asyncio.ensure_future(self._closed.wait())
            done = asyncio.ensure_future(pending.done.wait())
            try:
                await asyncio.wait([closed, done], timeout=wait_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (closed, done):
                    waiter.cancel()
                await asyncio.wait([closed, done])
            if pending.final is None and self.closed:
                raise LinkClosedError(f"link {self.link.name!r} closed while waiting for "
                                      "the agent's answer")
            return Exchange(message, payload, tuple(pending.replies), pending.final)
        finally:
            self._pending.remove(pending)

    async def next_result(self, wait_s: float) -> Result | None:
        """The next result that answered no waiting request (queued while nobody asked)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not self._results:
            if self.closed:
                raise LinkClosedError(f"link {self.link.name!r} is closed")
            self._results_changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            closed = asyncio.ensure_future(self._closed.wait())
            changed = asyncio.ensure_future(self._results_changed.wait())
            try:
                await asyncio.wait([closed, changed], timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (closed, changed):
                    waiter.cancel()
                await asyncio.wait([closed, changed])
        return self._results.popleft()

    # -- receiving ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                payload = await self.link.receive()
                self._dispatch(payload)
        except LinkClosedError:
            pass
        finally:
            self._close()

    def _close(self) -> None:
        self._closed.set()

    def _dispatch(self, payload: bytes) -> None:
        try:
            reply: Reply | None = decode_reply(payload)
            problem: MessageError | None = None
        except MessageError as exc:
            reply, problem = None, exc
        again = False
        if isinstance(reply, Result):
            key = (reply.txn, reply.kind, reply.status)
            again = key in self._seen
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > SEEN_RESULTS_MAX:
                self._seen.popitem(last=False)
        owner = self._owner(reply, problem)
        self._report(Received(payload, reply, problem, again=again, unsolicited=owner is None,
                              link=self.link.link_version))
        if owner is not None and reply is not None:
            owner.deliver(reply)
        elif isinstance(reply, Result) and not again:
            self._results.append(reply)
            self._results_changed.set()

    def _owner(self, reply: Reply | None, problem: MessageError | None) -> _Pending | None:
        re = reply.re if reply is not None else problem.re if problem is not None else None
        for pending in self._pending:
            if pending.final is not None:
                continue  # answered; what follows (a late `accepted`) is unsolicited
            if re is not None and pending.id == re:
                return pending
            if re is None and isinstance(reply, Result) and reply.kind == pending.kind \
                    and reply.txn in pending.txns:
                return pending
            if re is None and not isinstance(reply, Result) and pending.id is None:
                return pending
        return None

    def _report(self, event: TranscriptEvent) -> None:
        if self._transcript is None:
            return
        try:
            self._transcript(event)
        except Exception:  # a broken printer must not stop the register
            _log.exception("transcript callback failed")

"""A cash register that retries like a real one, and remembers everything it was told.

One basket = one `txn`. The register sends `sale` and then, until it holds a final
result for that `txn`, asks `status` — never a new sale under a new id for the same
basket. It sends the *same* sale again only when the agent says it does not know the
`txn` (`NOT_FOUND`: the frame or the agent was lost before the journal had it) or that
Paytm was provably not reached (`CLOUD_UNAVAILABLE`). A basket that has no final answer
after `sale_deadline_s` makes the lane stuck: the register stops selling, as a cashier
would, and the campaign reports it.

Every `result` frame the register receives (answers, repeats, results the agent sends on
its own) is kept per `txn` for the verdict, and the message id of every frame it
received at all, so that the verdict can count results the agent marked delivered that
this register never got.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from agent.errors import UndeliveredError
from agent.link.layer import Link
from agent.link.timings import LinkProtocol, LinkTimings
from agent.register.codec import message_id
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Ping,
    Pong,
    Reply,
    Request,
    Result,
    Sale,
    Status,
)
from agent.sim.register.client import Received, RegisterClient, TranscriptEvent
from drivers.fd import FdTransport

SALE_WAIT_S: Final = 8.0  # a sale's own exchange: accepted, then usually the result
STATUS_WAIT_S: Final = 4.0  # one status question
POLL_S: Final = 0.7  # between status questions, unless a result for the txn comes first
BUSY_PAUSE_S: Final = 1.0
REGISTER_TIMINGS: Final = LinkTimings()  # protocol §2 defaults: 1 s ACK wait, 3 repeats
FINAL: Final = frozenset({"success", "failed"})


@dataclass(frozen=True, slots=True)
class SeenResult:
    """One `result` frame as the register received it."""

    txn: str
    status: str
    code: str
    amount: str
    rrn: str | None
    re: str | None
    again: bool  # the client had already seen this (txn, kind, status) in another frame
    unsolicited: bool  # answered no waiting request (sent by the agent on its own)


@dataclass
class Basket:
    """One sale as the register lived it."""

    lane: str
    txn: str
    amount: str
    started: float
    ended: float | None = None
    outcome: str | None = None  # success | failed | refused (error REJECTED)
    code: str = ""
    via: str = ""  # sale | status | pushed: which frame first brought the final answer
    sale_frames: int = 0  # sale requests sent (the same txn every time)
    status_asks: int = 0
    unknown_seen: bool = False
    errors: Counter[str] = field(default_factory=Counter)
    undelivered: int = 0  # requests whose frame the agent never ACKed
    stuck: bool = False


Hook = Callable[[str, str, str], None]  # (event, txn, amount): "sale", "accepted" (amount "")


class RegisterLane:
    def __init__(self, name: str, fd: int, plan: list[tuple[str, str]], *,
                 sale_deadline_s: float, hook: Hook | None = None,
                 protocol: LinkProtocol = LinkProtocol.V1) -> None:
        self.name = name
        self.protocol = protocol
        self.plan = plan
        self.sale_deadline_s = sale_deadline_s
        self.baskets: list[Basket] = []
        self.results: dict[str, list[SeenResult]] = {}
        self.received_ids: set[str] = set()  # of every frame received, valid reply or not
        self.stuck = False
        self.done = False
        self._hook = hook
        self._transport = FdTransport(fd, f"register:{name}", close_fd=True)
        self._link = Link(self._transport, REGISTER_TIMINGS, name=f"register:{name}",
                          id_of=message_id, protocol=protocol)
        self.client = RegisterClient(self._link, transcript=self._record)
        self._changed = asyncio.Event()
        self._n = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        await self._transport.open()
        await self._link.start()
        await self.client.start()

    async def close(self) -> None:
        await self.client.stop()
        await self._link.stop()
        await self._transport.close()

    # -- what it saw ---------------------------------------------------------------------

    def _record(self, event: TranscriptEvent) -> None:
        if not isinstance(event, Received):
            return
        # From the payload, not the decoded reply: a frame is received even when the
        # message in it breaks §3.
        if (received_id := message_id(event.payload)) is not None:
            self.received_ids.add(received_id)
        message = event.message
        if isinstance(message, Result) and message.kind == "sale":
            self.results.setdefault(message.txn, []).append(SeenResult(
                txn=message.txn, status=message.status, code=message.code,
                amount=message.amount,
                rrn=message.payment.rrn if message.payment is not None else None,
                re=message.re, again=event.again, unsolicited=event.unsolicited))
            self._changed.set()
        elif isinstance(message, Accepted) and self._hook is not None:
            self._hook("accepted", message.txn, "")

    def final_results(self, txn: str) -> list[SeenResult]:
        return [r for r in self.results.get(txn, ()) if r.status in FINAL]

    # -- selling -------------------------------------------------------------------------

    def _id(self) -> str:
        self._n += 1
        return f"{self.name}-{self._n}"

    async def run(self) -> None:
        try:
            for txn, amount in self.plan:
                basket = await self._sell(txn, amount)
                self.baskets.append(basket)
                if basket.stuck:
                    self.stuck = True
                    return
        finally:
            self.done = True

    async def _ask(self, request: Request, wait_s: float, basket: Basket) -> Reply | None:
        try:
            exchange = await self.client.request(request, wait_s)
        except UndeliveredError:
            basket.undelivered += 1
            return None
        return exchange.final

    async def _settle_wait(self, txn: str, timeout_s: float) -> None:
        """Until a final result for `txn` arrives, at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not self.final_results(txn):
                    self._changed.clear()
                    await self._changed.wait()

    async def _sell(self, txn: str, amount: str) -> Basket:
        loop = asyncio.get_running_loop()
        basket = Basket(lane=self.name, txn=txn, amount=amount, started=time.time())
        deadline = loop.time() + self.sale_deadline_s
        send_sale = True
        while loop.time() < deadline:
            if (seen := self.final_results(txn)):
                basket.outcome, basket.code = seen[0].status, seen[0].code
                # It came while nobody asked (sent by the agent on its own), or as the late
                # answer to a question the register had stopped waiting for.
                basket.via = "pushed" if seen[0].unsolicited else "status"
                break
            reply: Reply | None
            if send_sale:
                basket.sale_frames += 1
                if self._hook is not None:
                    self._hook("sale", txn, amount)
                reply = await self._ask(Sale(id=self._id(), txn=txn, amount=amount),
                                        SALE_WAIT_S, basket)
                asked = "sale"
            else:
                basket.status_asks += 1
                reply = await self._ask(Status(id=self._id(), txn=txn), STATUS_WAIT_S, basket)
                asked = "status"
            send_sale = False
            if isinstance(reply, Result) and reply.txn == txn:
                if reply.status in FINAL:
                    basket.outcome, basket.code, basket.via = reply.status, reply.code, asked
                    break
                basket.unknown_seen = True
            elif isinstance(reply, Error):
                basket.errors[reply.code.value] += 1
                if reply.code is ErrorCode.REJECTED:
                    # Paytm refused the Sale (e.g. 0333): final, nothing was charged.
                    basket.outcome, basket.via = "refused", asked
                    basket.code = reply.paytm_code or ""
                    break
                if reply.code in (ErrorCode.NOT_FOUND, ErrorCode.CLOUD_UNAVAILABLE):
                    send_sale = True  # the agent does not have it, or Paytm never did
                elif reply.code is ErrorCode.TERMINAL_BUSY:
                    send_sale = True  # after a pause, as a cashier would
                    await self._settle_wait(txn, BUSY_PAUSE_S)
                    continue
            await self._settle_wait(txn, max(0.0, min(POLL_S, deadline - loop.time())))
        else:
            basket.stuck = True
        basket.ended = time.time()
        return basket

    async def ping(self, timeout_s: float) -> bool:
        """True once the agent answers `pong` on this lane (a stuck lane never does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            with contextlib.suppress(UndeliveredError):
                wait = max(0.1, min(2.0, deadline - loop.time()))
                exchange = await self.client.request(Ping(id=self._id()), wait)
                if isinstance(exchange.final, Pong):
                    return True
        return False

"""A tiny agent for console tests: the link layer on a pty master, canned replies per §3.

What it answers is chosen by the sale amount (paise), so a script can ask for each case:

    "1"  declined: result failed 0007
    "2"  the result comes before `accepted`
    "3"  result unknown; then the final result twice on its own (the second is "again")
    "4"  accepted only: the result never comes
    else approved: result success 0000 with a payment and a receipt
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from agent.link.layer import Link, LinkClosedError
from agent.link.timings import LinkProtocol, LinkTimings
from agent.register import fields
from agent.register.codec import decode_request, encode, message_id
from agent.register.fields import Kind
from agent.register.ids import IdSource
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Last,
    Message,
    Paylink,
    Payment,
    Ping,
    Pong,
    Refund,
    Request,
    Resend,
    Result,
    Sale,
    Status,
    Void,
)
from devtools.pty import open_pty
from drivers.base import Transport
from drivers.fd import FdTransport
from drivers.tcp import TcpServerTransport
from drivers.url import TcpSpec

LISTEN_POLL_S = 0.01  # the TCP listener binds in its supervisor task; no event says when
LISTEN_WAIT_S = 5.0


class FakeAgent:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.requests: list[Request | Error] = []
        self.results: dict[tuple[str, str], Result] = {}
        self.last: Result | None = None
        self.ids = IdSource("agent")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="fake-agent")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def send(self, message: Message) -> None:
        await self.link.send(encode(message))

    async def _serve(self) -> None:
        with contextlib.suppress(LinkClosedError):
            while True:
                decoded = decode_request(await self.link.receive())
                self.requests.append(decoded)
                await self._answer(decoded)

    def _result(self, request_id: str | None, txn: str, kind: Kind, amount: str, *,
                status: fields.Status = "success", code: str = "0000",
                message: str = "Approved") -> Result:
        ok = status == "success"
        payment = Payment(method="CARD", rrn="123456789012", auth_code="A1B2C3",
                          card="XXXX-1234") if ok else None
        receipt = ("MY STORE", f"TXN {txn}", f"AMOUNT {amount}") if ok else ()
        result = Result(request_id, txn, kind, status, code, message, amount, payment=payment,
                        receipt=receipt, id=self.ids())
        self.results[(txn, kind)] = result
        self.last = result
        return result

    async def _answer(self, request: Request | Error) -> None:
        ids = self.ids
        match request:
            case Error():
                await self.send(request)
            case Sale(id=rid, txn=txn, amount=amount):
                accepted = Accepted(rid, txn, "sale", id=ids())
                if amount == "1":
                    await self.send(accepted)
                    await self.send(self._result(rid, txn, "sale", amount, status="failed",
                                                 code="0007", message="Declined"))
                elif amount == "2":
                    await self.send(self._result(rid, txn, "sale", amount))
                    await self.send(accepted)
                elif amount == "3":
                    await self.send(accepted)
                    await self.send(self._result(rid, txn, "sale", amount, status="unknown",
                                                 code="", message="No answer from Paytm yet"))
                    final = self._result(None, txn, "sale", amount)
                    await self.send(final)
                    await self.send(Result(None, txn, "sale", "success", final.code,
                                           final.message, amount, final.payment,
                                           final.receipt, id=ids()))
                elif amount == "4":
                    await self.send(accepted)
                else:
                    await self.send(accepted)
                    await self.send(self._result(rid, txn, "sale", amount))
            case Void(id=rid, txn=txn):
                sale = self.results.get((txn, "sale"))
                if sale is None or sale.status != "success":
                    await self.send(Error(rid, ErrorCode.NOT_FOUND, "No such sale", txn=txn,
                                          id=ids()))
                    return
                await self.send(Accepted(rid, txn, "void", id=ids()))
                await self.send(self._result(rid, txn, "void", sale.amount, message="Voided"))
            case Paylink(id=rid, txn=txn, amount=amount):
                await self.send(Accepted(rid, txn, "paylink", id=ids()))
                await self.send(self._result(rid, txn, "paylink", amount, message="Paid"))
            case Resend(id=rid, txn=txn):
                await self.send(Accepted(rid, txn, "paylink", id=ids()))
            case Refund(id=rid, txn=txn, refund_id=refund_id, amount=amount):
                await self.send(Accepted(rid, txn, "refund", id=ids()))
                await self.send(self._result(rid, refund_id, "refund", amount,
                                             message="Refunded"))
            case Status(id=rid, txn=txn, kind=kind):
                known = self.results.get((txn, kind))
                if known is None:
                    await self.send(Error(rid, ErrorCode.NOT_FOUND, "Unknown txn", txn=txn,
                                          id=ids()))
                else:
                    await self.send(self._again(known, rid))
            case Last(id=rid):
                if self.last is None:
                    await self.send(Error(rid, ErrorCode.NOT_FOUND, "Nothing yet", id=ids()))
                else:
                    await self.send(self._again(self.last, rid))
            case Ping(id=rid):
                await self.send(Pong(rid, "0.1.0", "till-1", "12345678", False, "ok",
                                     id=ids()))

    def _again(self, result: Result, rid: str) -> Result:
        return Result(rid, result.txn, result.kind, result.status, result.code,
                      result.message, result.amount, result.payment, result.receipt,
                      id=self.ids())


@contextlib.asynccontextmanager
async def _serving(transport: Transport, timings: LinkTimings,
                   protocol: LinkProtocol = LinkProtocol.AUTO) -> AsyncIterator[FakeAgent]:
    link = Link(transport, timings, name="fake-agent", id_of=message_id, protocol=protocol)
    agent = FakeAgent(link)
    try:
        await transport.open()
        await link.start()
        await agent.start()
        yield agent
    finally:
        await agent.stop()
        await link.stop()
        await transport.close()


@contextlib.asynccontextmanager
async def fake_agent_on_pty(
    timings: LinkTimings = LinkTimings(),  # noqa: B008  (frozen: a safe default)
    protocol: LinkProtocol = LinkProtocol.AUTO,
) -> AsyncIterator[tuple[FakeAgent, str]]:
    """A fake agent on a pty master; yields it and the slave's path for the register."""
    master, slave, slave_path = open_pty(raw=False)
    try:
        async with _serving(FdTransport(master, "pty-master"), timings, protocol) as agent:
            yield agent, slave_path
    finally:
        os.close(slave)


@contextlib.asynccontextmanager
async def fake_agent_on_tcp(
    timings: LinkTimings = LinkTimings(),  # noqa: B008  (frozen: a safe default)
    takeover: str = "silent",
) -> AsyncIterator[tuple[FakeAgent, str]]:
    """A fake agent listening on a free loopback port; yields it and the tcp:// URL."""
    transport = TcpServerTransport(TcpSpec("127.0.0.1", 0, takeover=takeover))
    async with _serving(transport, timings) as agent:
        async with asyncio.timeout(LISTEN_WAIT_S):
            # The driver offers no "listening" event to wait on.
            while (address := transport.listen_address) is None:  # noqa: ASYNC110
                await asyncio.sleep(LISTEN_POLL_S)
        yield agent, f"tcp://{address[0]}:{address[1]}"

"""Sales, voids, status and delivery end to end: real pty, real journal, emulator over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from datetime import datetime
from pathlib import Path

import aiohttp

from agent.app import Agent
from agent.journal import Kind, TxnState
from agent.link.codec import ACK, ETX, STX
from agent.paytm.clock import IST
from agent.paytm.edc import EdcClient, SaleRequest
from agent.paytm.outcome import Answered
from agent.register.messages import (
    Accepted,
    Error,
    ErrorCode,
    Last,
    Ping,
    Pong,
    Result,
    Sale,
    State,
    Status,
    Void,
)
from agent.sim.paytm import DEMO_INACTIVE_TID, Emulator, EmulatorSettings, Fault
from devtools.config import CLIENT_DEMO_KEY
from devtools.pty import Pty
from devtools.stack import (
    TID,
    WAIT_S,
    agent_config,
    register_on,
    serial_only,
    stack,
    until_delivered,
    wait_for_request,
)


def _sale(txn: str, amount: str, rid: str | None = None, **extra: object) -> Sale:
    return Sale(id=rid or f"r-{txn}", txn=txn, amount=amount, **extra)  # type: ignore[arg-type]


async def test_card_sale_success_with_receipt_and_delivery(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        exchange = await s.register.client.request(
            _sale("CARD00000001", "123450", ref="INV42", display=(("Bill", "INV42"),),
                  print=(("Invoice", "INV42"),)), WAIT_S)
        accepted, result = exchange.replies[0], exchange.final
        assert isinstance(accepted, Accepted) and accepted.re == "r-CARD00000001"
        assert isinstance(result, Result)
        assert result.re == "r-CARD00000001"
        assert (result.status, result.code, result.amount) == ("success", "0000", "123450")
        assert result.payment is not None and result.payment.card and result.payment.rrn
        assert result.payment.auth_code and result.payment.paytm_txn_id
        assert all(len(line) <= 32 for line in result.receipt)
        assert any("₹1,234.50" in line for line in result.receipt)
        assert s.emulator.count("sale", "CARD00000001") == 1
        sale_body = next(r for r in s.emulator.requests if r.api == "sale").json
        assert isinstance(sale_body, dict)
        assert sale_body["body"]["displayInfo"] == {"Bill": "INV42"}
        assert sale_body["body"]["printInfo"] == {"Invoice": "INV42"}
        # The register ACKed the result frame: the journal says delivered.
        journal = s.agent.journal
        record = journal.find(Kind.SALE, "CARD00000001")
        assert record is not None and record.state is TxnState.SUCCESS
        await until_delivered(journal, record.row_id)
        states = [e.state for e in journal.events(record.row_id)]
        assert states[:3] == ["received", "sending", "accepted"]
        assert "success" in states and states[-1] == "delivered"


async def test_upi_sale(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        result = (await s.register.client.request(_sale("UPI000000001", "25006"), WAIT_S)).final
        assert isinstance(result, Result) and result.status == "success"
        assert result.payment is not None and result.payment.method == "UPI"
        assert result.payment.card is None and result.payment.rrn
        assert any("UPI" in line for line in result.receipt)


async def test_declined_by_bank(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        result = (await s.register.client.request(_sale("DECL00000001", "10001"), WAIT_S)).final
        assert isinstance(result, Result)
        assert result.status == "failed" and result.code == "0011"
        assert result.message and len(result.message) <= 80
        assert any("DECLINED" in line for line in result.receipt)


async def test_busy_terminal_and_idempotent_repeat(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.register.client
        # Amount ending 02: the customer never pays; the sale stays open on the terminal.
        first = await client.request(_sale("BUSY00000001", "10002"), 0.5)
        assert isinstance(first.replies[0], Accepted)
        second = (await client.request(_sale("BUSY00000002", "500"), WAIT_S)).final
        assert isinstance(second, Error) and second.code is ErrorCode.TERMINAL_BUSY
        assert second.txn == "BUSY00000001"
        # The same sale again while in flight: accepted, not sent again.
        again = await client.request(_sale("BUSY00000001", "10002", rid="again1"), 0.5)
        assert isinstance(again.replies[0], Accepted) and again.replies[0].re == "again1"
        pending = (await client.request(Status(id="st1", txn="BUSY00000001"), WAIT_S)).final
        assert isinstance(pending, State) and pending.state == "pending"
        # Same txn, other amount: a different request, refused.
        dup = (await client.request(_sale("BUSY00000001", "999", rid="dup1"), WAIT_S)).final
        assert isinstance(dup, Error) and dup.code is ErrorCode.DUPLICATE_TXN
        s.emulator.finish("BUSY00000001", "success")
        result = await client.next_result(WAIT_S)
        assert isinstance(result, Result) and result.txn == "BUSY00000001"
        assert result.status == "success"
        # Final now: the repeat gets the stored result; Paytm saw exactly one Sale.
        stored = (await client.request(_sale("BUSY00000001", "10002", rid="again2"),
                                       WAIT_S)).final
        assert isinstance(stored, Result) and stored.re == "again2"
        assert stored.status == "success" and stored.receipt == result.receipt
        assert s.emulator.count("sale", "BUSY00000001") == 1
        assert s.emulator.count("sale", "BUSY00000002") == 0
        # The terminal is free again.
        ok = (await client.request(_sale("BUSY00000003", "700"), WAIT_S)).final
        assert isinstance(ok, Result) and ok.status == "success"


async def test_void_of_a_successful_sale(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.register.client
        sale = (await client.request(_sale("VOID00000001", "4200"), WAIT_S)).final
        assert isinstance(sale, Result) and sale.status == "success"
        exchange = await client.request(Void(id="v1", txn="VOID00000001"), WAIT_S)
        assert isinstance(exchange.replies[0], Accepted)
        voided = exchange.final
        assert isinstance(voided, Result) and voided.kind == "void"
        assert voided.status == "success" and voided.amount == "4200"
        assert any("VOIDED" in line for line in voided.receipt)
        status = (await client.request(Status(id="s2", txn="VOID00000001", kind="void"),
                                       WAIT_S)).final
        assert isinstance(status, Result) and status.kind == "void"
        # A second void is answered from the journal, not sent again.
        again = (await client.request(Void(id="v2", txn="VOID00000001"), WAIT_S)).final
        assert isinstance(again, Result) and again.re == "v2"
        assert s.emulator.count("void", "VOID00000001") == 1


async def test_void_refusals(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.register.client
        missing = (await client.request(Void(id="v1", txn="NOPE00000001"), WAIT_S)).final
        assert isinstance(missing, Error) and missing.code is ErrorCode.NOT_FOUND
        declined = (await client.request(_sale("VOIDDECL0001", "5001"), WAIT_S)).final
        assert isinstance(declined, Result) and declined.status == "failed"
        refused = (await client.request(Void(id="v2", txn="VOIDDECL0001"), WAIT_S)).final
        assert isinstance(refused, Error) and refused.code is ErrorCode.NOT_ALLOWED
        assert s.emulator.count("void") == 0


async def test_status_last_and_ping(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.register.client
        nothing = (await client.request(Last(id="l0"), WAIT_S)).final
        assert isinstance(nothing, Error) and nothing.code is ErrorCode.NOT_FOUND
        unknown_txn = (await client.request(Status(id="s0", txn="NEVER0000001"), WAIT_S)).final
        assert isinstance(unknown_txn, Error) and unknown_txn.code is ErrorCode.NOT_FOUND
        done = (await client.request(_sale("STAT00000001", "100"), WAIT_S)).final
        assert isinstance(done, Result)
        status = (await client.request(Status(id="s1", txn="STAT00000001"), WAIT_S)).final
        assert isinstance(status, Result) and status.re == "s1" and status.status == "success"
        last = (await client.request(Last(id="l1"), WAIT_S)).final
        assert isinstance(last, Result) and last.txn == "STAT00000001"
        pong = (await client.request(Ping(id="p1"), WAIT_S)).final
        assert isinstance(pong, Pong)
        assert (pong.lane, pong.tid, pong.busy, pong.cloud) == ("till-1", TID, False, "ok")
        assert pong.link == 1  # a v1 register: the auto lane answers it in v1


async def test_lost_sale_response_is_resolved_by_status_not_a_second_sale(
        tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        # Amount ending 05: the sale lands at Paytm but its answer never comes back.
        exchange = await s.register.client.request(_sale("LOST00000001", "20005"), WAIT_S)
        assert isinstance(exchange.replies[0], Accepted)
        result = exchange.final
        assert isinstance(result, Result) and result.status == "success"
        assert s.emulator.count("sale", "LOST00000001") == 1
        assert s.emulator.count("status", "LOST00000001") >= 1


async def test_injected_faults_never_cause_a_second_sale(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        for i, kind in enumerate(("http_500", "html", "malformed_json", "drop_after_read")):
            txn = f"FAULT{i:07d}"
            s.emulator.inject(Fault(api="sale", kind=kind, count=1))
            exchange = await s.register.client.request(_sale(txn, "300"), WAIT_S)
            assert isinstance(exchange.replies[0], Accepted), kind
            assert isinstance(exchange.final, Result), kind
            assert s.emulator.count("sale", txn) == 1, kind
            # 500/HTML/garbage after the sale landed: the status enquiry finds the payment.
            assert exchange.final.status == "success", kind


async def test_sale_dropped_before_paytm_read_it_fails_after_grace(tmp_path: Path) -> None:
    async with stack(tmp_path, polling={"not_found_grace_s": 0.3}) as s:
        s.emulator.inject(Fault(api="sale", kind="drop_before_read", count=1))
        exchange = await s.register.client.request(_sale("GONE00000001", "300"), WAIT_S)
        assert isinstance(exchange.replies[0], Accepted)  # outcome unknown: never "failed" yet
        result = exchange.final
        assert isinstance(result, Result)
        assert (result.status, result.code, result.message) == \
            ("failed", "0404", "Not received by Paytm")
        assert s.emulator.count("sale", "GONE00000001") == 0
        # The register may sell again under a new txn.
        again = (await s.register.client.request(_sale("GONE00000002", "300"), WAIT_S)).final
        assert isinstance(again, Result) and again.status == "success"


async def test_not_found_window_then_success(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        # Amount ending 04: Paytm answers "not found" for a while, then success.
        request = asyncio.ensure_future(
            s.register.client.request(_sale("LATE00000001", "10004"), WAIT_S))
        await wait_for_request(s.emulator, lambda r: r.api == "status"
                               and r.txn == "LATE00000001")
        s.emulator.advance(60)
        exchange = await request
        assert isinstance(exchange.final, Result) and exchange.final.status == "success"
        assert s.emulator.count("sale", "LATE00000001") == 1


async def test_unknown_then_late_success_delivered_on_its_own(tmp_path: Path) -> None:
    async with stack(tmp_path, polling={"unknown_after_s": 0.3}) as s:
        client = s.register.client
        exchange = await client.request(_sale("UNKN00000001", "10002"), WAIT_S)
        unknown = exchange.final
        assert isinstance(unknown, Result) and unknown.status == "unknown"
        assert unknown.re == "r-UNKN00000001"
        # `unknown` frees the terminal (protocol §5.5).
        pong = (await client.request(Ping(id="p1"), WAIT_S)).final
        assert isinstance(pong, Pong) and pong.busy is False
        status = (await client.request(Status(id="s1", txn="UNKN00000001"), WAIT_S)).final
        assert isinstance(status, Result) and status.status == "unknown"
        s.emulator.finish("UNKN00000001", "success")
        # The status request made the agent ask again; the answer comes on its own.
        await client.request(Status(id="s2", txn="UNKN00000001"), WAIT_S)
        late = await client.next_result(WAIT_S)
        while late is not None and late.status == "unknown":
            late = await client.next_result(WAIT_S)
        assert isinstance(late, Result) and late.status == "success" and late.re is None
        assert s.emulator.count("sale", "UNKN00000001") == 1


async def test_rejected_by_paytm_reaches_the_cashier(tmp_path: Path) -> None:
    emulator = Emulator(EmulatorSettings())
    async with emulator.serve() as base_url:
        pty = Pty()
        config = agent_config(base_url=base_url, journal=tmp_path / "j.db",
                              link=f"serial://{pty.path}", tid=DEMO_INACTIVE_TID)
        agent = Agent(config, CLIENT_DEMO_KEY, transport_factory=serial_only)
        await agent.start()
        try:
            async with register_on(pty.master) as register:
                error = (await register.client.request(_sale("REJ000000001", "100"),
                                                       WAIT_S)).final
                assert isinstance(error, Error) and error.code is ErrorCode.REJECTED
                assert error.paytm_code == "0007"
                assert error.message == "Terminal is not active"
                again = (await register.client.request(_sale("REJ000000001", "100", rid="x2"),
                                                       WAIT_S)).final
                assert isinstance(again, Error) and again.paytm_code == "0007"
                assert emulator.count("sale", "REJ000000001") == 1
                status = (await register.client.request(Status(id="s", txn="REJ000000001"),
                                                        WAIT_S)).final
                assert isinstance(status, Result) and status.status == "failed"
                assert status.code == "0007"
        finally:
            await agent.stop()
            pty.close()


async def test_cloud_unavailable_only_when_provably_not_sent(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    pty = Pty()
    config = agent_config(base_url=f"http://127.0.0.1:{dead_port}", journal=tmp_path / "j.db",
                          link=f"serial://{pty.path}")
    agent = Agent(config, CLIENT_DEMO_KEY, transport_factory=serial_only)
    await agent.start()
    try:
        async with register_on(pty.master) as register:
            error = (await register.client.request(_sale("DOWN00000001", "100"), WAIT_S)).final
            assert isinstance(error, Error) and error.code is ErrorCode.CLOUD_UNAVAILABLE
            pong = (await register.client.request(Ping(id="p"), WAIT_S)).final
            assert isinstance(pong, Pong) and pong.cloud == "down" and pong.busy is False
            record = agent.journal.find(Kind.SALE, "DOWN00000001")
            assert record is not None and record.not_sent
    finally:
        await agent.stop()
        pty.close()


async def test_result_waits_for_a_register_that_went_away(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.register.client
        first = await client.request(_sale("AWAY00000001", "10002"), 0.5)
        assert isinstance(first.replies[0], Accepted)
        # The register goes away: nobody reads or ACKs on the master side.
        await s.register.client.stop()
        await s.register.link.stop()
        s.emulator.finish("AWAY00000001", "success")
        frames = await _read_unacked_frames(s.pty.master, count=4)
        assert all(json.loads(f)["txn"] == "AWAY00000001" for f in frames)
        assert len({json.loads(f)["id"] for f in frames}) == 1  # the same frame, 4 sends
        record = s.agent.journal.find(Kind.SALE, "AWAY00000001")
        assert record is not None
        assert [o.delivered_at for o in s.agent.journal.outbox_for(record.row_id)] == [None]
        # The register comes back and says something: the result goes out again.
        async with register_on(s.pty.master, name="register-2") as back:
            pong = (await back.client.request(Ping(id="hello"), WAIT_S)).final
            assert isinstance(pong, Pong)
            result = await back.client.next_result(WAIT_S)
            assert isinstance(result, Result) and result.txn == "AWAY00000001"
            assert result.status == "success" and result.re == "r-AWAY00000001"
        await until_delivered(s.agent.journal, record.row_id)
        assert s.emulator.count("sale", "AWAY00000001") == 1


async def _read_unacked_frames(fd: int, count: int) -> list[bytes]:
    """Read raw frames from the pty master without ever answering them."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 4096)))
    frames: list[bytes] = []
    buffer = b""
    try:
        while len(frames) < count:
            buffer += await asyncio.wait_for(queue.get(), WAIT_S)
            while STX in buffer and ETX in buffer[buffer.index(STX):]:
                start = buffer.index(STX)
                end = buffer.index(ETX, start)
                if len(buffer) < end + 2:
                    break
                frames.append(buffer[start + 1:end])
                buffer = buffer[end + 2:]
    finally:
        loop.remove_reader(fd)
    assert all(frame != bytes([ACK]) for frame in frames)
    return frames


async def test_status_of_a_sale_only_paytm_knows(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        # A sale on this terminal that never went through this agent's journal (made from
        # another PC, or before a journal was restored): Paytm knows it, so the agent
        # must not answer NOT_FOUND.
        async with aiohttp.ClientSession() as session:
            other = EdcClient(session, s.config.paytm, CLIENT_DEMO_KEY)
            outcome = await other.sale(SaleRequest(tid=TID, txn="ELSE00000001", amount="7700",
                                                   txn_time=datetime.now(IST)))
            assert isinstance(outcome, Answered) and outcome.response.accepted
        result = (await s.register.client.request(Status(id="s1", txn="ELSE00000001"),
                                                  WAIT_S)).final
        assert isinstance(result, Result) and result.re == "s1"
        assert (result.status, result.amount) == ("success", "7700")
        record = s.agent.journal.find(Kind.SALE, "ELSE00000001")
        assert record is not None and record.state is TxnState.SUCCESS
        # Known now: a repeat is answered from the journal, and the sale can be voided.
        voided = (await s.register.client.request(Void(id="v1", txn="ELSE00000001"),
                                                  WAIT_S)).final
        assert isinstance(voided, Result) and voided.status == "success"


async def test_duplicate_amount_key_never_reaches_paytm(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        payload = (b'{"v":1,"type":"sale","id":"r-DUPK00000001","txn":"DUPK00000001",'
                   b'"amount":"100","amount":"999999"}')
        exchange = await s.register.client.request_raw(payload, WAIT_S)
        error = exchange.final
        assert isinstance(error, Error) and error.code is ErrorCode.INVALID_MESSAGE
        assert "'amount' appears twice" in error.message and error.re == "r-DUPK00000001"
        assert s.emulator.count("sale", "DUPK00000001") == 0
        assert s.agent.journal.find(Kind.SALE, "DUPK00000001") is None

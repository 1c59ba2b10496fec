"""TCP drivers over loopback: one register served, a second refused, reconnects both sides."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from drivers.base import TransportState
from drivers.errors import TransportDownError
from drivers.tcp import TAKEOVER_SILENT_S, TcpClientTransport, TcpServerTransport
from drivers.url import TcpSpec
from tests.drivers.helpers import WAIT_S, fast_backoff, read_exactly, wait_state

R1_S = 0.1  # protocol R1: the ACK within 100 ms


async def _listening(server: TcpServerTransport) -> tuple[str, int]:
    async with asyncio.timeout(WAIT_S):
        return await server.wait_listening()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serves_one_register_both_ways() -> None:
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0), backoff=fast_backoff()) as server:
        host, port = await _listening(server)
        with pytest.raises(TransportDownError):
            await server.write(b"nobody there")
        async with TcpClientTransport(TcpSpec(host, port), backoff=fast_backoff()) as client:
            await wait_state(server, TransportState.UP)
            await wait_state(client, TransportState.UP)
            await client.write(b"\x05")
            assert await read_exactly(server, 1) == b"\x05"
            await server.write(b"\x06")
            assert await read_exactly(client, 1) == b"\x06"
            assert server.status.detail["peer"].startswith("127.0.0.1:")
            assert server.status.detail["listen"] == f"127.0.0.1:{port}"
            assert client.status.detail["peer"] == f"127.0.0.1:{port}"
            assert (server.status.bytes_in, server.status.bytes_out) == (1, 1)


async def test_second_connection_is_refused_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0), backoff=fast_backoff()) as server:
        host, port = await _listening(server)
        async with TcpClientTransport(TcpSpec(host, port), backoff=fast_backoff()) as first:
            await wait_state(server, TransportState.UP)
            reader, writer = await asyncio.open_connection(host, port)
            try:
                async with asyncio.timeout(WAIT_S):
                    # Closed at once by the server: a reset, or end of file.
                    try:
                        data = await reader.read(1)
                    except ConnectionResetError:
                        data = b""
                assert data == b""
                local_port = writer.get_extra_info("sockname")[1]
            finally:
                writer.close()
                await writer.wait_closed()
            refused = [r for r in caplog.records if "refused a second register" in r.getMessage()]
            assert len(refused) == 1
            assert refused[0].levelno == logging.WARNING
            assert f"127.0.0.1:{local_port}" in refused[0].getMessage()
            # The first register is still served.
            assert server.is_up
            await first.write(b"still here")
            assert await read_exactly(server, 10) == b"still here"


async def test_next_register_is_accepted_after_the_first_goes() -> None:
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0), backoff=fast_backoff()) as server:
        host, port = await _listening(server)
        first = TcpClientTransport(TcpSpec(host, port), backoff=fast_backoff())
        await first.open()
        await wait_state(server, TransportState.UP)
        await first.close()
        await wait_state(server, TransportState.RECONNECTING)
        assert server.status.last_error is not None
        assert "disconnected" in server.status.last_error
        assert "peer" not in server.status.detail
        async with TcpClientTransport(TcpSpec(host, port), backoff=fast_backoff()) as second:
            await wait_state(server, TransportState.UP)
            assert server.status.reconnects == 1
            await second.write(b"hi")
            assert await read_exactly(server, 2) == b"hi"
            await server.write(b"ok")
            assert await read_exactly(second, 2) == b"ok"


async def test_client_reconnects_when_the_agent_restarts() -> None:
    port = _free_port()
    spec = TcpSpec("127.0.0.1", port)
    async with TcpClientTransport(spec, backoff=fast_backoff()) as client:
        await wait_state(client, TransportState.RECONNECTING)
        assert client.status.last_error is not None
        assert "connection refused" in client.status.last_error
        server = TcpServerTransport(spec, backoff=fast_backoff())
        await server.open()
        await wait_state(client, TransportState.UP)
        await wait_state(server, TransportState.UP)
        await server.close()  # the agent stops
        await wait_state(client, TransportState.RECONNECTING)
        async with TcpServerTransport(spec, backoff=fast_backoff()) as again:
            await wait_state(client, TransportState.UP)
            await wait_state(again, TransportState.UP)
            assert client.status.reconnects == 1
            await client.write(b"sale")
            assert await read_exactly(again, 4) == b"sale"


async def test_busy_port_is_retried_until_free() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = int(blocker.getsockname()[1])
    try:
        server = TcpServerTransport(TcpSpec("127.0.0.1", port), backoff=fast_backoff())
        await server.open()
        await wait_state(server, TransportState.RECONNECTING)
        assert server.status.last_error is not None
        assert "the port is in use" in server.status.last_error
    finally:
        blocker.close()
    try:
        async with TcpClientTransport(
            TcpSpec("127.0.0.1", port), backoff=fast_backoff()
        ) as client:
            await wait_state(server, TransportState.UP)
            await wait_state(client, TransportState.UP)
    finally:
        await server.close()


class StepClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def _eof(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(WAIT_S):
        try:
            return await reader.read(1) == b""
        except ConnectionResetError:
            return True


async def test_a_new_connection_takes_over_from_a_silent_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")
    clock = StepClock()
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0), backoff=fast_backoff(),
                                  clock=clock) as server:
        host, port = await _listening(server)
        # The half-open connection a rebooted register leaves behind: never a byte.
        _, stale_writer = await asyncio.open_connection(host, port)
        await wait_state(server, TransportState.UP)
        stale_port = stale_writer.get_extra_info("sockname")[1]
        clock.t += TAKEOVER_SILENT_S
        async with TcpClientTransport(TcpSpec(host, port), backoff=fast_backoff()) as real:
            await wait_state(real, TransportState.UP)
            await real.write(b"\x02sale")
            assert await read_exactly(server, 5) == b"\x02sale"
            await server.write(b"\x06")
            assert await read_exactly(real, 1) == b"\x06"
            assert server.takeovers == 1
            lines = [r.getMessage() for r in caplog.records if "takes over" in r.getMessage()]
            assert len(lines) == 1 and f"127.0.0.1:{stale_port}" in lines[0]
            assert "sent nothing for 3 s" in lines[0]
        stale_writer.close()


async def test_a_talking_register_is_not_taken_over() -> None:
    clock = StepClock()
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0), backoff=fast_backoff(),
                                  clock=clock) as server:
        host, port = await _listening(server)
        async with TcpClientTransport(TcpSpec(host, port), backoff=fast_backoff()) as first:
            await wait_state(server, TransportState.UP)
            clock.t += TAKEOVER_SILENT_S - 1
            await first.write(b"x")
            assert await read_exactly(server, 1) == b"x"
            clock.t += 2  # 2 s since its last byte
            reader, writer = await asyncio.open_connection(host, port)
            assert await _eof(reader)
            writer.close()
            assert server.takeovers == 0
            await first.write(b"y")
            assert await read_exactly(server, 1) == b"y"


async def test_takeover_newest_and_never() -> None:
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0, takeover="newest"),
                                  backoff=fast_backoff()) as server:
        host, port = await _listening(server)
        old_reader, old_writer = await asyncio.open_connection(host, port)
        await wait_state(server, TransportState.UP)
        _, new_writer = await asyncio.open_connection(host, port)
        assert await _eof(old_reader)  # the older one is closed at once
        new_writer.write(b"n")
        assert await read_exactly(server, 1) == b"n"
        old_writer.close()
        new_writer.close()
    clock = StepClock()
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0, takeover="never"),
                                  backoff=fast_backoff(), clock=clock) as server:
        host, port = await _listening(server)
        _, first = await asyncio.open_connection(host, port)
        await wait_state(server, TransportState.UP)
        clock.t += 3600
        reader, second = await asyncio.open_connection(host, port)
        assert await _eof(reader)
        first.close()
        second.close()


async def test_allow_list_refuses_other_peers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")
    async with TcpServerTransport(TcpSpec("0.0.0.0", 0, allow=("127.0.0.2",)),
                                  backoff=fast_backoff()) as server:
        _, port = await _listening(server)
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await _eof(reader)
            writer.close()
        refused = [r for r in caplog.records if "not in allow=127.0.0.2" in r.getMessage()]
        assert len(refused) == 1  # once per peer and interval, not per attempt
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=("127.0.0.2", 0))
        await wait_state(server, TransportState.UP)
        writer.write(b"ok")
        assert await read_exactly(server, 2) == b"ok"
        writer.close()


def test_allow_and_takeover_in_the_url() -> None:
    from agent.errors import ConfigError
    from agent.link.spec import parse_link_url

    spec = parse_link_url("tcp://0.0.0.0:7070?allow=192.168.1.20,[::1]&takeover=newest")
    assert isinstance(spec.target, TcpSpec)
    assert spec.target.allow == ("192.168.1.20", "::1")
    assert spec.target.takeover == "newest"
    with pytest.raises(ConfigError, match="allow must list IP addresses"):
        parse_link_url("tcp://0.0.0.0:7070?allow=till-2")
    with pytest.raises(ConfigError, match="takeover must be one of"):
        parse_link_url("tcp://0.0.0.0:7070?takeover=sometimes")


async def test_register_that_reconnects_at_once_is_answered_within_r1() -> None:
    # The default backoff (the one a lane uses): before, a connection that lived less
    # than STABLE_UP_S made the next one wait for it, writes refused meanwhile.
    async with TcpServerTransport(TcpSpec("127.0.0.1", 0)) as server:
        host, port = await _listening(server)
        for _ in range(3):  # a register reconnecting again and again, each time at once
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"\x02")
            assert await read_exactly(server, 1) == b"\x02"
            loop = asyncio.get_running_loop()
            started = loop.time()
            await server.write(b"\x06")
            async with asyncio.timeout(WAIT_S):
                assert await reader.readexactly(1) == b"\x06"
            assert loop.time() - started < R1_S
            writer.close()
            await writer.wait_closed()

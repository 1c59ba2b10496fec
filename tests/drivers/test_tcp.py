"""TCP drivers over loopback: one register served, a second refused, reconnects both sides."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from agent.errors import TransportDownError
from drivers.base import TransportState
from drivers.tcp import TcpClientTransport, TcpServerTransport
from drivers.url import TcpSpec
from tests.drivers.helpers import WAIT_S, fast_backoff, read_exactly, wait_state


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

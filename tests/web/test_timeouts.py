"""A slow client is cut off (issue 14): headers that never end, a body that never arrives.

The page and the webhook listener share `ListenerTimeouts` (10 s each in the field); here
they are shortened so the test watches the cut-off happen instead of waiting 10 s. Without
the timeouts aiohttp would keep such a connection for 75 s (its keep-alive default) and
read a body for as long as it trickles: each await below would hit WAIT_S instead.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

from agent.listener import ListenerTimeouts
from agent.net import split_host_port
from agent.web.server import start_web
from agent.webhook_server import WebhookServer
from devtools.config import CLIENT_DEMO_KEY
from devtools.stack import WAIT_S
from devtools.webstack import web_stack

SHORT_S = 0.3
LONG_S = 30.0  # the other timeout: never the one that fires


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    hostport = urlsplit(url).netloc
    reader, writer = await asyncio.open_connection(*split_host_port(hostport))
    return reader, writer, hostport


async def _unfinished_headers_are_closed(url: str) -> float:
    reader, writer, hostport = await _connect(url)
    try:
        started = time.monotonic()
        writer.write(f"GET / HTTP/1.1\r\nHost: {hostport}\r\n".encode())  # never the blank line
        await writer.drain()
        async with asyncio.timeout(WAIT_S):
            assert await reader.read() == b""  # closed by the server, nothing answered
        return time.monotonic() - started
    finally:
        writer.close()
        await writer.wait_closed()


async def _slow_body_gets_408(url: str, path: str) -> bytes:
    reader, writer, hostport = await _connect(url)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {hostport}\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: 100\r\n\r\nsome=".encode())  # 5 of the 100 bytes
        await writer.drain()
        async with asyncio.timeout(WAIT_S):
            return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_page_cuts_off_unfinished_headers_and_a_slow_body(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        server = await start_web(s.agent, listen="127.0.0.1:0", recent=s.recent,
                                 timeouts=ListenerTimeouts(header_s=SHORT_S, body_s=LONG_S))
        try:
            assert await _unfinished_headers_are_closed(server.url) >= SHORT_S * 0.9
        finally:
            await server.stop()
        server = await start_web(s.agent, listen="127.0.0.1:0", recent=s.recent,
                                 timeouts=ListenerTimeouts(header_s=LONG_S, body_s=SHORT_S))
        try:
            assert (await _slow_body_gets_408(server.url, "/login")).startswith(
                b"HTTP/1.1 408 ")
        finally:
            await server.stop()


async def test_the_webhook_listener_cuts_off_unfinished_headers_and_a_slow_body(
        tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        assert s.agent.engine is not None
        for timeouts in (ListenerTimeouts(header_s=SHORT_S, body_s=LONG_S),
                         ListenerTimeouts(header_s=LONG_S, body_s=SHORT_S)):
            hook = WebhookServer(s.agent.engine, CLIENT_DEMO_KEY, "127.0.0.1:0",
                                 "/paytm/callback", timeouts=timeouts)
            await hook.start()
            try:
                if timeouts.header_s == SHORT_S:
                    assert await _unfinished_headers_are_closed(hook.address) >= SHORT_S * 0.9
                else:
                    line = await _slow_body_gets_408(hook.address, "/paytm/callback")
                    assert line.startswith(b"HTTP/1.1 408 ")
                    assert hook.refused == 1
            finally:
                await hook.stop()

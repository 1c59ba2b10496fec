"""The page cannot starve the money path (issue 14, case 2): a flood of half-open
connections, over real sockets, to an agent whose RLIMIT_NOFILE is lowered (in a child
process). The sale still succeeds and is ACKed at once, the page's connections stay
within its cap, and the log gets a handful of lines, not a traceback per attempt."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path

from agent.listener import LISTEN_BACKLOG
from tests.web.flood_child import NOFILE

REPO = Path(__file__).resolve().parents[2]
FLOOD = NOFILE + 150  # more connections than the child has file descriptors
R1_S = 1.0  # the register hears its ACK within this (protocol R1 allows far less)
WAIT_S = 30.0


async def _line(stream: asyncio.StreamReader, prefix: str) -> list[str]:
    while True:
        raw = await asyncio.wait_for(stream.readline(), WAIT_S)
        assert raw, f"child ended before {prefix}"
        words = raw.decode().split()
        if words and words[0] == prefix:
            return words[1:]


async def test_half_open_flood_does_not_stop_a_sale(tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.web.flood_child", str(tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert child.stdin is not None and child.stdout is not None
    sockets: list[socket.socket] = []
    try:
        port_text, cap_text = await _line(child.stdout, "READY")
        port, cap = int(port_text), int(cap_text)
        for _ in range(FLOOD):  # half-open: a request line, never the end of the headers
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            sockets.append(sock)
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        for sock in sockets:
            with contextlib.suppress(OSError):
                await asyncio.wait_for(loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x"),
                                       WAIT_S)
        child.stdin.write(b"SALE\n")
        await child.stdin.drain()
        status, ack_s, _ = await _line(child.stdout, "RESULT")
        assert status == "success"
        assert 0 <= float(ack_s) < R1_S
        errors, tracebacks = (int(n) for n in await _line(child.stdout, "LOG"))
        assert tracebacks == 0 and errors <= 2
        # The page kept at most its cap open: every other connection was closed at once.
        still_open = 0
        for sock in sockets:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 1), 0.05)
                still_open += 0 if data == b"" else 1
            except TimeoutError:
                still_open += 1
            except OSError:
                pass
        assert still_open <= cap + LISTEN_BACKLOG  # the cap, plus any not yet accepted
        child.stdin.write(b"EXIT\n")
        await child.stdin.drain()
        assert await asyncio.wait_for(child.wait(), WAIT_S) == 0
    finally:
        for sock in sockets:
            sock.close()
        if child.returncode is None:
            child.kill()
            await child.wait()

"""The agent's road to "Paytm": a loopback TCP forwarder that can go dark.

    agent ── HTTP ──► CloudLink (127.0.0.1:P) ──► Emulator (127.0.0.1:E)

An outage closes the listening socket (new connections are refused: the agent's
calls are provably not sent, the only case where it may send a Sale again) and
aborts every open connection (calls in flight, and idle pooled ones: unknown).
When the outage ends the forwarder listens on the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Final

CHUNK: Final = 64 * 1024


class CloudLink:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.outages = 0
        self.connections = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self._port, reuse_address=True,
            family=socket.AF_INET)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self._close_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def outage(self, seconds: float) -> None:
        """Refuse and cut everything for `seconds`, then listen again."""
        self.outages += 1
        await self._close_all()
        await asyncio.sleep(seconds)
        await self.start()

    async def _close_all(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self._upstream)
            except OSError:
                return
            self._writers.add(up_writer)
            pipes = {asyncio.ensure_future(self._pipe(reader, up_writer)),
                     asyncio.ensure_future(self._pipe(up_reader, writer))}
            try:
                # HTTP never half-closes here: one side ending ends the connection.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            for end in (writer, up_writer):
                if end is not None:
                    self._writers.discard(end)
                    end.close()  # graceful: what was forwarded is still flushed
            if task is not None:
                self._tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()

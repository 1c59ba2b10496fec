"""TCP drivers: the agent listens for its register; the register console connects.

`TcpServerTransport` serves one register connection at a time. A second
connection while one is served (the lane URL's `takeover=`):

- `silent` (default): takes over from a connection that has sent no byte for
  TAKEOVER_SILENT_S (a rebooted register leaves exactly such a half-open one behind),
  else it is closed at once;
- `newest`: always takes over (the register is the only one who knows it reconnected);
- `never`: is closed at once.

Takeovers and refusals are logged at WARNING with both peers. `allow=ADDR,...` in the
URL refuses every other peer address. When the served register goes away the lane
waits (RECONNECTING) for the next connection, without backoff when it is already there,
and a write while a new connection is being adopted waits for it (ADOPT_WAIT_S): a
register that reconnects at once gets its ACKs within R1. If the port is busy the
listener is retried with backoff.

A register PC that loses power leaves a connection that looks open forever and
would keep the lane's only slot; TCP keepalive with short timers finds it dead
within about KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_COUNT seconds.

`TcpClientTransport` is the register's side, for the register console:
connect, and reconnect with backoff when the agent goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable
from typing import cast

from drivers.base import Backoff, TransportStatus
from drivers.errors import TransportDownError, TransportError
from drivers.pipe import PipeTransport
from drivers.url import TcpSpec

logger = logging.getLogger(__name__)

KEEPALIVE_IDLE_S = 10  # silence before the first keepalive probe
KEEPALIVE_INTERVAL_S = 5  # between probes
KEEPALIVE_COUNT = 3  # unanswered probes before the kernel drops the connection
CONNECT_TIMEOUT_S = 5.0  # client: one connection attempt
# A write the peer does not drain for this long fails (the send buffer stays full).
WRITE_STALL_S = 5.0
TAKEOVER_SILENT_S = 3.0  # no byte for this long: a new connection may take the lane
ADOPT_WAIT_S = 0.05  # a write waits this long at most for a new connection to come up
REFUSAL_LOG_S = 60.0  # refusals of one peer are logged once per this
REFUSALS_TRACKED = 256


def _peer_text(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


def _set_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # The per-socket timers are Linux (and a few others) only.
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
        if hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)


class _Connection(asyncio.Protocol):
    """One TCP connection; hands events to its owner transport."""

    def __init__(self, owner: _TcpPipe) -> None:
        self._owner = owner
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.host = ""
        self.lost = False
        self.last_rx = 0.0  # owner's clock: connect time, then each byte's arrival
        self._can_write: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_server/create_connection on stream sockets hand us an asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = _peer_text(transport)
        peer = transport.get_extra_info("peername")
        self.host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        _set_keepalive(transport)
        self._owner._conn_made(self)

    def data_received(self, data: bytes) -> None:
        self._owner._conn_data(self, data)

    def eof_received(self) -> bool | None:
        return None  # the peer finished sending: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_exception(TransportDownError(f"{self.peer}: connection closed"))
        reason = f"connection from {self.peer} lost: {exc}" if exc else f"{self.peer} disconnected"
        self._owner._conn_lost(self, reason)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    async def write_all(self, data: bytes) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise TransportDownError(f"{self.peer}: not connected")
        self.transport.write(data)
        if not self._paused:
            return
        # The socket's send buffer is above its high-water mark: wait until the
        # peer drains it, like StreamWriter.drain().
        self._can_write = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(WRITE_STALL_S):
                await self._can_write
        except TimeoutError:
            raise TransportDownError(
                f"{self.peer}: write stalled for {WRITE_STALL_S:g} s (the peer is not reading)"
            ) from None
        finally:
            self._can_write = None

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _TcpPipe(PipeTransport):
    """What the server and client share: the served connection, reads, writes."""

    def __init__(self, status: TransportStatus, backoff: Backoff | None) -> None:
        super().__init__(status, backoff)
        self._up: _Connection | None = None  # the connection the supervisor reported UP

    def _conn_made(self, conn: _Connection) -> None:
        pass

    def _conn_data(self, conn: _Connection, data: bytes) -> None:
        if conn is self._up:
            self._feed(data)

    def _conn_lost(self, conn: _Connection, reason: str) -> None:
        if conn is self._up:
            self._connection_lost(reason)

    async def _disconnect(self) -> None:
        conn, self._up = self._up, None
        if conn is not None:
            conn.abort()
        self.status.detail.pop("peer", None)

    async def _send(self, data: bytes) -> None:
        conn = self._up
        if conn is None:
            raise TransportDownError(f"{self.status.url}: no connection")
        await conn.write_all(data)
        self._count_out(len(data))

    def _pause_reading(self) -> None:
        if self._up is not None:
            self._up.pause_reading()

    def _resume_reading(self) -> None:
        if self._up is not None:
            self._up.resume_reading()


class TcpServerTransport(_TcpPipe):
    """The agent's side of a tcp:// lane: listen on host:port, serve one register at a time."""

    def __init__(
        self, spec: TcpSpec, *, url: str | None = None, backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        status = TransportStatus(
            url=url or f"tcp://{spec.host}:{spec.port}",
            kind="tcp",
            detail={"listen": f"{spec.host}:{spec.port}"},
        )
        super().__init__(status, backoff)
        self.spec = spec
        self._clock = clock
        self._refusals_logged: dict[str, float] = {}
        self._adopted = asyncio.Event()  # set while `_up` is the slot's connection
        self._filled = asyncio.Event()  # set when a connection takes the slot
        self.takeovers = 0
        self._server: asyncio.Server | None = None
        self._slot: _Connection | None = None  # the one accepted, live connection
        self._arrived: asyncio.Future[None] | None = None
        self._listening = asyncio.Event()

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """Where the listener is bound (the real port when the spec asked for port 0)."""
        if self._server is None or not self._server.sockets:
            return None
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def wait_listening(self) -> tuple[str, int]:
        """Wait until the listener is bound; returns (host, port), the real port for port 0."""
        while True:
            await self._listening.wait()
            address = self.listen_address
            if address is not None:
                return address
            self._listening.clear()

    async def _connect(self) -> None:
        if self._server is None:
            await self._listen()
        # Waiting for a register is not a failure: no backoff, no error.
        while self._slot is None:
            self._arrived = asyncio.get_running_loop().create_future()
            try:
                await self._arrived
            finally:
                self._arrived = None
        conn = self._slot
        self._up = conn
        self.status.detail["peer"] = conn.peer
        self._adopted.set()

    def _ready_again(self) -> bool:
        return self._slot is not None and not self._slot.lost

    async def _backoff_pause(self, delay: float) -> None:
        # The backoff protects against a device that opens and dies in a loop; here the
        # register decides when to connect, and one that is back must not wait for it.
        if self._ready_again():
            return
        self._filled.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._filled.wait()

    async def _disconnect(self) -> None:
        self._adopted.clear()
        await super()._disconnect()

    async def write(self, data: bytes) -> None:
        # A register that just reconnected (or took over) may send a frame before the
        # supervisor has adopted its connection: its ACK waits for that, not for nothing.
        if not self._adopted.is_set() and self._slot is not None and not self._slot.lost:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ADOPT_WAIT_S):
                    await self._adopted.wait()
        await super().write(data)

    def _refusal(self, peer: str, text: str, *args: object) -> None:
        now = self._clock()
        last = self._refusals_logged.get(peer)
        level = logging.WARNING if last is None or now - last >= REFUSAL_LOG_S \
            else logging.DEBUG
        if level == logging.WARNING:
            if len(self._refusals_logged) > REFUSALS_TRACKED:
                self._refusals_logged.clear()
            self._refusals_logged[peer] = now
        logger.log(level, text, *args)

    def _takes_over(self, old: _Connection) -> str | None:
        """Why a new connection takes the lane from `old`, or None when it does not."""
        match self.spec.takeover:
            case "newest":
                return "a newer connection wins (takeover=newest)"
            case "silent":
                silent = self._clock() - old.last_rx
                if silent >= TAKEOVER_SILENT_S:
                    return f"it sent nothing for {silent:.0f} s"
                return None
            case _:
                return None

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self), self.spec.host, self.spec.port, reuse_address=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise TransportError(
                    f"cannot listen on {self.spec.host}:{self.spec.port}: the port is in use "
                    "(another agent or program?)"
                ) from exc
            if exc.errno == errno.EADDRNOTAVAIL:
                raise TransportError(
                    f"cannot listen on {self.spec.host}:{self.spec.port}: this machine has no "
                    "such address"
                ) from exc
            raise TransportError(
                f"cannot listen on {self.spec.host}:{self.spec.port}: {exc.strerror or exc}"
            ) from exc
        address = self.listen_address
        if address is not None:
            self.status.detail["listen"] = f"{address[0]}:{address[1]}"
        self._listening.set()
        logger.info("%s: listening on %s for the register", self.status.url,
                    self.status.detail["listen"])

    def _conn_made(self, conn: _Connection) -> None:
        conn.last_rx = self._clock()
        if self.spec.allow and conn.host.removeprefix("::ffff:") not in self.spec.allow:
            self._refusal(conn.host, "%s: refused a register connection from %s: not in "
                          "allow=%s", self.status.url, conn.peer, ",".join(self.spec.allow))
            conn.abort()
            return
        old = self._slot
        if self._closed or (old is not None and not old.lost):
            why = self._takes_over(old) if old is not None and not self._closed else None
            if old is None or why is None:
                serving = old.peer if old is not None else "nobody (closing)"
                self._refusal(
                    conn.host, "%s: refused a second register connection from %s: this "
                    "lane already serves %s", self.status.url, conn.peer, serving)
                conn.abort()
                return
            logger.warning("%s: register connection from %s takes over the lane from %s "
                           "(%s)", self.status.url, conn.peer, old.peer, why)
            self.takeovers += 1
            self._slot = conn
            self._filled.set()
            old.abort()  # its connection_lost ends the served link; `conn` is adopted next
            return
        self._slot = conn
        self._filled.set()
        logger.info("%s: register connected from %s", self.status.url, conn.peer)
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)

    def _conn_data(self, conn: _Connection, data: bytes) -> None:
        # Bytes from the accepted connection count even in the instant before
        # the supervisor reports it UP.
        conn.last_rx = self._clock()
        if conn is self._slot:
            self._feed(data)

    def _conn_lost(self, conn: _Connection, reason: str) -> None:
        if conn is self._slot:
            # Free the slot now so the register's next connection is accepted
            # even before the supervisor has caught up.
            self._slot = None
        super()._conn_lost(conn, reason)

    async def close(self) -> None:
        await super().close()
        if self._slot is not None:
            self._slot.abort()
            self._slot = None
        server, self._server = self._server, None
        self._listening.clear()
        if server is not None:
            server.close()
            await server.wait_closed()


class TcpClientTransport(_TcpPipe):
    """The register's side of a tcp:// link (the register console): connect, reconnect."""

    def __init__(
        self, spec: TcpSpec, *, url: str | None = None, backoff: Backoff | None = None
    ) -> None:
        status = TransportStatus(
            url=url or f"tcp://{spec.host}:{spec.port}",
            kind="tcp",
            detail={"connect": f"{spec.host}:{spec.port}"},
        )
        super().__init__(status, backoff)
        self.spec = spec

    def _conn_made(self, conn: _Connection) -> None:
        # Adopt the connection now: the agent may send before create_connection()
        # has returned to `_connect()`.
        self._up = conn

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        where = f"{self.spec.host}:{self.spec.port}"
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), self.spec.host, self.spec.port
                )
        except TimeoutError:
            raise TransportError(
                f"cannot connect to {where}: no answer in {CONNECT_TIMEOUT_S:g} s"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:
                raise TransportError(
                    f"cannot connect to {where}: connection refused (is the agent running and "
                    "listening there?)"
                ) from exc
            raise TransportError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        if conn.lost:
            raise TransportDownError(f"{where} closed the connection at once")
        self.status.detail["peer"] = conn.peer

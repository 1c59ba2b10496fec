"""The notify protocol in-process, against a real AF_UNIX datagram socket as systemd."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from agent.app import Agent, agent_status
from agent.journal import TxnState
from agent.service.notify import Notifier, watchdog_interval_s
from agent.service.systemd import SystemdService
from drivers.base import TransportState

WAIT_S = 5.0  # safety net: every message below is expected within milliseconds


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """The socket systemd would own for the service, and its $NOTIFY_SOCKET value."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


async def receive(sock: socket.socket) -> dict[str, str]:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), WAIT_S)
    return dict(line.split("=", 1) for line in data.decode().split("\n"))


def drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(4096)
        except BlockingIOError:
            return count
        count += 1


# -- Notifier ---------------------------------------------------------------------------


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()
    notifier.close()


def test_assignments_are_one_datagram(systemd_socket: tuple[socket.socket, str]) -> None:
    sock, path = systemd_socket
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.ready("2 lanes up\nsneaky=1")
    sock.setblocking(True)
    sock.settimeout(WAIT_S)
    # A newline inside a value would start a new assignment: it is flattened.
    assert sock.recv(4096) == b"READY=1\nSTATUS=2 lanes up sneaky=1"
    notifier.close()


def test_abstract_socket_address() -> None:
    name = f"edc-agent-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(WAIT_S)
    try:
        notifier = Notifier("@" + name)
        assert notifier.stopping("bye")
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=bye"
        notifier.close()
    finally:
        sock.close()


def test_missing_socket_is_reported_not_raised(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="agent.service.notify")
    notifier = Notifier(str(tmp_path / "gone"))
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    notifier.close()
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def test_watchdog_interval() -> None:
    pid = os.getpid()
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(pid)}) == 0.1
    # Inherited from the watched process: not ours to feed.
    assert watchdog_interval_s({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(pid + 1)}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None


# -- SystemdService -----------------------------------------------------------------------


async def test_service_outside_systemd_starts_nothing() -> None:
    before = asyncio.all_tasks()
    service = SystemdService.from_environ(lambda: "never asked",
                                          {"WATCHDOG_USEC": "100000"})
    service.start()
    service.ready()
    service.stopping()
    assert asyncio.all_tasks() == before
    await service.close()


async def test_ready_then_status_when_it_changes(
        systemd_socket: tuple[socket.socket, str]) -> None:
    sock, path = systemd_socket
    text = ["0 lanes up, 1 down; 0 in flight; 0 unknown"]
    service = SystemdService(Notifier(path), lambda: text[0], watchdog_s=None,
                             status_refresh_s=0.01)
    service.ready()
    assert await receive(sock) == {"READY": "1", "STATUS": text[0]}
    text[0] = "1 lane up, 0 down; 0 in flight; 0 unknown"
    assert await receive(sock) == {"STATUS": text[0]}
    service.stopping()
    assert await receive(sock) == {"STOPPING": "1", "STATUS": "stopping: " + text[0]}
    await service.close()


async def test_heartbeat_stops_while_the_event_loop_is_blocked(
        systemd_socket: tuple[socket.socket, str]) -> None:
    sock, path = systemd_socket
    interval_s = 0.02
    service = SystemdService(Notifier(path), lambda: "", watchdog_s=interval_s)
    service.start()
    assert await receive(sock) == {"WATCHDOG": "1"}
    # Block the loop the way a hung callback would: a synchronous wait, here for the
    # next heartbeat. Five intervals pass without one, because the heartbeat is a task
    # on this very loop (a thread would have kept beating for a stuck agent).
    drain(sock)
    sock.setblocking(True)
    sock.settimeout(5 * interval_s)
    with pytest.raises(TimeoutError):
        sock.recv(4096)
    sock.setblocking(False)
    # Once the loop runs again, so does the heartbeat.
    assert await receive(sock) == {"WATCHDOG": "1"}
    await service.close()


async def test_status_failure_is_contained(systemd_socket: tuple[socket.socket, str]) -> None:
    sock, path = systemd_socket

    def broken() -> str:
        raise RuntimeError("journal closed")

    service = SystemdService(Notifier(path), broken, watchdog_s=None)
    service.ready()
    assert await receive(sock) == {"READY": "1", "STATUS": "running (status unavailable)"}
    await service.close()


def test_agent_status_counts() -> None:
    def lane(state: TransportState, link_down: bool) -> SimpleNamespace:
        return SimpleNamespace(transport=SimpleNamespace(status=SimpleNamespace(state=state)),
                               link=SimpleNamespace(down=link_down))

    records = [SimpleNamespace(state=TxnState.UNKNOWN), SimpleNamespace(state=TxnState.PENDING),
               SimpleNamespace(state=TxnState.UNKNOWN)]
    fake = SimpleNamespace(
        lanes=[lane(TransportState.UP, False), lane(TransportState.UP, True),
               lane(TransportState.RECONNECTING, False)],
        engine=SimpleNamespace(busy_terminals=lambda: {"12345678": "T1"}),
        journal=SimpleNamespace(
            count_in_state=lambda state: sum(1 for r in records if r.state is state)),
    )
    assert agent_status(cast(Agent, fake)) == "1 lane up, 2 down; 1 in flight; 2 unknown"

"""`edc-agent run` as systemd runs it: a subprocess, a notify socket, a journal stream.

The test's AF_UNIX datagram socket stands in for systemd. The agent gets a real pty
for its lane and a journal holding unfinished sales, so READY=1 can be checked
against recovery: everything the agent writes (journal rows, log lines) before it
sends READY=1 is already visible when the datagram arrives.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.journal import Journal, Kind, TxnState
from devtools.pty import open_pty

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 20.0  # start-up safety net (imports on two shared cores); normally ~1 s
STOP_LIMIT_S = 5.0  # the unit's promise: SIGTERM → exit well inside TimeoutStopSec=
TID = "12345678"
OTHER_TID = "87654321"
KEY = "ABCDEFGHIJKLMNOP"
STATUS_RE = re.compile(r"^(\d+) lanes? up, (\d+) down; (\d+) in flight; (\d+) unknown$")


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    notify: socket.socket
    stderr_path: Path
    journal_path: Path

    def receive(self, timeout_s: float = WAIT_S) -> dict[str, str]:
        self.notify.settimeout(timeout_s)
        data = self.notify.recv(4096)
        return dict(line.split("=", 1) for line in data.decode().split("\n"))

    def receive_until(self, key: str) -> tuple[dict[str, str], list[dict[str, str]]]:
        """The first message carrying `key`, and everything that came before it."""
        before: list[dict[str, str]] = []
        while True:
            message = self.receive()
            if key in message:
                return message, before
            before.append(message)

    def log(self) -> str:
        return self.stderr_path.read_text()


async def _prepare_journal(path: Path) -> None:
    journal = Journal(path)
    # Might have reached Paytm: recovery resumes it (Status Enquiry), holding the terminal.
    await journal.create(kind=Kind.SALE, txn="RESUMEME01", lane="till-1", tid=TID, amount="15000",
                   request={"type": "sale", "txn": "RESUMEME01", "amount": "15000"},
                   txn_time="2026-11-21 10:00:00",
                   states=(TxnState.RECEIVED, TxnState.SENDING))
    # Provably never sent: recovery closes it as failed, in the journal, before READY.
    await journal.create(kind=Kind.SALE, txn="NEVERSENT1", lane="till-1", tid=OTHER_TID,
                   amount="5000", request={"type": "sale", "txn": "NEVERSENT1"},
                   txn_time="2026-11-21 10:00:01")
    await journal.aclose()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                        "CREDENTIALS_DIRECTORY")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A loopback port nothing listens on (held, so nobody else takes it): Paytm is away."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def daemon(tmp_path: Path, unused_port: int) -> Iterator[Daemon]:
    master, slave, slave_path = open_pty(raw=False)
    os.close(slave)  # the agent opens the slave itself, by path, like /dev/ttyUSB0
    journal_path = tmp_path / "state" / "journal.db"
    asyncio.run(_prepare_journal(journal_path))
    # The key arrives as systemd's LoadCredential= delivers it; the configured path is
    # deliberately absent, so the agent can only have read the credential.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "merchant-key").write_text(KEY + "\n")
    (credentials / "merchant-key").chmod(0o400)
    base_url = f"http://127.0.0.1:{unused_port}"
    config = tmp_path / "edc-agent.toml"
    config.write_text(f"""
[paytm]
merchant_key_file = "{tmp_path / 'no-such.key'}"
edc_base_url = "{base_url}"
pg_base_url = "{base_url}"

[polling]
first_check_s = 60   # the resumed sale waits: this test is about start and stop

[journal]
path = "{journal_path}"

[http]
listen = "127.0.0.1:0"

[[lanes]]
name = "till-1"
link = "serial://{slave_path}"
tid = "{TID}"
""")
    notify_path = tmp_path / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        info = os.fstat(stderr.fileno())
        env = _env(NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="200000",
                   JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}",
                   CREDENTIALS_DIRECTORY=str(credentials))
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env, cwd=tmp_path)
    try:
        yield Daemon(proc, notify, stderr_path, journal_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        os.close(master)


def test_ready_after_recovery_watchdog_then_stopping_on_sigterm(daemon: Daemon) -> None:
    ready, before = daemon.receive_until("READY")
    # Only heartbeats may precede READY (the heartbeat starts before recovery).
    assert all(message == {"WATCHDOG": "1"} for message in before), before

    # STATUS= is computed in the same call that sends READY=1, so it shows the agent as
    # it was at that moment, with no timing involved: the resumed sale already holds its
    # terminal (recovery ran) and the lane exists.
    status = STATUS_RE.match(ready["STATUS"])
    assert status is not None, ready
    up, down, in_flight, unknown = map(int, status.groups())
    assert (up + down, in_flight, unknown) == (1, 1, 0)

    # What recovery wrote and logged before READY=1 is there to see.
    journal = Journal(daemon.journal_path)
    try:
        never_sent = journal.find(Kind.SALE, "NEVERSENT1")
        resumed = journal.find(Kind.SALE, "RESUMEME01")
    finally:
        journal.close()
    assert never_sent is not None and never_sent.state is TxnState.FAILED
    assert never_sent.not_sent
    assert resumed is not None and resumed.state is TxnState.SENDING  # resumed, never resent
    log = daemon.log()
    assert "resuming sale RESUMEME01 (sending)" in log
    assert "running: 1 lane(s)" in log  # every lane started

    # WatchdogSec=0.2 s: heartbeats keep coming, every 0.1 s.
    for _ in range(5):
        assert daemon.receive(timeout_s=2.0) == {"WATCHDOG": "1"}

    daemon.proc.send_signal(signal.SIGTERM)
    sent_at = time.monotonic()
    stopping, _ = daemon.receive_until("STOPPING")
    assert stopping["STATUS"].startswith("stopping: ")
    assert daemon.proc.wait(timeout=STOP_LIMIT_S) == 0
    assert time.monotonic() - sent_at < STOP_LIMIT_S

    # Under systemd every line carries its syslog priority for journalctl -p.
    lines = daemon.log().splitlines()
    assert lines and all(re.match(r"^<[0-7]>", line) for line in lines), lines
    assert any(line.startswith("<6>INFO agent.app: edc-agent stopped") for line in lines)
    assert KEY not in daemon.log()


def test_config_error_is_logged_as_error_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "edc-agent.toml"
    config.write_text(f'[paytm]\nmerchant_key_file = "{tmp_path / "missing.key"}"\n')
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        info = os.fstat(stderr.fileno())
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "run", "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            env=_env(JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}"), timeout=WAIT_S,
            check=False)
    # Exit 2 is the unit's RestartPreventExitStatus=: no pointless restart loop.
    assert proc.returncode == 2
    lines = stderr_path.read_text().splitlines()
    assert lines[0].startswith("<3>edc-agent: ") and "cannot start" in lines[0]
    assert any(line.startswith("<3>  - ") and "missing.key" in line for line in lines[1:])

"""The agent as a child process, started exactly as systemd starts it.

    async with AgentProcess(workdir, config) as agent:   # `python -m agent run --config F`
        agent.pid, agent.ready_s, agent.cpu_s(), agent.memory()
        await agent.kill()                                # SIGKILL: a power cut, no drain
        await agent.start()                               # the same config and log again
    # leaving the block: SIGTERM, the drain, SIGKILL only if it hangs

`python -m agent run --config F` runs with $NOTIFY_SOCKET naming an AF_UNIX datagram
socket this module listens on, and counts as started when `READY=1` arrives there (sent
after recovery, every lane set up). `ready=False` only forks: the chaos campaign kills
the agent during its start-up and recovery too, so it must not wait for READY (and does
not give the agent a socket, as before). Its stdout and stderr (one log line per event,
at the production level `info`) go to a file appended to on every start, never to a
pipe nobody reads.

Timestamps: time.monotonic() is CLOCK_MONOTONIC, one clock for every process on Linux,
so times taken in the bench process and in a child can be subtracted.

Cleanup: every child runs in its own session (Ctrl-C reaches only the parent, which then
stops its children with SIGTERM, then SIGKILL); an atexit hook kills whatever is still
alive if the parent dies some other way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from devtools.config import write_config
from devtools.procfs import Memory, cpu_seconds, memory
from devtools.toml import Table

ROOT: Final = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S: Final = 60.0  # a cold start with a large journal on a loaded box
STOP_TIMEOUT_S: Final = 15.0  # SIGTERM drains within 5 s; a loaded box gets slack
PYCACHE: Final = Path(tempfile.gettempdir()) / "edc-bench-pycache"
# What systemd may have set for the process running this harness; never for the child.
_SYSTEMD_ENV: Final = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                       "CREDENTIALS_DIRECTORY", "JOURNAL_STREAM")

_children: set[int] = set()  # pids (and process groups) of children not yet reaped


def _kill_leftovers() -> None:
    for pid in list(_children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every process the harness starts: as an installed agent runs.

    pip compiles an installed package's bytecode; a checkout run with
    PYTHONDONTWRITEBYTECODE=1 (as some sandboxes set) would recompile every module of
    ours at each start (~0.3 s here). Bytecode goes to a cache outside the tree
    (PYTHONPYCACHEPREFIX), never into the checkout.
    """
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(PYCACHE), **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


async def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                stdout: int | IO[bytes] = asyncio.subprocess.DEVNULL,
                stderr: int | IO[bytes] = asyncio.subprocess.DEVNULL
                ) -> asyncio.subprocess.Process:
    """A child in its own session, from the repository root (so `-m agent` is this tree's),
    remembered until reaped by `stop_child`/`kill_child`."""
    child = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=dict(env) if env is not None else child_env(),
        stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True)
    _children.add(child.pid)
    return child


async def kill_child(child: asyncio.subprocess.Process) -> int:
    """SIGKILL the child's whole process group and reap it. Returns the exit status."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    try:
        return await child.wait()
    finally:
        _children.discard(child.pid)


async def stop_child(child: asyncio.subprocess.Process,
                     timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM, wait; SIGKILL the process group if it hangs. The exit status; None if it
    had to be killed."""
    status: int | None = child.returncode
    if status is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout_s):
                status = await child.wait()
        except TimeoutError:
            status = None
    await kill_child(child)  # a hung child, and anything it started itself
    return status


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # the socket of an earlier start of the same agent
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []

    async def wait_for(self, assignment: str, timeout_s: float,
                       alive: Callable[[], bool]) -> float:
        """The monotonic time the first datagram holding `assignment` arrived."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout_s
        for at, text in self.messages:
            if assignment in text.split("\n"):
                return at
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {assignment} within {timeout_s:g} s")
            if not alive():
                raise RuntimeError(f"the process exited before {assignment}")
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096),
                                              min(remaining, 0.25))
            except TimeoutError:
                continue
            at = time.monotonic()
            text = data.decode("utf-8", "replace")
            self.messages.append((at, text))
            if assignment in text.split("\n"):
                return at

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


_COMMIT_METRIC: Final = "edc_journal_write_duration_seconds"
_WEB_URL: Final = re.compile(r"technician page on (http://[^/\s]+)/")


@dataclass(frozen=True, slots=True)
class JournalCommits:
    """Cumulative: commits, seconds spent in them, commits at or under each bound (s)."""

    count: float
    seconds: float
    buckets: dict[float, float]

    def since(self, before: JournalCommits | None) -> JournalCommits:
        if before is None:
            return self
        return JournalCommits(self.count - before.count, self.seconds - before.seconds,
                              {k: v - before.buckets.get(k, 0.0) for k, v in self.buckets.items()})

    def over(self, seconds: float) -> float:
        """Commits that took longer than `seconds` (a bucket bound)."""
        return self.count - self.buckets.get(seconds, self.count)

    def summary(self, wall_s: float, sales: int) -> dict[str, float]:
        return {"commits": self.count, "commits_per_sale": self.count / max(1, sales),
                "mean_ms": self.seconds / max(1.0, self.count) * 1000,
                "loop_share": self.seconds / wall_s if wall_s else float("nan"),
                "over_10ms": self.over(0.01), "over_100ms": self.over(0.1),
                "over_500ms": self.over(0.5)}


class AgentProcess:
    """`python -m agent run --config F`, started like systemd does, ready on READY=1
    (unless `ready=False`); killed, restarted and stopped as often as a test likes."""

    def __init__(self, workdir: Path, config: Table, *, name: str = "agent",
                 ready: bool = True, ready_timeout_s: float = READY_TIMEOUT_S,
                 python_args: Sequence[str] = (),
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.config_path = write_config(workdir / f"{name}.toml", config)
        self.log_path = workdir / f"{name}.log"
        self._notify_path = workdir / f"{name}.notify"
        self._ready = ready
        self._ready_timeout_s = ready_timeout_s
        # The interpreter's arguments before `agent run`; ("-m", "pyinstrument", "-o",
        # FILE, "-m") runs the agent under a profiler.
        self._python_args = list(python_args) or ["-m"]
        # Set in the agent's environment only (e.g. LD_PRELOAD for bench/slowdisk.py).
        self._extra_env = dict(extra_env or {})
        self.process: asyncio.subprocess.Process | None = None
        self.notify: NotifySocket | None = None
        self.starts = 0
        self.kills = 0
        self.started_at = 0.0  # monotonic, just before the last fork
        self.ready_at = 0.0  # monotonic, when READY=1 of the last start arrived
        self.exit_status: int | None = None  # of the last stop

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def ready_s(self) -> float:
        """From process start (fork) to READY=1."""
        return self.ready_at - self.started_at

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def memory(self) -> Memory:
        return memory(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def start(self) -> None:
        """Fork the agent (nothing when it runs); with `ready`, return once READY=1 came."""
        if self.running:
            return
        self.starts += 1
        env = child_env(PYTHONUNBUFFERED="1", **self._extra_env)
        for name in _SYSTEMD_ENV:
            env.pop(name, None)
        if self._ready:
            if self.notify is not None:
                self.notify.close()
            self.notify = NotifySocket(self._notify_path)
            env["NOTIFY_SOCKET"] = str(self._notify_path)
        # A local file opened once per start: too quick to be worth a thread.
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.process = await spawn([sys.executable, *self._python_args, "agent", "run",
                                        "--config", str(self.config_path)],
                                       env=env, stdout=log, stderr=log)
        if self.notify is None:
            return
        try:
            self.ready_at = await self.notify.wait_for("READY=1", self._ready_timeout_s,
                                                       lambda: self.running)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"agent did not become ready: {exc}\n{self.log_tail()}") from None

    async def kill(self) -> None:
        """SIGKILL and reap (no drain, no journal close: a power cut as far as the agent
        can tell). Nothing when it is not running."""
        if self.process is None or self.process.returncode is not None:
            return
        self.kills += 1
        await kill_child(self.process)

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait for the drain; SIGKILL if it hangs. The exit status, None if it
        had to be killed or never ran."""
        if self.process is not None:
            self.exit_status = await stop_child(self.process, timeout_s)
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        return self.exit_status

    def web_url(self) -> str | None:
        """The technician page's address, from the log line of the last start saying where
        it listens."""
        found = _WEB_URL.findall(self.log_path.read_text(errors="replace"))
        return str(found[-1]) if found else None

    async def journal_commits(self) -> JournalCommits | None:
        """The agent's own histogram of journal commits (fsync included), from /metrics.

        Read it outside a measured window: a scrape also counts the journal's rows.
        """
        import aiohttp

        url = self.web_url()
        if url is None:
            return None
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(url + "/metrics") as response:
                text = await response.text()
        except aiohttp.ClientError:
            return None
        buckets: dict[float, float] = {}
        total = count = 0.0
        for line in text.splitlines():
            if line.startswith(_COMMIT_METRIC + "_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
            elif line.startswith(_COMMIT_METRIC + "_sum "):
                total = float(line.split()[-1])
            elif line.startswith(_COMMIT_METRIC + "_count "):
                count = float(line.split()[-1])
        return JournalCommits(count=count, seconds=total, buckets=buckets)

    @asynccontextmanager
    async def profiled(self, output: Path | None, rate: int = 250,
                       gil_only: bool = False) -> AsyncIterator[None]:
        """py-spy record on the agent while the block runs (nothing when output is None).

        --format raw writes collapsed stacks (flamegraph.pl / speedscope read them);
        `python bench/hotspots.py FILE` lists the hot spots. gil_only: only samples
        holding the GIL, i.e. Python work without the waits in fsync (sqlite3 lets go
        of the GIL while SQLite runs).
        """
        if output is None:
            yield
            return
        with (self.workdir / "py-spy.log").open("wb") as log:
            spy = await spawn(["py-spy", "record", "--pid", str(self.pid), "--rate", str(rate),
                               "--format", "raw", "--output", str(output), "--nonblocking",
                               *(["--gil"] if gil_only else [])], stderr=log)
        await asyncio.sleep(0.5)  # attach before the work starts
        try:
            yield
        finally:
            if spy.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    await spy.wait()
            await stop_child(spy, 1.0)

    async def __aenter__(self) -> AgentProcess:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self.stop()
        if exc_type is not None and not issubclass(exc_type, (KeyboardInterrupt,
                                                            asyncio.CancelledError)):
            print(f"--- agent log ({self.log_path}), last lines:\n{self.log_tail()}",
                  file=sys.stderr)

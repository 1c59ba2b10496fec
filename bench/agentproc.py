"""Running the agent (and the Paytm emulator) as separate processes for the benchmarks.

    async with AgentProcess(config_text, tmp) as agent:   # `python -m agent run`
        agent.pid, agent.ready_s, agent.cpu_s(), agent.memory()

    async with emulator(tmp, separate=True) as emu:       # the emulator, its own process
        emu.base_url ... await emu.record()               # what it received, with times
    async with emulator(tmp, separate=False) as emu: ...  # the same in this event loop

    run_bench(main)                                       # Ctrl-C/SIGTERM clean up too

The agent is started exactly as systemd starts it: `python -m agent run --config F`
with $NOTIFY_SOCKET naming an AF_UNIX datagram socket this module listens on, and it
counts as started when `READY=1` arrives there (sent after recovery, every lane set
up). Its stderr (one log line per event, at the production level `info`) goes to a
file, never to a pipe nobody reads.

Timestamps: time.monotonic() is CLOCK_MONOTONIC, one clock for every process on
Linux, so the register's times in the bench process and the emulator's times in its
own process can be subtracted.

The emulator notes, per call, `at` (its handler started: the request is in) and
`answered` (its handler returned the answer, which aiohttp then writes at once): leg 2
of a sale starts when the final status answer leaves the emulator, not when the
question arrived, so the emulator's own work is not billed to the agent.

Cleanup: every child runs in its own session (Ctrl-C reaches only the bench, which
then stops its children with SIGTERM, then SIGKILL); an atexit hook kills whatever
is still alive if the bench dies some other way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.common import ROOT

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEMO_KEY_TEXT = "DEMOKEY123456789"  # agent.sim.paytm.DEMO_KEY, as a key file holds it
POLLING_FAST = {"first_check_s": 0, "interval_s": 0.001, "slow_after_s": 600,
                "slow_interval_s": 0.01, "unknown_after_s": 600, "not_found_grace_s": 600}

_children: set[subprocess.Popen[bytes]] = set()


def _kill_leftovers() -> None:
    for child in list(_children):
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


def run_bench(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """asyncio.run(main()) where Ctrl-C (SIGINT) and SIGTERM both cancel the bench, so
    every child process and pty is cleaned up on the way out; 130 when interrupted."""

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main()

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; everything this bench started is stopped", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------
# /proc facts


@dataclass(frozen=True, slots=True)
class Memory:
    rss_kb: int  # VmRSS: now
    hwm_kb: int  # VmHWM: the peak resident set since start


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/PID/stat), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # the name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory(pid: int) -> Memory:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return Memory(rss_kb=values.get("VmRSS", 0), hwm_kb=values.get("VmHWM", 0))


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_busy_sample() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat's first line."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])
    return float(total - idle), float(total)


# ---------------------------------------------------------------------------------------
# Configuration files


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string for our values


def write_key(directory: Path) -> Path:
    path = directory / "merchant.key"
    path.write_text(DEMO_KEY_TEXT + "\n")
    path.chmod(0o600)
    return path


@dataclass(frozen=True, slots=True)
class LaneSpec:
    name: str
    link: str  # serial:///dev/pts/N or tcp://127.0.0.1:PORT
    tid: str


def agent_config_text(*, base_url: str, journal: Path, key_file: Path,
                      lanes: Sequence[LaneSpec], polling: dict[str, float] | None = None,
                      log_level: str = "info") -> str:
    from agent.sim.paytm import DEMO_MID

    lines = [
        "[paytm]",
        f"mid = {toml_string(DEMO_MID)}",
        f"merchant_key_file = {toml_string(str(key_file))}",
        f"edc_base_url = {toml_string(base_url)}",
        f"pg_base_url = {toml_string(base_url)}",
        "",
        "[polling]",
        *(f"{k} = {v!r}" for k, v in (polling if polling is not None else POLLING_FAST).items()),
        "",
        "[journal]",
        f"path = {toml_string(str(journal))}",
        "",
        "[http]",
        'listen = "127.0.0.1:0"',  # never the operator's port 8765: benches run side by side
        "",
        "[log]",
        f"level = {toml_string(log_level)}",
    ]
    for lane in lanes:
        lines += ["", "[[lanes]]", f"name = {toml_string(lane.name)}",
                  f"link = {toml_string(lane.link)}", f"tid = {toml_string(lane.tid)}"]
    return "\n".join(lines) + "\n"


def free_tcp_ports(n: int) -> list[int]:
    """`n` loopback ports free right now (bound to port 0 together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------------------
# Child processes


PYCACHE = Path(tempfile.gettempdir()) / "edc-bench-pycache"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every process a bench starts: as an installed agent runs.

    pip compiles an installed package's bytecode; a checkout run with
    PYTHONDONTWRITEBYTECODE=1 (as some sandboxes set) would recompile every module of
    ours at each start (~0.3 s here). Bytecode goes to a cache outside the tree
    (PYTHONPYCACHEPREFIX), never into the checkout.
    """
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(PYCACHE), **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _spawn(argv: Sequence[str], *, env: dict[str, str] | None = None,
           stdout: Any = subprocess.DEVNULL, stderr: Any = subprocess.DEVNULL
           ) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(list(argv), cwd=ROOT, env=env if env is not None else child_env(),
                             stdin=subprocess.DEVNULL,
                             stdout=stdout, stderr=stderr, start_new_session=True)
    _children.add(child)
    return child


async def _stop(child: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM, wait, then SIGKILL the whole process group. Returns the exit status."""
    try:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(child.wait, timeout_s)
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # anything it started itself
            os.killpg(child.pid, signal.SIGKILL)
        return await asyncio.to_thread(child.wait)
    finally:
        _children.discard(child)


_COMMIT_METRIC = "edc_journal_write_duration_seconds"


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


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
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


class AgentProcess:
    """`python -m agent run --config F`, started like systemd does, ready on READY=1."""

    def __init__(self, config_text: str, workdir: Path, *, name: str = "agent",
                 ready_timeout_s: float = READY_TIMEOUT_S,
                 python_args: Sequence[str] = (),
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.config_path = workdir / f"{name}.toml"
        self.config_path.write_text(config_text)
        self.log_path = workdir / f"{name}.log"
        self._notify_path = workdir / f"{name}.notify"
        self._ready_timeout_s = ready_timeout_s
        # The interpreter's arguments before `agent run`; ("-m", "pyinstrument", "-o",
        # FILE, "-m") runs the agent under a profiler.
        self._python_args = list(python_args) or ["-m"]
        # Set in the agent's environment only (e.g. LD_PRELOAD for bench/slowdisk.py).
        self._extra_env = dict(extra_env or {})
        self.child: subprocess.Popen[bytes] | None = None
        self.notify: NotifySocket | None = None
        self.started_at = 0.0  # monotonic, just before the fork
        self.ready_at = 0.0  # monotonic, when READY=1 arrived
        self.exit_status: int | None = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

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
        self.notify = NotifySocket(self._notify_path)
        env = child_env(NOTIFY_SOCKET=str(self._notify_path), PYTHONUNBUFFERED="1",
                        **self._extra_env)
        for name in ("WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY", "JOURNAL_STREAM"):
            env.pop(name, None)
        with self.log_path.open("wb") as log:
            self.started_at = time.monotonic()
            self.child = _spawn([sys.executable, *self._python_args, "agent", "run",
                                 "--config", str(self.config_path)],
                                env=env, stderr=log, stdout=log)
        child = self.child
        try:
            self.ready_at = await self.notify.wait_for("READY=1", self._ready_timeout_s,
                                                       lambda: child.poll() is None)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"agent did not become ready: {exc}\n{self.log_tail()}") from None

    def web_url(self) -> str | None:
        """The technician page's address, from the agent's log line saying where it listens."""
        match = re.search(r"technician page on (http://[^/\s]+)/", self.log_path.read_text(
            errors="replace"))
        return match.group(1) if match else None

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
        spy = _spawn(["py-spy", "record", "--pid", str(self.pid), "--rate", str(rate),
                      "--format", "raw", "--output", str(output), "--nonblocking",
                      *(["--gil"] if gil_only else [])],
                     stderr=(self.workdir / "py-spy.log").open("wb"))
        await asyncio.sleep(0.5)  # attach before the work starts
        try:
            yield
        finally:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(spy.wait, 20)
            await _stop(spy, 1.0)

    async def stop(self) -> int:
        status = 0
        if self.child is not None:
            status = await _stop(self.child)
            self.exit_status = status
        if self.notify is not None:
            self.notify.close()
        return status

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


# ---------------------------------------------------------------------------------------
# The emulator, with the time each answer left


@dataclass(frozen=True, slots=True)
class Call:
    """One request the emulator answered: in at `at`, answer prepared at `answered`."""

    api: str  # sale | status | void | ...
    txn: str
    at: float
    answered: float


@dataclass
class EmulatorRecord:
    calls: list[Call] = field(default_factory=list)

    def by_api(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    def first(self, api: str) -> dict[str, Call]:
        out: dict[str, Call] = {}
        for call in self.calls:
            if call.api == api and call.txn not in out:
                out[call.txn] = call
        return out

    def last(self, api: str) -> dict[str, Call]:
        return {c.txn: c for c in self.calls if c.api == api}


class EmulatorHandle(Protocol):
    base_url: str

    async def record(self) -> EmulatorRecord: ...

    def cpu_s(self) -> float: ...


class TimedEmulator:
    """agent.sim.paytm.Emulator, plus per call the time its answer was ready.

    A middleware notes when the handler was entered (the request is in: leg 1 of a
    sale ends here) and when it returned its answer (aiohttp writes it to the socket
    at once, without another await: leg 2 starts here). GET /_bench/record hands the
    calls to a bench in another process.
    """

    def __init__(self) -> None:
        from aiohttp import web

        from agent.paytm.edc import SALE_PATH, STATUS_PATH
        from agent.sim.paytm import Emulator, EmulatorSettings

        self.emulator = Emulator(EmulatorSettings())
        self._apis = {SALE_PATH: "sale", STATUS_PATH: "status"}
        self._raw: list[tuple[str, float, float, bytes]] = []
        self.base_url = ""

        @web.middleware
        async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
            t_in = time.monotonic()
            response: web.StreamResponse = await handler(request)
            t_out = time.monotonic()
            api = self._apis.get(request.path)
            if api is not None:
                self._raw.append((api, t_in, t_out, await request.read()))  # cached body
            return response

        async def record(_: web.Request) -> web.Response:
            return web.json_response([dataclasses.asdict(c) for c in self.record_now().calls])

        self.emulator.app.middlewares.append(timing)
        self.emulator.app.router.add_get("/_bench/record", record)

    def record_now(self) -> EmulatorRecord:
        calls = [Call(api=api, txn=_txn_of(raw), at=t_in, answered=t_out)
                 for api, t_in, t_out, raw in self._raw]
        return EmulatorRecord(calls)

    async def record(self) -> EmulatorRecord:
        return self.record_now()

    def cpu_s(self) -> float:
        return cpu_seconds(os.getpid())

    @asynccontextmanager
    async def serve(self, port: int = 0) -> AsyncIterator[TimedEmulator]:
        async with self.emulator.serve("127.0.0.1", port) as base_url:
            self.base_url = base_url
            yield self


def _txn_of(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        return ""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            value = item.get("merchantTransactionId")
            if isinstance(value, str):
                return value
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return ""


class EmulatorProcess:
    """The timed emulator in its own process: `python -m bench.agentproc emulator`."""

    def __init__(self, workdir: Path) -> None:
        self.log_path = workdir / "emulator.log"
        self.child: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.child = _spawn([sys.executable, "-m", "bench.agentproc", "emulator"],
                                stdout=subprocess.PIPE, stderr=log)
        assert self.child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.child.stdout.readline),
                                      READY_TIMEOUT_S)
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("listening "):
            raise RuntimeError(f"emulator did not start: {text!r}")
        self.base_url = text.split()[1]

    async def record(self) -> EmulatorRecord:
        import aiohttp

        async with aiohttp.ClientSession() as session, \
                session.get(self.base_url + "/_bench/record") as response:
            rows = await response.json()
        return EmulatorRecord([Call(**row) for row in rows])

    async def stop(self) -> None:
        if self.child is not None:
            await _stop(self.child)
            if self.child.stdout is not None:
                self.child.stdout.close()

    async def __aenter__(self) -> EmulatorProcess:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@asynccontextmanager
async def emulator(workdir: Path, *, separate: bool) -> AsyncIterator[EmulatorHandle]:
    """The timed emulator in this process (separate=False) or in its own."""
    if separate:
        async with EmulatorProcess(workdir) as proc:
            yield proc
    else:
        async with TimedEmulator().serve() as emu:
            yield emu


async def _emulator_main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with TimedEmulator().serve() as emu:
        print(f"listening {emu.base_url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    if sys.argv[1:] != ["emulator"]:
        raise SystemExit("usage: python -m bench.agentproc emulator")
    asyncio.run(_emulator_main())

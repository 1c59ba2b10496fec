"""Slow disk: every fsync of the agent made 0, 20, 100 and 300 ms slower.

    python bench/slowdisk.py [--delays 0,20,100,300] [--seconds 12] [--enq-interval 0.05]
                             [--emulator-inproc] [--json FILE]

What a cheap eMMC or SD card in a POS box does under load, reproduced on any disk: the
agent runs as in production (`python -m agent run`, READY=1 on $NOTIFY_SOCKET, durable
journal on a real file, WAL, synchronous=FULL) with `bench/slowfsync.c` preloaded
(LD_PRELOAD, set in the agent's environment only: never in this process nor the
emulator's). The shim is compiled with the system C compiler (`cc`) into a temp
directory at bench time; without a compiler the bench says so and skips. After the C
library's fsync, fdatasync, sync_file_range or msync returns, the shim sleeps
SLOWFSYNC_DELAY_MS, and it counts every call in a shared file this bench reads before
and after the measured window (SQLite 3.40 here syncs only with fdatasync).

Per delay, one fresh agent and journal, eight loopback TCP lanes (bench/tills.py):

  selling  six lanes sell back to back for --seconds (a sale starts when the last one
           ended): sales/s = sales completed / (start → the last lane's last result).
  idle     two lanes send ENQ every --enq-interval s (on a fixed schedule, whether or
           not the previous ACK came back; the agent answers every ENQ with one ACK, in
           order, so ACKs are matched first in, first out) during the same --seconds:
           ENQ → ACK latency, timed in this process (write → read). R1: the register
           expects the ACK within 100 ms; S1: it gives up after 1000 ms.

Commits per fsync = the agent's journal commits in the window (its /metrics histogram
`edc_journal_write_duration_seconds`, scraped before and after) / the syncs the shim
counted in the same window. With every commit on the event loop it is ≤ 1 (each commit
syncs the WAL once; checkpoints add syncs); group commit makes it > 1.

Targets (issue 11): idle ENQ → ACK p99 ≤ 20 ms at +100 and +300 ms; ≥ 10 sales/s at
+100 ms. The issue's baseline (main, commits on the event loop) is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.link.codec import ENQ
from bench.common import machine, run_bench, summary_ms, table, write_results
from bench.tills import SaleTiming, Till, Tills
from devtools.config import process_config, write_key
from devtools.emulator import emulator
from devtools.process import AgentProcess, JournalCommits
from devtools.procfs import loadavg

SHIM_SOURCE = Path(__file__).resolve().parent / "slowfsync.c"
COMPILERS = ("cc", "gcc", "clang")
COUNTER_NAMES = ("fsync", "fdatasync", "sync_file_range", "msync")
N_COUNTERS = 8  # bench/slowfsync.c: N_COUNTERS
COUNTS_BYTES = N_COUNTERS * 8

DELAYS_MS = (0.0, 20.0, 100.0, 300.0)
SELLING_LANES = 6
IDLE_LANES = 2
SECONDS = 12.0
ENQ_INTERVAL_S = 0.05
ACK_WAIT_S = 5.0  # after the window: how long outstanding ENQs may still be answered
SETTLE_TRIES = 20  # quiet(): reads of the counters until two agree
R1_MS = 100.0  # the register wants every ACK within 100 ms
S1_MS = 1000.0  # and gives up on the link after 1000 ms

TARGET_ENQ_P99_MS = 20.0  # at +100 and +300 ms per fsync
TARGET_ENQ_DELAYS_MS = (100.0, 300.0)
TARGET_SALES_PER_S = 10.0  # at +100 ms per fsync
TARGET_SALES_DELAY_MS = 100.0
# Issue 11's figures, measured on main with every commit on the event loop.
BASELINE: dict[float, str] = {
    0.0: "638 sales in 12 s",
    100.0: "ENQ p50 480 / p99 980 ms; 2.8 sales/s",
    300.0: "ENQ p50 1160 / p99 > 2000 ms; 14 sales in 12 s",
}
_ENQ = bytes((ENQ,))


# ---------------------------------------------------------------------------------------
# The shim


class NoCompiler(RuntimeError):
    """No C compiler on this machine: the bench cannot build its LD_PRELOAD shim."""


def find_compiler() -> str | None:
    for name in COMPILERS:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def build_shim(directory: Path, source: Path = SHIM_SOURCE) -> Path:
    """Compile bench/slowfsync.c into `directory`; the path of the shared object."""
    compiler = find_compiler()
    if compiler is None:
        raise NoCompiler(f"no C compiler ({', '.join(COMPILERS)}) on PATH")
    out = directory / "slowfsync.so"
    done = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out),
                           str(source), "-ldl"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{compiler} could not build {source}:\n{done.stderr}")
    return out


def shim_env(shim: Path, delay_ms: float, counts: Path) -> dict[str, str]:
    """The environment entries that make a child's syncs slow and counted."""
    preload = os.environ.get("LD_PRELOAD", "")
    return {"LD_PRELOAD": f"{shim} {preload}".strip(), "SLOWFSYNC_DELAY_MS": f"{delay_ms:g}",
            "SLOWFSYNC_COUNTS": str(counts)}


@dataclass(frozen=True, slots=True)
class SyncCounts:
    """The shim's counters (cumulative, or a difference with `since`)."""

    fsync: int = 0
    fdatasync: int = 0
    sync_file_range: int = 0
    msync: int = 0
    slept_ns: int = 0
    loaded: int = 0  # processes that loaded the shim

    @property
    def syncs(self) -> int:
        return self.fsync + self.fdatasync + self.sync_file_range + self.msync

    def since(self, before: SyncCounts) -> SyncCounts:
        return SyncCounts(*(a - b for a, b in zip(self.astuple(), before.astuple(),
                                                    strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.fsync, self.fdatasync, self.sync_file_range, self.msync, self.slept_ns,
                self.loaded)

    def asdict(self) -> dict[str, int]:
        return dict(zip((*COUNTER_NAMES, "slept_ns", "loaded"), self.astuple(), strict=True))


def new_counts_file(path: Path) -> Path:
    path.write_bytes(bytes(COUNTS_BYTES))
    return path


def read_counts(path: Path) -> SyncCounts:
    data = path.read_bytes()[:COUNTS_BYTES].ljust(COUNTS_BYTES, b"\0")
    values = struct.unpack(f"<{N_COUNTERS}Q", data)
    return SyncCounts(*values[:6])


# ---------------------------------------------------------------------------------------
# The lanes


class EnqProbe:
    """One idle till sending ENQ on a fixed schedule; ACKs matched first in, first out."""

    def __init__(self, till: Till) -> None:
        self.till = till
        self.pending: deque[float] = deque()
        self.latencies: list[float] = []
        self.sent = 0
        self.stray = 0  # ACKs with no ENQ outstanding (should stay 0)
        self._answered = asyncio.Event()  # set when no ENQ is outstanding
        till.on_ack = self._on_ack

    def _on_ack(self, now: float) -> None:
        if self.pending:
            self.latencies.append(now - self.pending.popleft())
            if not self.pending:
                self._answered.set()
        else:
            self.stray += 1

    def send(self) -> None:
        self.pending.append(time.monotonic())
        self.till.write(_ENQ)
        self.sent += 1

    async def run(self, start: float, deadline: float, interval: float) -> None:
        next_at = start
        while next_at < deadline:
            now = time.monotonic()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            self.send()
            next_at = max(next_at + interval, time.monotonic())

    async def drain(self, timeout_s: float = ACK_WAIT_S) -> int:
        """Wait for the outstanding ACKs; how many never came."""
        if self.pending:
            self._answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait(), timeout_s)
        return len(self.pending)


async def _sell(till: Till, tag: str, deadline: float, out: list[SaleTiming],
                failures: Counter[str]) -> None:
    k = 0
    while time.monotonic() < deadline:
        txn = f"{tag}{till.tid[-3:]}S{k:06d}"
        k += 1
        try:
            timing = await till.sale(txn, msg_id=f"{tag}{k}")
        except (TimeoutError, ConnectionError) as exc:
            failures[type(exc).__name__] += 1
            if till.broken:  # the agent closed the lane: nothing more to sell on it
                return
            continue
        if timing.status == "success":
            out.append(timing)
        else:
            failures[f"{timing.status} {timing.code}".strip()] += 1


# ---------------------------------------------------------------------------------------
# One run


async def quiet(agent: AgentProcess, counts: Path, delay_ms: float
                ) -> tuple[JournalCommits | None, SyncCounts]:
    """The agent's commit histogram and the shim's counters once neither moves.

    A sale's last commit (`delivered`) follows its result frame, so right after the
    registers have read their results some commits (and their fsyncs) are still to come.
    """
    pause_s = 0.2 + 2 * delay_ms / 1000
    last: tuple[float | None, int] | None = None
    commits: JournalCommits | None = None
    syncs = read_counts(counts)
    for _ in range(SETTLE_TRIES):
        await asyncio.sleep(pause_s)
        commits = await agent.journal_commits()
        syncs = read_counts(counts)
        now = (commits.count if commits is not None else None, syncs.syncs)
        if now == last:
            break
        last = now
    return commits, syncs


async def run_delay(delay_ms: float, args: argparse.Namespace, shim: Path,
                    tmp: Path) -> dict[str, object]:
    workdir = tmp / f"delay-{delay_ms:g}ms"
    workdir.mkdir()
    counts_path = new_counts_file(workdir / "fsync-counts")
    tills = Tills.make(tcp=SELLING_LANES + IDLE_LANES)
    sellers = list(tills)[:SELLING_LANES]
    probes = [EnqProbe(t) for t in list(tills)[SELLING_LANES:]]
    timings: list[SaleTiming] = []
    failures: Counter[str] = Counter()
    with tills:
        async with emulator(workdir, separate=not args.emulator_inproc) as emu:
            config = process_config(base_url=emu.base_url, journal=workdir / "journal.db",
                                       key_file=write_key(workdir), lanes=tills.lane_specs())
            async with AgentProcess(workdir, config,
                                    extra_env=shim_env(shim, delay_ms, counts_path)) as agent, \
                    tills.connected():
                if read_counts(counts_path).loaded < 1:
                    raise RuntimeError("the agent did not load the shim (LD_PRELOAD ignored?)")
                # Warm-up: every selling lane's link and the HTTP pool; the idle lanes' links.
                await asyncio.gather(*(t.sale(f"W{t.tid}X") for t in sellers))
                for probe in probes:
                    probe.send()
                    await probe.drain()
                    probe.latencies.clear()
                    probe.sent = 0
                commits0, syncs0 = await quiet(agent, counts_path, delay_ms)
                load0 = loadavg()
                start = time.monotonic()
                deadline = start + args.seconds
                probing = [asyncio.create_task(
                    p.run(start + i * args.enq_interval / len(probes), deadline,
                          args.enq_interval)) for i, p in enumerate(probes)]
                await asyncio.gather(*(_sell(t, "S", deadline, timings, failures)
                                       for t in sellers))
                wall = time.monotonic() - start
                await asyncio.gather(*probing)
                unanswered = sum([await p.drain() for p in probes])
                commits1, syncs1 = await quiet(agent, counts_path, delay_ms)
                syncs = syncs1.since(syncs0)
                commits = commits1.since(commits0).count if commits1 is not None else None
                record = await emu.record()
    enq_ms = [x * 1000 for p in probes for x in p.latencies]
    sales_at_emulator = Counter(c.txn for c in record.by_api("sale"))
    mine = {t.txn for t in timings}
    in_window = sum(1 for t in timings if t.result is not None and t.result <= deadline)
    return {
        "delay_ms": delay_ms, "seconds": args.seconds, "wall_s": wall,
        "enq": {**summary_ms([x / 1000 for x in enq_ms]),
                "sent": sum(p.sent for p in probes), "unanswered": unanswered,
                "over_r1": sum(1 for x in enq_ms if x > R1_MS),
                "over_s1": sum(1 for x in enq_ms if x > S1_MS),
                "stray_acks": sum(p.stray for p in probes)},
        "sales": len(timings), "sales_per_s": len(timings) / wall if wall else float("nan"),
        "sales_done_in_window": in_window,
        "sale_round_trip": summary_ms([t.result - t.sent for t in timings
                                       if t.result is not None]),
        "failures": dict(failures),
        "sale_frames_resent": sum(t.resends for t in sellers),
        "sales_sent_twice": sum(1 for txn, n in sales_at_emulator.items()
                                if txn in mine and n != 1),
        "commits": commits, "syncs": syncs.syncs, "sync_calls": syncs.asdict(),
        "commits_per_fsync": (commits / syncs.syncs) if commits is not None and syncs.syncs
        else None,
        "fsyncs_per_sale": fsyncs_per_sale(syncs.syncs, len(timings)),
        "loadavg_before": load0, "loadavg_after": loadavg(),
    }


# ---------------------------------------------------------------------------------------
# Verdicts and the table


def fsyncs_per_sale(syncs: int, sales: int) -> float | None:
    """Syncs per completed sale: needs no /metrics (4 today: one per commit)."""
    return syncs / sales if sales else None


def targets_text(delay_ms: float) -> str:
    parts = []
    if delay_ms in TARGET_ENQ_DELAYS_MS:
        parts.append(f"ENQ p99 ≤ {TARGET_ENQ_P99_MS:g} ms")
    if delay_ms == TARGET_SALES_DELAY_MS:
        parts.append(f"≥ {TARGET_SALES_PER_S:g} sales/s")
    return "; ".join(parts) or "—"


def verdict(run: dict[str, object]) -> bool | None:
    """Whether this run meets the targets that apply to its delay (None: none apply)."""
    delay = float(str(run["delay_ms"]))
    enq = run["enq"]
    assert isinstance(enq, dict)
    checks: list[bool] = []
    if delay in TARGET_ENQ_DELAYS_MS:
        checks.append(enq["p99_ms"] <= TARGET_ENQ_P99_MS and not enq["unanswered"])
    if delay == TARGET_SALES_DELAY_MS:
        checks.append(float(str(run["sales_per_s"])) >= TARGET_SALES_PER_S)
    return all(checks) if checks else None


def verdict_text(met: bool | None) -> str:
    return "—" if met is None else "met" if met else "MISSED"


def _count(value: object) -> str:
    return f"{value:.0f}" if isinstance(value, float) else "?"


def _ratio(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "?"


HEADERS = ["+ms per fsync", "ENQ→ACK p50 ms", "p99 ms", "max ms", f"> {R1_MS:g} ms (R1)",
           f"> {S1_MS:g} ms (S1)", "no ACK", "sales", "sales/s", "commits", "fsyncs",
           "commits/fsync", "fsyncs/sale", "target", "verdict", "issue 11 baseline"]


def rows(runs: list[dict[str, object]]) -> list[list[object]]:
    out: list[list[object]] = []
    for run in runs:
        enq = run["enq"]
        assert isinstance(enq, dict)
        delay = float(str(run["delay_ms"]))
        out.append([f"+{delay:g}", enq["p50_ms"], enq["p99_ms"], enq["max_ms"],
                    f"{enq['over_r1']}/{enq['n']:.0f}", enq["over_s1"], enq["unanswered"],
                    run["sales"], run["sales_per_s"],
                    _count(run["commits"]), run["syncs"],
                    _ratio(run["commits_per_fsync"]),
                    _ratio(fsyncs_per_sale(int(str(run["syncs"])), int(str(run["sales"])))),
                    targets_text(delay),
                    verdict_text(verdict(run)), BASELINE.get(delay, "—")])
    return out


def _print_run(run: dict[str, object]) -> None:
    enq = run["enq"]
    assert isinstance(enq, dict)
    print(f"  +{float(str(run['delay_ms'])):g} ms per fsync: ENQ→ACK p50 {enq['p50_ms']:.1f} / "
          f"p99 {enq['p99_ms']:.1f} / max {enq['max_ms']:.1f} ms ({enq['n']:.0f} ENQs, "
          f"{enq['unanswered']} unanswered); {run['sales']} sales, "
          f"{float(str(run['sales_per_s'])):.1f}/s; {_count(run['commits'])} commits, "
          f"{run['syncs']} fsyncs; failures {run['failures'] or 'none'}", flush=True)


# ---------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    delays = [float(x) for x in args.delays.split(",") if x]
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="edc-bench-slowdisk-") as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            shim = build_shim(tmp)
        except NoCompiler as exc:
            print(f"slowdisk: skipped: {exc}; the benchmark compiles its LD_PRELOAD shim "
                  f"({SHIM_SOURCE.name}) at run time", file=sys.stderr)
            return 0
        print(f"{SELLING_LANES} lanes selling, {IDLE_LANES} idle lanes sending ENQ every "
              f"{args.enq_interval * 1000:g} ms, {args.seconds:g} s per delay", flush=True)
        for delay in delays:
            run = await run_delay(delay, args, shim, tmp)
            runs.append(run)
            _print_run(run)
    print()
    print(table(HEADERS, rows(runs)))
    verdicts = [v for v in (verdict(r) for r in runs) if v is not None]
    met = all(verdicts) if verdicts else None
    print(f"\ntargets (issue 11): idle ENQ→ACK p99 ≤ {TARGET_ENQ_P99_MS:g} ms at "
          f"{' and '.join(f'+{d:g}' for d in TARGET_ENQ_DELAYS_MS)} ms per fsync; "
          f"≥ {TARGET_SALES_PER_S:g} sales/s at +{TARGET_SALES_DELAY_MS:g} ms → "
          f"{verdict_text(met)}")
    data: dict[str, object] = {
        "benchmark": "slowdisk", "command": " ".join(["python", *sys.argv]),
        "seconds": args.seconds, "enq_interval_s": args.enq_interval,
        "selling_lanes": SELLING_LANES, "idle_lanes": IDLE_LANES,
        "emulator": "bench process" if args.emulator_inproc else "own process",
        "runs": runs, "baseline": {f"{k:g}": v for k, v in BASELINE.items()},
        "targets": {"enq_p99_ms": TARGET_ENQ_P99_MS,
                    "enq_delays_ms": list(TARGET_ENQ_DELAYS_MS),
                    "sales_per_s": TARGET_SALES_PER_S,
                    "sales_delay_ms": TARGET_SALES_DELAY_MS},
        "target_met": met, "loadavg": loadavg(),
    }
    if args.json is None:
        path = write_results("slowdisk", data)
    else:
        path = args.json
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(f"written to {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", default=",".join(f"{d:g}" for d in DELAYS_MS),
                        help="comma-separated ms added to every fsync, one run each")
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help="how long the six lanes sell (and the two probe) per delay")
    parser.add_argument("--enq-interval", type=float, default=ENQ_INTERVAL_S,
                        help="seconds between two ENQs of one idle lane")
    parser.add_argument("--emulator-inproc", action="store_true",
                        help="run the emulator in this process instead of its own")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write the results here (default bench/results/slowdisk.json)")
    args = parser.parse_args()
    return run_bench(lambda: main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())

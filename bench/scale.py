"""Scale: 1, 16, 64 and 256 lanes selling at once through one agent process.

    python bench/scale.py [--lanes 1,16,64,256] [--seconds 10] [--paced-seconds 20]
                          [--interval 5] [--emulator-inproc] [--py-spy DIR]

The agent runs in its own process (`python -m agent run`, production settings: WAL
journal with synchronous=FULL, log level info), so are the Paytm emulator and this
bench (the registers). Lanes are half ptys (serial://) and half loopback TCP
(tcp://); one lane is a pty. Every lane has its own terminal.

Per lane count, two runs (paced from 64 lanes up: fewer give too few sales for a p99):

  saturated  every lane sells back to back for --seconds: the agent's capacity
             (sales per second), its CPU seconds per sale, and the latency when
             every till presses "pay" again the moment its last sale ends. The agent
             is one Python thread: when it is busy, a sale waits for the ones ahead.
  paced      every lane starts a sale on average every --interval seconds (Poisson
             arrivals) for --paced-seconds: the latency at a stated load.
             At 5 s that is 51 sales/s for 256 lanes, with no customer time: several
             times the Paytm traffic of 256 real tills (a card sale every ~30 s per
             till, a status poll every 5 s while the customer pays).

Added latency = leg 1 (sale frame written → Sale in at the emulator) + leg 2 (final
status answer out of the emulator → result frame read), per sale; see
bench/latency.py. Also reported: agent CPU s/sale (utime+stime from /proc/PID/stat),
peak RSS (VmHWM from /proc/PID/status), and the CPU share of the agent, the
emulator and this bench during the run, to say which one limits each figure.
Target: 256 lanes on 2 cores with p99 added latency under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import run_bench, summary_ms, table, write_results
from bench.tills import SaleTiming, Till, Tills, sale_legs
from devtools.config import process_config, write_key
from devtools.emulator import EmulatorHandle, EmulatorProcess, emulator
from devtools.process import AgentProcess
from devtools.procfs import cpu_busy_sample, cpu_seconds, loadavg

TARGET_MS = 50.0
TARGET_LANES = 256
WARMUP_ROUNDS = 2
PACED_MIN_LANES = 64  # fewer lanes at 1 sale / 5 s give too few sales for a p99


@dataclass
class Window:
    """CPU of the three processes and of the machine over one measured run."""

    wall: float
    agent_s: float
    emulator_s: float
    bench_s: float
    machine_busy: float  # fraction of all CPUs busy (every process on the box)


class Meter:
    def __init__(self, agent: AgentProcess, emu: EmulatorHandle) -> None:
        self.agent = agent
        self.emu = emu

    def _sample(self) -> tuple[float, float, float, float, tuple[float, float]]:
        emu_s = self.emu.cpu_s() if isinstance(self.emu, EmulatorProcess) else 0.0
        return (time.perf_counter(), self.agent.cpu_s(), emu_s, cpu_seconds(os.getpid()),
                cpu_busy_sample())

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> Window:
        end = self._sample()
        s = self._start
        busy = (end[4][0] - s[4][0]) / max(1.0, end[4][1] - s[4][1])
        return Window(wall=end[0] - s[0], agent_s=end[1] - s[1], emulator_s=end[2] - s[2],
                      bench_s=end[3] - s[3], machine_busy=busy)


async def _lane(till: Till, tag: str, deadline: float, interval: float | None,
                out: list[SaleTiming], rng: random.Random) -> None:
    k = 0
    # Paced: sales start at random (Poisson) moments, on average `interval` apart; a sale
    # due while the previous one is still running starts when it ends.
    next_at = time.monotonic() + (rng.expovariate(1 / interval) if interval else 0.0)
    while True:
        now = time.monotonic()
        if next_at >= deadline or now >= deadline:
            return
        if next_at > now:
            await asyncio.sleep(next_at - now)
        timing = await till.sale(f"{tag}{till.tid[-3:]}S{k:06d}", msg_id=f"{tag}{k}")
        if timing.status != "success":
            raise RuntimeError(f"{till.name}: sale {timing.txn}: {timing.status} {timing.code}")
        out.append(timing)
        k += 1
        next_at = max(next_at + rng.expovariate(1 / interval), time.monotonic()) \
            if interval else time.monotonic()


async def _measure(tills: Tills, agent: AgentProcess, emu: EmulatorHandle, tag: str,
                   seconds: float, interval: float | None, profile: Path | None
                   ) -> dict[str, object]:
    rng = random.Random(len(tills))
    timings: list[SaleTiming] = []
    meter = Meter(agent, emu)
    load0 = loadavg()
    commits0 = await agent.journal_commits()
    async with agent.profiled(profile):
        meter.start()
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_lane(t, tag, deadline, interval, timings, rng) for t in tills))
        window = meter.stop()
    commits1 = await agent.journal_commits()
    record = await emu.record()
    legs = sale_legs(timings, record)
    if legs.missing:
        raise RuntimeError(f"{len(legs.missing)} sales without a complete record")
    dupes = sum(1 for n in legs.sales_at_emulator.values() if n != 1)
    if dupes:
        raise RuntimeError(f"{dupes} txns reached the emulator other than exactly once")
    n = len(timings)
    added = summary_ms(legs.added)
    kinds = {t.name: t.link.split(":", 1)[0] for t in tills}
    by_link: dict[str, dict[str, float]] = {}
    for kind in sorted(set(kinds.values())):
        part = sale_legs([t for t in timings if kinds[t.lane] == kind], record)
        by_link[kind] = summary_ms(part.added)
    return {
        "mode": "paced" if interval else "saturated", "interval_s": interval,
        "sales": n, "wall_s": window.wall, "sales_per_s": n / window.wall,
        "agent_cpu_ms_per_sale": window.agent_s / n * 1000 if n else float("nan"),
        "agent_cpu_share": window.agent_s / window.wall,
        "emulator_cpu_share": window.emulator_s / window.wall,
        "bench_cpu_share": window.bench_s / window.wall,
        "machine_busy": window.machine_busy,
        "leg1": summary_ms(legs.leg1), "leg2": summary_ms(legs.leg2), "added": added,
        "added_by_link": by_link,
        "round_trip": summary_ms(legs.round_trip),
        # The agent's own record of its journal commits in the run (from /metrics): each
        # one holds the event loop, so `loop_share` is the time every lane stood still.
        "journal": commits1.since(commits0).summary(window.wall, n) if commits1 else None,
        "loadavg_before": load0, "loadavg_after": loadavg(),
    }


async def run_lanes(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    pty = max(1, n // 2) if n else 0
    tills = Tills.make(pty=pty, tcp=n - pty)
    workdir = tmp / f"lanes-{n}"
    workdir.mkdir()
    runs: list[dict[str, object]] = []
    with tills:
        async with emulator(workdir, separate=not args.emulator_inproc) as emu:
            config = process_config(base_url=emu.base_url, journal=workdir / "journal.db",
                                       key_file=write_key(workdir), lanes=tills.lane_specs())
            async with AgentProcess(workdir, config) as agent, tills.connected():
                for r in range(WARMUP_ROUNDS):  # every lane's link, the HTTP pool, caches
                    await asyncio.gather(*(t.sale(f"W{r}{t.tid}X") for t in tills))
                profile_dir: Path | None = args.py_spy
                for mode in ("saturated", "paced"):
                    if mode == "paced" and (not args.paced_seconds or n < PACED_MIN_LANES):
                        continue  # a handful of sales says nothing about a p99
                    profile = profile_dir / f"scale-{n}-{mode}.txt" if profile_dir else None
                    run = await _measure(
                        tills, agent, emu, "S" if mode == "saturated" else "P",
                        args.seconds if mode == "saturated" else args.paced_seconds,
                        None if mode == "saturated" else args.interval, profile)
                    runs.append(run)
                    _print_run(n, tills.kinds, run)
                mem = agent.memory()
    return {"lanes": n, "links": tills.kinds,
            "emulator": "bench process" if args.emulator_inproc else "own process",
            "agent_hwm_kb": mem.hwm_kb, "agent_rss_kb": mem.rss_kb,
            "agent_ready_s": agent.ready_s, "runs": runs}


def _print_run(n: int, kinds: str, run: dict[str, object]) -> None:
    added, leg1, leg2 = run["added"], run["leg1"], run["leg2"]
    assert isinstance(added, dict) and isinstance(leg1, dict) and isinstance(leg2, dict)
    journal = run.get("journal")
    commits = (f", journal commits {journal['loop_share']:.0%} of the time "
               f"(mean {journal['mean_ms']:.2f} ms, {journal['over_100ms']:.0f} over 100 ms)"
               if isinstance(journal, dict) else "")
    print(f"  {n:>3} lanes ({kinds}), {run['mode']}: {run['sales']} sales, "
          f"{run['sales_per_s']:.1f}/s, added p99 {added['p99_ms']:.1f} ms "
          f"(leg1 {leg1['p99_ms']:.1f}, leg2 {leg2['p99_ms']:.1f}), "
          f"agent CPU {run['agent_cpu_share']:.0%}{commits}", flush=True)


def _rows(results: list[dict[str, object]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for res in results:
        runs = res["runs"]
        assert isinstance(runs, list)
        for run in runs:
            added, leg1, leg2 = run["added"], run["leg1"], run["leg2"]
            mode = run["mode"] if run["mode"] == "saturated" else f"paced {run['interval_s']:g} s"
            rows.append([res["lanes"], mode, run["sales"], run["sales_per_s"], added["p50_ms"],
                         added["p99_ms"], leg1["p99_ms"], leg2["p99_ms"],
                         run["agent_cpu_ms_per_sale"], f"{run['agent_cpu_share']:.0%}",
                         f"{run['emulator_cpu_share']:.0%}", f"{run['bench_cpu_share']:.0%}",
                         f"{run['machine_busy']:.0%}", _journal_cell(run.get("journal")),
                         f"{int(str(res['agent_hwm_kb'])) / 1024:.1f}"])
    return rows


def _journal_cell(journal: object) -> str:
    if not isinstance(journal, dict):
        return "?"
    return f"{journal['loop_share']:.0%} ({journal['mean_ms']:.1f} ms)"


HEADERS = ["lanes", "load", "sales", "sales/s", "added p50 ms", "added p99 ms", "leg1 p99",
           "leg2 p99", "agent CPU ms/sale", "agent CPU", "emulator CPU", "bench CPU",
           "machine busy", "in commits (mean)", "agent peak RSS MiB"]


def verdict(results: list[dict[str, object]]) -> bool | None:
    for res in results:
        if res["lanes"] != TARGET_LANES:
            continue
        runs = res["runs"]
        assert isinstance(runs, list)
        for run in runs:
            if run["mode"] == "paced":
                return bool(run["added"]["p99_ms"] < TARGET_MS)
    return None


def pty_room() -> dict[str, int]:
    """The kernel's pty limit and how many are open now (each pty lane takes one)."""
    out: dict[str, int] = {}
    for name in ("max", "nr"):
        with contextlib.suppress(OSError, ValueError):
            out[name] = int(Path(f"/proc/sys/kernel/pty/{name}").read_text())
    return out


async def main_async(args: argparse.Namespace) -> int:
    counts = [int(x) for x in args.lanes.split(",") if x]
    room = pty_room()
    need = max(max(1, n // 2) for n in counts) if counts else 0
    if "max" in room and room["max"] - room.get("nr", 0) < need:
        print(f"not enough ptys: {need} needed, kernel.pty.max {room['max']}, "
              f"{room.get('nr', 0)} in use", file=sys.stderr)
        return 2
    results: list[dict[str, object]] = []
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edc-bench-scale-") as tmp_dir:
        for n in counts:
            results.append(await run_lanes(n, args, Path(tmp_dir)))
    print()
    print(table(HEADERS, _rows(results)))
    met = verdict(results)
    if met is not None:
        print(f"\ntarget: {TARGET_LANES} lanes (paced) with p99 added latency < "
              f"{TARGET_MS:g} ms on {os.cpu_count()} CPUs → {'met' if met else 'MISSED'}")
    print(f"load average now: {loadavg()}")
    path = write_results("scale", {
        "benchmark": "scale", "command": " ".join(["python", *sys.argv]),
        "seconds": args.seconds, "paced_seconds": args.paced_seconds,
        "interval_s": args.interval, "results": results, "target_ms": TARGET_MS,
        "pty": room,
        "target_met": met, "loadavg": loadavg(),
    })
    print(f"written to {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", default="1,16,64,256", help="comma-separated lane counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="saturated run length")
    parser.add_argument("--paced-seconds", type=float, default=20.0,
                        help="paced run length (0: skip)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="paced: mean seconds between one lane's sales")
    parser.add_argument("--emulator-inproc", action="store_true",
                        help="run the emulator in this process instead of its own")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="profile the agent in each run (collapsed stacks into DIR)")
    args = parser.parse_args()
    return run_bench(lambda: main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())

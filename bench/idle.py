"""Idle: 64 lanes with their registers connected and no traffic: the agent's CPU and RSS.

    python bench/idle.py [--lanes 64] [--seconds 60] [--transactions 100000]

The agent runs as in production (`python -m agent run`, $NOTIFY_SOCKET set so the
systemd status line is refreshed as under systemd, technician page listening, log
level info), with production polling settings. Half the lanes are ptys, half TCP
connections, every register attached and silent. After a settling pause (start-up
work: undelivered results going out, first status line), CPU time
(utime+stime, /proc/PID/stat) is read every 5 s for --seconds.

Two runs: an empty journal, and a store's journal of --transactions rows (a few
results undelivered and some sales unknown, none in flight: an idle store; see
bench/journalgen.py). Target: under 1% of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import run_bench, table, write_results
from bench.journalgen import build_history
from bench.tills import Tills
from devtools.config import process_config, write_key
from devtools.emulator import emulator
from devtools.process import AgentProcess
from devtools.procfs import loadavg

TARGET_SHARE = 0.01
SAMPLE_S = 5.0
SETTLE_S = 3.0


def _switches(pid: int) -> int:
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            total += int(line.split()[1])
    return total


async def idle_run(label: str, journal: Path, lanes: int, seconds: float,
                   tmp: Path, profile: Path | None = None) -> dict[str, object]:
    pty = lanes // 2
    with Tills.make(pty=pty, tcp=lanes - pty) as tills:
        async with emulator(tmp, separate=False) as emu:
            config = process_config(base_url=emu.base_url, journal=journal,
                                       key_file=write_key(tmp), lanes=tills.lane_specs(),
                                       polling={})
            async with AgentProcess(tmp, config, name=f"agent-{label}") as agent, \
                    tills.connected():
                await asyncio.sleep(SETTLE_S)
                load0 = loadavg()
                windows: list[float] = []
                async with agent.profiled(profile, rate=100):
                    cpu0, wall0, sw0 = agent.cpu_s(), time.perf_counter(), _switches(agent.pid)
                    last_cpu, last_wall = cpu0, wall0
                    while time.perf_counter() - wall0 < seconds - 1e-3:
                        await asyncio.sleep(min(SAMPLE_S,
                                                seconds - (time.perf_counter() - wall0)))
                        cpu, wall = agent.cpu_s(), time.perf_counter()
                        windows.append((cpu - last_cpu) / (wall - last_wall))
                        last_cpu, last_wall = cpu, wall
                    cpu_s = agent.cpu_s() - cpu0
                    wall_s = time.perf_counter() - wall0
                    switches = _switches(agent.pid) - sw0
                mem = agent.memory()
                frames = sum(t.frames_in for t in tills)
                enqs = sum(t.enqs_in for t in tills)
    share = cpu_s / wall_s
    return {"label": label, "lanes": lanes, "links": tills.kinds, "seconds": wall_s,
            "cpu_s": cpu_s, "cpu_share": share, "max_window_share": max(windows),
            "windows": windows, "context_switches_per_s": switches / wall_s,
            "rss_kb": mem.rss_kb, "hwm_kb": mem.hwm_kb, "frames_to_registers": frames,
            "enq_to_registers": enqs, "loadavg_before": load0, "loadavg_after": loadavg()}


async def main_async(args: argparse.Namespace) -> int:
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="edc-bench-idle-") as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "empty").mkdir()
        runs.append(await idle_run("empty journal", tmp / "empty" / "journal.db", args.lanes,
                                   args.seconds, tmp / "empty"))
        if args.transactions:
            (tmp / "full").mkdir()
            journal = tmp / "full" / "journal.db"
            states = build_history(journal, args.transactions, args.lanes, in_flight=0,
                                   never_sent=0)
            runs.append(await idle_run(f"{states['total']:,} transactions", journal,
                                       args.lanes, args.seconds, tmp / "full", args.py_spy))
    rows = [[r["label"], r["lanes"], r["seconds"], f"{float(str(r['cpu_share'])):.2%}",
             f"{float(str(r['max_window_share'])):.2%}", r["context_switches_per_s"],
             f"{int(str(r['rss_kb'])) / 1024:.1f}"] for r in runs]
    print(table(["journal", "lanes", "seconds", "agent CPU (of one core)",
                 f"worst {SAMPLE_S:g} s", "context switches/s", "RSS MiB"], rows))
    met = all(float(str(r["cpu_share"])) < TARGET_SHARE for r in runs)
    print(f"\ntarget: idle CPU < {TARGET_SHARE:.0%} of one core with {args.lanes} lanes → "
          f"{'met' if met else 'MISSED'}")
    print(f"load average now: {loadavg()}")
    path = write_results("idle", {
        "benchmark": "idle", "command": " ".join(["python", *sys.argv]),
        "runs": runs, "target_share": TARGET_SHARE, "target_met": met, "loadavg": loadavg(),
    })
    print(f"written to {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--transactions", type=int, default=100_000,
                        help="rows in the second run's journal (0: skip that run)")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="profile the agent during the big-journal run (collapsed stacks)")
    args = parser.parse_args()
    return run_bench(lambda: main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())

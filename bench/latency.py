"""Added latency: what the agent adds to each leg of a sale, against the wire's own time.

    python bench/latency.py [--sales 1000] [--link pty|tcp] [--separate-emulator]
                            [--fsync-commits 300]

The agent runs as in production, in its own process (`python -m agent run`, journal
fsync'd: WAL, synchronous=FULL), started like systemd starts it and used once READY=1
arrives. This process plays the register (one lane over a pty, or loopback TCP) and,
unless --separate-emulator, the Paytm emulator. Sales go one after another.

Leg 1: the register writes its `sale` frame → the Sale request is in at the emulator.
       The agent decodes and checks the frame, ACKs it, journals the sale (one fsync),
       signs and sends the HTTP request.
Leg 2: the emulator's answer to the final Status Enquiry leaves → the `result` frame
       is read by the register. The agent verifies and parses the answer, journals the
       result and its outbox row (one fsync), builds and writes the frame.

Beside them: the wire time of the same frames (the real sale request frame and result
frame, 10 bits a byte) at 9600 and 115200 baud — the floor a serial register pays
however fast the agent is — and the ratio agent/wire. A pty has no baud rate: the
bytes cross in microseconds, so what is measured is the agent's own share.

Also measured on this disk: the cost of one SQLite commit in WAL mode with
synchronous=FULL (one fsync) and with synchronous=OFF, to read the target
"p99 under 5 ms plus one fsync per leg".
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import run_bench, summary_ms, table, wire_time_s, write_results
from bench.tills import SaleTiming, Tills, sale_legs
from devtools.config import process_config, write_key
from devtools.emulator import emulator
from devtools.process import AgentProcess
from devtools.procfs import loadavg

TARGET_MS = 5.0  # per leg, plus one fsync
BAUDS = (9600, 115200)
WARMUP_SALES = 20


def fsync_cost(directory: Path, commits: int) -> dict[str, dict[str, float]]:
    """One small insert per commit, WAL mode, synchronous FULL vs OFF, on this disk."""
    out: dict[str, dict[str, float]] = {}
    for mode in ("FULL", "OFF"):
        path = directory / f"fsync-{mode}.db"
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={mode}")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at REAL, data TEXT)")
            samples: list[float] = []
            for i in range(commits):
                start = time.perf_counter()
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO t (at, data) VALUES (?, ?)", (time.time(), "x" * 200))
                db.execute("COMMIT")
                samples.append(time.perf_counter() - start)
                if i % 50 == 49:
                    time.sleep(0.001)  # like a till: commits arrive spread out, not in a burst
            out[mode] = summary_ms(samples)
        finally:
            db.close()
    return out


async def measure(sales: int, link: str, separate: bool, tmp: Path,
                  profile: Path | None = None, gil_only: bool = False) -> dict[str, object]:
    tills = Tills.make(pty=1 if link == "pty" else 0, tcp=1 if link == "tcp" else 0)
    with tills:
        async with emulator(tmp, separate=separate) as emu:
            config = process_config(base_url=emu.base_url, journal=tmp / "journal.db",
                                       key_file=write_key(tmp), lanes=tills.lane_specs())
            async with AgentProcess(tmp, config) as agent, tills.connected():
                till = tills[0]
                for k in range(WARMUP_SALES):  # connections, imports, SQLite caches
                    await till.sale(f"WARM{k:08d}")
                cpu0, load0 = agent.cpu_s(), loadavg()
                commits0 = await agent.journal_commits()
                timings: list[SaleTiming] = []
                started = time.perf_counter()
                async with agent.profiled(profile, gil_only=gil_only):
                    for k in range(sales):
                        timing = await till.sale(f"LAT{k:08d}", msg_id=f"s{k}")
                        if timing.status != "success":
                            raise RuntimeError(f"sale {timing.txn}: {timing.status} "
                                               f"{timing.code}")
                        timings.append(timing)
                wall = time.perf_counter() - started
                cpu = agent.cpu_s() - cpu0
                mem = agent.memory()
                commits1 = await agent.journal_commits()
                record = await emu.record()
    legs = sale_legs(timings, record)
    if legs.missing:
        raise RuntimeError(f"{len(legs.missing)} sales without a complete record: "
                           f"{legs.missing[:5]}")
    duplicates = {txn: n for txn, n in legs.sales_at_emulator.items() if n != 1}
    if duplicates:
        raise RuntimeError(f"Sales per txn not exactly 1: {list(duplicates.items())[:5]}")
    request_bytes = int(statistics.median(t.request_frame_bytes for t in timings))
    result_bytes = int(statistics.median(t.result_frame_bytes for t in timings))
    return {
        "link": link, "sales": sales, "emulator": "own process" if separate else "bench process",
        "wall_s": wall, "sales_per_s": sales / wall,
        "agent_cpu_ms_per_sale": cpu / sales * 1000, "agent_rss_kb": mem.rss_kb,
        "agent_hwm_kb": mem.hwm_kb, "agent_ready_s": agent.ready_s,
        "leg1": summary_ms(legs.leg1), "leg2": summary_ms(legs.leg2),
        "round_trip": summary_ms(legs.round_trip), "emulator_time": summary_ms(legs.emulator),
        "request_frame_bytes": request_bytes, "result_frame_bytes": result_bytes,
        "journal": commits1.since(commits0).summary(wall, sales) if commits1 else None,
        "loadavg_before": load0, "loadavg_after": loadavg(),
    }


def report(run: dict[str, object], fsync: dict[str, dict[str, float]]) -> bool:
    leg1, leg2 = run["leg1"], run["leg2"]
    assert isinstance(leg1, dict) and isinstance(leg2, dict)
    frames = {"leg1": int(str(run["request_frame_bytes"])),
              "leg2": int(str(run["result_frame_bytes"]))}
    rows = []
    for name, leg, label in (("leg1", leg1, "1: sale frame in → Sale at Paytm"),
                             ("leg2", leg2, "2: final status out → result frame out")):
        wires = [wire_time_s(frames[name], b) * 1000 for b in BAUDS]
        rows.append([label, frames[name], leg["p50_ms"], leg["p99_ms"], leg["max_ms"],
                     wires[0], wires[1], leg["p50_ms"] / wires[0], leg["p50_ms"] / wires[1]])
    print(table(["leg", "frame B", "agent p50 ms", "p99 ms", "max ms", "wire 9600 ms",
                 "wire 115200 ms", "p50/wire 9600", "p50/wire 115200"], rows))
    print()
    print(table(["SQLite commit, WAL", "p50 ms", "p99 ms", "max ms"],
                [[f"synchronous={mode}", s["p50_ms"], s["p99_ms"], s["max_ms"]]
                 for mode, s in fsync.items()]))
    fsync_p99 = fsync["FULL"]["p99_ms"]
    limit = TARGET_MS + fsync_p99
    met = bool(leg1["p99_ms"] < limit and leg2["p99_ms"] < limit)
    rt = run["round_trip"]
    assert isinstance(rt, dict)
    print(f"\n{run['sales']} sales over {run['link']}, emulator in the {run['emulator']}: "
          f"{run['sales_per_s']:.1f} sales/s one after another, register round trip "
          f"p50 {rt['p50_ms']:.2f} ms; agent CPU {run['agent_cpu_ms_per_sale']:.2f} ms/sale, "
          f"RSS {int(str(run['agent_rss_kb'])) / 1024:.1f} MiB")
    journal = run.get("journal")
    if isinstance(journal, dict):
        print(f"the agent's journal commits (its /metrics): {journal['commits_per_sale']:.1f} per "
              f"sale, mean {journal['mean_ms']:.2f} ms, {journal['over_10ms']:.0f} over 10 ms")
    print(f"load average before/after: {run['loadavg_before']} / {run['loadavg_after']}")
    print(f"target: p99 of each leg < {TARGET_MS:g} ms + one fsync (commit p99 "
          f"{fsync_p99:.2f} ms here) = {limit:.2f} ms → {'met' if met else 'MISSED'}")
    return met


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="edc-bench-latency-") as tmp_dir:
        tmp = Path(tmp_dir)
        fsync = fsync_cost(tmp, args.fsync_commits)
        run = await measure(args.sales, args.link, args.separate_emulator, tmp, args.py_spy,
                            args.py_spy_gil)
    met = report(run, fsync)
    path = write_results("latency", {
        "benchmark": "added latency per leg", "command": " ".join(["python", *sys.argv]),
        "run": run, "fsync": fsync, "bauds": list(BAUDS),
        "wire_ms": {str(b): {"leg1": wire_time_s(int(str(run["request_frame_bytes"])), b) * 1000,
                             "leg2": wire_time_s(int(str(run["result_frame_bytes"])), b) * 1000}
                    for b in BAUDS},
        "target_ms_plus_fsync": TARGET_MS, "target_met": met, "loadavg": loadavg(),
    })
    print(f"written to {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sales", type=int, default=1000)
    parser.add_argument("--link", choices=("pty", "tcp"), default="pty")
    parser.add_argument("--separate-emulator", action="store_true",
                        help="run the emulator in its own process too")
    parser.add_argument("--fsync-commits", type=int, default=300)
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="profile the agent during the sales (collapsed stacks to FILE; "
                             "summarise with python bench/hotspots.py FILE)")
    parser.add_argument("--py-spy-gil", action="store_true",
                        help="with --py-spy: only samples holding the GIL (Python work, "
                             "not fsync waits)")
    args = parser.parse_args()
    return run_bench(lambda: main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())

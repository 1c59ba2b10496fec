"""Fault campaign (issue 8): N sales over L lanes while the agent is SIGKILLed and
restarted, register lines flip and drop bytes, and the Paytm emulator misbehaves.
Half the lanes (--v2-lanes) speak link v2 (protocol §6) at both ends, on a line with
raw noise and symbol flips (STX <-> ACK, SOH -> ENQ, ...) that v1 could not survive; the
verdict counts results the agent marked delivered that the register never received.

    python chaos/campaign.py --sales 2000 --lanes 8 --seed 1
    python chaos/campaign.py --sales 200 --seed 7 --json out.json --keep

    campaign process                                         agent process (restarted)
    ┌──────────────────────────────────────────────┐        ┌──────────────────────┐
    │ register 1 ─ socketpair ─ LaneProxy ─ pty 1 ══╪════════╪═ lane 1 ┐            │
    │ ...            (chaos.line faults)           │        │  ...     ├ engine ─ journal.db
    │ register L ─ socketpair ─ LaneProxy ─ pty L ══╪════════╪═ lane L ┘    │       │
    │ Emulator (aiohttp, 127.0.0.1) ◄──────────────┼────────┼──── HTTP ─────┘       │
    │ Killer (SIGKILL + restart), EmulatorFaults   │        └──────────────────────┘
    └──────────────────────────────────────────────┘

Every wait is bounded: a basket without a final answer after --sale-deadline makes its
lane stuck, and the whole run ends after --max-duration whatever happens. At the end the
line goes quiet, every lane must answer `ping`, the agent must deliver every journaled
result, and is stopped with SIGTERM; then the invariants are checked (chaos.verdict).
Exit status: 0 when every invariant held, 1 on any violation, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.link.timings import LinkProtocol
from agent.sim.paytm import Emulator, EmulatorSettings, demo_bench_tid
from chaos.cloud import CloudLink
from chaos.line import FaultCounts
from chaos.monkey import EmulatorFaults, Killer, LateCustomers, Outages, integrity
from chaos.proxy import LaneProxy, socket_pair
from chaos.register import RegisterLane
from chaos.verdict import Verdict, delivered_not_received, dump, judge, render
from devtools.config import LaneSpec, process_config, write_key
from devtools.process import AgentProcess
from devtools.pty import Pty

# The simulated customers (emulator magic amounts: last two digits of the paise).
MAGIC_MIX: Final[tuple[tuple[str, float], ...]] = (
    ("card", 0.46),  # success by card
    ("01", 0.08),  # declined by the bank
    ("02", 0.06),  # never pays (unknown first, then failed) — or half of them pay late
    ("03", 0.08),  # rejected on the terminal
    ("04", 0.08),  # success, but Status Enquiry says 0404 for a while
    ("05", 0.12),  # success, but the Sale answer is lost
    ("06", 0.12),  # success by UPI
)
PING_WAIT_S: Final = 30.0
DRAIN_WAIT_S: Final = 30.0
DRAIN_POLL_S: Final = 0.2
CHAOS_STOP_WAIT_S: Final = 30.0
PROGRESS_EVERY_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Timing:
    """What the agent is told in its config (kept short so a run finishes in minutes)."""

    connect_timeout_s: float = 1.0
    read_timeout_s: float = 2.0
    first_check_s: float = 0.0
    interval_s: float = 0.2
    slow_after_s: float = 60.0
    slow_interval_s: float = 1.0
    unknown_after_s: float = 3.0
    not_found_grace_s: float = 6.0

    def paytm(self) -> dict[str, float]:
        return {"connect_timeout_s": self.connect_timeout_s,
                "read_timeout_s": self.read_timeout_s}

    def polling(self) -> dict[str, float]:
        return {"first_check_s": self.first_check_s, "interval_s": self.interval_s,
                "slow_after_s": self.slow_after_s, "slow_interval_s": self.slow_interval_s,
                "unknown_after_s": self.unknown_after_s,
                "not_found_grace_s": self.not_found_grace_s}


@dataclass(frozen=True, slots=True)
class Options:
    sales: int = 2000
    lanes: int = 8
    seed: int = 1
    kill_gap_s: float = 15.0
    kill_at_sale: float = 0.015
    kill_at_accepted: float = 0.015
    min_uptime_s: float = 3.0
    line_rate: float = 0.05
    raw_line: bool = False
    v2_lanes: int | None = None  # lanes on link v2; None: half of them (rounded down)
    v2_line_rate: float = 0.001  # v2 lanes: raw faults per byte (flip or drop)
    # Raw lanes (v2, and v1 with --raw-line): probability that a symbol byte becomes
    # another one bit away. Rare on a cable; frequent here so every run meets it.
    symbol_flips: float = 0.03
    quiet_s: float = 3.0
    fault_gap_s: float = 1.0
    outage_gap_s: float = 30.0
    sale_deadline_s: float = 90.0
    max_duration_s: float = 1500.0
    customer_delay_s: float = 0.15
    terminal_timeout_s: float = 4.0
    not_found_window_s: float = 1.0
    timing: Timing = field(default_factory=Timing)
    workdir: Path | None = None
    keep: bool = False
    json_path: Path | None = None
    progress: bool = True


def plan(lane: int, count: int, rng: random.Random, seed: int) -> list[tuple[str, str]]:
    """(txn, amount) for each basket of a lane: ids unique per run, amounts by MAGIC_MIX."""
    kinds = [k for k, _ in MAGIC_MIX]
    weights = [w for _, w in MAGIC_MIX]
    out: list[tuple[str, str]] = []
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        rupees = rng.randint(1, 4999)
        tail = rng.choice([0, *range(7, 100)]) if kind == "card" else int(kind)
        out.append((f"CH{seed % 10000:04d}L{lane:02d}N{n:05d}", str(rupees * 100 + tail)))
    return out


_RESUMED = re.compile(r"resuming sale \S+ \((\w+)\)")


def resumed_states(log: Path) -> dict[str, int]:
    """What the restarted agents found unfinished: sales by journal state (agent.log)."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for match in _RESUMED.finditer(log.read_text(errors="replace")):
            counts[match.group(1)] += 1
    return dict(sorted(counts.items()))


def errors_logged(log: Path) -> int:
    """ERROR/CRITICAL lines and tracebacks in agent.log: none are expected."""
    with contextlib.suppress(OSError):
        text = log.read_text(errors="replace")
        return sum(1 for line in text.splitlines()
                   if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"))
    return 0


def _journal_undelivered(path: Path) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL "
                                  "AND superseded = 0").fetchone()[0])
    except sqlite3.Error:
        return None


async def _progress(registers: list[RegisterLane], killer: Killer, started: float) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        done = sum(len(r.baskets) for r in registers)
        total = sum(len(r.plan) for r in registers)
        print(f"[{time.monotonic() - started:6.0f} s] {done}/{total} baskets, "
              f"{sum(killer.kills.values())} kills", file=sys.stderr, flush=True)


async def _stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Rig:
    """Everything one run wires together (see the drawing at the top)."""

    opts: Options
    workdir: Path
    emulator: Emulator
    cloud: CloudLink
    agent: AgentProcess
    registers: list[RegisterLane]
    proxies: list[LaneProxy]
    killer: Killer
    faults: EmulatorFaults
    outages: Outages
    customers: LateCustomers
    started: float
    versions: list[int]  # link version of each lane, in the order of `registers`
    lane_names: list[str]

    @property
    def journal(self) -> Path:
        return self.workdir / "journal.db"


@contextlib.asynccontextmanager
async def rig(opts: Options, workdir: Path) -> AsyncIterator[Rig]:
    """Build the rig; whatever happens, take all of it down again (in reverse order)."""
    rng = random.Random(opts.seed)
    started = time.monotonic()
    emulator = Emulator(EmulatorSettings(customer_delay_s=opts.customer_delay_s,
                                         terminal_timeout_s=opts.terminal_timeout_s,
                                         not_found_window_s=opts.not_found_window_s))
    customers = LateCustomers(emulator, random.Random(rng.random()))
    hooks: list[Killer] = []

    def hook(event: str, txn: str, amount: str) -> None:
        customers.hook(event, txn, amount)
        for killer in hooks:
            killer.hook(event, txn, amount)

    async with contextlib.AsyncExitStack() as stack:
        emulator_url = await stack.enter_async_context(emulator.serve())
        stack.push_async_callback(customers.stop)
        port = urlsplit(emulator_url).port
        if port is None:
            raise RuntimeError(f"emulator URL without a port: {emulator_url}")
        cloud = CloudLink("127.0.0.1", port)
        await cloud.start()
        stack.push_async_callback(cloud.stop)
        registers: list[RegisterLane] = []
        proxies: list[LaneProxy] = []
        lanes: list[LaneSpec] = []
        v2 = v2_lane_indices(opts.lanes, opts.v2_lanes)
        versions = [2 if i in v2 else 1 for i in range(opts.lanes)]
        for i in range(opts.lanes):
            name = f"lane-{i + 1}"
            pty = Pty()
            stack.callback(pty.close)
            register_fd, proxy_fd = socket_pair()
            if i in v2:
                proxy = LaneProxy(name, proxy_fd, pty.master, seed=opts.seed * 1000 + i,
                                  rate=opts.v2_line_rate, quiet_s=opts.quiet_s, raw=True,
                                  confuse=opts.symbol_flips)
            else:
                proxy = LaneProxy(name, proxy_fd, pty.master, seed=opts.seed * 1000 + i,
                                  rate=opts.line_rate, quiet_s=opts.quiet_s,
                                  raw=opts.raw_line,
                                  confuse=opts.symbol_flips if opts.raw_line else 0.0)
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            count = opts.sales // opts.lanes + (1 if i < opts.sales % opts.lanes else 0)
            # v2 at both ends: a protocol=2 lane and a register that speaks v2 only, so
            # neither ever takes a v1 frame that noise made out of a v2 one.
            register = RegisterLane(f"r{i + 1}", register_fd,
                                    plan(i + 1, count, rng, opts.seed),
                                    sale_deadline_s=opts.sale_deadline_s, hook=hook,
                                    protocol=LinkProtocol.V2 if i in v2 else LinkProtocol.V1)
            await register.open()
            stack.push_async_callback(register.close)
            registers.append(register)
            proxies.append(proxy)
            lanes.append(LaneSpec(name, f"serial://{pty.path}" + ("?protocol=2" if i in v2 else ""),
                                  demo_bench_tid(i + 1), pos_id=f"S1_{i + 1}"))
        config = process_config(base_url=cloud.base_url, journal=workdir / "journal.db",
                                key_file=write_key(workdir), lanes=lanes,
                                polling=opts.timing.polling(), paytm=opts.timing.paytm())
        # Not waiting for READY: kills land during start-up and recovery too.
        agent = AgentProcess(workdir, config, ready=False)
        stack.push_async_callback(agent.kill)  # a no-op once it was stopped
        killer = Killer(agent, workdir / "journal.db", random.Random(rng.random()),
                        mean_gap_s=opts.kill_gap_s, p_at_sale=opts.kill_at_sale,
                        p_at_accepted=opts.kill_at_accepted, min_uptime_s=opts.min_uptime_s)
        hooks.append(killer)
        faults = EmulatorFaults(emulator, random.Random(rng.random()),
                                mean_gap_s=opts.fault_gap_s,
                                read_timeout_s=opts.timing.read_timeout_s)
        outages = Outages(cloud, random.Random(rng.random()), mean_gap_s=opts.outage_gap_s)
        yield Rig(opts=opts, workdir=workdir, emulator=emulator, cloud=cloud, agent=agent,
                  registers=registers, proxies=proxies, killer=killer, faults=faults,
                  outages=outages, customers=customers, started=started, versions=versions,
                  lane_names=[lane.name for lane in lanes])


def v2_lane_indices(lanes: int, v2_lanes: int | None) -> frozenset[int]:
    """Which lanes speak v2: every other one first (lane-2, lane-4, ...), so both versions
    run side by side, then the rest from the top."""
    count = lanes // 2 if v2_lanes is None else max(0, min(lanes, v2_lanes))
    order = [*range(1, lanes, 2), *range(0, lanes, 2)]
    return frozenset(order[:count])


async def sell(r: Rig) -> bool:
    """Every register sells its baskets while the chaos runs. True: --max-duration hit."""
    loop = asyncio.get_running_loop()
    await r.killer.start_agent()
    chaos = [loop.create_task(r.killer.watch(), name="watch"),
             loop.create_task(r.faults.run(), name="emulator-faults"),
             loop.create_task(r.outages.run(), name="outages")]
    if r.opts.progress:
        chaos.append(loop.create_task(_progress(r.registers, r.killer, r.started),
                                      name="progress"))
    killer = loop.create_task(r.killer.run(), name="killer")
    lanes = [loop.create_task(x.run(), name=f"register:{x.name}") for x in r.registers]
    try:
        _, pending = await asyncio.wait(lanes, timeout=r.opts.max_duration_s)
        # The end: the chaos stops, the line goes quiet, the cloud and the agent are up.
        r.faults.active = r.outages.active = False
        for proxy in r.proxies:
            proxy.quiet()
        r.killer.stop()  # a restart in progress is finished first
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CHAOS_STOP_WAIT_S):
                await killer
    finally:
        await _stop_tasks([*lanes, killer, *chaos])
        await r.customers.stop()
    if not r.cloud.listening:  # stopped in the middle of an outage
        await r.cloud.start()
    if not r.agent.running:
        await r.agent.start()
    return bool(pending)


async def settle(r: Rig, verdict: Verdict) -> None:
    """On a clean line: every lane must answer, every journaled result be delivered; then
    SIGTERM, and the journal's integrity."""
    pongs = await asyncio.gather(*(x.ping(PING_WAIT_S) for x in r.registers))
    # Another process's file: nothing to wait on but the file itself.
    left: int | None = None
    for _ in range(int(DRAIN_WAIT_S / DRAIN_POLL_S)):
        left = _journal_undelivered(r.journal)
        if left == 0:
            break
        await asyncio.sleep(DRAIN_POLL_S)
    exit_code = await r.agent.stop()
    integrity_end = await asyncio.to_thread(integrity, r.journal)
    stuck = [x.name for x, pong in zip(r.registers, pongs, strict=True)
             if x.stuck or not pong or not x.done]
    unfinished = sum(len(x.plan) - len(x.baskets) for x in r.registers)
    if unfinished:
        verdict.fail(f"{unfinished} basket(s) never sold (their lane was stuck)")
    for name in stuck:
        verdict.fail(f"lane {name} is stuck")
    if left != 0:
        verdict.fail(f"journal still has {left} undelivered result(s) after "
                     f"{DRAIN_WAIT_S:g} s on a clean line")
    if integrity_end != "ok":
        verdict.fail(f"journal integrity at the end: {integrity_end}")
    for failure in r.killer.integrity_failures:
        verdict.fail(f"journal integrity after a kill: {failure}")
    for code in r.killer.crashes:
        verdict.fail(f"the agent exited by itself with status {code}")
    if exit_code != 0:
        verdict.fail(f"the agent's SIGTERM exit status was {exit_code}")
    if (errors := errors_logged(r.workdir / "agent.log")):
        verdict.fail(f"the agent logged {errors} ERROR line(s) or traceback(s): see agent.log")
    verdict.figures.update({"lanes_stuck": len(stuck), "integrity_end": integrity_end})


def figures(r: Rig) -> dict[str, object]:
    """What happened during the run, for the table and the JSON."""
    line = {1: FaultCounts(), 2: FaultCounts()}
    for proxy, version in zip(r.proxies, r.versions, strict=True):
        for kind in ("flip", "drop_frame_byte", "drop_control", "symbol_flip"):
            total = line[version]
            setattr(total, kind, getattr(total, kind) + getattr(proxy.counts, kind))
    baskets = [b for x in r.registers for b in x.baskets]
    kills = sum(r.killer.kills.values())
    return {
        "seed": r.opts.seed, "lanes": r.opts.lanes, "sales_requested": r.opts.sales,
        "line_model": "raw" if r.opts.raw_line else "detectable",
        "integrity_after_kills": (f"ok x{kills}" if not r.killer.integrity_failures
                                  else f"{len(r.killer.integrity_failures)} failed"),
        "kills": dict(sorted(r.killer.kills.items())),
        "kills_total": kills,
        "agent_starts": r.agent.starts,
        "resumed_after_kill": resumed_states(r.workdir / "agent.log"),
        "agent_errors_logged": errors_logged(r.workdir / "agent.log"),
        "crashes": r.killer.crashes,
        "cloud_outages": r.cloud.outages,
        "late_customers": {"paid_after_unknown": r.customers.paid,
                           "missed": r.customers.missed},
        "link_versions": {"v1": r.versions.count(1), "v2": r.versions.count(2)},
        "line_faults": {"flip": line[1].flip, "drop_frame_byte": line[1].drop_frame_byte,
                        "drop_control": line[1].drop_control,
                        **({"symbol_flip": line[1].symbol_flip} if r.opts.raw_line else {})},
        "line_faults_v2": {"flip": line[2].flip,
                           "drop": line[2].drop_frame_byte + line[2].drop_control,
                           "symbol_flip": line[2].symbol_flip},
        "v2_line": {"rate_per_byte": r.opts.v2_line_rate,
                    "symbol_flip_per_symbol": r.opts.symbol_flips},
        "line_bytes_lost_agent_down": sum(p.lost for p in r.proxies),
        "emulator_faults_injected": dict(sorted(r.faults.injected.items())),
        "register_undelivered_requests": sum(b.undelivered for b in baskets),
        "register_errors": dict(sorted(sum((b.errors for b in baskets), Counter()).items())),
        "unknown_reported": sum(b.unknown_seen for b in baskets),
        "duration_s": round(time.monotonic() - r.started, 1),
        "workdir": str(r.workdir),
    }


async def run(opts: Options, workdir: Path) -> Verdict:
    async with rig(opts, workdir) as r:
        timed_out = await sell(r)
        settled = Verdict()
        await settle(r, settled)
        results = {txn: seen for x in r.registers for txn, seen in x.results.items()}
        verdict = judge((b for x in r.registers for b in x.baskets), results, r.emulator,
                        r.journal)
        lost = delivered_not_received(r.journal, {
            name: (version, register.received_ids)
            for name, version, register in zip(r.lane_names, r.versions, r.registers,
                                               strict=True)})
        verdict.figures["delivered_not_received"] = lost
        for version, count in lost.items():
            if count:
                verdict.fail(f"{count} result(s) marked delivered on {version} lanes that "
                             "their register never received")
        if timed_out:
            verdict.fail(f"the run hit --max-duration ({opts.max_duration_s:g} s)")
        verdict.violations += settled.violations
        verdict.figures.update(settled.figures)
        verdict.figures.update(figures(r))
        return verdict


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Options()
    p.add_argument("--sales", type=int, default=d.sales,
                   help="baskets in all (default %(default)s)")
    p.add_argument("--lanes", type=int, default=d.lanes, help="registers and lanes (%(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seeds every random choice (%(default)s)")
    p.add_argument("--kill-gap", type=float, default=d.kill_gap_s, metavar="S",
                   help="mean seconds between timer SIGKILLs (%(default)s)")
    p.add_argument("--kill-at-sale", type=float, default=d.kill_at_sale, metavar="P",
                   help="probability that a sale frame triggers a SIGKILL (%(default)s)")
    p.add_argument("--kill-at-accepted", type=float, default=d.kill_at_accepted, metavar="P",
                   help="probability that an accepted triggers a SIGKILL (%(default)s)")
    p.add_argument("--line-rate", type=float, default=d.line_rate, metavar="P",
                   help="probability of a fault per frame or control byte (%(default)s)")
    p.add_argument("--raw-line", action="store_true",
                   help="damage the line without the detectable model (to show its limit: "
                        "--line-rate is then per byte)")
    p.add_argument("--v2-lanes", type=int, default=None, metavar="N",
                   help="lanes on link v2 at both ends (default: half of --lanes)")
    p.add_argument("--v2-line-rate", type=float, default=d.v2_line_rate, metavar="P",
                   help="v2 lanes: raw fault probability per byte (%(default)s)")
    p.add_argument("--symbol-flips", type=float, default=d.symbol_flips, metavar="P",
                   help="raw lanes (v2; v1 with --raw-line): probability that a symbol byte "
                        "(SOH, STX, ETX, ACK, ...) becomes another one bit away "
                        "(%(default)s)")
    p.add_argument("--quiet", type=float, default=d.quiet_s, metavar="S",
                   help="clean seconds on a lane after each line fault (%(default)s)")
    p.add_argument("--fault-gap", type=float, default=d.fault_gap_s, metavar="S",
                   help="mean seconds between emulator faults (%(default)s)")
    p.add_argument("--outage-gap", type=float, default=d.outage_gap_s, metavar="S",
                   help="mean seconds between cloud outages of 1-3 s (%(default)s)")
    p.add_argument("--sale-deadline", type=float, default=d.sale_deadline_s, metavar="S",
                   help="a basket without a final answer this long makes its lane stuck "
                        "(%(default)s)")
    p.add_argument("--max-duration", type=float, default=d.max_duration_s, metavar="S",
                   help="the run ends after this long whatever happens (%(default)s)")
    p.add_argument("--workdir", type=Path, help="keep journal, config and logs here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    a = p.parse_args(argv)
    if a.sales < 1 or not 1 <= a.lanes <= 64:
        p.error("--sales must be at least 1 and --lanes 1..64")
    return Options(sales=a.sales, lanes=a.lanes, seed=a.seed, kill_gap_s=a.kill_gap,
                   kill_at_sale=a.kill_at_sale, kill_at_accepted=a.kill_at_accepted,
                   line_rate=a.line_rate, quiet_s=a.quiet, fault_gap_s=a.fault_gap,
                   v2_lanes=a.v2_lanes, v2_line_rate=a.v2_line_rate,
                   symbol_flips=a.symbol_flips,
                   outage_gap_s=a.outage_gap, raw_line=a.raw_line,
                   sale_deadline_s=a.sale_deadline, max_duration_s=a.max_duration,
                   workdir=a.workdir, keep=a.keep or a.workdir is not None,
                   json_path=a.json, progress=not a.no_progress)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="edc-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=workdir / "campaign.log", level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    verdict = asyncio.run(run(opts, workdir))
    print(render(verdict), flush=True)
    if opts.json_path is not None:
        dump(verdict, opts.json_path)
    if verdict.ok and not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not verdict.ok:
        print(f"work directory kept: {workdir} (agent.log, journal.db, campaign.log)",
              file=sys.stderr)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Start: process start → READY=1 with 64 lanes and 100,000 journaled transactions;
journal size per 10,000 sales.

    python bench/start.py [--transactions 100000] [--lanes 64] [--repeats 5]
                          [--size-sales 10000]

1. Journal size: --size-sales sales go through the real Journal API, call for call as
   the engine makes them for a card sale (create received+sending, accepted, finish
   with the result and its outbox row, delivered), with the request, payment and
   result (receipt included) as the agent stores them. Size = database + WAL after a
   checkpoint, per 10,000 sales. The journal's cost per sale is timed too, with the
   fsync (synchronous=FULL, as the agent runs) and without.
2. A 100,000-transaction journal: those sales copied with new ids and older dates
   (100 days of history), then, as a store that was running would leave it: a few
   results not yet delivered, some sales unknown (reconciliation goes on), one sale
   in flight on a few terminals, two requests journaled but never sent.
3. Time to READY: `python -m agent run` with 64 lanes (half ptys, half TCP listeners)
   and $NOTIFY_SOCKET set to an AF_UNIX datagram socket, from just before the fork to
   the READY=1 datagram: interpreter, imports, config, journal open, recovery (every
   unfinished row resumed, every undelivered result queued), lanes opened, technician
   page listening. Each repeat starts from a fresh copy of the journal, warm in the
   page cache (a cold boot reads from disk as well). For comparison: the same with an
   empty journal, and the interpreter with the agent's imports alone.
Target: under 1 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, run_bench, table, write_results
from bench.journalgen import (
    DAY_S,
    IN_FLIGHT,
    NEVER_SENT,
    file_size,
    flush,
    grow,
    journal_sales,
    leave_unfinished,
)
from bench.tills import Tills
from devtools.config import process_config, write_key
from devtools.emulator import emulator
from devtools.process import AgentProcess, child_env
from devtools.procfs import loadavg

TARGET_S = 0.5  # issue "Money core v2": start → READY, 64 lanes, 100,000 transactions
# What `edc-agent run` imports before READY, and what it imports on a thread after it
# (agent/app.py `_import_after_ready`: the page, aiohttp's server half, pycryptodome).
BEFORE_READY = "import agent.app, drivers.factory"
AFTER_READY = f"{BEFORE_READY}, agent.web.server, Crypto.Cipher.AES"


async def time_to_ready(journal: Path | None, lanes: int, repeats: int, tmp: Path,
                        label: str, profile: Path | None = None) -> dict[str, object]:
    samples: list[float] = []
    rss: list[int] = []
    pty = lanes // 2
    async with emulator(tmp, separate=False) as emu:
        for r in range(repeats):
            workdir = tmp / f"{label}-{r}"
            workdir.mkdir()
            target = workdir / "journal.db"
            if journal is not None:
                shutil.copyfile(journal, target)
                flush(target)
            with Tills.make(pty=pty, tcp=lanes - pty) as tills:
                config = process_config(base_url=emu.base_url, journal=target,
                                           key_file=write_key(workdir),
                                           lanes=tills.lane_specs(), polling={})
                async with AgentProcess(workdir, config) as agent:
                    samples.append(agent.ready_s)
                    rss.append(agent.memory().rss_kb)
            shutil.rmtree(workdir, ignore_errors=True)
        if profile is not None:  # once more, under pyinstrument (not counted)
            workdir = tmp / f"{label}-profiled"
            workdir.mkdir()
            if journal is not None:
                shutil.copyfile(journal, workdir / "journal.db")
                flush(workdir / "journal.db")
            with Tills.make(pty=pty, tcp=lanes - pty) as tills:
                config = process_config(base_url=emu.base_url,
                                           journal=workdir / "journal.db",
                                           key_file=write_key(workdir),
                                           lanes=tills.lane_specs(), polling={})
                async with AgentProcess(workdir, config, python_args=(
                        "-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(profile),
                        "-m")) as agent:
                    print(f"under pyinstrument: READY after {agent.ready_s:.2f} s; "
                          f"profile in {profile}")
    return {"label": label, "lanes": lanes, "samples_s": samples,
            "min_s": min(samples), "median_s": statistics.median(samples),
            "max_s": max(samples), "rss_at_ready_kb": statistics.median(rss)}


def import_time(repeats: int) -> dict[str, float]:
    """The interpreter alone, and with what `edc-agent run` imports before and after READY."""
    out: dict[str, float] = {}
    env = child_env()
    subprocess.run([sys.executable, "-c", AFTER_READY], cwd=ROOT, check=True,
                   env=env)  # bytecode
    code = {"python -c pass": "pass",
            "python + the agent's imports before READY": BEFORE_READY,
            "… and those after READY (the page, pycryptodome)": AFTER_READY,
            # pycryptodome takes cffi when it is installed (here: for `cryptography`) and
            # parses C declarations at import; the project's own venv has no cffi.
            "the same, pycryptodome on ctypes (no cffi)":
                f"import sys; sys.modules['cffi'] = None; {AFTER_READY}"}
    for label, text in code.items():
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", text], cwd=ROOT, check=True, env=env)
            samples.append(time.perf_counter() - start)
        out[label] = statistics.median(samples)
    return out


_GROUPS = {
    "agent": "our code (agent/, drivers/)", "drivers": "our code (agent/, drivers/)",
    "aiohttp": "aiohttp and its parts", "yarl": "aiohttp and its parts",
    "multidict": "aiohttp and its parts", "frozenlist": "aiohttp and its parts",
    "aiosignal": "aiohttp and its parts", "propcache": "aiohttp and its parts",
    "aiohappyeyeballs": "aiohttp and its parts", "attr": "aiohttp and its parts",
    "idna": "aiohttp and its parts", "certifi": "aiohttp and its parts",
    "Crypto": "pycryptodome (+cffi)", "cffi": "pycryptodome (+cffi)",
    "pycparser": "pycryptodome (+cffi)", "_cffi_backend": "pycryptodome (+cffi)",
    "prometheus_client": "prometheus_client", "serial": "pyserial, pyusb",
    "usb": "pyserial, pyusb",
}


def import_breakdown() -> dict[str, float]:
    """`python -X importtime` of what comes before READY: self time of every module, summed
    by where it comes from."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", BEFORE_READY], cwd=ROOT,
                          check=True, capture_output=True, text=True, env=child_env())
    out: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:"):].split("|")
        top = name.strip().split(".")[0]
        group = _GROUPS.get(top, "Python's standard library")
        out[group] = out.get(group, 0.0) + int(self_us) / 1e6
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


async def main_async(args: argparse.Namespace) -> int:
    load0 = loadavg()
    with tempfile.TemporaryDirectory(prefix="edc-bench-start-") as tmp_dir:
        tmp = Path(tmp_dir)
        # 1. Size and cost per sale through the real API.
        size_db = tmp / "size.db"
        base_sales = max(1, min(args.size_sales, args.transactions))
        span = 10 * DAY_S
        cost_off = journal_sales(size_db, base_sales, args.lanes, durable=False,
                                 start=time.time() - span - 60, span_s=span)
        size = file_size(size_db)
        per_10k = size * 10_000 / base_sales
        cost_full = journal_sales(tmp / "fsync.db", args.fsync_sales, args.lanes,
                                  durable=True, start=time.time(), span_s=60)
        print(table(["journal", "sales", "bytes", "bytes per 10,000 sales",
                     "MB per 10,000 sales"],
                    [["through the Journal API", base_sales, size, int(per_10k),
                      per_10k / 1e6]]))
        print()
        print(table(["journal calls of one sale (4 commits)", "wall ms/sale", "CPU ms/sale"],
                    [["synchronous=FULL (as the agent runs)", cost_full["wall_ms_per_sale"],
                      cost_full["cpu_ms_per_sale"]],
                     ["synchronous=OFF", cost_off["wall_ms_per_sale"],
                      cost_off["cpu_ms_per_sale"]]]))
        # 2. The big journal.
        big = tmp / "big.db"
        shutil.copyfile(size_db, big)
        started = time.perf_counter()
        grow(big, base_sales, args.transactions)
        states = leave_unfinished(big, base_sales, args.lanes)
        big_size = file_size(big)
        flush(big)
        print(f"\n{states['total']:,} transactions ({big_size / 1e6:.0f} MB) built in "
              f"{time.perf_counter() - started:.1f} s: {json.dumps(states)}")
        # 3. Time to READY.
        imports = import_time(args.repeats)
        breakdown = import_breakdown()
        empty = await time_to_ready(None, args.lanes, args.repeats, tmp, "empty")
        full = await time_to_ready(big, args.lanes, args.repeats, tmp, "full",
                                   args.pyinstrument)
    rows = [[f"{args.lanes} lanes, empty journal", empty["min_s"], empty["median_s"],
             empty["max_s"]],
            [f"{args.lanes} lanes, {states['total']:,} transactions", full["min_s"],
             full["median_s"], full["max_s"]]]
    rows += [[label, "", value, ""] for label, value in imports.items()]
    print()
    print(table(["start → READY=1", "min s", "median s", "max s"], rows))
    print()
    print(table(["imports of `edc-agent run` before READY (-X importtime, self)", "s"],
                [[k, v] for k, v in breakdown.items()]))
    met = bool(float(str(full["median_s"])) <= TARGET_S)
    print(f"\ntarget: READY within {TARGET_S:g} s with {args.lanes} lanes and "
          f"{states['total']:,} transactions (median of {args.repeats}) → "
          f"{'met' if met else 'MISSED'}")
    print(f"load average before/after: {load0} / {loadavg()}")
    path = write_results("start", {
        "benchmark": "start and journal size", "command": " ".join(["python", *sys.argv]),
        "journal_size": {"sales": base_sales, "bytes": size, "bytes_per_10k_sales": per_10k},
        "journal_cost": {"full": cost_full, "off": cost_off},
        "big_journal": {"bytes": big_size, "states": states},
        "ready": {"empty": empty, "full": full}, "imports_s": imports,
        "import_breakdown_s": breakdown,
        "target_s": TARGET_S, "target_met": met, "loadavg_before": load0,
        "loadavg": loadavg(),
    })
    print(f"written to {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--lanes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size-sales", type=int, default=10_000,
                        help="sales journaled through the API (size per 10,000 sales)")
    parser.add_argument("--fsync-sales", type=int, default=300,
                        help="sales journaled with synchronous=FULL to time the fsyncs")
    parser.add_argument("--pyinstrument", type=Path, metavar="FILE",
                        help="also start once under pyinstrument (text profile to FILE)")
    args = parser.parse_args()
    if args.lanes < IN_FLIGHT + NEVER_SENT:
        parser.error(f"--lanes must be at least {IN_FLIGHT + NEVER_SENT}")
    return run_bench(lambda: main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())

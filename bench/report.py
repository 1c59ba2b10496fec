"""Markdown tables from bench/results/*.json, for docs/performance.md.

    python bench/report.py                            # print every section
    python bench/report.py --write docs/performance.md

With --write, the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in the
document is replaced by the freshly generated section NAME (latency, scale, idle,
start, checksum, slowdisk, machine); everything else in the document is left as written.
A result file that does not exist yet leaves its section as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR

Json = dict[str, Any]
_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+\s*(%|×|MB|s|ms)?")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}"
        return str(value)

    cells = [[cell(c) for c in row] for row in rows]
    numeric = [i > 0 and all(_NUMBER.fullmatch(r[i]) or not r[i] for r in cells)
               for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _load(name: str) -> Json | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    data: Json = json.loads(path.read_text())
    return data


def _load_text(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _commits_text(journal: Json | None) -> str:
    if not journal:
        return ""
    return (f" Journal commits (the agent's /metrics): {journal['commits_per_sale']:.1f} per "
            f"sale, mean {journal['mean_ms']:.2f} ms, {journal['over_10ms']:.0f} over 10 ms.")


def latency(data: Json) -> str:
    run = data["run"]
    wire = data["wire_ms"]
    bauds = [str(b) for b in data["bauds"]]
    rows = []
    for leg, label, frame in (("leg1", "1: sale frame in → Sale at Paytm",
                               run["request_frame_bytes"]),
                              ("leg2", "2: final status out → result frame out",
                               run["result_frame_bytes"])):
        s = run[leg]
        rows.append([label, frame, s["p50_ms"], s["p99_ms"], s["max_ms"],
                     *(wire[b][leg] for b in bauds),
                     *(f"{s['p50_ms'] / wire[b][leg]:.3f}" for b in bauds)])
    fsync = data["fsync"]
    limit = data["target_ms_plus_fsync"] + fsync["FULL"]["p99_ms"]
    out = [
        md_table(["leg", "frame bytes", "agent p50 ms", "p99 ms", "max ms",
                  *(f"wire {b} baud ms" for b in bauds),
                  *(f"agent p50 / wire {b}" for b in bauds)], rows),
        "",
        md_table(["SQLite commit on this disk (WAL)", "p50 ms", "p99 ms", "max ms"],
                 [[f"synchronous={m}", s["p50_ms"], s["p99_ms"], s["max_ms"]]
                  for m, s in fsync.items()]),
        "",
        f"{int(run['sales'])} sales one after another over one {run['link']} lane, emulator "
        f"in the {run['emulator']}: {run['sales_per_s']:.0f} sales/s, register round trip "
        f"p50 {run['round_trip']['p50_ms']:.2f} ms / p99 {run['round_trip']['p99_ms']:.2f} ms "
        f"(of which {run['emulator_time']['p50_ms']:.2f} ms p50 inside the emulator); agent "
        f"CPU {run['agent_cpu_ms_per_sale']:.2f} ms per sale, RSS "
        f"{run['agent_rss_kb'] / 1024:.0f} MiB.{_commits_text(run.get('journal'))} "
        f"Load average before/after: "
        f"{_load_text(run['loadavg_before'])} / {_load_text(run['loadavg_after'])}.",
        "",
        f"**Target** p99 of each leg < {data['target_ms_plus_fsync']:g} ms + one fsync "
        f"(commit p99 {fsync['FULL']['p99_ms']:.2f} ms here, so {limit:.2f} ms): "
        f"**{'met' if data['target_met'] else 'missed'}**.",
    ]
    return "\n".join(out)


def _loop_share(journal: Json | None) -> str:
    if not journal:
        return "?"
    return (f"{journal['loop_share']:.0%} ({journal['mean_ms']:.1f} ms, "
            f"{journal['over_100ms']:.0f})")


def scale(data: Json) -> str:
    rows = []
    for res in data["results"]:
        for run in res["runs"]:
            load = "saturated" if run["mode"] == "saturated" else \
                f"paced, 1 sale / {run['interval_s']:g} s / lane"
            rows.append([res["lanes"], res["links"], load, int(run["sales"]),
                         f"{run['sales_per_s']:.1f}", run["added"]["p50_ms"],
                         run["added"]["p99_ms"], run["leg1"]["p99_ms"], run["leg2"]["p99_ms"],
                         run["agent_cpu_ms_per_sale"], f"{run['agent_cpu_share']:.0%}",
                         f"{run['emulator_cpu_share']:.0%}", f"{run['bench_cpu_share']:.0%}",
                         f"{run['machine_busy']:.0%}", _loop_share(run.get("journal")),
                         f"{res['agent_hwm_kb'] / 1024:.0f}", _load_text(run["loadavg_before"])])
    met = data.get("target_met")
    verdict = "not run" if met is None else "met" if met else "missed"
    return "\n".join([
        md_table(["lanes", "links", "load", "sales", "sales/s", "added p50 ms",
                  "added p99 ms", "leg 1 p99 ms", "leg 2 p99 ms", "agent CPU ms/sale",
                  "agent CPU", "emulator CPU", "bench CPU", "machine busy",
                  "loop in journal commits (mean, > 100 ms)", "agent peak RSS MiB",
                  "load avg before"], rows),
        "",
        f"Saturated runs last {data['seconds']:g} s, paced runs {data['paced_seconds']:g} s. "
        f"CPU columns are shares of one core over the run; machine busy is all CPUs, every "
        f"process on the box. \"Loop in journal commits\" is the time the agent spent in "
        f"journal commits (fsync included; its own `/metrics` histogram): the share of the "
        f"run every lane stood still, the mean commit, and how many commits took over 100 ms.",
        "",
        f"**Target** 256 lanes, p99 added latency < {data['target_ms']:g} ms (paced load): "
        f"**{verdict}**.",
    ])


def idle(data: Json) -> str:
    rows = [[r["label"], r["lanes"], r["links"], f"{r['seconds']:.0f}",
             f"{r['cpu_share']:.2%}", f"{r['max_window_share']:.2%}",
             f"{r['context_switches_per_s']:.1f}", f"{r['rss_kb'] / 1024:.0f}",
             _load_text(r["loadavg_before"])] for r in data["runs"]]
    return "\n".join([
        md_table(["journal", "lanes", "links", "seconds", "agent CPU (one core)",
                  "worst 5 s", "context switches/s", "RSS MiB", "load avg before"], rows),
        "",
        f"**Target** under {data['target_share']:.0%} of one core: "
        f"**{'met' if data['target_met'] else 'missed'}**"
        + ("" if data["target_met"] else " (see the rows above: which journal)") + ".",
    ])


def start(data: Json) -> str:
    ready = data["ready"]
    states = data["big_journal"]["states"]
    rows = [[f"{ready['empty']['lanes']} lanes, empty journal", ready["empty"]["min_s"],
             ready["empty"]["median_s"], ready["empty"]["max_s"]],
            [f"{ready['full']['lanes']} lanes, {states['total']:,} transactions "
             f"({data['big_journal']['bytes'] / 1e6:.0f} MB)",
             ready["full"]["min_s"], ready["full"]["median_s"], ready["full"]["max_s"]]]
    rows += [[label, "", value, ""] for label, value in data["imports_s"].items()]
    size = data["journal_size"]
    cost = data["journal_cost"]
    out = [
        md_table(["process start → READY=1", "min s", "median s", "max s"], rows),
        "",
        md_table(["imports of `edc-agent run` (`-X importtime`, self time)", "s"],
                 [[k, v] for k, v in data.get("import_breakdown_s", {}).items()]),
        "",
        f"The journal: {json.dumps({k: v for k, v in states.items() if k != 'total'})}. "
        f"Load average before/after: {_load_text(data['loadavg_before'])} / "
        f"{_load_text(data['loadavg'])}.",
        "",
        f"**Target** READY within {data['target_s']:g} s: "
        f"**{'met' if data['target_met'] else 'missed'}**.",
        "",
        md_table(["journal", "sales", "bytes", "per 10,000 sales"],
                 [["through the Journal API", int(size["sales"]), f"{size['bytes']:,}",
                   f"{size['bytes_per_10k_sales'] / 1e6:.1f} MB"]]),
        "",
        md_table(["journal calls of one sale (4 commits)", "wall ms/sale", "CPU ms/sale"],
                 [["synchronous=FULL (as the agent runs)", cost["full"]["wall_ms_per_sale"],
                   cost["full"]["cpu_ms_per_sale"]],
                  ["synchronous=OFF", cost["off"]["wall_ms_per_sale"],
                   cost["off"]["cpu_ms_per_sale"]]]),
    ]
    return "\n".join(out)


def slowdisk(data: Json) -> str:
    """bench/slowdisk.py: its table, with the targets and the issue's baseline beside it."""
    from bench.slowdisk import BASELINE, fsyncs_per_sale, targets_text, verdict, verdict_text

    rows = []
    for run in data["runs"]:
        enq = run["enq"]
        delay = float(run["delay_ms"])
        ratio = run.get("commits_per_fsync")
        per_sale = fsyncs_per_sale(run["syncs"], run["sales"])
        rows.append([f"+{delay:g}", enq["p50_ms"], enq["p99_ms"], enq["max_ms"],
                     f"{enq['over_r1']}/{enq['n']:.0f}", enq["over_s1"], enq["unanswered"],
                     run["sales"], f"{run['sales_per_s']:.1f}",
                     "?" if run["commits"] is None else f"{run['commits']:.0f}", run["syncs"],
                     "?" if ratio is None else f"{ratio:.2f}",
                     "?" if per_sale is None else f"{per_sale:.2f}", targets_text(delay),
                     verdict_text(verdict(run)), BASELINE.get(delay, "—"),
                     _load_text(run["loadavg_before"])])
    return "\n".join([
        md_table(["+ms per fsync", "idle ENQ→ACK p50 ms", "p99 ms", "max ms", "> 100 ms (R1)",
                  "> 1 s (S1)", "no ACK", "sales", "sales/s", "commits", "fsyncs",
                  "commits/fsync", "fsyncs/sale", "target", "verdict", "issue 11 baseline",
                  "load avg before"], rows),
        "",
        f"{data['selling_lanes']} lanes selling back to back and {data['idle_lanes']} idle "
        f"lanes sending ENQ every {data['enq_interval_s'] * 1000:g} ms, for "
        f"{data['seconds']:g} s per delay; a fresh agent and journal each; emulator in its "
        f"{'own process' if data['emulator'] == 'own process' else 'bench process'}. "
        f"sales/s = sales / (start → the last result, {data['seconds']:g} s + the tail).",
    ])


def checksum(data: Json) -> str:
    rows = [[r["mode"], f"{r['ours_ops_s']:,}", f"{r['theirs_ops_s']:,}", f"{r['ratio']:.2f}×"]
            for r in data["results"]]
    return "\n".join([
        md_table(["mode", "ours (ops/s)", "paytmchecksum (ops/s)", "ours / theirs"], rows),
        "",
        f"One operation = generate + verify; best of {data.get('best_of', '?')} × "
        f"{data.get('seconds_per_measurement', '?')} s, Python {data.get('python', '?')}.",
    ])


def machine(_: Json) -> str:
    rows = []
    for name in ("latency", "scale", "idle", "start"):
        data = _load(name)
        if data is None:
            continue
        m = data.get("machine", {})
        rows.append([name, m.get("cpus", "?"), m.get("python", "?"), m.get("platform", "?"),
                     _load_text(data.get("loadavg", []))])
    return md_table(["result", "CPUs", "Python", "platform", "load avg at the end"], rows)


def _verdict(met: object) -> str:
    return "not run" if met is None else "**met**" if met else "**missed**"


def summary(_: Json) -> str:
    rows: list[list[object]] = []
    lat = _load("latency")
    if lat is not None:
        run, fsync = lat["run"], lat["fsync"]["FULL"]
        rows.append(["added latency, p99 per leg",
                     f"< {lat['target_ms_plus_fsync']:g} ms + one fsync "
                     f"({lat['target_ms_plus_fsync'] + fsync['p99_ms']:.1f} ms here)",
                     f"leg 1 {run['leg1']['p99_ms']:.1f} ms, leg 2 {run['leg2']['p99_ms']:.1f} ms "
                     f"(p50 {run['leg1']['p50_ms']:.1f} / {run['leg2']['p50_ms']:.1f} ms)",
                     _verdict(lat["target_met"])])
    sc = _load("scale")
    if sc is not None:
        for res in sc["results"]:
            if res["lanes"] != 256:
                continue
            for r in res["runs"]:
                rows.append([f"256 lanes, {r['mode']}" + (
                    f" (1 sale / {r['interval_s']:g} s / lane)" if r["mode"] == "paced" else ""),
                    f"p99 added < {sc['target_ms']:g} ms" if r["mode"] == "paced" else
                    "(capacity)",
                    f"{r['sales_per_s']:.0f} sales/s, p99 added {r['added']['p99_ms']:.0f} ms, "
                    f"{r['agent_cpu_ms_per_sale']:.1f} ms CPU/sale, peak RSS "
                    f"{res['agent_hwm_kb'] / 1024:.0f} MiB",
                    _verdict(sc["target_met"]) if r["mode"] == "paced" else "—"])
    idle_data = _load("idle")
    if idle_data is not None:
        figures = "; ".join(f"{r['label']}: {r['cpu_share']:.2%}" for r in idle_data["runs"])
        rows.append([f"idle, {idle_data['runs'][0]['lanes']} lanes",
                     f"< {idle_data['target_share']:.0%} of a core", figures,
                     _verdict(idle_data["target_met"])])
    st = _load("start")
    if st is not None:
        full = st["ready"]["full"]
        rows.append([f"start → READY, {full['lanes']} lanes, "
                     f"{st['big_journal']['states']['total']:,} transactions",
                     f"< {st['target_s']:g} s", f"{full['median_s']:.2f} s (median; empty "
                     f"journal {st['ready']['empty']['median_s']:.2f} s)",
                     _verdict(st["target_met"])])
        rows.append(["journal size", "—",
                     f"{st['journal_size']['bytes_per_10k_sales'] / 1e6:.1f} MB per 10,000 sales",
                     "—"])
    ck = _load("checksum")
    if ck is not None:
        rows.append(["checksum, ours vs paytmchecksum", "—",
                     ", ".join(f"{r['mode']} {r['ratio']:.2f}× faster" for r in ck["results"]),
                     "—"])
    return md_table(["what", "target", "measured", "verdict"], rows)


SECTIONS: dict[str, tuple[str, Callable[[Json], str]]] = {
    "summary": ("latency", summary),
    "machine": ("latency", machine),
    "latency": ("latency", latency),
    "scale": ("scale", scale),
    "idle": ("idle", idle),
    "start": ("start", start),
    "checksum": ("checksum", checksum),
    "slowdisk": ("slowdisk", slowdisk),
}


def render() -> dict[str, str]:
    out: dict[str, str] = {}
    for section, (source, fn) in SECTIONS.items():
        data = _load(source)
        if data is not None:
            out[section] = fn(data)
    return out


def write(doc: Path, sections: dict[str, str]) -> list[str]:
    text = doc.read_text()
    done = []
    for name, body in sections.items():
        pattern = re.compile(rf"(<!-- bench:{name} -->\n)(?:.*?\n)?(<!-- /bench:{name} -->)",
                             re.S)

        def replace(m: re.Match[str], body: str = body) -> str:
            return m.group(1) + body + "\n" + m.group(2)

        text, n = pattern.subn(replace, text)
        if n:
            done.append(name)
    doc.write_text(text)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, metavar="DOC",
                        help="replace the marked sections of DOC instead of printing")
    args = parser.parse_args()
    sections = render()
    if args.write is None:
        for name, body in sections.items():
            print(f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->\n")
        return 0
    done = write(args.write, sections)
    print(f"{args.write}: updated {', '.join(done) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The invariants, checked against three independent records at the end of a run.

    the emulator   which Sales reached "Paytm" (its request record) and how each ended
    the registers  every `result` frame each register received
    the journal    what the agent wrote (read after it stopped), and its integrity

Per merchant transaction id (`txn`):

    Sales at the emulator   at most 1. Exactly 1 unless the Sale provably never got
                            there (the connection was dropped before Paytm read it, or
                            the agent was killed first): then 0, and the register must
                            have been told `failed` 0404 "Not received by Paytm" (§5.6).
    results delivered       at least 1 final result frame for every basket, and every
                            one of them says what the emulator says: success when the
                            customer paid, failed otherwise; same amount; same RRN.
    journal                 the row is final with the same status; every result row in
                            the outbox was ACKed by the register (none undelivered).

Per result row of the outbox marked delivered: its register received a frame with that
message id. A row marked delivered that its register never received is the loss a
forged or misattributed ACK causes (protocol §6); it is counted per link version.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agent.sim.paytm import Emulator, UnknownError
from chaos.register import Basket, SeenResult

NOT_RECEIVED_CODE: Final = "0404"
PAYTM_BUSY_CODE: Final = "0333"


@dataclass
class Verdict:
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.violations.append(what)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True, slots=True)
class JournalRow:
    state: str
    code: str


def read_journal(path: Path) -> tuple[dict[str, JournalRow], int, int]:
    """Sale rows by txn, undelivered outbox rows, and all outbox rows (agent stopped)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        rows = {txn: JournalRow(state, code) for txn, state, code in db.execute(
            "SELECT txn, state, code FROM txns WHERE kind = 'sale'")}
        undelivered = int(db.execute(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND superseded = 0"
        ).fetchone()[0])
        total = int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    return rows, undelivered, total


def delivered_not_received(journal: Path, lanes: Mapping[str, tuple[int, set[str]]]
                           ) -> dict[str, int]:
    """Outbox rows the agent marked delivered (ACKed) whose message the register of their
    lane never received, by link version ("v1", "v2"). `lanes`: lane name → (link
    version, ids of every frame that lane's register received)."""
    counts = {f"v{version}": 0 for version, _ in lanes.values()}
    with closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)) as db:
        # An outbox payload '' stands for its transaction's reply (one copy, schema 5 on).
        rows = db.execute(
            "SELECT o.lane, CASE WHEN o.payload='' THEN t.reply ELSE o.payload END "
            "FROM outbox o JOIN txns t ON t.id=o.txn_row WHERE o.delivered_at IS NOT NULL")
        for lane, payload in rows:
            version, received = lanes.get(lane, (0, set()))
            try:
                ident = json.loads(payload).get("id")
            except (ValueError, AttributeError):
                ident = None
            if ident not in received:
                key = f"v{version}"
                counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def judge(baskets: Iterable[Basket], results: Mapping[str, list[SeenResult]],
          emulator: Emulator, journal: Path) -> Verdict:
    v = Verdict()
    baskets = list(baskets)
    planned = {b.txn for b in baskets}
    sale_calls: Counter[str] = Counter()
    busy_refusals = 0
    applied: Counter[str] = Counter()
    strangers: set[str] = set()
    for request in emulator.requests:
        if request.fault is not None:
            applied[f"{request.api}:{request.fault}"] += 1
        if request.api != "sale":
            continue
        if request.result_code == PAYTM_BUSY_CODE:
            busy_refusals += 1
        if request.txn is not None:
            sale_calls[request.txn] += 1
            if request.txn not in planned:
                strangers.add(request.txn)
    rows, undelivered, outbox_rows = read_journal(journal)

    per_txn_calls: Counter[int] = Counter()
    delivered_counts: list[int] = []
    via: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    durations: list[float] = []
    for b in baskets:
        calls = sale_calls.get(b.txn, 0)
        per_txn_calls[calls] += 1
        if calls > 1:
            v.fail(f"{b.txn}: {calls} Sales reached the emulator")
        try:
            paytm = emulator.transaction(b.txn)
        except UnknownError:
            paytm = None
        if paytm is None:
            expected = "refused" if calls else "failed"
        elif paytm["status"] in ("success", "failed"):
            expected = str(paytm["status"])
        else:
            expected = "pending"
            v.fail(f"{b.txn}: still {paytm['status']} at the emulator at the end")
        if b.outcome is None:
            v.fail(f"{b.txn}: no final answer on lane {b.lane} (stuck)")
            continue
        outcomes[b.outcome if b.code != NOT_RECEIVED_CODE else "failed (not received)"] += 1
        via[b.via] += 1
        if b.ended is not None:
            durations.append(b.ended - b.started)
        finals = [r for r in results.get(b.txn, ()) if r.status in ("success", "failed")]
        delivered = len(finals) + (1 if b.outcome == "refused" else 0)
        delivered_counts.append(delivered)
        if delivered == 0:
            v.fail(f"{b.txn}: no final result reached the register")
        if b.outcome == "refused" and expected != "refused":
            v.fail(f"{b.txn}: register told REJECTED, emulator says {expected}")
        payment = paytm.get("payment") if paytm is not None else None
        rrn = payment.get("retrievalReferenceNo") if isinstance(payment, dict) else None
        for r in finals:
            if r.status != expected:
                v.fail(f"{b.txn}: register told {r.status} {r.code}, emulator says {expected}")
            if r.amount != b.amount:
                v.fail(f"{b.txn}: result amount {r.amount}, asked {b.amount}")
            if r.status == "success" and r.rrn != rrn:
                v.fail(f"{b.txn}: result RRN {r.rrn}, emulator {rrn}")
            if paytm is None and r.code != NOT_RECEIVED_CODE:
                v.fail(f"{b.txn}: never reached the emulator but failed with {r.code}")
        row = rows.get(b.txn)
        journal_expected = "failed" if expected == "refused" else expected
        if row is None:
            v.fail(f"{b.txn}: not in the journal")
        elif row.state != journal_expected:
            v.fail(f"{b.txn}: journal says {row.state}, emulator says {expected}")
    for txn in sorted(strangers):
        v.fail(f"{txn}: a Sale the registers never asked for reached the emulator")
    if busy_refusals:
        v.fail(f"{busy_refusals} Sale(s) refused by the emulator as terminal busy (0333)")
    if undelivered:
        v.fail(f"{undelivered} result(s) in the journal never ACKed by their register")

    v.figures.update({
        "sales_asked": len(baskets),
        "sales_at_emulator_per_txn": {str(k): n for k, n in sorted(per_txn_calls.items())},
        "outcomes": dict(sorted(outcomes.items())),
        "results_delivered_per_txn": {
            "min": min(delivered_counts, default=0), "max": max(delivered_counts, default=0),
            "mean": round(statistics.fmean(delivered_counts), 3) if delivered_counts else 0,
            "first_final_via": dict(sorted(via.items())),
        },
        "journal": {"outbox_rows": outbox_rows, "undelivered": undelivered},
        "emulator_busy_refusals": busy_refusals,
        "emulator_faults_applied": dict(sorted(applied.items())),
        "basket_seconds": {"p50": round(_percentile(durations, 0.5), 3),
                           "p99": round(_percentile(durations, 0.99), 3),
                           "max": round(max(durations, default=0.0), 3)},
    })
    return v


def render(v: Verdict) -> str:
    """The table printed at the end of a run."""
    f = v.figures
    per_txn = f.get("sales_at_emulator_per_txn", {})
    delivered = f.get("results_delivered_per_txn", {})
    lines = [
        f"edc-agent fault campaign: seed {f.get('seed')}, {f.get('lanes')} lanes",
        "",
        f"{'sales asked':<44}{f.get('sales_asked')}",
        f"{'  final outcomes':<44}" + ", ".join(
            f"{k} {n}" for k, n in f.get("outcomes", {}).items()),
        f"{'Sales at the emulator per txn':<44}" + ", ".join(
            f"{n} txn with {k}" for k, n in per_txn.items()),
        f"{'  more than 1 (duplicate Sale)':<44}"
        f"{sum(n for k, n in per_txn.items() if int(k) > 1)}",
        f"{'results delivered per txn':<44}min {delivered.get('min')}, "
        f"max {delivered.get('max')}, mean {delivered.get('mean')}",
        f"{'  first final result came':<44}" + ", ".join(
            f"{k} {n}" for k, n in delivered.get("first_final_via", {}).items()),
        f"{'lanes stuck':<44}{f.get('lanes_stuck')}",
        f"{'journal integrity (end; after each kill)':<44}{f.get('integrity_end')}; "
        f"{f.get('integrity_after_kills')}",
        f"{'results undelivered in the journal':<44}"
        f"{f.get('journal', {}).get('undelivered')} of {f.get('journal', {}).get('outbox_rows')}",
        f"{'agent SIGKILLs (and restarts)':<44}{f.get('kills_total')} "
        f"({', '.join(f'{k} {n}' for k, n in f.get('kills', {}).items())})",
        f"{'  sales the restarted agent resumed':<44}" + ", ".join(
            f"{k} {n}" for k, n in f.get("resumed_after_kill", {}).items()),
        f"{'agent crashes (exits not caused by us)':<44}{len(f.get('crashes', []))}",
        f"{'agent ERROR lines / tracebacks logged':<44}{f.get('agent_errors_logged')}",
        f"{'lanes on link v1 / v2':<44}{f.get('link_versions', {}).get('v1')} / "
        f"{f.get('link_versions', {}).get('v2')}",
        f"{'line faults, v1 lanes (' + str(f.get('line_model')) + ' model)':<44}" + ", ".join(
            f"{k} {n}" for k, n in f.get("line_faults", {}).items()),
        f"{'line faults, v2 lanes (raw + symbol flips)':<44}" + ", ".join(
            f"{k} {n}" for k, n in f.get("line_faults_v2", {}).items()),
        f"{'results marked delivered, never received':<44}" + ", ".join(
            f"{k} {n}" for k, n in f.get("delivered_not_received", {}).items()),
        f"{'cloud outages (refused + cut, 1-3 s)':<44}{f.get('cloud_outages')}",
        f"{'register: errors answered':<44}" + (", ".join(
            f"{k} {n}" for k, n in f.get("register_errors", {}).items()) or "none"),
        f"{'register: requests never ACKed (S3)':<44}{f.get('register_undelivered_requests')}",
        f"{'register: unknown results (then final)':<44}{f.get('unknown_reported')}",
        f"{'late customers: paid after unknown':<44}"
        f"{f.get('late_customers', {}).get('paid_after_unknown')} "
        f"(missed {f.get('late_customers', {}).get('missed')})",
        f"{'emulator faults applied':<44}{sum(f.get('emulator_faults_applied', {}).values())}",
    ]
    for kind, n in f.get("emulator_faults_applied", {}).items():
        lines.append(f"{'  ' + kind:<44}{n}")
    seconds = f.get("basket_seconds", {})
    lines += [
        f"{'basket time p50 / p99 / max (s)':<44}"
        f"{seconds.get('p50')} / {seconds.get('p99')} / {seconds.get('max')}",
        f"{'duration (s)':<44}{f.get('duration_s')}",
        "",
    ]
    if v.violations:
        lines.append(f"VIOLATIONS ({len(v.violations)}):")
        lines += [f"  - {x}" for x in v.violations[:50]]
        if len(v.violations) > 50:
            lines.append(f"  ... and {len(v.violations) - 50} more")
    else:
        lines.append("OK: every invariant held")
    return "\n".join(lines)


def dump(v: Verdict, path: Path) -> None:
    path.write_text(json.dumps({"ok": v.ok, "violations": v.violations, **v.figures},
                               indent=2, sort_keys=True) + "\n")

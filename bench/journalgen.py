"""Journals for the benchmarks: sales through the real Journal API, and big histories.

    journal_sales(path, 10_000, lanes=64, durable=False, start=..., span_s=...)
    build_history(path, transactions=100_000, lanes=64)   # what a store's journal holds

A sale goes through the Journal API call for call as the engine makes them for a card
sale (create received+sending, accepted, finish with the result and its outbox row,
delivered), with the request, payment and result (receipt included) shaped as the
agent stores them. A big history is those sales copied with new ids and older dates,
then left as a running store leaves it: a few results not yet delivered, some sales
unknown (reconciliation goes on), one sale in flight on a few terminals, two requests
journaled but never sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import time
from pathlib import Path

DAY_S = 86400.0
# A card sale as the agent journals it (shapes taken from a real run against the emulator).
REQUEST: dict[str, object] = {
    "txn": "", "amount": "", "ref": "", "mode": "ALL", "id": "", "tid": "",
    "display_info": {}, "print_info": {}, "warnings": [],
}
PAYMENT: dict[str, str] = {
    "method": "CARD", "rrn": "859423868964", "auth_code": "330283", "card": "5412XXXXXXXX0825",
    "scheme": "MASTERCARD", "card_type": "DEBIT_CARD", "bank": "Axis Bank",
    "paytm_txn_id": "20261122474189593843816962026203799",
}
RECEIPT = [
    "                  SALE", "22-11-2026                  05:41:39 IST",
    "MID                         XXXXXXXX0001", "TID                             XXXX0001",
    "Txn                         {txn:>12}", "Ref                      {ref:>15}",
    "RRN                         859423868964", "Auth code                         330283",
    "Card         MASTERCARD 5412XXXXXXXX0825", "Bank                           Axis Bank",
    "Paytm txn", "     20261122474189593843816962026203799",
    "----------------------------------------", "AMOUNT                           ₹{rupees}",
    "----------------------------------------", "                APPROVED",
]
UNDELIVERED = 40  # final results the registers have not ACKed yet
UNKNOWN = 30  # sales Paytm never settled in time: reconciliation keeps asking
IN_FLIGHT = 8  # sales on their way when the agent stopped (each holds its terminal)
NEVER_SENT = 2  # journaled as received, never marked sending: recovery fails them


class WallClock:
    """The journal's clock: set per sale so the history spreads over past days."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def journal_sales(path: Path, sales: int, lanes: int, *, durable: bool,
                  start: float, span_s: float) -> dict[str, float]:
    """`sales` card sales through the real Journal API, as the engine journals them.

    Its own event loop, in a thread of its own, so the benchmarks' async mains can call it."""
    def run() -> dict[str, float]:
        return asyncio.run(_journal_sales(path, sales, lanes, durable=durable, start=start,
                                          span_s=span_s))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


async def _journal_sales(path: Path, sales: int, lanes: int, *, durable: bool,
                         start: float, span_s: float) -> dict[str, float]:
    import json
    from datetime import datetime

    from agent.engine.results import stored_result
    from agent.journal import Journal, Kind, TxnState
    from agent.paytm.clock import IST
    from agent.register.codec import decode_reply
    from agent.sim.paytm import demo_bench_tid

    clock = WallClock()
    journal = Journal(path, durable=durable, clock=clock)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        for i in range(sales):
            lane = i % lanes + 1
            txn, ref = f"J{i:09d}", f"INV{i:09d}"
            amount = str(100 + i % 500000)
            clock.now = start + span_s * i / max(1, sales)
            request = {**REQUEST, "txn": txn, "amount": amount, "ref": ref, "id": f"q{txn}",
                       "tid": demo_bench_tid(lane)}
            record = await journal.create(kind=Kind.SALE, txn=txn, lane=f"lane-{lane}",
                                    tid=demo_bench_tid(lane), amount=amount, request=request,
                                    txn_time="2026-11-22 05:41:39",
                                    states=(TxnState.RECEIVED, TxnState.SENDING))
            clock.now += 0.012
            await journal.transition(record.row_id, TxnState.ACCEPTED, code="0009",
                               message="ACCEPTED_SUCCESS")
            clock.now += 8.0  # the customer pays
            rupees = f"{int(amount) // 100}.{int(amount) % 100:02d}"
            result = {"v": 1, "type": "result", "id": f"{i:010x}-2", "re": f"q{txn}",
                      "txn": txn, "kind": "sale", "status": "success", "code": "0000",
                      "message": "Approved", "amount": amount, "payment": PAYMENT,
                      "receipt": [line.format(txn=txn, ref=ref, rupees=rupees)
                                  for line in RECEIPT]}
            # Journaled as the reporter journals it: without the receipt lines.
            stored = stored_result(decode_reply(json.dumps(result).encode("ascii")),  # type: ignore[arg-type]
                                   datetime.fromtimestamp(clock.now, IST),
                                   payment_in_row=True)
            _, outbox = await journal.finish(record.row_id, TxnState.SUCCESS, result=stored,
                                       code="0000", message="Approved", payment=PAYMENT)
            clock.now += 0.003
            await journal.mark_delivered(outbox.row_id)
    finally:
        await journal.aclose()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"sales": float(sales), "wall_ms_per_sale": wall / sales * 1000,
            "cpu_ms_per_sale": cpu / sales * 1000}


def file_size(path: Path) -> int:
    """Database + WAL after a checkpoint (what the journal occupies on disk)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def grow(path: Path, base: int, total: int) -> None:
    """Copies of the `base` sales with new ids, each copy 10 days older, up to `total`."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        copies = (total + base - 1) // base
        for k in range(1, copies):
            count = min(base, total - k * base)
            shift = k * base
            back = k * 10 * DAY_S
            db.execute(
                "INSERT INTO txns (id, kind, txn, lane, tid, amount, parent, state, request, "
                "txn_time, created_at, updated_at, sent_at, code, message, reply, payment, "
                "not_sent) SELECT id + ?, kind, txn || 'C' || ?, lane, tid, amount, parent, "
                "state, request, txn_time, created_at - ?, updated_at - ?, sent_at - ?, code, "
                "message, reply, payment, not_sent FROM txns WHERE id <= ?",
                (shift, k, back, back, back, count))
            db.execute(
                "INSERT INTO events (txn_row, at, state, code, detail) SELECT txn_row + ?, "
                "at - ?, state, code, detail FROM events WHERE txn_row <= ? ORDER BY id",
                (shift, back, count))
            db.execute(
                "INSERT INTO outbox (txn_row, lane, payload, created_at, delivered_at, "
                "superseded) SELECT txn_row + ?, lane, payload, created_at - ?, "
                "delivered_at - ?, superseded FROM outbox WHERE txn_row <= ? ORDER BY id",
                (shift, back, back, count))
        db.execute("COMMIT")
    finally:
        db.close()


def leave_unfinished(path: Path, base: int, lanes: int, *, in_flight: int = IN_FLIGHT,
                     never_sent: int = NEVER_SENT) -> dict[str, int]:
    """What a running store leaves in its journal; rows from the newest copy (the base)."""
    now = time.time()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        newest = base  # the base sales are the most recent
        rows = list(range(newest, newest - (UNDELIVERED + UNKNOWN + in_flight + never_sent),
                          -1))
        undelivered = rows[:UNDELIVERED]
        unknown = rows[UNDELIVERED:UNDELIVERED + UNKNOWN]
        flying = rows[UNDELIVERED + UNKNOWN:UNDELIVERED + UNKNOWN + in_flight]
        unsent = rows[UNDELIVERED + UNKNOWN + in_flight:]
        # Rows run through the lanes in turn: consecutive rows are on different lanes, so
        # every in-flight sale holds its own terminal (as the engine guarantees).
        assert lanes >= in_flight + never_sent
        db.executemany("UPDATE outbox SET delivered_at=NULL WHERE txn_row=?",
                       [(r,) for r in undelivered])
        db.executemany("DELETE FROM events WHERE txn_row=? AND state='delivered'",
                       [(r,) for r in undelivered])
        db.executemany("UPDATE txns SET state='unknown', code='', message='Outcome not known "
                       "yet; the agent keeps checking' WHERE id=?", [(r,) for r in unknown])
        for state, ids, ago in (("pending", flying, 4.0), ("received", unsent, 2.0)):
            for r in ids:
                db.execute("UPDATE txns SET state=?, created_at=?, updated_at=?, sent_at=?, "
                           "code='', message='', reply='', payment='' WHERE id=?",
                           (state, now - ago, now - ago,
                            None if state == "received" else now - ago, r))
                db.execute("DELETE FROM outbox WHERE txn_row=?", (r,))
                db.execute("DELETE FROM events WHERE txn_row=? AND state NOT IN "
                           "('received', 'sending')", (r,))
        db.execute("COMMIT")
        counts = dict(db.execute("SELECT state, COUNT(*) FROM txns GROUP BY state").fetchall())
        counts["undelivered_results"] = int(db.execute(
            "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND superseded=0"
        ).fetchone()[0])
        counts["total"] = int(db.execute("SELECT COUNT(*) FROM txns").fetchone()[0])
        return counts
    finally:
        db.close()


def build_history(path: Path, transactions: int, lanes: int, base_sales: int = 10_000,
                  *, in_flight: int = IN_FLIGHT, never_sent: int = NEVER_SENT
                  ) -> dict[str, int]:
    """A journal of `transactions` rows over ~100 days, flushed to disk; its states."""
    base = max(1, min(base_sales, transactions))
    span = 10 * DAY_S
    journal_sales(path, base, lanes, durable=False, start=time.time() - span - 60,
                  span_s=span)
    grow(path, base, transactions)
    states = leave_unfinished(path, base, lanes, in_flight=in_flight, never_sent=never_sent)
    file_size(path)  # checkpoint
    flush(path)
    return states


def flush(path: Path) -> None:
    """fsync a freshly written or copied journal, so that the agent's first commit does
    not pay for writing back the whole file (ext4 data=ordered would make it)."""
    for p in (path, Path(f"{path}-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

"""Transactions out, one row each (CSV or JSON lines), streamed: constant memory whatever
the range (the journal is read EXPORT_BATCH rows at a time, each row written and dropped;
month archives that retention wrote are read line by line, before the journal's rows).

The columns are the accounts team's: kind, final state, amounts, lane, terminal, Paytm's
ids, RRN, masked card (as Paytm masks it), method, parent (voids, refunds) and times in IST.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any, TextIO

from agent.day.totals import DAY_S, day_bounds, day_of, ist_text
from agent.journal import JournalReader, TxnRecord, iter_archived

FORMATS = ("csv", "jsonl")
COLUMNS = ("row", "kind", "txn", "parent", "state", "amount", "lane", "tid", "method",
           "paytm_txn_id", "rrn", "card", "code", "message", "txn_time", "created_at",
           "updated_at")


def export_range(start: date | None, end: date | None) -> tuple[float | None, float | None]:
    """[since, until) for days `start`..`end` inclusive (either may be open)."""
    since = None if start is None else day_bounds(start)[0]
    until = None if end is None else day_bounds(end)[0] + DAY_S
    return since, until


def export_row(record: TxnRecord, method: str) -> dict[str, str]:
    payment = record.payment_details()
    return {
        "row": str(record.row_id), "kind": record.kind.value, "txn": record.txn,
        "parent": record.parent if record.parent != record.txn else "",
        "state": record.state.value, "amount": record.amount, "lane": record.lane,
        "tid": record.tid, "method": method,
        "paytm_txn_id": str(payment.get("paytm_txn_id", "")),
        "rrn": str(payment.get("rrn", "")), "card": str(payment.get("card", "")),
        "code": record.code, "message": record.message, "txn_time": record.txn_time,
        "created_at": ist_text(record.created_at), "updated_at": ist_text(record.updated_at),
    }


def archived_row(item: dict[str, Any]) -> dict[str, str]:
    """An export row from a transaction retention moved to a month archive (its dict)."""
    payment = item.get("payment") if isinstance(item.get("payment"), dict) else {}
    request = item.get("request") if isinstance(item.get("request"), dict) else {}
    assert isinstance(payment, dict) and isinstance(request, dict)
    said = f"{payment.get('method', '')} {request.get('mode', '')}".upper()
    if item.get("kind") == "paylink" or request.get("original_kind") == "paylink":
        method = "paylink"
    else:
        method = "upi" if "UPI" in said or "QR" in said.split() else "card"
    parent = str(item.get("parent", ""))
    return {
        "row": str(item.get("row", "")), "kind": str(item.get("kind", "")),
        "txn": str(item.get("txn", "")),
        "parent": parent if parent != item.get("txn") else "",
        "state": str(item.get("state", "")), "amount": str(item.get("amount", "")),
        "lane": str(item.get("lane", "")), "tid": str(item.get("tid", "")), "method": method,
        "paytm_txn_id": str(payment.get("paytm_txn_id", "")),
        "rrn": str(payment.get("rrn", "")), "card": str(payment.get("card", "")),
        "code": str(item.get("code", "")), "message": str(item.get("message", "")),
        "txn_time": str(item.get("txn_time", "")),
        "created_at": ist_text(float(item.get("created_at") or 0)),
        "updated_at": ist_text(float(item.get("updated_at") or 0)),
    }


def _rows(reader: JournalReader, since: float | None, until: float | None
          ) -> Iterator[dict[str, str]]:
    """Archived transactions first (retention moved the oldest out), then the journal's."""
    first = None if since is None else date.fromisoformat(day_of(since))
    last = None if until is None else date.fromisoformat(day_of(until - 1))
    for item in iter_archived(reader.path, first, last):
        created = float(item.get("created_at") or 0)
        if (since is None or created >= since) and (until is None or created < until):
            yield archived_row(item)
    for record, method in reader.export_rows(since, until):
        yield export_row(record, method)


def export_chunks(reader: JournalReader, since: float | None, until: float | None,
                  fmt: str) -> Iterator[str]:
    """The export as text chunks (a header, then one chunk per row)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    if fmt == "csv":
        writer.writeheader()
        yield _take(buffer)
    for row in _rows(reader, since, until):
        if fmt == "csv":
            writer.writerow(row)
            yield _take(buffer)
        else:
            yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_export(reader: JournalReader, since: float | None, until: float | None, fmt: str,
                 out: TextIO) -> int:
    """Write the export to `out`; returns the number of transactions written."""
    rows = -1 if fmt == "csv" else 0
    for chunk in export_chunks(reader, since, until, fmt):
        out.write(chunk)
        rows += 1
    return rows


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text

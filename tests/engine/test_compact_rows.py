"""Results journaled without receipt lines or a second payment copy; read back as sent.

A real sale through a pty and the emulator: the register's receipt equals the one rebuilt
from the journal (repeat, page), the row holds no receipt text, and a row written the old
way (receipt and payment in the reply and in its outbox row) still reads the same.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from agent.engine.results import PAYMENT_IN_ROW, RECEIPT_AT, payload_bytes, restored_json
from agent.journal import Journal, Kind, TxnState
from agent.register.messages import Result, Sale
from agent.web.facts import txn_detail
from devtools.stack import WAIT_S, agent_config, stack, until_delivered


async def test_receipt_rebuilt_from_payment_and_config(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        client = s.register.client
        sale = Sale(id="r-compact1", txn="COMPACT00001", amount="123450", ref="INV7",
                    print=(("Invoice", "INV7"),))
        sent = (await client.request(sale, WAIT_S)).final
        assert isinstance(sent, Result) and sent.status == "success" and sent.receipt
        journal = s.agent.journal
        record = journal.find(Kind.SALE, "COMPACT00001")
        assert record is not None
        await until_delivered(journal, record.row_id)
        stored = json.loads(record.reply)
        assert stored["receipt"] == [] and RECEIPT_AT in stored
        assert "payment" not in stored and stored[PAYMENT_IN_ROW] is True
        assert "APPROVED" not in record.reply
        raw = sqlite3.connect(journal.path).execute(
            "SELECT payload FROM outbox WHERE txn_row=?", (record.row_id,)).fetchall()
        assert raw == [("",)]  # the newest outbox row's payload is the reply
        # A repeated request is answered from the journal with the same receipt.
        again = (await client.request(Sale(id="r-compact2", txn="COMPACT00001",
                                           amount="123450", ref="INV7",
                                           print=(("Invoice", "INV7"),)), WAIT_S)).final
        assert isinstance(again, Result)
        assert again.receipt == sent.receipt and again.payment == sent.payment
        # The page shows the reply and the outbox row as sent.
        detail = txn_detail(s.agent, record)
        assert detail.receipt == list(sent.receipt)
        assert sent.payment is not None and detail.reply["payment"] == sent.payment.to_json()
        assert [o.receipt for o in detail.outbox] == [list(sent.receipt)]
        # The lane's bytes: as encoded at finish, and the same rebuilt from the journal
        # (a resend after a restart).
        outbox = journal.outbox_for(record.row_id)[0]
        reporter = s.agent.engine.reporter  # type: ignore[union-attr]
        first = reporter.render(outbox)
        rebuilt = payload_bytes(outbox.payload, journal.get(record.row_id), s.config)
        assert first == rebuilt
        frame = json.loads(rebuilt)
        assert frame["receipt"] == list(sent.receipt) and frame["id"] == sent.id


async def test_rows_written_with_receipts_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    try:
        record = await journal.create(kind=Kind.SALE, txn="OLD000000001", lane="till-1",
                                      tid="T1", amount="500", request={"id": "q1"},
                                      txn_time="2026-01-01 10:00:00",
                                      states=(TxnState.RECEIVED, TxnState.SENDING))
        old = {"v": 1, "type": "result", "id": "old-1", "re": "q1", "txn": "OLD000000001",
               "kind": "sale", "status": "success", "code": "0000", "message": "Approved",
               "amount": "500", "payment": {"method": "UPI", "rrn": "1"},
               "receipt": ["SALE", "APPROVED"]}
        done, _ = await journal.finish(record.row_id, TxnState.SUCCESS, result=old, code="0000",
                                       message="Approved", payment={"method": "UPI",
                                                                    "rrn": "1"})
        # As an older agent wrote it: the payload in the outbox row itself.
        db = sqlite3.connect(path)
        db.execute("UPDATE outbox SET payload=? WHERE txn_row=?",
                   (json.dumps(old), record.row_id))
        db.commit()
        db.close()
        config = agent_config(base_url="http://127.0.0.1:9", journal=path,
                              link="serial:///dev/null")
        assert restored_json(done.reply, done, config)["receipt"] == ["SALE", "APPROVED"]
        outbox = journal.outbox_for(record.row_id)[0]
        assert json.loads(outbox.payload)["receipt"] == ["SALE", "APPROVED"]
    finally:
        await journal.aclose()

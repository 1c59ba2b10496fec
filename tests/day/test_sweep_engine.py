"""The sweep on the engine alone (a fake lane, the emulator over loopback): what it lists
when Paytm still has no answer."""

from __future__ import annotations

import json
from pathlib import Path

from agent.engine.sweep import Sweeper
from agent.journal import Kind, TxnState
from agent.register.messages import Sale
from tests.engine.money import money_engine


async def test_a_sale_still_pending_at_paytm_is_listed_unresolved(tmp_path: Path) -> None:
    async with money_engine(tmp_path, polling={"unknown_after_s": 0.3}) as m:
        await m.ask(Sale(id="r1", txn="PEND00000001", amount="10002"))  # never paid
        unknown = await m.lane.result_for("PEND00000001")
        assert unknown.status == "unknown"
        sweeper = Sweeper(m.engine, m.journal)
        record = await sweeper.sweep()
        assert (record.asked, record.changed, record.disagreements) == (1, 0, 0)
        [finding] = json.loads(record.report)["findings"]
        assert finding["type"] == "unresolved" and finding["txn"] == "PEND00000001"
        assert (finding["journal"], finding["paytm"]) == ("unknown", "pending")
        assert "do not hand over goods" in finding["action"]
        row = m.journal.find(Kind.SALE, "PEND00000001")
        assert row is not None and row.state is TxnState.UNKNOWN
        # Asked once more by the sweep: one Status Enquiry through the poller, one to list.
        assert m.emulator.count("status", "PEND00000001") >= 2

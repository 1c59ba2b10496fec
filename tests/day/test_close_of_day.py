"""Close of day through the real code paths: register over a pty, the emulator over
loopback, the journal file; the day's totals, the register's X-report, the sweep, and
`edc-agent report` / `show` reading the journal beside the running agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.day.totals import day_report, today
from agent.journal import TxnState
from agent.register.messages import Result, Totals, TotalsReport
from devtools import config as devtools_config
from devtools.day import (
    FAILED,
    LINK,
    LOST,
    POLLING,
    REFUND_PAISE,
    SALES,
    SETTINGS,
    UNKNOWN,
    UPI,
    VOID_PAISE,
    run_day,
)
from devtools.stack import TID, WAIT_S, stack


def write_config(tmp_path: Path) -> Path:
    return devtools_config.write_config(tmp_path / "tools.toml", {
        "journal": {"path": str(tmp_path / "journal.db")},
        "lanes": [{"name": "till-1", "link": "tcp://127.0.0.1:7070", "tid": TID}],
    })


async def test_a_day_its_totals_the_sweep_and_the_tools(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(tmp_path, settings=SETTINGS, polling=POLLING) as s:
        await run_day(s.register, s.emulator)
        journal = s.agent.journal
        day = today(s.agent.journal._clock())
        before = day_report(journal, day, tids={"till-1": TID})
        assert before.total.figures.unknown.count == 1
        assert before.total.figures.unknown.amount == SALES[UNKNOWN]
        assert before.sweep is None

        # The sweep asks Paytm again: the unknown sale is paid, the "lost" one was paid too.
        assert s.agent.sweeper is not None
        record = await s.agent.sweeper.sweep()
        late = await s.register.wait_for(
            lambda m: isinstance(m, Result) and m.txn == UNKNOWN and m.status == "success")
        assert isinstance(late, Result) and late.re is None  # delivered on its own
        assert journal.find_any(UNKNOWN)[0].state is TxnState.SUCCESS
        assert record.changed >= 1 and record.disagreements == 1
        report = json.loads(record.report)
        assert any(c["txn"] == UNKNOWN and c["to"] == "success" for c in report["changes"])
        [finding] = [f for f in report["findings"] if f["type"] == "disagreement"]
        assert finding["txn"] == LOST and finding["journal"] == "failed"
        assert finding["paytm"] == "success" and "refund" in finding["action"]

        after = day_report(journal, day, tids={"till-1": TID})
        total = after.total.figures
        assert (total.sales.count, total.sales.amount) == (len(SALES), sum(SALES.values()))
        assert (total.voids.count, total.voids.amount) == (1, VOID_PAISE)
        assert (total.refunds.count, total.refunds.amount) == (1, REFUND_PAISE)
        assert total.net == sum(SALES.values()) - VOID_PAISE - REFUND_PAISE
        assert (total.failed.count, total.failed.amount) == (2, sum(FAILED.values()))
        assert total.unknown.count == 0
        upi, link = after.total.method("upi"), after.total.method("paylink")
        assert (upi.sales.count, upi.sales.amount) == (1, SALES[UPI])
        assert (link.sales.count, link.sales.amount) == (1, SALES[LINK])
        card = after.total.method("card")
        assert card.sales.count == len(SALES) - 2 and card.refunds.amount == REFUND_PAISE
        assert after.sweep is not None and after.sweep.row_id == record.row_id

        # The register's X-report: the same figures, receipt lines within the width.
        exchange = await s.register.client.request(Totals(id="t1"), WAIT_S)
        answer = exchange.final
        assert isinstance(answer, TotalsReport)
        assert (answer.lane, answer.tid, answer.day) == ("till-1", TID, day.isoformat())
        assert answer.figures.net == str(total.net)
        assert answer.figures.sales.count == len(SALES)
        assert dict(answer.by_method)["upi"].sales.amount == str(SALES[UPI])
        assert answer.receipt and all(len(line) <= s.config.receipt.width
                                      for line in answer.receipt)
        assert any("NET" in line for line in answer.receipt)
        empty = (await s.register.client.request(Totals(id="t2", day="2020-01-01"),
                                                 WAIT_S)).final
        assert isinstance(empty, TotalsReport) and empty.figures.sales.count == 0

        # The read-only tools, beside the running agent.
        config = write_config(tmp_path)
        capsys.readouterr()
        assert main(["report", "--config", str(config), "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["day"] == day.isoformat()
        assert data["total"]["net"] == str(total.net)
        assert data["total"]["sales"] == {"count": len(SALES),
                                          "amount": str(sum(SALES.values()))}
        assert data["lanes"][0]["lane"] == "till-1" and data["lanes"][0]["tid"] == TID
        assert data["total"]["by_method"]["paylink"]["sales"]["count"] == 1
        assert data["reconciliation"]["disagreements"] == 1
        assert main(["report", "--config", str(config)]) == 0
        text = capsys.readouterr().out
        assert "Net" in text and LOST in text and "refund" in text
        assert main(["report", "--config", str(config), "--format", "csv",
                     "--lane", "till-1"]) == 0
        rows = capsys.readouterr().out.splitlines()
        assert rows[0] == "day,lane,tid,method,figure,count,amount"
        assert f"{day.isoformat()},till-1,{TID},all,net,,{total.net}" in rows
        assert main(["show", "--config", str(config), "DAYVOID00001"]) == 0
        shown = capsys.readouterr().out
        assert "sale DAYVOID00001" in shown and "void DAYVOID00001" in shown
        assert "Timeline" in shown and "Receipt:" in shown
        assert main(["show", "--config", str(config), "NOSUCHTXN001"]) == 1
    # And with no daemon at all.
    assert main(["report", "--config", str(config), "--format", "json",
                 "--day", day.isoformat()]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["net"] == str(total.net)

"""The campaign's verdict is not vacuous: fed a duplicate Sale, a wrong result, a lost one,
a journal that disagrees and an unacknowledged result, it names every one of them."""

from __future__ import annotations

import json
from pathlib import Path

from agent.journal import Journal, Kind, TxnState
from agent.paytm.clock import now_ist
from agent.paytm.edc import EdcClient, SaleRequest
from agent.paytm.http import make_session
from agent.paytm.settings import PaytmConfig
from agent.sim.paytm import DEMO_MID, Emulator, EmulatorSettings
from chaos.register import Basket, SeenResult
from chaos.verdict import delivered_not_received, judge, render
from devtools.config import CLIENT_DEMO_KEY

TID = "12345678"
AMOUNT = "15000"


def seen(txn: str, status: str, rrn: str | None = None) -> SeenResult:
    return SeenResult(txn=txn, status=status, code="0000" if status == "success" else "0011",
                      amount=AMOUNT, rrn=rrn, re="x", again=False, unsolicited=False)


async def test_the_verdict_names_every_violation(tmp_path: Path) -> None:
    txns = ["CHVERDICT01", "CHVERDICT02", "CHVERDICT03", "CHVERDICT04"]
    emulator = Emulator(EmulatorSettings())
    async with emulator.serve() as url:
        config = PaytmConfig(mid=DEMO_MID, edc_base_url=url, pg_base_url=url,
                             connect_timeout_s=2, read_timeout_s=5)
        session = make_session(config)
        try:
            client = EdcClient(session, config, CLIENT_DEMO_KEY)
            for txn in [*txns, txns[0]]:  # the first one twice: a duplicate Sale
                await client.sale(SaleRequest(tid=TID, txn=txn, amount=AMOUNT,
                                              txn_time=now_ist()))
                emulator.transaction(txn)  # settled (customer_delay_s is 0)
        finally:
            await session.close()
        rrn = emulator.transaction(txns[0])["payment"]
        assert isinstance(rrn, dict)
        good_rrn = str(rrn["retrievalReferenceNo"])

        journal_path = tmp_path / "journal.db"
        journal = Journal(journal_path)
        for txn, state in zip(txns, [TxnState.SUCCESS, TxnState.SUCCESS, TxnState.SUCCESS,
                                     TxnState.FAILED], strict=True):
            row = await journal.create(kind=Kind.SALE, txn=txn, lane="r1", tid=TID, amount=AMOUNT,
                                 request={}, txn_time="2024-01-01 10:00:00",
                                 states=(TxnState.RECEIVED, TxnState.SENDING))
            _, outbox = await journal.finish(row.row_id, state, result={}, code="", message="")
            if txn != txns[1]:
                await journal.mark_delivered(outbox.row_id)  # the second one: never ACKed
        await journal.aclose()

        baskets = [Basket(lane="r1", txn=txn, amount=AMOUNT, started=0.0, ended=1.0,
                          outcome="success", via="sale") for txn in txns]
        results = {
            txns[0]: [seen(txns[0], "success", good_rrn)],
            txns[1]: [seen(txns[1], "failed")],  # Paytm says success
            txns[2]: [],  # never reached the register
            txns[3]: [seen(txns[3], "success", "000000000000")],  # wrong RRN
        }
        verdict = judge(baskets, results, emulator, journal_path)

    problems = "\n".join(verdict.violations)
    assert f"{txns[0]}: 2 Sales reached the emulator" in problems
    assert f"{txns[1]}: register told failed 0011, emulator says success" in problems
    assert f"{txns[2]}: no final result reached the register" in problems
    assert f"{txns[3]}: result RRN 000000000000" in problems
    assert f"{txns[3]}: journal says failed, emulator says success" in problems
    assert "1 result(s) in the journal never ACKed by their register" in problems
    assert len(verdict.violations) == 6, problems
    assert not verdict.ok
    assert "VIOLATIONS (6)" in render(verdict)


async def test_results_marked_delivered_that_the_register_never_received_are_counted(
        tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    journal = Journal(journal_path)
    ids = {}
    for n, (lane, txn) in enumerate([("lane-1", "CHLOST0001"), ("lane-2", "CHLOST0002"),
                                     ("lane-2", "CHLOST0003"), ("lane-1", "CHLOST0004")]):
        row = await journal.create(kind=Kind.SALE, txn=txn, lane=lane, tid=TID,
                                   amount=AMOUNT, request={}, txn_time="2024-01-01 10:00:00",
                                   states=(TxnState.RECEIVED, TxnState.SENDING))
        # The outbox holds the whole result message, its id included (as the engine writes it).
        _, outbox = await journal.finish(row.row_id, TxnState.SUCCESS,
                                         result={"v": 1, "type": "result", "id": f"res-{n}"},
                                         code="", message="")
        if n < 3:  # the last one is not delivered: not counted, whoever received it
            await journal.mark_delivered(outbox.row_id)
        ids[txn] = json.loads(outbox.payload)["id"]
    await journal.aclose()
    lanes = {"lane-1": (1, {ids["CHLOST0001"]}),  # received: fine
             "lane-2": (2, {ids["CHLOST0003"]})}  # CHLOST0002 ACKed but never received
    assert delivered_not_received(journal_path, lanes) == {"v1": 0, "v2": 1}

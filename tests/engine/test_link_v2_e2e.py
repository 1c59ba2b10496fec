"""A sale over link v2 (protocol §6) end to end: register ⇄ pty ⇄ agent lane ⇄ emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import UndeliveredError
from agent.journal import Kind, TxnState
from agent.link.timings import LinkProtocol
from agent.register.messages import Ping, Pong, Result, Sale
from devtools.stack import WAIT_S, stack, until_delivered


@pytest.mark.parametrize("lane_query", ["?protocol=2", ""], ids=["lane-v2", "lane-auto"])
async def test_v2_register_sells_and_its_result_is_delivered_in_v2(
    tmp_path: Path, lane_query: str
) -> None:
    async with stack(tmp_path, lane_query=lane_query,
                     register_protocol=LinkProtocol.V2) as s:
        exchange = await s.register.client.request(
            Sale(id="r-V2SALE0001", txn="V2SALE0001", amount="15000"), WAIT_S)
        result = exchange.final
        assert isinstance(result, Result) and result.status == "success"
        record = s.agent.journal.find(Kind.SALE, "V2SALE0001")
        assert record is not None and record.state is TxnState.SUCCESS
        await until_delivered(s.agent.journal, record.row_id)
        pong = (await s.register.client.request(Ping(id="p1"), WAIT_S)).final
        assert isinstance(pong, Pong) and pong.link == 2
        # Every frame the register got was v2: it would have NAKed a v1 one.
        c = s.register.link.counters
        assert c.wrong_version == 0 and c.frames_in >= 3  # accepted, result, pong


async def test_v2_lane_answers_a_v1_register_with_bare_naks(tmp_path: Path) -> None:
    async with stack(tmp_path, lane_query="?protocol=2") as s:
        with pytest.raises(UndeliveredError):
            await s.register.client.request(Ping(id="p1"), WAIT_S)
        c = s.register.link.counters
        # S2: 4 sends, each NAKed (the first may go before the agent's port is open).
        assert c.naks_received >= 3 and c.undelivered == 1 and c.frames_in == 0

"""The line `systemctl status` shows for a running agent. It reads the `Agent`, so it lives
beside it: agent.service only takes a `Callable[[], str]` and never sees the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.journal import TxnState
from drivers.base import TransportState

if TYPE_CHECKING:
    from agent.app import Agent


def agent_status(agent: Agent) -> str:
    """E.g. "3 lanes up, 1 down; 1 in flight; 0 unknown".

    A lane is up when its pipe is open and its link is not down (protocol S3);
    "in flight" counts terminals held by a sale or void; "unknown" counts
    transactions whose outcome Paytm has not settled yet (reconciliation goes on).
    """
    up = sum(1 for lane in agent.lanes
             if lane.transport.status.state is TransportState.UP and not lane.link.down)
    down = len(agent.lanes) - up
    in_flight = len(agent.engine.busy_terminals()) if agent.engine is not None else 0
    unknown = agent.journal.count_in_state(TxnState.UNKNOWN)  # indexed: cheap every 5 s
    lanes = "lane" if up == 1 else "lanes"
    return f"{up} {lanes} up, {down} down; {in_flight} in flight; {unknown} unknown"

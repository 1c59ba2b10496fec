"""The engine driven directly: a fake lane that records what it is told, the real clients
against the emulator over loopback (optionally wrapped to misbehave), a real journal file.

    async with money_engine(tmp_path) as m:
        replies = await m.ask(Sale(id="r1", txn="T1", amount="100"))
        result = await m.lane.result_for("T1")
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Config, LaneConfig
from agent.engine.edc_flows import EdcCalls
from agent.engine.engine import Engine
from agent.engine.pg_flows import PgCalls
from agent.journal import Journal, OutboxRecord
from agent.paytm.edc import EdcClient
from agent.paytm.http import make_session
from agent.paytm.pg import PgClient
from agent.register.codec import decode_reply
from agent.register.messages import Reply, Request, Result
from agent.sim.paytm import Emulator, EmulatorSettings
from devtools.config import CLIENT_DEMO_KEY
from devtools.stack import WAIT_S, agent_config


@dataclass
class FakeLane:
    """What the engine sees of a lane: replies recorded, results 'delivered' at once."""

    lane_config: LaneConfig
    replies: list[Reply] = field(default_factory=list)
    delivered: list[OutboxRecord] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.lane_config.name

    @property
    def config(self) -> LaneConfig:
        return self.lane_config

    @property
    def link_version(self) -> int:
        return 1

    async def reply(self, message: Reply) -> bool:
        self.replies.append(message)
        self.changed.set()
        return True

    def deliver(self, outbox: OutboxRecord) -> None:
        self.delivered.append(outbox)
        self.changed.set()

    def results(self, txn: str) -> list[Result]:
        out = []
        for outbox in self.delivered:
            reply = decode_reply(outbox.payload.encode("ascii"))
            if isinstance(reply, Result) and reply.txn == txn:
                out.append(reply)
        return out

    async def result_for(self, txn: str, status: str | None = None,
                         timeout_s: float = WAIT_S) -> Result:
        async def wait() -> Result:
            while True:
                self.changed.clear()
                for result in self.results(txn):
                    if status is None or result.status == status:
                        return result
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout_s)


class FailingCommits:
    """Stands in for the writer's connection; `armed` makes every COMMIT fail as a full
    disk would (the transaction is rolled back, nothing of it is on disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.armed = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.armed and sql == "COMMIT":
            self._db.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def close(self) -> None:
        self._db.close()


@dataclass
class Money:
    emulator: Emulator
    engine: Engine
    journal: Journal
    lane: FakeLane
    config: Config
    commits: FailingCommits

    async def ask(self, request: Request) -> Reply:
        """Handle one request; its first reply."""
        before = len(self.lane.replies)
        await self.engine.handle(self.lane, request)
        return self.lane.replies[before]


@asynccontextmanager
async def money_engine(
    tmp_path: Path,
    settings: EmulatorSettings | None = None,
    edc: Callable[[EdcClient], EdcCalls] | None = None,
    pg: Callable[[PgClient], PgCalls] | None = None,
    polling: dict[str, float] | None = None,
) -> AsyncIterator[Money]:
    emulator = Emulator(settings or EmulatorSettings())
    async with emulator.serve() as url:
        config = agent_config(base_url=url, journal=tmp_path / "journal.db",
                              link="tcp://127.0.0.1:7070", polling=polling)
        session = make_session(config.paytm)
        journal = Journal(config.journal.path)
        commits = FailingCommits(journal._writer._db)
        journal._writer._db = commits  # type: ignore[assignment]
        edc_client = EdcClient(session, config.paytm, CLIENT_DEMO_KEY)
        pg_client = PgClient(session, config.paytm, CLIENT_DEMO_KEY)
        engine = Engine(config, journal, edc(edc_client) if edc else edc_client,
                        pg=pg(pg_client) if pg else pg_client)
        lane = FakeLane(config.lanes[0])
        engine.attach(lane)
        await engine.recover()
        try:
            yield Money(emulator, engine, journal, lane, config, commits)
        finally:
            await engine.stop()
            await journal.aclose()
            await session.close()

"""A real agent (emulator, pty register, journal file) with its technician page on a test
client, as devtools.stack builds it, plus the http settings each test needs (tests/web,
tests/service, tests/test_bundle.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.app import Agent
from agent.config import HttpConfig
from agent.journal import Journal, Kind, TxnState
from agent.logs import RecentLines
from agent.passwords import hash_password
from agent.register.codec import encode
from agent.register.messages import Result, Sale
from agent.sim.paytm import Emulator, EmulatorSettings
from agent.web.app import build_app
from devtools.config import CLIENT_DEMO_KEY
from devtools.pty import Pty
from devtools.stack import WAIT_S, Register, agent_config, register_on, serial_only, until_delivered

PASSWORD = "correct horse battery"  # noqa: S105 - the tests' own, never an operator's
# One scrypt hash per test session (≈50 ms): fixed salt so the value is stable.
PASSWORD_HASH = hash_password(PASSWORD, salt=b"edc-agent-tests!")
LOOPBACK = "127.0.0.1:8765"
LAN = "0.0.0.0:8765"

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_LOGIN_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class WebStack:
    emulator: Emulator
    agent: Agent
    register: Register
    app: web.Application
    client: TestClient[web.Request, web.Application]
    recent: RecentLines

    async def login(self, password: str = PASSWORD) -> int:
        """Log in through the form; the status of the POST (303 on success)."""
        page = await self.client.get("/login")
        match = _LOGIN_FIELD.search(await page.text())
        assert match, "login form without its CSRF field"
        response = await self.client.post(
            "/login", data={"csrf": match.group(1), "password": password, "next": "/"},
            allow_redirects=False)
        return response.status

    async def csrf(self) -> str:
        """The session's CSRF token as a page carries it."""
        text = await (await self.client.get("/config")).text()
        match = _CSRF_META.search(text)
        assert match, "no CSRF token on the page: not logged in?"
        return match.group(1)


@asynccontextmanager
async def web_stack(tmp_path: Path, *, password_hash: str = PASSWORD_HASH,
                    listen: str = LOOPBACK, settings: EmulatorSettings | None = None,
                    polling: dict[str, float] | None = None,
                    redact_bodies: bool = True,
                    hostnames: tuple[str, ...] = ()) -> AsyncIterator[WebStack]:
    emulator = Emulator(settings or EmulatorSettings())
    recent = RecentLines()
    async with emulator.serve() as base_url:
        pty = Pty()
        config = agent_config(base_url=base_url, journal=tmp_path / "journal.db",
                              link=f"serial://{pty.path}", polling=polling)
        config = dataclasses.replace(
            config, http=HttpConfig(listen=listen, password_hash=password_hash,
                                   hostnames=hostnames),
            source=str(tmp_path / "agent.toml"))
        agent = Agent(config, CLIENT_DEMO_KEY, transport_factory=serial_only)
        await agent.start()
        try:
            async with register_on(pty.master) as register:
                app = build_app(agent, recent=recent, redact_bodies=redact_bodies)
                async with TestClient(TestServer(app)) as client:
                    yield WebStack(emulator=emulator, agent=agent, register=register, app=app,
                                   client=client, recent=recent)
        finally:
            await agent.stop()
            pty.close()


async def sale(s: WebStack, txn: str, amount: str = "123450") -> int:
    """A successful sale through the register, delivered; its journal row id."""
    exchange = await s.register.client.request(Sale(id=f"r-{txn}", txn=txn, amount=amount),
                                               WAIT_S)
    assert isinstance(exchange.final, Result) and exchange.final.status == "success"
    record = s.agent.journal.find(Kind.SALE, txn)
    assert record is not None
    await until_delivered(s.agent.journal, record.row_id)
    return record.row_id


async def undelivered_result(journal: Journal, txn: str) -> tuple[int, int]:
    """A success journaled with its result, which no lane was asked to deliver (as if the
    register was away when it was made and the queue was lost)."""
    record = await journal.create(kind=Kind.SALE, txn=txn, lane="till-1", tid="12345678",
                            amount="5000", request={"id": "r-" + txn},
                            txn_time="2024-01-01 10:00:00",
                            states=(TxnState.RECEIVED, TxnState.SENDING))
    result = Result(re=None, txn=txn, kind="sale", status="success", code="0000",
                    message="Approved", amount="5000", receipt=("PAID",))
    _, outbox = await journal.finish(record.row_id, TxnState.SUCCESS,
                               result=json.loads(encode(result)), code="0000",
                               message="Approved")
    return record.row_id, outbox.row_id

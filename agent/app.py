"""Wiring and lifecycle: config → journal, Paytm client, engine, lanes; `edc-agent run`.

Start order matters: the journal is opened and recovery has queued every unfinished
transaction *before* any lane reads a request, so a restart can never let a new sale
onto a terminal whose last sale is still unresolved.

Stop order (SIGTERM, within DRAIN_S): lanes stop reading (no new work), requests
already talking to Paytm get a moment to finish, pollers stop (the journal lets the
next start resume them), links and the journal close.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from agent import __version__
from agent.capture import Capture
from agent.config import Config, load_config
from agent.engine.engine import CloudHealth, Engine
from agent.engine.sweep import Sweeper
from agent.errors import AgentError, ConfigError
from agent.journal import (
    Journal,
    JournalCorruptError,
    RetentionReport,
    TxnState,
    key_archives,
    run_retention,
)
from agent.keyfile import load_merchant_key
from agent.link.spec import LinkSpec
from agent.listener import FdBudget, fd_budget, quiet_accept_errors
from agent.logs import SECRETS, setup_logging
from agent.paytm.checksum import MerchantKey, load_aes
from agent.paytm.edc import EdcClient
from agent.paytm.http import make_session
from agent.paytm.outcome import CallRecord
from agent.paytm.pg import PgClient
from agent.register.lane import Lane
from agent.startcheck import StartCheck
from drivers.base import Transport, TransportState
from drivers.errors import TransportError

if TYPE_CHECKING:
    from agent.bundle import ReportHook
    from agent.web.server import WebServer
    from agent.webhook_server import WebhookServer

log = logging.getLogger(__name__)

DRAIN_S = 3.0  # SIGTERM → exit within 5 s: 3 s for in-flight calls, the rest to close
GIL_SWITCH_INTERVAL_S = 0.0005  # see _serve: the journal writer's wait for the GIL
RETENTION_EVERY_S = 86400.0  # retention runs at start, then daily


class Agent:
    """The whole agent in one object; `edc-agent run`, the demo and the tests use it."""

    def __init__(
        self,
        config: Config,
        key: MerchantKey,
        *,
        session: aiohttp.ClientSession | None = None,
        journal: Journal | None = None,
        transport_factory: Callable[[LinkSpec], Transport] | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.started_at = time.time()
        self.health = CloudHealth()
        self.calls: list[CallRecord] = []
        self._own_session = session is None
        self._session = session
        self._key = key
        self.journal = journal if journal is not None else Journal(config.journal.path)
        self.engine: Engine | None = None
        self.sweeper: Sweeper | None = None  # the close-of-day reconciliation ([day])
        self.lanes: list[Lane] = []
        self._observers: list[Callable[[CallRecord], None]] = []
        self._transport_factory = transport_factory
        self.webhook: WebhookServer | None = None
        self._wall = wall
        self._mono = mono
        self._budget: FdBudget | None = None
        # The support bundle's capture: last frames per lane, last Paytm calls (in memory).
        self.capture = Capture()
        self.last_retention: RetentionReport | None = None
        # The support bundle's "last report": set by a day-report module when there is one.
        self.bundle_report: ReportHook | None = None
        self.retention_done = asyncio.Event()  # set after each retention run (tests wait)
        self._retention: asyncio.Task[None] | None = None

    def budget(self) -> FdBudget:
        """The file-descriptor budget (raised limit, listener caps), computed once."""
        if self._budget is None:
            self._budget = fd_budget(len(self.config.lanes))
        return self._budget

    def observe_calls(self, observer: Callable[[CallRecord], None]) -> Callable[[], None]:
        """Call `observer` after every Paytm call; returns the unsubscribe."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def _observe(self, record: CallRecord) -> None:
        self.health.observe(record)
        for observer in self._observers:
            observer(record)

    async def start(self) -> None:
        quiet_accept_errors(asyncio.get_running_loop())
        budget = self.budget()
        log.info("open-file limit %d: %d kept for lanes, the journal and Paytm; page at "
                 "most %d connections, webhook %d", budget.limit, budget.reserved,
                 budget.web, budget.webhook)
        if self._session is None:
            self._session = make_session(self.config.paytm)
        edc = EdcClient(self._session, self.config.paytm, self._key, observer=self._observe,
                        exchanges=self.capture.paytm.observe)
        pg = PgClient(self._session, self.config.paytm, self._key, observer=self._observe,
                      exchanges=self.capture.paytm.observe)
        self.engine = Engine(self.config, self.journal, edc, pg=pg, health=self.health,
                             wall=self._wall, mono=self._mono)
        factory = self._transport_factory
        if factory is None:
            from drivers.factory import make_transport

            factory = make_transport
        for lane_config in self.config.lanes:
            if lane_config.spec is None:
                raise ConfigError([f"lane {lane_config.name}: link URL missing"])
            lane = Lane(lane_config, factory(lane_config.spec), self.engine, self.journal,
                        render=self.engine.reporter.render)
            lane.link.observer = self.capture.lane(
                lane.name, lane.link.timings.frame_gap_s).observe
            self.engine.attach(lane)
            self.lanes.append(lane)
        # Before any lane reads: months archived before schema 6 get their keys (a thread
        # reads the files), so a register repeating one of their sales is never sold to.
        try:
            await key_archives(self.journal)
        except (OSError, sqlite3.Error, AgentError) as exc:
            log.error("journal: archived months could not be keyed (retried at the next "
                      "retention run): %s", exc)
        # Recovery before any lane reads: unfinished sales hold their terminals again and
        # undelivered results are queued first.
        await self.engine.recover()
        self.engine.start_ticker()
        for lane in self.lanes:
            await lane.start()
        self.sweeper = Sweeper(self.engine, self.journal, wall=self._wall)
        self.sweeper.start(self.config.day.close_at)
        if self.config.webhook.enabled:
            # Imported here: aiohttp's server half is for the webhook and the page only.
            from agent.webhook_server import WebhookServer

            self.webhook = WebhookServer(self.engine, self._key, self.config.webhook.listen,
                                         self.config.webhook.path, cap=budget.webhook)
            await self.webhook.start()
        self._retention = asyncio.get_running_loop().create_task(
            self._retain(), name="journal-retention")
        log.info("edc-agent %s running: %d lane(s), journal %s", __version__, len(self.lanes),
                 self.journal.path)

    async def _retain(self) -> None:
        """Retention (agent/journal/retention.py): now, then every day. Its reads and file
        writes run in threads, its deletes on the journal's writer thread."""
        while True:
            try:
                self.last_retention = await run_retention(
                    self.journal, self.config.journal.keep_days, now=self._wall(),
                    quiet=self._quiet)
            except (OSError, sqlite3.Error, AgentError) as exc:
                log.error("journal retention failed (the journal keeps everything; next "
                          "try in a day): %s", exc)
            self.retention_done.set()
            await asyncio.sleep(RETENTION_EVERY_S)

    def _quiet(self) -> bool:
        """No sale, void or link on its way: a one-off VACUUM may hold the writer now."""
        return self.engine is not None and not self.engine.busy_terminals()

    async def stop(self) -> None:
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self._retention is not None:
            self._retention.cancel()
            await asyncio.gather(self._retention, return_exceptions=True)
            self._retention = None
        if self.webhook is not None:
            await self.webhook.stop()
        for lane in self.lanes:
            await lane.stop_reading()
        if self.engine is not None:
            await self.engine.drain(DRAIN_S)
            await self.engine.stop()
        for lane in self.lanes:
            await lane.stop()
        if self._own_session and self._session is not None:
            await self._session.close()
        await self.journal.aclose()  # drains the writer: every queued step is on disk
        log.info("edc-agent stopped")


# The line `systemctl status` shows; agent.service only takes a Callable[[], str].
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


async def _serve(config: Config, key: MerchantKey,
                 journal_check: StartCheck | None = None) -> None:
    from agent.service.systemd import SystemdService

    # The journal's writer thread needs the GIL for a few microseconds per step; with
    # Python's default 5 ms switch interval a busy event loop makes every commit wait up
    # to 5 ms for it, three or four times a sale. A shorter interval costs the loop
    # nothing while the writer sleeps in its queue or in fsync (the GIL is released).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    same = journal_check is not None and journal_check.path == config.journal.path
    journal = Journal(config.journal.path,
                      checked=journal_check.problems if same and journal_check else None)
    agent = Agent(config, key, journal=journal)
    # systemd/edc-agent.service is Type=notify with WatchdogSec=; outside systemd
    # (no NOTIFY_SOCKET) every call on `service` does nothing.
    service = SystemdService.from_environ(lambda: agent_status(agent))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        service.stopping()  # STOPPING=1 before the drain, so systemctl shows "deactivating"
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    service.start()  # the watchdog heartbeat runs from here until the drain is over
    try:
        await agent.start()
        if not stop.is_set():
            service.ready()  # READY=1 only now: every lane set up, recovery has run
        # What READY did not need comes after it, imported on a thread beside the running
        # lanes (the loop keeps ACKing): pycryptodome for the first checksum, aiohttp's
        # server half and the page (0.2 s of imports). Payments never wait for the page.
        await asyncio.to_thread(_import_after_ready)
        web = await start_web_or_log(agent)
        # Objects alive after start-up live as long as the process: keep them out of
        # every later full collection (28 ms → 6 ms pauses at 256 lanes).
        gc.freeze()
        try:
            await stop.wait()
            log.info("stopping: finishing what is in flight (at most %.0f s)", DRAIN_S)
        finally:
            if web is not None:
                await web.stop()  # before agent.stop(): the page reads the open journal
            await agent.stop()
    finally:
        await service.close()


def _import_after_ready() -> None:
    import agent.web.server  # noqa: F401  (imported for its side effect: loaded once)

    load_aes()


async def start_web_or_log(agent: Agent) -> WebServer | None:
    """The technician page; a port in use costs the page, never the payments."""
    from agent.web.server import WebStartError, start_web

    try:
        return await start_web(agent)
    except WebStartError as exc:
        log.error("%s; the agent runs on without its technician page", exc)
        return None


def run_main(args: argparse.Namespace, journal_check: StartCheck | None = None) -> int:
    from agent.logs import journal_prefix

    try:
        config = load_config(args.config)
        key = load_merchant_key(config.paytm.merchant_key_file)
    except ConfigError as exc:
        # Logging is not set up yet: under systemd, mark the lines as errors by hand
        # so `journalctl -u edc-agent -p err` shows why the agent did not start.
        err = journal_prefix(logging.ERROR, sys.stderr)
        print(f"{err}edc-agent: {args.config}: cannot start:", file=sys.stderr)
        for problem in exc.problems:
            print(f"{err}  - {problem}", file=sys.stderr)
        return 2
    SECRETS.add(key.secret_bytes.decode("ascii"))
    if config.http.password_hash:
        SECRETS.add(config.http.password_hash)
    level: str | None = getattr(args, "log_level", None)
    setup_logging(level if level is not None else config.log.level)
    try:
        asyncio.run(_serve(config, key, journal_check))
    except KeyboardInterrupt:
        return 130
    except (AgentError, TransportError) as exc:  # e.g. no journal: say so, exit non-zero
        log.critical("edc-agent cannot run: %s", exc)
        return 1
    except sqlite3.DatabaseError as exc:  # damage the start-up check did not see
        log.critical("edc-agent cannot run: %s", JournalCorruptError(config.journal.path,
                                                                     str(exc)))
        return 1
    return 0

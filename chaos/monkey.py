"""What breaks, and when: SIGKILLs of the agent and faults injected into the emulator.

Kills come three ways, all seeded: on a timer (exponential gaps), and a few hundred
milliseconds after a register sends a `sale` or receives an `accepted` — the moments
when a Sale is between the journal and Paytm, or its result between the journal and
the register. After each kill the journal file is checked (`PRAGMA integrity_check`)
before the agent starts again, as the next start would find it after a power cut.

Cloud outages (chaos.cloud) refuse new connections and cut open ones for a second or
three: the one case where the agent may answer CLOUD_UNAVAILABLE and send a Sale again.

Emulator faults are drawn from a menu that covers every kind the emulator has, each
aimed at Sale or Status Enquiry; a delay is either shorter than the agent's read timeout
(a slow answer) or longer (the agent gives up: unknown). A few are queued at a time; the
emulator's record says which calls they hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.sim.paytm import Emulator, Fault, StateError
from chaos.cloud import CloudLink
from devtools.process import AgentProcess

KILL_DELAY_MAX_S: Final = 0.3  # after the event that triggers it
RESTART_PAUSE_MAX_S: Final = 0.5
FAULTS_QUEUED_MAX: Final = 3


def integrity(path: Path) -> str:
    """`PRAGMA integrity_check` of the journal, as the next agent start would open it."""
    if not path.exists():
        return "ok"  # not created yet: nothing to check
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.Error as exc:
        return f"error: {exc}"


@dataclass
class Killer:
    agent: AgentProcess
    journal: Path
    rng: random.Random
    mean_gap_s: float  # timer kills: mean seconds between them
    p_at_sale: float  # probability that a sale frame triggers a kill
    p_at_accepted: float
    min_uptime_s: float  # the agent runs at least this long between kills
    kills: Counter[str] = field(default_factory=Counter)  # by trigger
    integrity_failures: list[str] = field(default_factory=list)
    crashes: list[int] = field(default_factory=list)  # exit codes of runs we did not end
    _requested: asyncio.Event = field(default_factory=asyncio.Event)
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _reason: str = "timer"
    _started_at: float = 0.0
    active: bool = True

    def hook(self, event: str, txn: str, amount: str) -> None:
        """Register events (chaos.register.Hook); may ask for a kill soon."""
        p = self.p_at_sale if event == "sale" else self.p_at_accepted
        if self.active and not self._requested.is_set() and self.rng.random() < p:
            self._reason = f"at_{event}"
            self._requested.set()

    def stop(self) -> None:
        """No more kills; run() returns once a restart in progress is done."""
        self.active = False
        self._requested.set()

    async def start_agent(self) -> None:
        loop = asyncio.get_running_loop()
        await self.agent.start()
        self._started_at = loop.time()
        self._started.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.active:
            self._requested.clear()
            self._reason = "timer"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.rng.expovariate(1 / self.mean_gap_s)):
                    await self._requested.wait()
            if not self.active:
                return
            if not self.agent.running or loop.time() - self._started_at < self.min_uptime_s:
                continue  # too soon after the last start (or down by itself): not now
            if self._reason != "timer":
                await asyncio.sleep(self.rng.uniform(0, KILL_DELAY_MAX_S))
            await self.agent.kill()
            self.kills[self._reason] += 1
            verdict = await asyncio.to_thread(integrity, self.journal)
            if verdict != "ok":
                self.integrity_failures.append(verdict)
            await asyncio.sleep(self.rng.uniform(0, RESTART_PAUSE_MAX_S))
            await self.start_agent()

    async def watch(self) -> None:
        """Restart an agent that exits by itself (counted: a crash is a finding)."""
        while True:
            process = self.agent.process
            if process is None:
                self._started.clear()
                await self._started.wait()
                continue
            code = await process.wait()
            if code == -signal.SIGKILL:  # ours: run() starts the next one
                while self.agent.process is process:
                    self._started.clear()
                    await self._started.wait()
                continue
            self.crashes.append(code)
            await self.start_agent()


# (api, kind, delay range): every fault kind the emulator has, on Sale and Status Enquiry.
FAULT_MENU: Final[tuple[tuple[str, str, tuple[float, float]], ...]] = (
    ("sale", "delay", (0.2, 1.5)),  # a slow answer, within the agent's read timeout
    ("sale", "delay", (2.5, 4.0)),  # slower than the read timeout: the agent gives up
    ("sale", "http_500", (0.0, 0.0)),
    ("sale", "html", (0.0, 0.0)),
    ("sale", "malformed_json", (0.0, 0.0)),
    ("sale", "drop_before_read", (0.0, 0.0)),  # never registered: "not received" later
    ("sale", "drop_after_read", (0.0, 0.0)),
    ("sale", "lose_response", (0.0, 0.0)),
    ("status", "delay", (0.2, 1.5)),
    ("status", "delay", (2.5, 4.0)),
    ("status", "http_500", (0.0, 0.0)),
    ("status", "html", (0.0, 0.0)),
    ("status", "malformed_json", (0.0, 0.0)),
    ("status", "drop_before_read", (0.0, 0.0)),
    ("status", "drop_after_read", (0.0, 0.0)),
)


def fault_label(api: str, kind: str, delay_s: float, read_timeout_s: float) -> str:
    if kind == "delay":
        return f"{api}:delay>{read_timeout_s:g}s" if delay_s > read_timeout_s \
            else f"{api}:delay<{read_timeout_s:g}s"
    return f"{api}:{kind}"


@dataclass
class EmulatorFaults:
    emulator: Emulator
    rng: random.Random
    mean_gap_s: float
    read_timeout_s: float
    injected: Counter[str] = field(default_factory=Counter)
    active: bool = True

    async def run(self) -> None:
        while self.active:
            await asyncio.sleep(self.rng.expovariate(1 / self.mean_gap_s))
            if not self.active or len(self.emulator.faults) >= FAULTS_QUEUED_MAX:
                continue
            api, kind, (low, high) = self.rng.choice(FAULT_MENU)
            delay = round(self.rng.uniform(low, high), 2) if high else 0.0
            self.emulator.inject(Fault(api=api, kind=kind, count=1, delay_s=delay))
            self.injected[fault_label(api, kind, delay, self.read_timeout_s)] += 1


@dataclass
class Outages:
    """Now and then the road to Paytm goes dark (chaos.cloud): refused and cut."""

    cloud: CloudLink
    rng: random.Random
    mean_gap_s: float
    duration_s: tuple[float, float] = (1.0, 3.0)
    active: bool = True

    async def run(self) -> None:
        # The first one within mean_gap_s, so that even a short run has one; then at
        # exponential gaps.
        gap = self.rng.uniform(0, self.mean_gap_s)
        while self.active:
            await asyncio.sleep(gap)
            if self.active:
                await self.cloud.outage(self.rng.uniform(*self.duration_s))
            gap = self.rng.expovariate(1 / self.mean_gap_s)


@dataclass
class LateCustomers:
    """Some customers who "never pay" (magic 02) pay after all — after the agent has told
    the register `unknown` and before the terminal gives up: a late success (§3, §5.5)."""

    emulator: Emulator
    rng: random.Random
    p_pay: float = 0.5
    after_s: tuple[float, float] = (3.2, 3.9)  # from the sale frame; unknown comes at 3 s
    paid: int = 0
    missed: int = 0  # the Sale was not at the emulator yet, or already final
    active: bool = True
    _seen: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def hook(self, event: str, txn: str, amount: str) -> None:
        if not self.active or event != "sale" or not amount.endswith("02") or txn in self._seen:
            return
        self._seen.add(txn)
        if self.rng.random() < self.p_pay:
            task = asyncio.get_running_loop().create_task(
                self._pay(txn, self.rng.uniform(*self.after_s)), name=f"customer:{txn}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pay(self, txn: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        try:
            self.emulator.finish(txn, "success")
            self.paid += 1
        except StateError:  # UnknownError included
            self.missed += 1

    async def stop(self) -> None:
        self.active = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

"""What `edc-agent run` tells systemd (Type=notify, WatchdogSec=), and when.

    start()          heartbeat task: WATCHDOG=1 every WatchdogSec/2, if systemd watches us
    agent.start()    lanes set up, unfinished transactions resumed from the journal
    ready()          READY=1 with the first STATUS=; STATUS= again whenever it changes
    SIGTERM/SIGINT   stopping(): STOPPING=1 before the drain begins
    agent.stop()     (the heartbeat keeps going through the drain)
    close()          tasks cancelled, socket closed

The heartbeat is a task on the agent's own event loop, not a thread: when something
blocks the loop (a hung call, a runaway computation) the heartbeat stops with it, and
systemd kills and restarts the agent after WatchdogSec=. A thread would keep beating
for a daemon that no longer serves anyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping

from agent.service.notify import Notifier, watchdog_interval_s

log = logging.getLogger(__name__)

STATUS_REFRESH_S = 5.0  # how often STATUS= is recomputed (and sent when it changed)


class SystemdService:
    def __init__(
        self,
        notifier: Notifier,
        status: Callable[[], str],
        *,
        watchdog_s: float | None,
        status_refresh_s: float = STATUS_REFRESH_S,
    ) -> None:
        self.notifier = notifier
        self.watchdog_s = watchdog_s if notifier.enabled else None
        self._status = status
        self._refresh_s = status_refresh_s
        self._last_status: str | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._status_task: asyncio.Task[None] | None = None

    @classmethod
    def from_environ(cls, status: Callable[[], str],
                     environ: Mapping[str, str] | None = None) -> SystemdService:
        return cls(Notifier.from_environ(environ), status,
                   watchdog_s=watchdog_interval_s(environ))

    def start(self) -> None:
        """Begin the heartbeat (before the agent starts: recovery counts against it too)."""
        if self.watchdog_s is not None and self._heartbeat_task is None:
            self._heartbeat_task = _spawn(self._heartbeat(self.watchdog_s), "systemd-watchdog")

    def ready(self) -> None:
        if not self.notifier.enabled or self._status_task is not None:
            return
        self._last_status = self._describe()
        self.notifier.ready(self._last_status)
        self._status_task = _spawn(self._refresh_status(), "systemd-status")

    def stopping(self) -> None:
        """STOPPING=1; the status stops refreshing (the drain closes what it reads)."""
        if not self.notifier.enabled:
            return
        if self._status_task is not None:
            self._status_task.cancel()
        self.notifier.stopping(f"stopping: {self._describe()}")

    async def close(self) -> None:
        tasks = [t for t in (self._heartbeat_task, self._status_task) if t is not None]
        self._heartbeat_task = self._status_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.notifier.close()

    def _describe(self) -> str:
        try:
            return self._status()
        except Exception:  # status is informational; it must never stop the agent
            log.exception("cannot compute the service status")
            return "running (status unavailable)"

    async def _heartbeat(self, interval_s: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval_s)

    async def _refresh_status(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            text = self._describe()
            if text != self._last_status:
                self._last_status = text
                self.notifier.status(text)


def _spawn(coro: Coroutine[None, None, None], name: str) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro, name=name)

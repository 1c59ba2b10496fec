"""The Paytm emulator with the time each answer left, in this event loop or its own process.

    async with emulator(workdir, separate=True) as emu:   # `python -m devtools.emulator`
        emu.base_url ... await emu.record()               # what it received, with times
    async with emulator(workdir, separate=False) as emu: ...  # the same in this event loop

The emulator notes, per call, `at` (its handler started: the request is in) and
`answered` (its handler returned the answer, which aiohttp then writes at once): leg 2
of a sale starts when the final status answer leaves the emulator, not when the
question arrived, so the emulator's own work is not billed to the agent. Times are
time.monotonic(): one clock for every process on Linux.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from devtools.process import READY_TIMEOUT_S, spawn, stop_child
from devtools.procfs import cpu_seconds

RECORD_PATH: Final = "/_bench/record"


@dataclass(frozen=True, slots=True)
class Call:
    """One request the emulator answered: in at `at`, answer prepared at `answered`."""

    api: str  # sale | status | void | ...
    txn: str
    at: float
    answered: float


@dataclass
class EmulatorRecord:
    calls: list[Call] = field(default_factory=list)

    def by_api(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    def first(self, api: str) -> dict[str, Call]:
        out: dict[str, Call] = {}
        for call in self.calls:
            if call.api == api and call.txn not in out:
                out[call.txn] = call
        return out

    def last(self, api: str) -> dict[str, Call]:
        return {c.txn: c for c in self.calls if c.api == api}


class EmulatorHandle(Protocol):
    base_url: str

    async def record(self) -> EmulatorRecord: ...

    def cpu_s(self) -> float: ...


class TimedEmulator:
    """agent.sim.paytm.Emulator, plus per call the time its answer was ready.

    A middleware notes when the handler was entered (the request is in: leg 1 of a
    sale ends here) and when it returned its answer (aiohttp writes it to the socket
    at once, without another await: leg 2 starts here). GET /_bench/record hands the
    calls to a bench in another process.
    """

    def __init__(self) -> None:
        from aiohttp import web

        from agent.paytm.edc import SALE_PATH, STATUS_PATH
        from agent.sim.paytm import Emulator, EmulatorSettings

        self.emulator = Emulator(EmulatorSettings())
        self._apis = {SALE_PATH: "sale", STATUS_PATH: "status"}
        self._raw: list[tuple[str, float, float, bytes]] = []
        self.base_url = ""

        @web.middleware
        async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
            t_in = time.monotonic()
            response: web.StreamResponse = await handler(request)
            t_out = time.monotonic()
            api = self._apis.get(request.path)
            if api is not None:
                self._raw.append((api, t_in, t_out, await request.read()))  # cached body
            return response

        async def record(_: web.Request) -> web.Response:
            return web.json_response([dataclasses.asdict(c) for c in self.record_now().calls])

        self.emulator.app.middlewares.append(timing)
        self.emulator.app.router.add_get(RECORD_PATH, record)

    def record_now(self) -> EmulatorRecord:
        calls = [Call(api=api, txn=_txn_of(raw), at=t_in, answered=t_out)
                 for api, t_in, t_out, raw in self._raw]
        return EmulatorRecord(calls)

    async def record(self) -> EmulatorRecord:
        return self.record_now()

    def cpu_s(self) -> float:
        return cpu_seconds(os.getpid())

    @asynccontextmanager
    async def serve(self, port: int = 0) -> AsyncIterator[TimedEmulator]:
        async with self.emulator.serve("127.0.0.1", port) as base_url:
            self.base_url = base_url
            yield self


def _txn_of(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        return ""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            value = item.get("merchantTransactionId")
            if isinstance(value, str):
                return value
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return ""


class EmulatorProcess:
    """The timed emulator in its own process: `python -m devtools.emulator`."""

    def __init__(self, workdir: Path) -> None:
        self.log_path = workdir / "emulator.log"
        self.child: asyncio.subprocess.Process | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self.child is not None, "not started"
        return self.child.pid

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.child = await spawn([sys.executable, "-m", "devtools.emulator"],
                                     stdout=asyncio.subprocess.PIPE, stderr=log)
        assert self.child.stdout is not None
        line = await asyncio.wait_for(self.child.stdout.readline(), READY_TIMEOUT_S)
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("listening "):
            raise RuntimeError(f"emulator did not start: {text!r}")
        self.base_url = text.split()[1]

    async def record(self) -> EmulatorRecord:
        import aiohttp

        async with aiohttp.ClientSession() as session, \
                session.get(self.base_url + RECORD_PATH) as response:
            rows = await response.json()
        return EmulatorRecord([Call(**row) for row in rows])

    async def stop(self) -> None:
        if self.child is not None:
            await stop_child(self.child)

    async def __aenter__(self) -> EmulatorProcess:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@asynccontextmanager
async def emulator(workdir: Path, *, separate: bool) -> AsyncIterator[EmulatorHandle]:
    """The timed emulator in this process (separate=False) or in its own."""
    if separate:
        async with EmulatorProcess(workdir) as proc:
            yield proc
    else:
        async with TimedEmulator().serve() as emu:
            yield emu


async def _main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with TimedEmulator().serve() as emu:
        print(f"listening {emu.base_url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    if sys.argv[1:]:
        raise SystemExit("usage: python -m devtools.emulator")
    asyncio.run(_main())

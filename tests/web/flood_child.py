"""The agent under a half-open-connection flood, in a process of its own with a lowered
RLIMIT_NOFILE (the test runner keeps its limit). Driven by tests/web/test_flood.py:

    child → READY <page port>
    parent opens the flood from its own process, then → SALE
    child → RESULT <status> <ack seconds> <result seconds>
    child → LOG <lines at ERROR or above> <tracebacks>
    parent → EXIT
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import time
from pathlib import Path

from agent.register.messages import Accepted, Result, Sale
from agent.web.server import start_web
from devtools.stack import WAIT_S, stack

NOFILE = 256  # what the flood must not exhaust (the test opens more than this)


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors = 0
        self.tracebacks = 0
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors += 1
        if record.exc_info:
            self.tracebacks += 1
        self.lines.append(record.getMessage()[:200])


async def main(folder: Path) -> None:
    count = Count()
    logging.getLogger().addHandler(count)
    logging.getLogger().setLevel(logging.INFO)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with stack(folder) as s:
        web = await start_web(s.agent, listen="127.0.0.1:0")
        port = web.url.rstrip("/").rsplit(":", 1)[1]
        print(f"READY {port} {s.agent.budget().web}", flush=True)
        assert (await reader.readline()).strip() == b"SALE"
        started = time.monotonic()
        acked: list[float] = []
        sale = Sale(id="r-FLOOD0001", txn="FLOOD0001", amount="100")
        exchange = await s.register.client.request(sale, WAIT_S)
        first = exchange.replies[0] if exchange.replies else None
        if isinstance(first, Accepted):
            acked.append(time.monotonic() - started)
        final = exchange.final
        status = final.status if isinstance(final, Result) else type(final).__name__
        print(f"RESULT {status} {acked[0] if acked else -1:.3f} "
              f"{time.monotonic() - started:.3f}", flush=True)
        print(f"LOG {count.errors} {count.tracebacks}", flush=True)
        for line in count.lines[-5:]:
            print(f"LINE {line}", flush=True)
        await reader.readline()
        await web.stop()


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    asyncio.run(main(Path(sys.argv[1])))

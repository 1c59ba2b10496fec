"""Make docs/screenshot-overview.png: a shop with three lanes, a few sales, one in flight and
one lane whose adapter is unplugged (the red box). Needs Playwright and /usr/bin/chromium.

    python -m tests.web.screenshot [OUTPUT.png]
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path

from agent.app import Agent
from agent.config import HttpConfig
from agent.logs import RECENT
from agent.register.messages import Result, Sale
from agent.sim.paytm import Emulator, EmulatorSettings, demo_bench_tid
from agent.web.server import start_web
from devtools.config import CLIENT_DEMO_KEY
from devtools.pty import Pty
from devtools.stack import agent_config, register_on, serial_only
from devtools.webstack import PASSWORD, PASSWORD_HASH
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, DOCS_SCREENSHOT

WAIT_S = 30.0


async def make(output: Path) -> None:
    from playwright.async_api import async_playwright, expect

    emulator = Emulator(EmulatorSettings())
    with tempfile.TemporaryDirectory(prefix="edc-agent-") as tmp:
        async with emulator.serve() as base_url:
            one, two = Pty(), Pty()
            config = agent_config(
                base_url=base_url, journal=Path(tmp) / "journal.db",
                link=f"serial://{one.path}",
                polling={"interval_s": 1, "slow_interval_s": 2},
                extra_lanes=[
                    {"name": "till-2", "link": f"serial://{two.path}", "tid": "87654321",
                     "pos_id": "S1_2"},
                    {"name": "till-3", "link": "serial:///dev/ttyUSB7?baudrate=9600",
                     "tid": demo_bench_tid(1), "pos_id": "S1_3"}])
            config = dataclasses.replace(
                config, source="/etc/edc-agent/agent.toml",
                http=HttpConfig(listen="127.0.0.1:8765", password_hash=PASSWORD_HASH))
            agent = Agent(config, CLIENT_DEMO_KEY, transport_factory=serial_only)
            await agent.start()
            try:
                async with register_on(one.master) as r1, register_on(two.master) as r2:
                    for register, txn, amount in ((r1, "INV00001041", "123450"),
                                                  (r1, "INV00001042", "25006"),
                                                  (r2, "INV00002017", "89901"),
                                                  (r1, "INV00001043", "49900")):
                        exchange = await register.client.request(
                            Sale(id="r-" + txn, txn=txn, amount=amount), WAIT_S)
                        assert isinstance(exchange.final, Result)
                    pending = asyncio.create_task(r2.client.request(
                        Sale(id="r-INV00002018", txn="INV00002018", amount="310002"), WAIT_S))
                    server = await start_web(agent, listen="127.0.0.1:0", recent=RECENT)
                    try:
                        async with async_playwright() as pw:
                            browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                                               args=CHROMIUM_ARGS)
                            page = await browser.new_page(
                                viewport={"width": 1280, "height": 900}, base_url=server.url)
                            await page.goto("/login")
                            await page.fill("#password", PASSWORD)
                            await page.click("form.login button[type=submit]")
                            await expect(page.locator("#overview-live")).to_contain_text(
                                "INV00002018")
                            await expect(page.locator("#attention")).to_contain_text("till-3")
                            await expect(page.locator("#live-status")).to_have_text("live")
                            await page.screenshot(path=output, full_page=True)
                            await browser.close()
                    finally:
                        await server.stop()
                        pending.cancel()
                        await asyncio.gather(pending, return_exceptions=True)
            finally:
                await agent.stop()
                for pty in (one, two):
                    pty.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    asyncio.run(make(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS_SCREENSHOT))

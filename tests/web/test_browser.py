"""A real browser (Debian's headless Chromium, driven by Playwright) on the real page:
log in, start a sale from a virtual register, watch it go to success on the Lanes and
Transactions pages without reloading, open its detail page. Screenshots go to
test-artifacts/. Skipped only when Chromium (or Playwright) is missing, never under CI.

Set UPDATE_DOCS_SCREENSHOT=1 to also refresh docs/screenshot-overview.png.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from agent.register.messages import Result, Sale
from agent.sim.register.client import Exchange
from agent.web.server import start_web
from devtools.webstack import PASSWORD, web_stack
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, DOCS_SCREENSHOT, ROOT

ARTIFACTS = ROOT / "test-artifacts"
# The same page at a desktop's and a phone's width, kept in docs/ (UPDATE_DOCS_SCREENSHOT=1).
DOCS_DESKTOP = ROOT / "docs" / "screenshot-desktop.png"
DOCS_PHONE = ROOT / "docs" / "screenshot-phone.png"
PHONE_WIDTH = 390  # an iPhone 12-15's CSS width
PHONE_NAV = ("Overview", "Lanes", "Transactions", "Log", "Config", "Tools")
EXPECT_MS = 10_000
TXN = "BROW00000001"


def need_browser() -> None:
    missing = ""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing = "Playwright for Python is not installed (pip install playwright)"
    if not missing and not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)


async def test_a_sale_goes_to_success_live_in_a_real_browser(tmp_path: Path) -> None:
    need_browser()
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    polling = {"interval_s": 0.25, "slow_interval_s": 0.5}
    async with web_stack(tmp_path, polling=polling) as s:
        server = await start_web(s.agent, listen="127.0.0.1:0", recent=s.recent)
        sale: asyncio.Task[Exchange] | None = None
        problems: list[str] = []
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
                try:
                    context = await browser.new_context(
                        viewport={"width": 1280, "height": 860}, base_url=server.url)
                    context.set_default_timeout(EXPECT_MS)
                    lanes = await context.new_page()
                    for page in (lanes,):
                        page.on("console", lambda m: problems.append(m.text)
                                if m.type == "error" else None)
                    await lanes.goto("/login")
                    await lanes.fill("#password", PASSWORD)
                    await lanes.click("form.login button[type=submit]")
                    await expect(lanes.locator(".who-in")).to_have_text("Logged in")
                    await expect(lanes).to_have_url(server.url)
                    await expect(lanes.locator("h1")).to_have_text("Overview")

                    await lanes.goto("/lanes")
                    txns = await context.new_page()
                    txns.on("console", lambda m: problems.append(m.text)
                            if m.type == "error" else None)
                    await txns.goto("/transactions")
                    for page in (lanes, txns):
                        # The live view is connected (SSE) before the sale starts.
                        await expect(page.locator("#live-status")).to_have_text(
                            "live", timeout=EXPECT_MS)
                        await page.evaluate("window.__sameDocument = 42")

                    # Amount ending in 02: the emulated customer waits until told to pay.
                    sale = asyncio.create_task(s.register.client.request(
                        Sale(id="r-" + TXN, txn=TXN, amount="10002"), 30.0))
                    in_flight = lanes.locator("dd", has=lanes.get_by_role("link", name=TXN))
                    await expect(in_flight.first).to_contain_text(
                        re.compile(r"(accepted|pending)"))
                    row = txns.locator("#txns-live tr", has=txns.get_by_role("link", name=TXN))
                    await expect(row.locator(".pill")).to_have_text(
                        re.compile(r"^(sending|accepted|pending)$"))
                    await lanes.screenshot(path=ARTIFACTS / "browser-lanes-pending.png",
                                           full_page=True)
                    await txns.screenshot(path=ARTIFACTS / "browser-transactions-pending.png",
                                          full_page=True)

                    s.emulator.finish(TXN, "success")
                    await expect(row.locator(".pill")).to_have_text("success")
                    lane_card = lanes.locator("#lane-till-1")
                    await expect(lane_card).to_contain_text(
                        re.compile(TXN + r" sale ₹100\.02 success"))
                    await expect(lane_card.locator("dd").nth(3)).to_have_text("idle")
                    for page in (lanes, txns):
                        assert await page.evaluate("window.__sameDocument") == 42, \
                            "the page was reloaded; it should update in place"
                    await lanes.screenshot(path=ARTIFACTS / "browser-lanes-success.png",
                                           full_page=True)
                    await txns.screenshot(path=ARTIFACTS / "browser-transactions-success.png",
                                          full_page=True)

                    await row.get_by_role("link", name=TXN).click()
                    await expect(txns.locator("h1")).to_have_text(f"Sale {TXN}")
                    receipt = txns.locator("pre.receipt")
                    await expect(receipt).to_contain_text("APPROVED")
                    await expect(receipt).to_contain_text("₹100.02")
                    await expect(txns.locator("#txn-live")).to_contain_text("Timeline")
                    await txns.screenshot(path=ARTIFACTS / "browser-detail.png",
                                          full_page=True)

                    exchange = await sale
                    assert isinstance(exchange.final, Result)
                    assert exchange.final.status == "success"

                    await lanes.goto("/")
                    await expect(lanes.locator("#overview-live")).to_contain_text(TXN)
                    await lanes.screenshot(path=ARTIFACTS / "overview.png")
                    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
                        shutil.copyfile(ARTIFACTS / "overview.png", DOCS_SCREENSHOT)

                    # A phone: nothing wider than the screen, the lane still readable.
                    phone = await browser.new_page(viewport={"width": PHONE_WIDTH,
                                                             "height": 844},
                                                   base_url=server.url)
                    await phone.goto("/lanes")
                    await expect(phone.locator("#lane-till-1")).to_contain_text("12345678")
                    overflow = await phone.evaluate(
                        "document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, f"the lanes page is {overflow}px too wide on a phone"
                    await phone.screenshot(path=ARTIFACTS / "browser-lanes-phone.png",
                                           full_page=True)
                    # Every page is reachable from the nav, on screen, without scrolling it.
                    for name in PHONE_NAV:
                        link = phone.locator("header nav").get_by_role("link", name=name,
                                                                       exact=True)
                        box = await link.bounding_box()
                        assert box is not None and box["x"] >= 0 \
                            and box["x"] + box["width"] <= PHONE_WIDTH, f"nav {name}: {box}"
                    # The transactions keep their Amount and Status columns on screen.
                    await phone.goto("/transactions")
                    phone_row = phone.locator("#txns-live tr",
                                              has=phone.get_by_role("link", name=TXN))
                    for header in ("Amount", "Status"):
                        cell = phone.locator("table.txns th", has_text=header)
                        box = await cell.bounding_box()
                        assert box is not None and box["x"] + box["width"] <= PHONE_WIDTH, \
                            f"{header} off screen at {PHONE_WIDTH} px: {box}"
                    await expect(phone_row.locator(".pill")).to_have_text("success")
                    await expect(phone_row).to_contain_text("₹100.02")
                    await phone.screenshot(path=ARTIFACTS / "phone-transactions.png")
                    await phone.goto("/")
                    await phone.screenshot(path=ARTIFACTS / "phone-overview.png", full_page=True)
                    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
                        shutil.copyfile(ARTIFACTS / "overview.png", DOCS_DESKTOP)
                        shutil.copyfile(ARTIFACTS / "phone-overview.png", DOCS_PHONE)
                finally:
                    await browser.close()
        finally:
            if sale is not None and not sale.done():
                sale.cancel()
            if sale is not None:
                await asyncio.gather(sale, return_exceptions=True)
            await server.stop()
        assert not problems, f"browser console errors (CSP?): {problems}"

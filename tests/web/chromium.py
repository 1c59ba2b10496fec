"""Debian's headless Chromium, as the browser test and the screenshot script drive it."""

from __future__ import annotations

from pathlib import Path
from typing import Final

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = ["--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--no-first-run"]
ROOT: Final = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOT: Final = ROOT / "docs" / "screenshot-overview.png"

"""The Log page changes what the agent logs, now, for a logged-in technician only."""

from __future__ import annotations

import logging
from pathlib import Path

from agent.logs import current_level
from devtools.webstack import web_stack


async def test_log_level_changes_without_restart_only_when_logged_in(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.INFO)
        async with web_stack(tmp_path) as s:
            root.addHandler(s.recent)  # the page shows this stack's lines
            anonymous = await s.client.post("/log/level", data={"level": "debug"},
                                            allow_redirects=False)
            assert anonymous.status == 303
            assert anonymous.headers["Location"].startswith("/login")
            assert (await s.client.post("/api/log/level", data={"level": "debug"})).status == 401
            assert current_level() == "info"
            page = await (await s.client.get("/log")).text()
            assert "log in to change it" in page

            assert await s.login() == 303
            csrf = await s.csrf()
            bad = await s.client.post("/api/log/level", data={"level": "loud"},
                                      headers={"X-CSRF-Token": csrf})
            assert bad.status == 400
            ok = await s.client.post("/api/log/level", data={"level": "debug"},
                                     headers={"X-CSRF-Token": csrf})
            assert ok.status == 200 and (await ok.json())["ok"] is True
            assert current_level() == "debug"

            response = await s.client.post("/log/level", data={"level": "warning", "csrf": csrf},
                                           allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == "/log"
            page = await (await s.client.get("/log")).text()
            assert "Log level: warning" in page and "now: warning" in page
            assert current_level() == "warning"
            # The change itself is in the log, whatever the new level.
            assert "log level debug → warning" in page
            root.removeHandler(s.recent)
    finally:
        root.setLevel(before)

"""start_web / stop inside the agent's loop, on a real socket."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from agent.web.server import WebStartError, start_web
from devtools.webstack import web_stack


async def test_start_serve_and_stop(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        server = await start_web(s.agent, listen="127.0.0.1:0", recent=s.recent)
        try:
            assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/")
            async with aiohttp.ClientSession() as http:
                async with http.get(server.url + "healthz") as response:
                    assert response.status == 200
                    assert (await response.json())["status"] == "ok"
                async with http.get(server.url) as response:
                    assert response.status == 200
                    assert response.headers["X-Frame-Options"] == "DENY"
            port = server.url.rsplit(":", 1)[1].rstrip("/")
            with pytest.raises(WebStartError, match=r"cannot listen on 127\.0\.0\.1:"):
                await start_web(s.agent, listen=f"127.0.0.1:{port}")
            with pytest.raises(WebStartError, match="HOST:PORT"):
                await start_web(s.agent, listen="nonsense")
        finally:
            await server.stop()
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(server.url + "healthz")

"""The agent under test: `python -m agent run --config F` as a child process.

Killed with SIGKILL (no drain, no journal close: a power cut as far as the agent can tell)
and started again by the campaign; stopped with SIGTERM at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.sim.paytm import DEMO_KEY, DEMO_MID

REPO: Final = Path(__file__).resolve().parent.parent
TERM_WAIT_S: Final = 15.0  # SIGTERM drains within 5 s; a loaded box gets slack


@dataclass(frozen=True, slots=True)
class Timing:
    """What the agent is told in its config (kept short so a run finishes in minutes)."""

    connect_timeout_s: float = 1.0
    read_timeout_s: float = 2.0
    first_check_s: float = 0.0
    interval_s: float = 0.2
    slow_after_s: float = 60.0
    slow_interval_s: float = 1.0
    unknown_after_s: float = 3.0
    not_found_grace_s: float = 6.0


def write_config(workdir: Path, base_url: str, lanes: list[tuple[str, str, str]],
                 timing: Timing) -> Path:
    """`lanes`: (name, pty path, terminal id) for each lane; a path may carry link options
    (`/dev/pts/4?protocol=2`)."""
    key = workdir / "merchant.key"
    key.write_bytes(DEMO_KEY.secret_bytes)
    os.chmod(key, 0o600)
    blocks = "".join(f"""
[[lanes]]
name = "{name}"
link = "serial://{path}"
tid = "{tid}"
pos_id = "S1_{n}"
""" for n, (name, path, tid) in enumerate(lanes, start=1))
    config = workdir / "agent.toml"
    config.write_text(f"""
[paytm]
mid = "{DEMO_MID}"
merchant_key_file = "{key}"
edc_base_url = "{base_url}"
pg_base_url = "{base_url}"
connect_timeout_s = {timing.connect_timeout_s}
read_timeout_s = {timing.read_timeout_s}

[polling]
first_check_s = {timing.first_check_s}
interval_s = {timing.interval_s}
slow_after_s = {timing.slow_after_s}
slow_interval_s = {timing.slow_interval_s}
unknown_after_s = {timing.unknown_after_s}
not_found_grace_s = {timing.not_found_grace_s}

[journal]
path = "{workdir / 'journal.db'}"

[http]
listen = "127.0.0.1:0"

[log]
level = "info"
{blocks}""")
    return config


@dataclass
class AgentProcess:
    config: Path
    log: Path
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        if self.running:
            return
        self.starts += 1
        # A local file opened once per start: too quick to be worth a thread.
        log = open(self.log, "ab")  # noqa: SIM115, ASYNC230 - handed to the child, closed below
        try:
            env = {**os.environ, "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                               os.environ.get("PYTHONPATH")]))}
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "run", "--config", str(self.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=REPO, env=env)
        finally:
            log.close()

    async def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process is None or self.process.returncode is not None:
            return
        self.kills += 1
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int | None:
        """SIGTERM, wait for the drain; SIGKILL if it hangs. The exit code, None if killed."""
        process = self.process
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(TERM_WAIT_S):
                return await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
            return None

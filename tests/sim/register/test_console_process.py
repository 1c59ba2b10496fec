"""`python -m agent register --link serial:///dev/pts/N` as a process, against the fake agent."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from agent.link.timings import LinkProtocol
from tests.sim.register.fake_agent import fake_agent_on_pty, fake_agent_on_tcp

ROOT = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT_S = 60.0  # a hang fails the test instead of the suite


async def run_console(path: str, *args: str, stdin: bytes | None = None
                      ) -> tuple[int, str, str]:
    url = path if "://" in path else f"serial://{path}"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "register", "--link", url, *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env)
    try:
        async with asyncio.timeout(PROCESS_TIMEOUT_S):
            out, err = await proc.communicate(stdin)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_script(tmp_path: Path) -> None:
    script = tmp_path / "till.txt"
    script.write_text("# smoke test\nping\nsale 150.00 --txn T1234567\nsale 0.01\n")
    async with fake_agent_on_pty() as (_, path):
        code, out, err = await run_console(path, "--script", str(script), "--hex")
    assert code == 0, err
    lines = out.splitlines()
    assert "register → agent: ping" in lines
    assert "register → agent: sale T1234567 ₹150.00" in lines
    assert 'agent → register: result success 0000 "Approved" (sale T1234567 ₹150.00)' in lines
    assert any(line.startswith('agent → register: result failed 0007 "Declined"')
               for line in lines)
    assert any(line.startswith("  hex: 02 7b 22 76 22 3a 31 2c") for line in lines)


async def test_interactive_from_stdin() -> None:
    async with fake_agent_on_pty() as (_, path):
        code, out, err = await run_console(path, stdin=b"ping\nbogus\nsale 0.001\nquit\nping\n")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"connected to serial://{path}; type help for the commands"
    assert lines[1:] == [
        "register → agent: ping",
        "agent → register: pong lane=till-1 tid=12345678 busy=no cloud=ok version=0.1.0",
        "  unknown command 'bogus' (type help)",
        "  amount '0.001' has more than 2 decimal places (paise are whole)",
    ]


async def test_missing_device(tmp_path: Path) -> None:
    script = tmp_path / "till.txt"
    script.write_text("ping\n")
    code, out, err = await run_console("/dev/edc-agent-no-such-tty", "--script", str(script))
    assert code == 1
    assert out == ""
    assert "serial device not found" in err


async def test_script_over_tcp(tmp_path: Path) -> None:
    script = tmp_path / "till.txt"
    script.write_text("ping\nsale 99.99 --txn T5555555 --mode QR\n")
    async with fake_agent_on_tcp() as (agent, url):
        code, out, err = await run_console(url, "--script", str(script))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:4] == [
        "register → agent: ping",
        "agent → register: pong lane=till-1 tid=12345678 busy=no cloud=ok version=0.1.0",
        "register → agent: sale T5555555 ₹99.99 mode QR",
        "agent → register: accepted sale T5555555",
    ]
    assert len(agent.requests) == 2


async def test_nobody_listening_on_tcp(tmp_path: Path) -> None:
    script = tmp_path / "till.txt"
    script.write_text("ping\n")
    async with fake_agent_on_tcp() as (_, url):
        pass  # the port was free a moment ago and nobody listens on it now
    code, out, err = await run_console(url, "--script", str(script))
    assert code == 1
    assert out == ""
    assert err.startswith(f"edc-agent register: cannot open {url}: ")


async def test_protocol_2_flag(tmp_path: Path) -> None:
    script = tmp_path / "till.txt"
    script.write_text("ping\nsale 150.00 --txn T1234567\n")
    async with fake_agent_on_pty(protocol=LinkProtocol.V2) as (agent, path):
        code, out, err = await run_console(path, "--protocol", "2", "--script", str(script))
        assert agent.link.counters.wrong_version == 0 and agent.link.counters.frames_in == 2
    assert code == 0, err
    assert 'agent → register: result success 0000 "Approved" (sale T1234567 ₹150.00)' in (
        out.splitlines())

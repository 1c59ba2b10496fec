"""`edc-agent demo` as a newcomer runs it: a subprocess that must finish, exit 0 and tell
the story in order."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_script_and_exits_0() -> None:
    done = subprocess.run([sys.executable, "-m", "agent", "demo"], capture_output=True,
                          text=True, timeout=120, check=False)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for expected in ("register says", "agent says", "Paytm says",
                     "result sale DEMOCARD0001: SUCCESS 0000",
                     "result sale DEMOUPI00001: SUCCESS",
                     "result sale DEMODECL0001: FAILED",
                     "register says   sale DEMOBUSY0002",
                     "error TERMINAL_BUSY: DEMOBUSY0002 refused, the terminal is busy with "
                     "DEMOBUSY0001",
                     "result void DEMOCARD0001: SUCCESS",
                     "Paytm received 1 Sale for DEMOCARD0001",
                     "result paylink DEMOLINK0001: SUCCESS", "Send Payment Request",
                     "result refund DEMOREFUND01: SUCCESS", "UPI PAYMENT LINK", "REFUNDED",
                     "APPROVED", "VOIDED", "every step behaved as expected",
                     # Till 2 on link v2 (protocol §6): its pong says so, and it sells.
                     "pong: lane till-2, terminal 70000001, busy=False, Paytm ok, link v2",
                     "result sale DEMOLINK2SALE1: SUCCESS",
                     "the agent answers 06 30 38 31 46 41"):
        assert expected in out, expected
    # The story is in order: the register asks before the agent answers.
    assert out.index("register says   sale DEMOCARD0001") < \
        out.index("agent says      accepted sale DEMOCARD0001") < \
        out.index("result sale DEMOCARD0001")


PAGE_URL_RE = r"The technician page is at (http://127\.0\.0\.1:[0-9]+/)"
KEEP_TIMEOUT_S = 90.0


async def test_demo_keep_with_its_port_taken_stays_up_and_feeds_the_log() -> None:
    import asyncio
    import re
    import signal
    import socket

    import aiohttp

    with socket.socket() as taken:  # another program holds the port the demo asks for
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "demo", "--keep", "--http-port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        out = ""
        try:
            async with asyncio.timeout(KEEP_TIMEOUT_S):
                while (found := re.search(PAGE_URL_RE, out)) is None:
                    line = await proc.stdout.readline()
                    assert line, f"the demo ended:\n{out}"
                    out += line.decode()
            assert f"the technician page cannot use port {port}" in out
            assert "choose one with --http-port N" in out
            url = found.group(1)
            async with aiohttp.ClientSession() as session, \
                    session.get(url + "api/log?limit=2000") as response:
                lines = (await response.json())["lines"]
            # The page's Log tab shows what the agent logged during the demo.
            assert any("DEMOCARD0001" in str(line) for line in lines), lines[:5]
            assert proc.returncode is None  # still up
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(KEEP_TIMEOUT_S):
                code = await proc.wait()
            assert code in (0, 130)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

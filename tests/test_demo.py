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

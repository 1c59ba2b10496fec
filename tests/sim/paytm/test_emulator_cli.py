"""`edc-agent emulator`: serving as a subprocess, and its configuration handling."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from agent.errors import ConfigError
from agent.paytm.checksum import MerchantKey
from agent.sim.paytm.server import emulator_main, settings_from_args
from agent.sim.paytm.signature import ChecksumMode as EmulatorMode
from tests.sim.paytm.raw import RawPaytm

STARTUP_TIMEOUT_S = 20.0  # generous: two cores shared with other test runs
REPO = Path(__file__).resolve().parents[2]


def _args(config: str | None = None, delay: float | None = None,
          port: int = 0) -> argparse.Namespace:
    return argparse.Namespace(command="emulator", port=port, config=config,
                              customer_delay_s=delay, webhook_url=None)


def _write_config(tmp_path: Path, key_mode: int = 0o600) -> Path:
    key_file = tmp_path / "merchant.key"
    key_file.write_text("ABCDEFGHIJKLMNOP\n")
    key_file.chmod(key_mode)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[paytm]
mid = "SHOPMID0001"
merchant_key_file = "{key_file}"
checksum_mode = "json"

[[lanes]]
name = "till-1"
link = "tcp://127.0.0.1:7070"
tid = "T0000001"

[[lanes]]
name = "till-2"
link = "tcp://127.0.0.1:7071"
tid = "T0000002"
""")
    return config


async def test_cli_serves_the_demo_merchant_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "emulator", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT_S)).decode()
        assert "listening" in line, line
        assert "TESTMID00000000000001" in line and "12345678" in line
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match is not None
        async with aiohttp.ClientSession() as session:
            paytm = RawPaytm(session, match.group(0))
            assert (await paytm.sale("ORDER0001")).code == "0009"
            assert (await paytm.status("ORDER0001")).code == "0000"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT_S)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


def test_settings_from_an_agent_config(tmp_path: Path) -> None:
    settings = settings_from_args(_args(str(_write_config(tmp_path)), delay=2.5))
    [merchant] = settings.merchants
    assert merchant.mid == "SHOPMID0001"
    assert merchant.key.secret_bytes == MerchantKey(b"ABCDEFGHIJKLMNOP").secret_bytes
    assert [(t.tid, t.active) for t in merchant.terminals] == [("T0000001", True),
                                                                ("T0000002", True)]
    assert merchant.configured("12345678") is None
    assert settings.checksum_mode is EmulatorMode.JSON
    assert settings.customer_delay_s == 2.5


def test_demo_settings_without_config() -> None:
    settings = settings_from_args(_args())
    assert settings.merchants[0].mid == "TESTMID00000000000001"
    assert settings.customer_delay_s == 0


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "missing.toml")


def _key_readable_by_others(tmp_path: Path) -> str:
    return str(_write_config(tmp_path, key_mode=0o644))


def _bad_mid(tmp_path: Path) -> str:
    path = tmp_path / "bad.toml"
    path.write_text("[paytm]\nmid = 5\n")
    return str(path)


@pytest.mark.parametrize(("make", "message"), [
    (_missing, "does not exist"),
    (_key_readable_by_others, "chmod 600"),
    (_bad_mid, "paytm.mid"),
])
def test_config_errors_exit_2_with_a_message(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             make: Callable[[Path], str], message: str) -> None:
    assert emulator_main(_args(make(tmp_path))) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_negative_delay_and_bad_port_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert emulator_main(_args(delay=-1)) == 2
    assert emulator_main(_args(port=70000)) == 2
    err = capsys.readouterr().err
    assert "--customer-delay-s" in err and "--port" in err


def test_clock_offset_moves_paytms_clock() -> None:
    args = _args()
    args.clock_offset_s = 600.0
    settings = settings_from_args(args)
    assert abs(settings.wall_clock() - time.time() - 600.0) < 5
    args.clock_offset_s = float("nan")
    with pytest.raises(ConfigError, match="clock-offset-s"):
        settings_from_args(args)

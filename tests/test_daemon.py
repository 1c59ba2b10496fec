"""The daemon as an operator meets it: check-config, start, stop, logs without secrets."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from agent.app import Agent
from agent.cli import main
from agent.logs import SECRETS, Secrets, setup_logging
from agent.register.messages import Ping, Pong, Result, Sale
from agent.sim.paytm import Emulator, EmulatorSettings, Fault
from devtools.config import CLIENT_DEMO_KEY, DEMO_KEY_TEXT, LaneSpec, process_config, write_key
from devtools.process import AgentProcess
from devtools.pty import Pty
from devtools.stack import WAIT_S, agent_config, register_on, stack
from drivers.base import TransportState


def _write_config(tmp: Path, body: str, key_mode: int = 0o600) -> Path:
    key = tmp / "merchant.key"
    key.write_text(DEMO_KEY_TEXT + "\n")
    os.chmod(key, key_mode)
    path = tmp / "agent.toml"
    # check-config checks the journal's directory: the default's is not on a test machine.
    journal = "" if "[journal]" in body else f'[journal]\npath = "{tmp / "journal.db"}"\n'
    path.write_text(f'[paytm]\nmerchant_key_file = "{key}"\n' + body + journal)
    return path


def test_check_config_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, '[[lanes]]\nname = "till-1"\nlink = "tcp://127.0.0.1:7070"'
                                   '\ntid = "12345678"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "till-1" in out and DEMO_KEY_TEXT not in out


def test_check_config_lists_every_problem(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, 'color = "blue"\n[polling]\ninterval_s = 0\n'
                                   '[[lanes]]\nname = "x"\nlink = "serial://dev"\n')
    assert main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    for key in ("paytm.color", "polling.interval_s", "lanes[0].link", "lanes[0].tid"):
        assert key in err


def test_key_readable_by_others_is_refused(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, "", key_mode=0o644)
    assert main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "chmod 600" in err and DEMO_KEY_TEXT not in err


def test_run_refuses_an_invalid_config(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, "[polling]\nfirst_check_s = -1\n")
    assert main(["run", "--config", str(path)]) == 2
    assert "polling.first_check_s" in capsys.readouterr().err


def test_redaction_filter_hides_registered_secrets() -> None:
    secrets = Secrets()
    secrets.add("ABCDEFGHIJKLMNOP")
    assert secrets.redact("key=ABCDEFGHIJKLMNOP!") == "key=•••!"
    SECRETS.add(DEMO_KEY_TEXT)
    stream = io.StringIO()
    setup_logging("debug", stream=stream)
    log = logging.getLogger("agent.test")
    log.info("in the message %s", DEMO_KEY_TEXT)
    log.warning("in an argument: %r", {"key": DEMO_KEY_TEXT})
    try:
        raise ValueError(f"in an exception {DEMO_KEY_TEXT}")
    except ValueError:
        log.exception("failed")
    logging.getLogger("aiohttp.client").error(DEMO_KEY_TEXT)
    text = stream.getvalue()
    assert DEMO_KEY_TEXT not in text
    assert text.count("•••") >= 4
    setup_logging("warning")


async def test_missing_device_lane_keeps_retrying_others_serve(tmp_path: Path) -> None:
    emulator = Emulator(EmulatorSettings())
    async with emulator.serve() as base_url:
        pty = Pty()
        config = agent_config(
            base_url=base_url, journal=tmp_path / "j.db", link=f"serial://{pty.path}",
            extra_lanes=[{"name": "till-2", "link": "serial:///dev/ttyNOPE0", "tid": "87654321"}])
        agent = Agent(config, CLIENT_DEMO_KEY)
        await agent.start()
        try:
            missing = agent.lanes[1].transport.status
            assert missing.state in (TransportState.RECONNECTING, TransportState.CONNECTING)
            async with register_on(pty.master) as register:
                result = (await register.client.request(
                    Sale(id="s1", txn="LANE00000001", amount="100"), WAIT_S)).final
                assert isinstance(result, Result) and result.status == "success"
            assert missing.state is TransportState.RECONNECTING
            assert missing.last_error and "ttyNOPE0" in missing.last_error
        finally:
            await agent.stop()
            pty.close()


async def test_status_errors_back_off_and_the_lane_keeps_serving(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.emulator.inject(Fault(api="status", kind="http_500", count=3))
        result = (await s.register.client.request(
            Sale(id="s1", txn="BACK00000001", amount="100"), WAIT_S)).final
        assert isinstance(result, Result) and result.status == "success"
        assert s.emulator.count("status", "BACK00000001") >= 4
        pong = (await s.register.client.request(Ping(id="p"), WAIT_S)).final
        assert isinstance(pong, Pong)


async def test_sigterm_drains_within_5_seconds(tmp_path: Path) -> None:
    emulator = Emulator(EmulatorSettings())
    async with emulator.serve() as base_url:
        pty = Pty()
        journal = tmp_path / "journal.db"
        config = process_config(
            base_url=base_url, journal=journal, key_file=write_key(tmp_path),
            lanes=[LaneSpec("till-1", f"serial://{pty.path}", "12345678")], polling={})
        # Up when it answers a ping, as its register sees it; the test sends SIGTERM itself.
        daemon = AgentProcess(tmp_path, config, ready=False)
        log = daemon.log_path
        await daemon.start()
        process = daemon.process
        assert process is not None
        try:
            async with register_on(pty.master) as register:
                # A sale still open when SIGTERM comes: it must survive in the journal.
                async def until_pong() -> None:
                    n = 0
                    while True:
                        n += 1
                        try:
                            exchange = await register.client.request(Ping(id=f"p{n}"), 2.0)
                        except Exception:
                            continue
                        if isinstance(exchange.final, Pong):
                            return

                await asyncio.wait_for(until_pong(), 20)
                await register.client.request(
                    Sale(id="s1", txn="TERM00000001", amount="10002"), 1.0)
                started = time.monotonic()
                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), 10)
                took = time.monotonic() - started
        finally:
            await daemon.kill()
            pty.close()
        text = log.read_text()
        assert code == 0, text
        assert took < 5.0, took
        assert DEMO_KEY_TEXT not in text
        db = sqlite3.connect(journal)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        state = db.execute("SELECT state FROM txns WHERE txn='TERM00000001'").fetchone()[0]
        assert state in ("accepted", "pending")  # resumed by the next start
        db.close()


def test_check_config_says_when_the_day_is_reconciled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_config(tmp_path, '[day]\nclose_at = "22:15"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    assert "reconciliation with Paytm daily at 22:15 IST" in capsys.readouterr().out
    path = _write_config(tmp_path, '[day]\nclose_at = ""\n')
    assert main(["check-config", "--config", str(path)]) == 0
    assert "no daily reconciliation sweep" in capsys.readouterr().out

"""Journal faults (issue 14, case 7), each through the real journal and agent:
deleted or replaced under the running agent, 0-byte or unreadable at start, corrupt pages
(one CRITICAL line, exit 1, no traceback). The full disk on a real small tmpfs and the
read-only disk are in test_store.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.journal import Journal, JournalCorruptError, JournalError, Kind, TxnState
from agent.register.messages import Error, Result, Sale
from agent.web.facts import attention_now
from devtools.stack import WAIT_S, stack

REPO = Path(__file__).resolve().parents[2]


async def _sale(j: Journal, txn: str) -> int:
    rec = await j.create(kind=Kind.SALE, txn=txn, lane="till-1", tid="12345678",
                         amount="15000", request={"id": "r1", "txn": txn},
                         txn_time="2026-11-21 10:00:00",
                         states=(TxnState.RECEIVED, TxnState.SENDING))
    return rec.row_id


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_journal_deleted_or_replaced_under_the_agent_stops_new_work(
        tmp_path: Path, how: str) -> None:
    async with stack(tmp_path) as s:
        first = (await s.register.client.request(
            Sale(id="r-1", txn="IDNT00000001", amount="100"), WAIT_S)).final
        assert isinstance(first, Result) and first.status == "success"
        path = s.agent.journal.path
        if how == "deleted":
            os.unlink(path)
        else:
            shutil.copy(path, tmp_path / "copy.db")
            os.replace(tmp_path / "copy.db", path)
        reply = (await s.register.client.request(
            Sale(id="r-2", txn="IDNT00000002", amount="100"), WAIT_S)).final
        assert isinstance(reply, Error), reply
        assert s.emulator.count("sale", "IDNT00000002") == 0  # never sent to Paytm
        health = s.agent.journal.health
        assert not health.ok and f"was {how} while the agent was running" in health.error
        assert "restore the last backup" in health.error
        assert any(a.kind == "journal" and how in a.text for a in attention_now(s.agent))
        # Sticky: a journal put back at the path is still not written to by this run.
        assert s.agent.journal.check_identity() is not None


async def test_identity_is_checked_without_a_write(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    try:
        assert j.check_identity() is None
        os.unlink(j.path)
        why = j.check_identity()
        assert why is not None and "deleted" in why and not j.health.ok
        with pytest.raises(JournalError, match="deleted"):
            await _sale(j, "AFTER0001")
    finally:
        await j.aclose()


def test_zero_byte_journal_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.touch()
    with pytest.raises(JournalError, match=r"empty \(0 bytes\).*restore the last backup"):
        Journal(path)
    assert path.stat().st_size == 0  # untouched


def test_unreadable_journal_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.mkdir()
    with pytest.raises(JournalError, match="not a regular file"):
        Journal(path)


async def _corrupt(path: Path) -> None:
    j = Journal(path)
    for i in range(300):  # several pages of rows and index entries
        await _sale(j, f"CORR{i:05d}")
    await j.aclose()
    with path.open("r+b") as f:
        f.seek(4096 * 2)
        f.write(b"\xa5" * 4096 * 3)


async def test_corrupt_journal_is_refused_at_open_and_by_check_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.db"
    await _corrupt(path)
    with pytest.raises(JournalCorruptError, match="is corrupt"):
        Journal(path)
    config = tmp_path / "agent.toml"
    config.write_text(f'[journal]\npath = "{path}"\n')
    assert main(["check-journal", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and "restore the last backup" in err


async def test_check_journal_passes_a_sound_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    await _sale(j, "SOUND0001")
    assert j.integrity_problems() == []
    await j.aclose()
    config = tmp_path / "agent.toml"
    config.write_text(f'[journal]\npath = "{path}"\n')
    assert main(["check-journal", "--config", str(config)]) == 0
    assert "integrity check ok" in capsys.readouterr().out


async def test_agent_on_a_corrupt_journal_says_one_critical_line_and_exits_1(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await _corrupt(path)
    key = tmp_path / "merchant.key"
    key.write_text("DEMOKEY123456789\n")
    key.chmod(0o600)
    config = tmp_path / "agent.toml"
    config.write_text(f'[paytm]\nmerchant_key_file = "{key}"\n[journal]\npath = "{path}"\n'
                      '[http]\nlisten = "127.0.0.1:0"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--config", str(config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text
    critical = [line for line in text.splitlines() if "CRITICAL" in line or "<2>" in line]
    assert len(critical) == 1, text
    assert str(path) in critical[0] and "restore the last backup" in critical[0]

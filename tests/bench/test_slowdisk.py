"""bench/slowdisk.py's pieces: the LD_PRELOAD shim delays and counts syncs in a child only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.link.codec import ACK
from bench.slowdisk import (
    EnqProbe,
    build_shim,
    find_compiler,
    new_counts_file,
    read_counts,
    shim_env,
)
from bench.tills import Till

needs_cc = pytest.mark.skipif(find_compiler() is None, reason="no C compiler (cc, gcc, clang)")

FSYNC_CHILD = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"x")
start = time.monotonic()
os.fsync(fd)
os.fdatasync(fd)
print(time.monotonic() - start)
"""

SQLITE_CHILD = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (x)")
for i in range(5):
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (?)", (i,))
    db.execute("COMMIT")
db.close()
"""


def _child(code: str, arg: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code, str(arg)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("shim"))


@needs_cc
def test_shim_delays_and_counts_fsync_in_the_child_only(shim: Path, tmp_path: Path) -> None:
    counts = new_counts_file(tmp_path / "counts")
    env = shim_env(shim, 50, counts)
    elapsed = float(_child(FSYNC_CHILD, tmp_path / "file", env))
    assert elapsed >= 0.1  # two syncs, 50 ms each
    got = read_counts(counts)
    assert (got.fsync, got.fdatasync, got.sync_file_range, got.msync) == (1, 1, 0, 0)
    assert got.slept_ns == 100_000_000
    assert got.loaded == 1
    # The environment was the child's alone: this process's syncs are not the shim's.
    assert str(shim) not in os.environ.get("LD_PRELOAD", "")
    fd = os.open(tmp_path / "mine", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    assert read_counts(counts).syncs == 2


@needs_cc
def test_shim_sees_sqlite_commits(shim: Path, tmp_path: Path) -> None:
    counts = new_counts_file(tmp_path / "counts")
    _child(SQLITE_CHILD, tmp_path / "journal.db", shim_env(shim, 0, counts))
    got = read_counts(counts)
    assert got.syncs >= 5  # synchronous=FULL in WAL mode: every commit syncs the WAL
    assert got.slept_ns == 0


def test_enq_probe_matches_acks_first_in_first_out() -> None:
    written: list[bytes] = []
    till = Till("lane-7", "T7", "tcp://127.0.0.1:1", write=written.append)
    probe = EnqProbe(till)
    probe.send()
    probe.send()
    first, second = probe.pending
    till.on_data(bytes((ACK,)), first + 0.010)
    till.on_data(bytes((ACK, ACK)), second + 0.030)
    assert written == [b"\x05", b"\x05"]
    assert probe.latencies == pytest.approx([0.010, 0.030])
    assert probe.stray == 1
    assert not probe.pending

"""scripts/install.sh and scripts/uninstall.sh against a temporary root (EDC_AGENT_ROOT).

The fast tests pass --skip-package: building a wheel and a virtual environment with
its dependencies takes most of a minute and needs the package index. They provide
/opt/edc-agent/venv themselves (wrappers around this interpreter), so check-config and
the udev generator run the real code. `pytest -m slow` adds the full install (.ci/run does).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install.sh"
UNINSTALL = REPO / "scripts" / "uninstall.sh"
UNIT = REPO / "systemd" / "edc-agent.service"
SKELETON = REPO / "packaging" / "edc-agent.toml"
SCRIPT_TIMEOUT_S = 60.0
KEY = "ABCDEFGHIJKLMNOP"


def needs_sysusers() -> None:
    if shutil.which("systemd-sysusers") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-sysusers missing in CI: .ci/run should have installed systemd")
        pytest.skip("systemd-sysusers not installed (apt-get install systemd)")


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def run(root: Path) -> Run:
    def run(script: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "EDC_AGENT_ROOT": str(root)}
        result = subprocess.run(["bash", str(script), *args], env=env, capture_output=True,
                                text=True, timeout=SCRIPT_TIMEOUT_S, check=False)
        if ok:
            assert result.returncode == 0, result.stdout + result.stderr
        return result
    return run


def fake_venv(root: Path) -> None:
    """/opt/edc-agent/venv running this checkout with this interpreter (see module doc)."""
    bin_dir = root / "opt/edc-agent/venv/bin"
    bin_dir.mkdir(parents=True)
    for name, command in (("python", sys.executable), ("edc-agent", f"{sys.executable} -m agent")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec {command} "$@"\n')
        script.chmod(0o755)


def ids(root: Path, name: str) -> tuple[int, int]:
    def field(path: str) -> int:
        for line in (root / path).read_text().splitlines():
            parts = line.split(":")
            if parts[0] == name:
                return int(parts[2])
        raise AssertionError(f"{name} not in {path}")
    return field("etc/passwd"), field("etc/group")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def unit_paths() -> dict[str, str]:
    """Where the unit expects things, read from the unit itself."""
    d: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            d.setdefault(key, value)
    exec_start = d["ExecStart"].split()
    return {
        "binary": exec_start[0],
        "config": exec_start[exec_start.index("--config") + 1],
        "key": d["LoadCredential"].split(":", 1)[1],
        "state": "/var/lib/" + d["StateDirectory"],
        "etc": "/etc/" + d["ConfigurationDirectory"],
    }


def test_install_upgrade_uninstall(root: Path, run: Run) -> None:
    needs_sysusers()
    fake_venv(root)
    where = unit_paths()

    # -- first install --------------------------------------------------------------------
    first = run(INSTALL, "--skip-package")
    uid, gid = ids(root, "edc-agent")
    assert "edc-agent" in (root / "etc/group").read_text().split("dialout:")[1].splitlines()[0]

    assert (root / "etc/systemd/system/edc-agent.service").read_bytes() == UNIT.read_bytes()
    binary = root / where["binary"].lstrip("/")
    assert os.access(binary, os.X_OK)
    config = root / where["config"].lstrip("/")
    assert config.read_bytes() == SKELETON.read_bytes()
    assert (config.stat().st_uid, config.stat().st_gid, mode(config)) == (0, gid, 0o640)
    etc = root / where["etc"].lstrip("/")
    assert (etc.stat().st_uid, mode(etc)) == (0, 0o755)
    state = root / where["state"].lstrip("/")
    assert (state.stat().st_uid, state.stat().st_gid, mode(state)) == (uid, gid, 0o700)
    rules = root / "etc/udev/rules.d/70-edc-agent.rules"
    assert "no usb:// lanes" in rules.read_text()
    assert (root / "opt/edc-agent/docs/install.md").is_file()
    # Never a made-up key; the instructions name the file the unit loads.
    key = root / where["key"].lstrip("/")
    assert not key.exists()
    assert f"install -m 600 -o root -g root /path/to/merchant.key {where['key']}" in first.stdout
    assert "config or key is not ready" in first.stdout

    # -- the technician: key (with careless permissions), config, a journal ---------------
    key.write_text(KEY + "\n")
    key.chmod(0o644)
    # check-config runs on this machine, so the key path must point into the root here.
    # check-config checks the journal's directory too: the one the installer made here.
    edited = SKELETON.read_text().replace(
        '# merchant_key_file = "/etc/edc-agent/merchant.key"', f'merchant_key_file = "{key}"'
    ).replace('# path = "/var/lib/edc-agent/journal.db"',
              f'path = "{state / "journal.db"}"'
    ) + '\n[[lanes]]\nname = "till-1"\nlink = "usb://0483:5740/A1B2C3"\ntid = "12345678"\n'
    assert str(key) in edited
    config.write_text(edited)
    config.chmod(0o644)
    journal = state / "journal.db"
    journal.write_bytes(b"SQLite format 3\0 (stands for a month of payments)")

    # -- upgrade: same command ------------------------------------------------------------
    second = run(INSTALL, "--skip-package")
    assert config.read_text() == edited  # kept, byte for byte
    assert mode(config) == 0o640  # ... but no longer readable by everyone
    assert (key.stat().st_uid, mode(key)) == (0, 0o600)
    assert key.read_text() == KEY + "\n"
    assert journal.read_bytes().startswith(b"SQLite format 3")
    assert (state.stat().st_uid, mode(state)) == (uid, 0o700)
    assert ids(root, "edc-agent") == (uid, gid)  # the same user, not a second one
    assert f"{config}: valid" in second.stdout  # check-config, run by the installer
    assert "the config is valid" in second.stdout
    assert ('ATTR{idVendor}=="0483", ATTR{idProduct}=="5740", ATTR{serial}=="A1B2C3", '
            'GROUP="edc-agent", MODE="0660"') in rules.read_text()

    # -- uninstall keeps the journal and the config ----------------------------------------
    run(UNINSTALL)
    assert not (root / "opt/edc-agent").exists()
    assert not (root / "etc/systemd/system/edc-agent.service").exists()
    assert not rules.exists()
    assert journal.exists() and config.read_text() == edited and key.exists()

    # -- ... unless asked -------------------------------------------------------------------
    run(UNINSTALL, "--purge")
    assert not state.exists() and not etc.exists()


def test_a_broken_config_is_reported_and_kept(root: Path, run: Run) -> None:
    needs_sysusers()
    fake_venv(root)
    config = root / "etc/edc-agent/edc-agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[paytm]\nmidd = 1\n")
    result = run(INSTALL, "--skip-package")
    assert config.read_text() == "[paytm]\nmidd = 1\n"
    assert "paytm.midd: unknown key" in result.stderr
    assert "udev rules not updated" in result.stderr
    assert "config or key is not ready" in result.stdout


def test_scripts_refuse_unknown_options(run: Run) -> None:
    for script in (INSTALL, UNINSTALL):
        result = run(script, "--frobnicate", ok=False)
        assert result.returncode != 0 and "unknown option --frobnicate" in result.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck not installed")
    result = subprocess.run([tool, str(INSTALL), str(UNINSTALL)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout


# Builds a wheel and a venv with every dependency from the package index (~1 min): kept
# out of the everyday suite by the `slow` marker; .ci/run runs it as a step of its own.
@pytest.mark.slow
def test_full_install_builds_a_working_venv(root: Path, run: Run) -> None:
    needs_sysusers()
    run(INSTALL)
    venv = root / "opt/edc-agent/venv"
    assert venv.is_symlink() and not os.readlink(venv).startswith("/")  # relative: releases/…
    version = subprocess.run([str(venv / "bin/edc-agent"), "--version"], capture_output=True,
                             text=True, timeout=60, check=True)
    assert version.stdout.startswith("edc-agent ")
    first_release = venv.resolve()
    run(INSTALL)  # upgrade: a new release, the previous one kept for roll-back
    assert venv.resolve() != first_release
    assert sorted(p.name for p in (root / "opt/edc-agent/releases").iterdir()) == sorted(
        [first_release.name, venv.resolve().name])

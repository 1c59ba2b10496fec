"""The support bundle: one .tar.gz a technician sends when "something looks wrong".

    edc-agent bundle --config FILE [-o FILE.tar.gz]     offline, beside or without a daemon
    Tools → "Download support bundle" (POST /tools/bundle, /api/tools/bundle)   live

    README.txt                 what is inside, when, from where (offline or live)
    config.toml                the config file as written, secrets as •••
    config.json                the effective config (defaults filled in), secrets as •••
    versions.json              edc-agent, Python, SQLite, the libraries, the schema
    system.json                host, user and groups, ports and their permissions, udev
                               rules, the service's state, clock and NTP, disk space
    udev/…                     the udev rules files that concern serial/USB devices
    log.txt                    the last 2,000 log lines (live: the agent's own; offline:
                               journalctl -u edc-agent)
    journal.json               journal statistics: states, undelivered, size, free pages,
                               archives, retention
    timelines.json             the last 50 transactions: request, payment, reply (receipt
                               rebuilt), events, outbox
    report.json | report.txt   the last day report (from the report hook, when given)
    capture/frames-LANE.jsonl  live only: the last 500 frames of each lane, both ways
    capture/paytm-calls.jsonl  live only: the last 200 Paytm calls, request and answer

Nothing in it may hold the merchant key, the password hash or a full phone number: every
member is scrubbed on the way in (`agent.capture.mask_text`: signatures •••, phone numbers
to their last four digits, every registered secret •••; the password hash too). The test
scans every member of a real bundle for them.

Blocking from end to end (subprocesses, SQLite, files): the page runs it in a thread, from
a snapshot of the in-memory parts taken on the loop (`LiveState`).
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import importlib.metadata
import io
import json
import os
import platform
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import __version__
from agent.capture import Capture, dumps_lines, mask_text
from agent.config import Config, load_config
from agent.errors import AgentError, ConfigError
from agent.journal import JournalReader
from agent.journal.reader import connect_reader
from agent.journal.retention import archive_files
from agent.logs import REDACTED, SECRETS, LogLine
from agent.paytm.clock import IST

LOG_LINES = 2000
ARCHIVES_SCHEMA = 3  # the journal schema that added the `archives` table
TIMELINES = 50
COMMAND_TIMEOUT_S = 10.0
UNIT = "edc-agent.service"
UDEV_DIRS = ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d")
# Rules that concern the agent's devices: its own, and any naming tty/serial/usb/dialout.
UDEV_WORDS = re.compile(r"edc-agent|tty|serial|dialout|usb", re.IGNORECASE)
UDEV_FILE_MAX = 64 * 1024
LIBRARIES = ("aiohttp", "pyserial", "pyusb", "prometheus-client", "pycryptodome")
SERVICE_PROPERTIES = ("ActiveState", "SubState", "Result", "MainPID", "NRestarts",
                      "ExecMainStartTimestamp", "ActiveEnterTimestamp", "User", "Group")
# TOML lines whose value is a secret (the merchant key is never in the config, only its
# file's path): `password_hash = "…"`.
_SECRET_LINE = re.compile(r'^(\s*password_hash\s*=\s*)(["\']).*?\2', re.MULTILINE)

# The last day report, when a report module provides one: (journal reader) → JSON-ready
# data, or None when there is none yet. Item 1 of issue 13 (day totals) plugs in here.
ReportHook = Callable[[JournalReader], dict[str, Any] | None]


class BundleError(AgentError):
    """The bundle could not be written (the output path)."""


@dataclass(slots=True)
class LiveState:
    """What only a running agent knows, copied on its event loop (by its page:
    `agent.web.actions.support_bundle`)."""

    log: list[LogLine]
    capture: Capture  # a copy of the rings; decoded and masked in the bundle's thread
    lanes: list[dict[str, Any]]
    retention: dict[str, Any] | None
    busy_terminals: dict[str, str]
    polling: int
    started_at: float


@dataclass(slots=True)
class _Members:
    """The bundle's files, scrubbed as they are added."""

    secrets: tuple[str, ...]
    files: dict[str, bytes] = field(default_factory=dict)

    def text(self, name: str, text: str, *, masked: bool = False) -> None:
        # Captures were masked as they were decoded (their hex must stay hex): secrets only.
        clean = SECRETS.redact(text) if masked else mask_text(text)
        for secret in self.secrets:
            if secret:
                clean = clean.replace(secret, REDACTED)
        self.files[name] = clean.encode("utf-8")

    def json(self, name: str, value: object) -> None:
        self.text(name, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def day_report_hook(config: Config, at: float) -> ReportHook:
    """The bundle's "last report": the day's totals and the last sweep, as `edc-agent
    report --format json` prints them."""
    from agent.day.totals import day_report, today

    tids = {lane.name: lane.tid for lane in config.lanes}
    return lambda reader: day_report(reader, today(at), tids=tids, generated_at=at).to_json()


def build_bundle(out: str | Path, config: Config, *, live: LiveState | None = None,
                 report: ReportHook | None = None, now: float | None = None) -> list[str]:
    """Write the bundle to `out` (atomically: a temporary file renamed); its member names."""
    at = time.time() if now is None else now
    if report is None:
        report = day_report_hook(config, at)
    members = _Members(secrets=(config.http.password_hash,))
    problems: list[str] = []
    _config(members, config)
    members.json("versions.json", _versions(config))
    members.json("system.json", _system(members, config, problems))
    _log(members, live, problems)
    reader = _open_reader(config.journal.path, problems)
    try:
        members.json("journal.json", _journal_stats(reader, config, live))
        members.json("timelines.json", _timelines(reader, config))
        _report(members, reader, report, problems)
    finally:
        if reader is not None:
            reader.close()
    if live is not None:
        capture = live.capture.snapshot()
        for lane, frames in sorted(capture["frames"].items()):
            members.text(f"capture/frames-{_safe(lane)}.jsonl", dumps_lines(frames),
                         masked=True)
        members.text("capture/paytm-calls.jsonl", dumps_lines(capture["paytm_calls"]),
                     masked=True)
        members.json("lanes.json", {"lanes": live.lanes, "busy_terminals": live.busy_terminals,
                                    "polling": live.polling})
    members.text("README.txt", _readme(config, live, at, problems, sorted(members.files)))
    names = sorted(members.files)
    _write_tar(Path(out), members.files, at)
    return names


# -- the members -------------------------------------------------------------------------

def _config(members: _Members, config: Config) -> None:
    from agent.web.facts import as_json, config_facts

    members.json("config.json", {"source": config.source,
                                 "sections": as_json(config_facts(config))})
    if config.source:
        try:
            text = Path(config.source).read_text(encoding="utf-8")
        except OSError as exc:
            members.text("config.toml", f"# cannot read {config.source}: {exc.strerror}\n")
        else:
            members.text("config.toml", _SECRET_LINE.sub(
                lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text))


def _versions(config: Config) -> dict[str, Any]:
    libraries: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = "not installed"
    from agent.journal.schema import SCHEMA_VERSION

    return {"edc-agent": __version__, "python": sys.version, "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version, "journal_schema": SCHEMA_VERSION,
            "libraries": libraries}


def _system(members: _Members, config: Config, problems: list[str]) -> dict[str, Any]:
    from agent.web.facts import as_json
    from agent.web.ports import list_ports

    found = list_ports()
    if found.problem:
        problems.append(f"ports: {found.problem}")
    rules = []
    for directory, path in _udev_rules():
        try:
            text = path.read_bytes()[:UDEV_FILE_MAX].decode("utf-8", errors="replace")
        except OSError as exc:
            rules.append({"file": str(path), "error": exc.strerror})
            continue
        if directory == "/etc/udev/rules.d" or UDEV_WORDS.search(path.name) \
                or "edc-agent" in text:
            members.text(f"udev/{path.name}", text)
            rules.append({"file": str(path), "bundled": f"udev/{path.name}"})
    journal_dir = Path(config.journal.path).parent
    try:
        usage = shutil.disk_usage(journal_dir)
        disk: dict[str, Any] = {"path": str(journal_dir), "total": usage.total,
                                "free": usage.free}
    except OSError as exc:
        disk = {"path": str(journal_dir), "error": exc.strerror}
    return {
        "host": socket.gethostname(),
        "time": datetime.now(IST).isoformat(),
        "timezone": time.tzname,
        "uptime_s": _uptime(),
        "user": _user(),
        "ports": as_json(found.ports),
        "udev_rules": rules,
        "service": _command(["systemctl", "show", UNIT, "--no-pager",
                             "-p", ",".join(SERVICE_PROPERTIES)], problems),
        "ntp": _command(["timedatectl", "show", "-p", "NTPSynchronized", "-p", "Timezone"],
                        problems),
        "disk": disk,
    }


def _udev_rules() -> Iterator[tuple[str, Path]]:
    for directory in UDEV_DIRS:
        folder = Path(directory)
        if folder.is_dir():
            for path in sorted(folder.glob("*.rules")):
                yield directory, path


def _uptime() -> float | None:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _user() -> dict[str, Any]:
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    groups = []
    for gid in os.getgroups():
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    return {"uid": uid, "name": name, "groups": groups}


def _command(argv: list[str], problems: list[str]) -> str:
    """A command's output, or why there is none (not installed, failed, timed out)."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} not found on this machine"
    try:
        done = subprocess.run(argv, capture_output=True, text=True,  # noqa: S603
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        problems.append(f"{' '.join(argv)}: {exc}")
        return f"failed: {exc}"
    if done.returncode != 0:
        return f"exit {done.returncode}: {done.stderr.strip() or done.stdout.strip()}"
    return done.stdout


def _log(members: _Members, live: LiveState | None, problems: list[str]) -> None:
    if live is not None:
        lines = [f"{datetime.fromtimestamp(line.at, IST).isoformat(timespec='milliseconds')} "
                 f"{line.level:<7} {line.logger}: {line.text}" for line in live.log]
        members.text("log.txt", "\n".join(lines) + "\n")
        return
    text = _command(["journalctl", "-u", UNIT, "-n", str(LOG_LINES), "--no-pager",
                     "-o", "short-iso"], problems)
    members.text("log.txt", text if text.endswith("\n") else text + "\n")


def _open_reader(path: str, problems: list[str]) -> JournalReader | None:
    if not Path(path).exists():
        problems.append(f"no journal at {path}")
        return None
    try:
        return JournalReader(path, connect_reader(path))
    except sqlite3.Error as exc:
        problems.append(f"journal {path}: {exc}")
        return None


def _journal_stats(reader: JournalReader | None, config: Config,
                   live: LiveState | None) -> dict[str, Any]:
    path = config.journal.path
    stats: dict[str, Any] = {"path": path, "keep_days": config.journal.keep_days}
    stats["archives"] = [{"file": p.name, "bytes": p.stat().st_size}
                         for p in archive_files(path)]
    if live is not None:
        stats["last_retention"] = live.retention
    if reader is None:
        stats["error"] = "the journal cannot be opened"
        return stats
    db = connect_reader(path)  # its own: statistics beside the reader's row queries
    try:
        return _fill_stats(stats, db, reader)
    finally:
        db.close()


def _fill_stats(stats: dict[str, Any], db: sqlite3.Connection,
                reader: JournalReader) -> dict[str, Any]:
    pragma = {name: db.execute(f"PRAGMA {name}").fetchone()[0]
              for name in ("user_version", "page_size", "page_count", "freelist_count",
                           "auto_vacuum", "journal_mode")}
    by_state = [{"kind": k, "state": s, "count": n} for k, s, n in db.execute(
        "SELECT kind, state, COUNT(*) FROM txns GROUP BY kind, state ORDER BY kind, state")]
    span = db.execute("SELECT MIN(created_at), MAX(created_at), COUNT(*) FROM txns").fetchone()
    moved = [{"month": m, "file": f, "txns": n, "updated_at": u} for m, f, n, u in
             db.execute("SELECT month, file, txns, updated_at FROM archives ORDER BY month")] \
        if pragma["user_version"] >= ARCHIVES_SCHEMA else []
    stats.update({
        "size_bytes": reader.size_bytes(), "pragma": pragma, "transactions": span[2],
        "oldest": span[0], "newest": span[1], "by_kind_state": by_state,
        "undelivered_results": len(reader.undelivered()),
        "not_final": len(reader.not_final()),
        "events": db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
        "archived_by_month": moved,
        "quick_check": str(db.execute("PRAGMA quick_check").fetchone()[0]),
    })
    return stats


def _timelines(reader: JournalReader | None, config: Config) -> list[dict[str, Any]]:
    from agent.engine.results import restored_json

    if reader is None:
        return []
    out = []
    for record in reader.search(limit=TIMELINES):
        out.append({
            "row": record.row_id, "kind": record.kind.value, "txn": record.txn,
            "lane": record.lane, "tid": record.tid, "amount": record.amount,
            "parent": record.parent, "state": record.state.value, "code": record.code,
            "message": record.message, "txn_time": record.txn_time,
            "created_at": _ist(record.created_at), "updated_at": _ist(record.updated_at),
            "sent_at": _ist(record.sent_at) if record.sent_at is not None else None,
            "not_sent": record.not_sent,
            "request": restored_json(record.request, record, config),
            "payment": restored_json(record.payment, record, config),
            "reply": restored_json(record.reply, record, config),
            "events": [{"at": _ist(e.at), "state": e.state, "code": e.code,
                        "detail": e.detail} for e in reader.events(record.row_id)],
            "outbox": [{"id": o.row_id, "created_at": _ist(o.created_at),
                        "delivered_at": _ist(o.delivered_at) if o.delivered_at else None,
                        "superseded": o.superseded}
                       for o in reader.outbox_for(record.row_id)],
        })
    return out


def _report(members: _Members, reader: JournalReader | None, report: ReportHook | None,
            problems: list[str]) -> None:
    if report is None or reader is None:
        members.text("report.txt", "No day report: this build has no report module, or "
                     "the journal could not be read.\n")
        return
    try:
        value = report(reader)
    except Exception as exc:  # a report bug must not cost the rest of the bundle
        problems.append(f"report: {exc}")
        value = None
    if value is None:
        members.text("report.txt", "No day report yet.\n")
    else:
        members.json("report.json", value)


def _readme(config: Config, live: LiveState | None, at: float, problems: list[str],
            names: list[str]) -> str:
    mode = ("live: from the running agent's page (with the capture of frames and Paytm "
            "calls)" if live is not None else
            "offline: `edc-agent bundle` (no capture: it lives in the running daemon's "
            "memory; download the bundle from the page's Tools for it)")
    lines = [f"edc-agent {__version__} support bundle", "",
             f"made:    {datetime.fromtimestamp(at, IST).isoformat(timespec='seconds')}",
             f"host:    {socket.gethostname()}", f"config:  {config.source or '(none)'}",
             f"journal: {config.journal.path}", f"mode:    {mode}", "",
             "Secrets are shown as •••; phone numbers keep their last four digits; card",
             "numbers are as Paytm masks them.", "", "Files:",
             *(f"  {name}" for name in [*names, "README.txt"]), ""]
    if problems:
        lines += ["Could not collect:", *(f"  - {p}" for p in problems), ""]
    return "\n".join(lines)


def _write_tar(out: Path, files: dict[str, bytes], at: float) -> None:
    root = "edc-agent-bundle-" + datetime.fromtimestamp(at, IST).strftime("%Y%m%d-%H%M%S")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for name, data in sorted(files.items()):
                    info = tarfile.TarInfo(f"{root}/{name}")
                    info.size = len(data)
                    info.mtime = int(at)
                    info.mode = 0o600
                    tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from exc


def _ist(at: float) -> str:
    return datetime.fromtimestamp(at, IST).isoformat(timespec="milliseconds")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# -- edc-agent bundle ----------------------------------------------------------------------

def default_name(now: float | None = None) -> str:
    at = datetime.fromtimestamp(time.time() if now is None else now, IST)
    return f"edc-agent-bundle-{socket.gethostname()}-{at.strftime('%Y%m%d-%H%M%S')}.tar.gz"


def bundle_main(args: argparse.Namespace) -> int:
    from agent.keyfile import load_merchant_key

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"edc-agent: {args.config}: not a valid config:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    if config.http.password_hash:
        SECRETS.add(config.http.password_hash)
    # Read only to scrub it should it appear anywhere. Not readable by this user: then
    # nothing here can have read it either.
    with contextlib.suppress(AgentError):
        SECRETS.add(load_merchant_key(config.paytm.merchant_key_file)
                    .secret_bytes.decode("ascii"))
    out = Path(args.output or default_name())
    try:
        names = build_bundle(out, config)
    except BundleError as exc:
        print(f"edc-agent: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({len(names)} files, {out.stat().st_size / 1024:.0f} KB); offline: "
          "no capture of frames and Paytm calls (the page's Tools → Support bundle has it)")
    return 0

"""Support bundles through the real paths: the page's Tools button on a running agent (after a
card sale and a payment link to a phone, DEBUG logging on) and `edc-agent bundle` as a
process. Every member of every bundle is scanned: no merchant key, no password hash (nor its
salt or digest), no full phone number, in text or in hex."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from agent.journal.schema import SCHEMA_VERSION
from agent.register.messages import Paylink, Result
from agent.sim.paytm import DEMO_MID
from devtools.config import DEMO_KEY_TEXT
from devtools.stack import WAIT_S
from devtools.webstack import PASSWORD_HASH, sale, web_stack

PHONE = "9876543210"
FORBIDDEN = [DEMO_KEY_TEXT, PASSWORD_HASH, *PASSWORD_HASH.split("$")[4:], PHONE,
             PHONE.encode().hex(), DEMO_KEY_TEXT.encode().hex()]
ROOT = Path(__file__).resolve().parent.parent


def unpack(body: bytes) -> dict[str, str]:
    members: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        for info in tar.getmembers():
            assert info.isfile() and ".." not in info.name and not info.name.startswith("/")
            f = tar.extractfile(info)
            assert f is not None
            members[info.name.split("/", 1)[1]] = f.read().decode("utf-8")
    return members


def scan(members: dict[str, str]) -> None:
    for name, text in members.items():
        for secret in FORBIDDEN:
            assert secret not in text, f"{name} holds a secret or a full phone number"


async def test_page_bundle_has_the_capture_and_no_secret(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        root = logging.getLogger()
        root.addHandler(s.recent)
        level = root.level
        root.setLevel(logging.DEBUG)  # the pipeline's DEBUG traces carry whole requests
        try:
            await sale(s, "BUNDLE000001")
            link = (await s.register.client.request(Paylink(
                id="l-bundle", txn="BLINK0000001", amount="25000", phone=PHONE,
                expiry_s=900), WAIT_S)).final
            assert isinstance(link, Result) and link.status == "success"
            assert await s.login() == 303
            tools = await (await s.client.get("/tools")).text()
            assert 'action="/tools/bundle"' in tools and "Download support bundle" in tools
            response = await s.client.post("/tools/bundle", data={"csrf": await s.csrf()})
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/gzip"
            assert "attachment" in response.headers["Content-Disposition"]
            members = unpack(await response.read())
            api = await s.client.post("/api/tools/bundle",
                                      headers={"X-CSRF-Token": await s.csrf()})
            assert api.status == 200
            api_members = unpack(await api.read())
        finally:
            root.setLevel(level)
            root.removeHandler(s.recent)
    scan(members)
    scan(api_members)
    for name in ("README.txt", "config.json", "versions.json", "system.json", "log.txt",
                 "journal.json", "timelines.json", "capture/frames-till-1.jsonl",
                 "capture/paytm-calls.jsonl", "lanes.json"):
        assert name in members, name
    frames = [json.loads(line) for line in members["capture/frames-till-1.jsonl"].splitlines()]
    assert {f["direction"] for f in frames} == {"in", "out"}
    assert {"frame", "ACK"} <= {f["kind"] for f in frames}
    link_frame = next(f for f in frames if '"BLINK0000001"' in f["decoded"]
                      and '"phone"' in f["decoded"])
    assert '"phone":"XXXXXX3210"' in link_frame["decoded"]
    assert bytes.fromhex(link_frame["hex"])[1:-2].decode() == link_frame["decoded"]
    calls = [json.loads(line) for line in members["capture/paytm-calls.jsonl"].splitlines()]
    apis = {c["api"] for c in calls}
    assert {"sale", "send_link"} <= apis
    sent = next(c for c in calls if c["api"] == "send_link")
    assert '"userPhoneNo":"XXXXXX3210"' in sent["request"].replace(" ", "")
    assert all("•••" in c["request"] for c in calls)  # every request is signed: masked
    assert any("•••" in c["answer"] for c in calls if c["answer"])
    timelines = json.loads(members["timelines.json"])
    card = next(t for t in timelines if t["txn"] == "BUNDLE000001")
    assert card["reply"]["receipt"] and card["events"][-1]["state"] == "delivered"
    stats = json.loads(members["journal.json"])
    assert stats["transactions"] == 2 and stats["pragma"]["user_version"] == SCHEMA_VERSION
    assert "sale BUNDLE000001" in members["log.txt"]
    assert "live" in members["README.txt"]


async def _journal_with_a_sale(tmp_path: Path) -> None:
    async with web_stack(tmp_path) as s:
        await sale(s, "OFFLINE00001")


def test_offline_bundle_from_the_command_line(tmp_path: Path) -> None:
    asyncio.run(_journal_with_a_sale(tmp_path))
    key = tmp_path / "merchant.key"
    key.write_text(DEMO_KEY_TEXT)
    key.chmod(0o600)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[paytm]
mid = "{DEMO_MID}"
merchant_key_file = "{key}"
edc_base_url = "http://127.0.0.1:9"
pg_base_url = "http://127.0.0.1:9"

[journal]
path = "{tmp_path / 'journal.db'}"

[http]
password_hash = "{PASSWORD_HASH}"

[[lanes]]
name = "till-1"
link = "serial:///dev/ttyUSB0"
tid = "12345678"
""")
    out = tmp_path / "support.tar.gz"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "agent", "bundle", "--config", str(config),
                           "-o", str(out)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    assert out.stat().st_mode & 0o077 == 0
    members = unpack(out.read_bytes())
    scan(members)
    assert not any(name.startswith("capture/") for name in members)
    assert 'password_hash = "•••"' in members["config.toml"]
    timelines = json.loads(members["timelines.json"])
    assert [t["txn"] for t in timelines] == ["OFFLINE00001"]
    assert "offline" in members["README.txt"]
    bad = subprocess.run([sys.executable, "-m", "agent", "bundle", "--config",
                          str(tmp_path / "missing.toml"), "-o", str(out)],
                         capture_output=True, text=True, env=env, check=False, timeout=120)
    assert bad.returncode == 2

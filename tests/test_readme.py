"""The README's examples, each run exactly as written.

- The config block is a valid config and names every key the agent reads.
- packaging/edc-agent.toml names every key too (commented), so an installed config shows them.
- The register console session is typed, line by line, into `edc-agent register` on a pty
  against the real agent (tcp lane on 127.0.0.1:7070, as the README says) and the emulator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import tomllib
from pathlib import Path

from agent.app import Agent
from agent.config import Config, LaneConfig, config_from_dict, parse_config
from agent.demo import DEMO_POLLING
from agent.sim.paytm import DEMO_MID, Emulator, EmulatorSettings
from devtools.config import CLIENT_DEMO_KEY
from devtools.console import ENTER, console
from drivers.tcp import TcpServerTransport

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SKELETON = (ROOT / "packaging" / "edc-agent.toml").read_text(encoding="utf-8")
CONSOLE_URL = "tcp://127.0.0.1:7070"  # as written in the README
LISTEN_TIMEOUT_S = 10.0
REFUND_DELAY_S = 0.2  # Paytm keeps the refund pending (601) this long: short, for a fast test


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)


def _config_keys() -> dict[str, set[str]]:
    """Every section and key the config parser accepts, from the dataclasses."""
    keys: dict[str, set[str]] = {}
    for f in dataclasses.fields(Config):
        if f.name in ("lanes", "source"):
            continue
        keys[f.name] = {g.name for g in dataclasses.fields(getattr(Config(), f.name))}
    keys["lanes"] = {g.name for g in dataclasses.fields(LaneConfig)} - {"spec"}
    return keys


def test_the_config_block_is_valid_and_names_every_key() -> None:
    [block] = [b for b in _blocks("toml") if b.startswith("[paytm]")]
    parse_config(block)  # exactly as written: no unknown key, no wrong value
    # ca_file has no useful example value: it is shown commented out.
    data = tomllib.loads(block.replace("# ca_file =", "ca_file ="))
    for section, names in _config_keys().items():
        table = data[section][0] if section == "lanes" else data.get(section, {})
        missing = names - set(table)
        assert not missing, f"README's config block leaves out [{section}] {sorted(missing)}"


def test_the_installed_config_names_every_key() -> None:
    uncommented = re.sub(r"^# ?(\[\[lanes\]\]|[a-z_]+ = )", r"\1", SKELETON, flags=re.MULTILINE)
    data = tomllib.loads(uncommented)
    for section, names in _config_keys().items():
        table = data[section][0] if section == "lanes" else data.get(section, {})
        missing = names - set(table) - {"ca_file"}  # described in a comment, no default
        assert not missing, f"packaging/edc-agent.toml leaves out [{section}] {sorted(missing)}"
    assert "# ca_file: " in SKELETON
    parse_config(uncommented.replace('"/path/on/usb-stick', '"/x'))


def _console_session() -> tuple[str, list[str]]:
    [block] = [b for b in _blocks("sh") if "edc-agent register" in b]
    first, *typed = block.splitlines()
    assert all(line.startswith("> ") for line in typed)
    return first, [line.removeprefix("> ") for line in typed]


# What each README line must bring back from the agent, in order.
EXPECTED = [
    'result success 0000 "Approved" (sale ORDER0001 ₹150.00)',
    "result again success 0000",
    '(void ORDER0001 ₹150.00)',
    '(paylink LINK0001 ₹250.00)',
    '(refund REFUND0001 ₹50.00)',
]


async def test_the_register_console_session_runs_as_written(tmp_path: Path) -> None:
    command, lines = _console_session()
    assert command == f"edc-agent register --link {CONSOLE_URL}"
    assert len(lines) == len(EXPECTED)
    emulator = Emulator(EmulatorSettings(refund_delay_s=REFUND_DELAY_S))
    async with emulator.serve() as base_url:
        config = config_from_dict({
            "paytm": {"mid": DEMO_MID, "merchant_key_file": "(demo key, in memory)",
                      "edc_base_url": base_url, "pg_base_url": base_url},
            "polling": DEMO_POLLING,
            "journal": {"path": str(tmp_path / "journal.db")},
            "lanes": [{"name": "till-1", "link": CONSOLE_URL, "tid": "12345678",
                       "pos_id": "S1_1"}],
        })
        agent = Agent(config, CLIENT_DEMO_KEY)
        await agent.start()
        try:
            transport = agent.lanes[0].link.transport
            assert isinstance(transport, TcpServerTransport)
            async with asyncio.timeout(LISTEN_TIMEOUT_S):
                await transport.wait_listening()
            async with console(CONSOLE_URL, tmp_path, "--progress-s", "0") as term:
                at = await term.shows("> ")
                for line, expected in zip(lines, EXPECTED, strict=True):
                    term.type(line + ENTER)
                    at = await term.shows(expected, after=at)
                    at = await term.shows("> ", after=at)
                term.type("quit" + ENTER)
                assert await term.exit_code() == 0
        finally:
            await agent.stop()
    assert emulator.count("sale", "ORDER0001") == 1

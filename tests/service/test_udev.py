"""udev rules generated from a config's usb:// lanes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.config import config_from_dict
from agent.service.udev import main, rules_text, usb_rules


def _config(*links: str) -> dict[str, object]:
    return {"lanes": [{"name": f"till-{i}", "link": link, "tid": f"1000000{i}"}
                      for i, link in enumerate(links)]}


def test_one_rule_per_usb_device() -> None:
    config = config_from_dict(_config(
        "usb://0483:5740", "serial:///dev/ttyUSB0", "usb://1A86:7523/A1B2-c3.d",
        "tcp://127.0.0.1:7070", "usb://0483:5740"))
    assert usb_rules(config) == [
        'SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="0483", '
        'ATTR{idProduct}=="5740", GROUP="edc-agent", MODE="0660"',
        'SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="1a86", '
        'ATTR{idProduct}=="7523", ATTR{serial}=="A1B2-c3.d", GROUP="edc-agent", MODE="0660"',
    ]


def test_a_serial_udev_cannot_quote_falls_back_to_vendor_and_product() -> None:
    config = config_from_dict(_config('usb://0483:5740/AB"*'))
    (rule,) = usb_rules(config)
    assert "serial" not in rule and 'ATTR{idProduct}=="5740"' in rule


def test_no_usb_lanes_still_writes_a_valid_file() -> None:
    text = rules_text(config_from_dict(_config("serial:///dev/ttyS0")))
    assert all(line.startswith("#") for line in text.splitlines())


def test_main_writes_the_rules_file(tmp_path: Path) -> None:
    config = tmp_path / "edc-agent.toml"
    config.write_text('[[lanes]]\nname = "till-1"\nlink = "usb://0483:5740"\ntid = "1"\n')
    rules = tmp_path / "rules.d" / "70-edc-agent.rules"
    assert main(["--config", str(config), "--output", str(rules)]) == 0
    assert 'ATTR{idVendor}=="0483"' in rules.read_text()
    assert str(config) in rules.read_text()  # says where it came from
    assert stat.S_IMODE(rules.stat().st_mode) == 0o644
    assert [p.name for p in rules.parent.iterdir()] == [rules.name]  # no temp file left


def test_main_refuses_an_invalid_config(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "edc-agent.toml"
    config.write_text('[[lanes]]\nname = "till-1"\nlink = "usb://nope"\ntid = "1"\n')
    rules = tmp_path / "70-edc-agent.rules"
    assert main(["--config", str(config), "--output", str(rules)]) == 1
    assert not rules.exists()
    assert "lanes[0].link" in capsys.readouterr().err

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config import load_config, parse_config
from agent.errors import ConfigError, SecretError
from agent.keyfile import load_merchant_key

MINIMAL = """
[paytm]
mid = "TESTMID00000000000001"
merchant_key_file = "/tmp/k"
edc_base_url = "http://127.0.0.1:8900"
pg_base_url = "http://127.0.0.1:8900"

[polling]
first_check_s = 0.2
interval_s = 1

[[lanes]]
name = "till-1"
link = "serial:///dev/ttyUSB0?baudrate=9600"
tid = "12345678"
pos_id = "S12_1"
"""


def test_minimal_config_reads_every_section() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.paytm.edc_base_url == "http://127.0.0.1:8900"
    assert cfg.polling.first_check_s == 0.2
    assert cfg.polling.interval_s == 1.0
    assert cfg.polling.unknown_after_s == 900.0  # default kept
    (lane,) = cfg.lanes
    assert lane.spec is not None and lane.spec.kind == "serial"
    assert lane.spec.target.baudrate == 9600  # type: ignore[union-attr]
    assert cfg.receipt.width == 40


def test_every_problem_is_reported_and_names_its_key() -> None:
    text = """
[paytm]
edc_base_url = "http://10.1.2.3"
checksum_mode = "xml"
surprise = 1
[polling]
interval_s = "5"
[receipt]
width = 500
[[lanes]]
name = "a"
link = "serial:///dev/ttyS0?baudrate=300"
tid = "123456789"
[[lanes]]
name = "a"
link = "ftp://x"
tid = "1"
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    joined = "\n".join(info.value.problems)
    for key in ("paytm.edc_base_url", "paytm.checksum_mode", "paytm.surprise",
                "polling.interval_s", "receipt.width", "lanes[0].link", "lanes[0].tid",
                "lanes[1].name", "lanes[1].link"):
        assert key in joined, key


def test_http_base_url_only_on_loopback() -> None:
    parse_config('[paytm]\nedc_base_url = "http://[::1]:8900"\n')
    with pytest.raises(ConfigError, match=r"paytm\.pg_base_url"):
        parse_config('[paytm]\npg_base_url = "http://example.com"\n')


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_merchant_key_file_rules(tmp_path: Path) -> None:
    key = tmp_path / "merchant.key"
    key.write_text("ABCDEFGHIJKLMNOP\n")
    os.chmod(key, 0o600)
    assert repr(load_merchant_key(str(key))) == "MerchantKey(•••)"
    os.chmod(key, 0o644)
    with pytest.raises(SecretError, match="chmod 600") as info:
        load_merchant_key(str(key))
    assert "ABCDEFGHIJKLMNOP" not in str(info.value)
    os.chmod(key, 0o600)
    key.write_text("short")
    with pytest.raises(SecretError, match="16 characters"):
        load_merchant_key(str(key))


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o660, 0o604, 0o700, 0o200])
def test_key_file_mode_must_be_600_or_400(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "merchant.key"
    key.write_text("ABCDEFGHIJKLMNOP\n")
    os.chmod(key, mode)
    with pytest.raises(SecretError, match=f"mode {mode:04o}; it must be 0600 or 0400"):
        load_merchant_key(str(key))
    os.chmod(key, 0o400)
    assert load_merchant_key(str(key)).secret_bytes == b"ABCDEFGHIJKLMNOP"


def test_key_file_symlink_is_refused_unread(tmp_path: Path) -> None:
    link = tmp_path / "merchant.key"
    link.symlink_to("/etc/shadow")
    with pytest.raises(SecretError, match="symbolic link") as info:
        load_merchant_key(str(link))
    assert "characters" not in str(info.value)  # nothing about the target's length


def test_key_file_owner_must_be_root_or_the_agent(tmp_path: Path) -> None:
    key = tmp_path / "merchant.key"
    key.write_text("ABCDEFGHIJKLMNOP")
    os.chmod(key, 0o600)
    stranger = 54321
    if os.geteuid() == 0:
        os.chown(key, stranger, -1)
        with pytest.raises(SecretError, match="owned by uid 54321"):
            load_merchant_key(str(key), uid=1000)
    # The agent's own user may own it.
    assert load_merchant_key(str(key), uid=os.stat(key).st_uid).secret_bytes \
        == b"ABCDEFGHIJKLMNOP"


def test_huge_key_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    import resource

    key = tmp_path / "merchant.key"
    with key.open("wb") as f:
        f.truncate(200 * 1024 * 1024)  # 200 MB (sparse)
    os.chmod(key, 0o600)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SecretError, match="larger than a key"):
        load_merchant_key(str(key))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 10_000  # KiB


def test_key_fifo_and_directory_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretError, match="not a regular file"):
        load_merchant_key(str(fifo))  # never blocks waiting for a writer
    with pytest.raises(SecretError, match="not a regular file"):
        load_merchant_key(str(tmp_path))


def test_check_config_gives_the_same_rule(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from agent.checkconfig import check_config_main

    key = tmp_path / "merchant.key"
    key.write_text("ABCDEFGHIJKLMNOP")
    os.chmod(key, 0o640)
    config = tmp_path / "edc-agent.toml"
    config.write_text(f'[paytm]\nmid = "M"\nmerchant_key_file = "{key}"\n')
    assert check_config_main(argparse.Namespace(config=str(config))) == 1
    assert "mode 0640; it must be 0600 or 0400" in capsys.readouterr().err


def test_systemd_credential_wins(tmp_path: Path) -> None:
    cred = tmp_path / "creds"
    cred.mkdir()
    (cred / "merchant-key").write_text("QRSTUVWXYZABCDEF")
    os.chmod(cred / "merchant-key", 0o400)
    key = load_merchant_key("/nonexistent", {"CREDENTIALS_DIRECTORY": str(cred)})
    assert key.secret_bytes == b"QRSTUVWXYZABCDEF"


def test_malformed_urls_are_problems_not_crashes() -> None:
    from agent.link.spec import parse_link_url

    with pytest.raises(ConfigError, match="invalid link URL"):
        parse_link_url("tcp://[::1")
    with pytest.raises(ConfigError, match=r"paytm\.edc_base_url"):
        parse_config('[paytm]\nedc_base_url = "https://["\n')
    with pytest.raises(ConfigError, match=r"polling\.interval_s"):
        parse_config("[polling]\ninterval_s = " + "9" * 400 + "\n")


def test_day_close_at_is_a_time_of_day_or_off() -> None:
    assert parse_config(MINIMAL).day.close_at == "23:45"  # the operator contract's default
    assert parse_config(MINIMAL + '\n[day]\nclose_at = "22:30"\n').day.close_at == "22:30"
    assert parse_config(MINIMAL + '\n[day]\nclose_at = ""\n').day.close_at == ""
    for bad in ('"24:00"', '"9:30"', '"23:60"', '2345', '"noon"'):
        with pytest.raises(ConfigError) as caught:
            parse_config(MINIMAL + f"\n[day]\nclose_at = {bad}\n")
        assert any(p.startswith("day.close_at") for p in caught.value.problems), bad
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + '\n[day]\nclose = "23:45"\n')
    assert any("day.close" in p for p in caught.value.problems)


def test_journal_keep_days() -> None:
    assert parse_config(MINIMAL).journal.keep_days == 400
    cfg = parse_config(MINIMAL + '\n[journal]\npath = "/tmp/j.db"\nkeep_days = 90\n')
    assert cfg.journal.keep_days == 90
    for bad in ("0", "29", "36501", '"400"', "true"):
        with pytest.raises(ConfigError, match=r"journal\.keep_days"):
            parse_config(MINIMAL + f"\n[journal]\nkeep_days = {bad}\n")

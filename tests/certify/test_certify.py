"""`edc-agent certify` against the emulator in every variant it offers: params and JSON
checksum, both answer styles, a wrong key, a clock 10 minutes off, TLS with a self-signed
certificate (trusted through `paytm.ca_file`, and not), the guided sale, and bad configs.

Real code paths only: the emulator serves on loopback, certify talks to it over HTTP(S).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.certify import CertifyOptions, Findings, Verdict, certify, prepare
from agent.cli import main
from agent.paytm.checksum import ChecksumMode
from agent.sim.paytm import DEMO_MID, DEMO_TIDS, Emulator, EmulatorSettings, ResultStyle
from agent.sim.paytm.signature import ChecksumMode as EmulatorMode
from devtools.config import DEMO_KEY_TEXT

WRONG_KEY_TEXT = "WRONGKEY12345678"
TEN_MINUTES_S = 600.0


def write_config(folder: Path, base_url: str, *, key_text: str = DEMO_KEY_TEXT,
                 mode: ChecksumMode = ChecksumMode.PARAMS, ca_file: Path | None = None,
                 pos_id: str = "S12_1") -> Path:
    key = folder / "merchant.key"
    key.write_text(key_text + "\n")
    key.chmod(0o600)
    path = folder / "agent.toml"
    ca = f'ca_file = "{ca_file}"\n' if ca_file is not None else ""
    path.write_text(f'''[paytm]
mid = "{DEMO_MID}"
merchant_key_file = "{key}"
edc_base_url = "{base_url}"
pg_base_url = "{base_url}"
checksum_mode = "{mode.value}"
connect_timeout_s = 5
read_timeout_s = 5
{ca}
[journal]
path = "{folder / 'journal.db'}"

[[lanes]]
name = "till-1"
link = "tcp://127.0.0.1:7070"
tid = "{DEMO_TIDS[0]}"
pos_id = "{pos_id}"
''')
    return path


@asynccontextmanager
async def serving(settings: EmulatorSettings | None = None,
                  ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    emulator = Emulator(settings or EmulatorSettings())
    async with emulator.serve(ssl_context=ssl_context) as base_url:
        yield base_url


async def run(path: Path, **options: object) -> tuple[Findings, str]:
    opts = CertifyOptions(config_path=str(path), **options)  # type: ignore[arg-type]
    config, key = prepare(opts)
    out = io.StringIO()
    findings = await certify(config, key, opts, out)
    text = out.getvalue()
    assert DEMO_KEY_TEXT not in text and WRONG_KEY_TEXT not in text  # never the key
    return findings, text


def verdict(findings: Findings, section: str, name: str) -> Verdict:
    check = findings.find(section, name)
    assert check is not None, [c.name for c in findings.checks]
    return check.verdict


EDC_CHECK = ("EDC", "Key, MID and checksum mode")
PG_CHECK = ("PG", "Key and MID (payment links)")
CLOCK_CHECK = ("Clock", "This PC against Paytm")


async def test_all_checks_pass_against_the_emulator(tmp_path: Path) -> None:
    async with serving() as base_url:
        report = tmp_path / "report.md"
        findings, text = await run(write_config(tmp_path, base_url), report=str(report))
    assert not findings.failed, text
    assert verdict(findings, *EDC_CHECK) is Verdict.PASS
    assert verdict(findings, *PG_CHECK) is Verdict.PASS
    assert verdict(findings, *CLOCK_CHECK) is Verdict.PASS
    assert "TLS: not applicable (loopback)" in text
    assert 'params mode works; configured: checksum_mode = "params"' in text
    assert "letter in resultCode" in text  # the emulator's default (observed) style
    assert verdict(findings, "Sale", "Guided sale and void") is Verdict.SKIP
    assert "--sale 100" in text
    assert "10. Error codes and logs" in text and text.rstrip().endswith(str(report))
    markdown = report.read_text()
    assert markdown.startswith("# edc-agent certify report")
    assert "| PASS | EDC | Key, MID and checksum mode |" in markdown
    assert "## Paytm's integration checklist" in markdown and DEMO_KEY_TEXT not in markdown


async def test_json_mode_emulator_tells_the_line_to_set(tmp_path: Path) -> None:
    async with serving(EmulatorSettings(checksum_mode=EmulatorMode.JSON)) as base_url:
        findings, text = await run(write_config(tmp_path, base_url))
        assert verdict(findings, *EDC_CHECK) is Verdict.FAIL
        assert 'set checksum_mode = "json" in [paytm]' in text
        assert findings.failed
        (tmp_path / "json").mkdir()
        fixed, text = await run(write_config(tmp_path / "json", base_url,
                                             mode=ChecksumMode.JSON))
    assert verdict(fixed, *EDC_CHECK) is Verdict.PASS and not fixed.failed, text


async def test_wrong_key_is_named_and_never_printed(tmp_path: Path) -> None:
    async with serving() as base_url:
        findings, text = await run(write_config(tmp_path, base_url, key_text=WRONG_KEY_TEXT))
    assert findings.failed
    assert verdict(findings, *EDC_CHECK) is Verdict.FAIL
    assert verdict(findings, *PG_CHECK) is Verdict.FAIL
    summaries = [c.summary for c in findings.checks]
    assert sum("the merchant key or the MID is wrong" in s for s in summaries) == 2, text


async def test_a_clock_ten_minutes_off_fails(tmp_path: Path) -> None:
    settings = EmulatorSettings(wall_clock=lambda: time.time() + TEN_MINUTES_S)
    async with serving(settings) as base_url:
        findings, text = await run(write_config(tmp_path, base_url))
    assert verdict(findings, *CLOCK_CHECK) is Verdict.FAIL
    assert "10 minutes behind Paytm" in text
    assert verdict(findings, *EDC_CHECK) is Verdict.PASS  # only the clock is wrong


async def test_documented_answer_style_is_reported(tmp_path: Path) -> None:
    async with serving(EmulatorSettings(result_style=ResultStyle.DOCUMENTED)) as base_url:
        findings, text = await run(write_config(tmp_path, base_url))
    assert not findings.failed, text
    assert "letter in resultStatus" in text


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


async def test_tls_with_a_self_signed_certificate_and_ca_file(tmp_path: Path) -> None:
    cert, context = self_signed(tmp_path)
    async with serving(ssl_context=context) as base_url:
        assert base_url.startswith("https://127.0.0.1:")
        findings, text = await run(write_config(tmp_path, base_url, ca_file=cert))
        assert not findings.failed, text
        tls = [c for c in findings.checks if c.name.startswith("TLS")]
        assert [c.verdict for c in tls] == [Verdict.PASS]
        assert "certificate verified" in tls[0].summary and "TLSv1." in tls[0].summary
        assert "emulator.test" in " ".join(tls[0].details)
        # Without ca_file the system store does not trust it: TLS and the probes fail.
        (tmp_path / "untrusted").mkdir()
        untrusted, text = await run(write_config(tmp_path / "untrusted", base_url))
    assert untrusted.failed
    assert "CERTIFICATE_VERIFY_FAILED" in text
    assert verdict(untrusted, *EDC_CHECK) is Verdict.FAIL


async def test_guided_sale_and_void(tmp_path: Path) -> None:
    async with serving() as base_url:
        findings, text = await run(write_config(tmp_path, base_url), sale_paise="100")
    assert not findings.failed, text
    assert f"accept it on terminal {DEMO_TIDS[0]} now" in text
    assert f"accept the void on terminal {DEMO_TIDS[0]} now" in text
    check = findings.find("Sale", f"Guided sale on terminal {DEMO_TIDS[0]} (till-1)")
    assert check is not None and check.verdict is Verdict.PASS
    assert "paid by CARD and voided" in check.summary
    # The receipt, printed with the check: the card as Paytm masks it, never more.
    assert "APPROVED" in text and "Card " in text and "XXXXXXXX" in text


async def test_a_declined_guided_sale_fails_the_run(tmp_path: Path) -> None:
    async with serving() as base_url:
        findings, text = await run(write_config(tmp_path, base_url), sale_paise="101")
    assert findings.failed and "the sale failed: 0011" in text


async def test_bad_configs_and_production_sales_exit_2(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       ) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["certify", "--config", str(missing)]) == 2
    production = write_config(tmp_path, "https://securegw-edc.paytm.in")
    assert main(["certify", "--config", str(production), "--sale", "100"]) == 2
    assert "add --production" in capsys.readouterr().err
    assert main(["certify", "--config", str(production), "--sale", "1.00"]) == 2


async def test_the_command_exits_0_when_ready_and_1_when_not(tmp_path: Path) -> None:
    async with serving() as base_url:
        good = write_config(tmp_path, base_url)
        assert await asyncio.to_thread(main, ["certify", "--config", str(good)]) == 0
        (tmp_path / "bad").mkdir()
        bad = write_config(tmp_path / "bad", base_url, key_text=WRONG_KEY_TEXT)
        assert await asyncio.to_thread(main, ["certify", "--config", str(bad)]) == 1

"""The TLS step of the Paytm connectivity test, against a local TLS server."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from agent.paytm.settings import PaytmConfig
from agent.paytm.tls import ssl_context
from agent.web.actions import _tls_handshake


def self_signed(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


async def test_tls_handshake_verified_and_refused(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        # Trusted through paytm.ca_file, as the agent's own client would trust it.
        ok, text = await _tls_handshake(
            "localhost", port, 5.0, lambda: ssl_context(PaytmConfig(ca_file=str(cert))))
        assert ok, text
        assert "TLSv1." in text and "certificate verified" in text and "valid until" in text
        # The system store alone does not trust it: refused, and the page says why.
        ok, text = await _tls_handshake(
            "localhost", port, 5.0, lambda: ssl_context(PaytmConfig()))
        assert not ok and "CERTIFICATE_VERIFY_FAILED" in text
    finally:
        server.close()
        await server.wait_closed()
    ok, text = await _tls_handshake("localhost", port, 5.0, lambda: ssl_context(PaytmConfig()))
    assert not ok and "localhost" in text

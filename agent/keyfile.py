"""Reading the merchant key: from a systemd credential or a file only the agent may read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.errors import SecretError
from agent.paytm.checksum import MerchantKey

CREDENTIAL_NAME = "merchant-key"  # LoadCredential=merchant-key:/etc/edc-agent/merchant.key


def key_path(configured: str, environ: dict[str, str] | None = None) -> Path:
    """The systemd credential when the service has one, else the configured file."""
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / CREDENTIAL_NAME
        if candidate.exists():
            return candidate
    return Path(configured)


def load_merchant_key(configured: str, environ: dict[str, str] | None = None) -> MerchantKey:
    """Read and check the key. Errors name the file, never its content."""
    path = key_path(configured, environ)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretError(f"merchant key file {str(path)!r} does not exist "
                          "(paytm.merchant_key_file)") from None
    except OSError as exc:
        raise SecretError(f"merchant key file {str(path)!r} cannot be read: "
                          f"{exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretError(f"merchant key file {str(path)!r} is not a regular file")
    if info.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
        # A key readable by every user on a shared till PC is a key anyone can sign with.
        raise SecretError(f"merchant key file {str(path)!r} is readable or writable by other "
                          f"users (mode {stat.S_IMODE(info.st_mode):04o}); run "
                          f"chmod 600 {path}")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise SecretError(f"merchant key file {str(path)!r} cannot be read as plain "
                          "text") from None
    return MerchantKey.from_text(text)

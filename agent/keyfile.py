"""Reading the merchant key: from a systemd credential or a file only the agent may read.

The rule (README, docs/install.md and `edc-agent check-config` say the same):

- the file is opened without following a symbolic link (`O_NOFOLLOW`) and must be a
  regular file: a link to `/etc/shadow` is refused before a byte of it is read;
- it is owned by root or by the user the agent runs as, and its mode is exactly 0600 or
  0400 (no group or other bits): `chmod 600` / `chown root:root`;
- the systemd credential (`LoadCredential=merchant-key:…`, read from
  `$CREDENTIALS_DIRECTORY/merchant-key`) is systemd's private copy: owner and mode are
  systemd's business there, the other rules hold;
- at most `KEY_FILE_MAX_BYTES` are read: a key is 16 characters (a newline and spaces
  around it are allowed), a larger file is refused without reading it.

Every check is made on the opened descriptor (`fstat`), so the file cannot be swapped
between the check and the read. Errors name the file, never its content or its size.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from agent.errors import SecretError
from agent.paytm.checksum import MerchantKey

CREDENTIAL_NAME = "merchant-key"  # LoadCredential=merchant-key:/etc/edc-agent/merchant.key
KEY_FILE_MAX_BYTES = 64  # 16 characters and whitespace; anything larger is not a key
KEY_FILE_MODES = frozenset({0o600, 0o400})
ROOT_UID = 0


def key_path(configured: str, environ: dict[str, str] | None = None) -> Path:
    """The systemd credential when the service has one, else the configured file."""
    path, _ = _key_source(configured, environ)
    return path


def _key_source(configured: str, environ: dict[str, str] | None) -> tuple[Path, bool]:
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / CREDENTIAL_NAME
        if os.path.lexists(candidate):
            return candidate, True
    return Path(configured), False


def load_merchant_key(configured: str, environ: dict[str, str] | None = None,
                      *, uid: int | None = None) -> MerchantKey:
    """Read and check the key (`uid`: the agent's user, default the effective uid)."""
    path, credential = _key_source(configured, environ)
    name = repr(str(path))
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SecretError(f"merchant key file {name} does not exist "
                          "(paytm.merchant_key_file)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SecretError(f"merchant key file {name} is a symbolic link; give the "
                              "path of the file itself") from None
        raise SecretError(f"merchant key file {name} cannot be read: "
                          f"{exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"merchant key file {name} is not a regular file")
        if not credential:
            _check_owner_and_mode(name, str(path), info, os.geteuid() if uid is None else uid)
        if info.st_size > KEY_FILE_MAX_BYTES:
            raise SecretError(f"merchant key file {name} is larger than a key "
                              f"({KEY_FILE_MAX_BYTES} bytes at most): is it the right file?")
        data = os.read(fd, KEY_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise SecretError(f"merchant key file {name} cannot be read: "
                          f"{exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > KEY_FILE_MAX_BYTES:  # grew after fstat
        raise SecretError(f"merchant key file {name} is larger than a key "
                          f"({KEY_FILE_MAX_BYTES} bytes at most): is it the right file?")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise SecretError(f"merchant key file {name} cannot be read as plain "
                          "text") from None
    return MerchantKey.from_text(text)


def _check_owner_and_mode(name: str, path: str, info: os.stat_result, uid: int) -> None:
    if info.st_uid not in (ROOT_UID, uid):
        raise SecretError(f"merchant key file {name} is owned by uid {info.st_uid}, not by "
                          f"root or the agent's user (uid {uid}); run "
                          f"chown root:root {path}")
    mode = stat.S_IMODE(info.st_mode)
    if mode not in KEY_FILE_MODES:
        # A key readable by every user on a shared till PC is a key anyone can sign with.
        raise SecretError(f"merchant key file {name} has mode {mode:04o}; it must be 0600 "
                          f"or 0400 (only its owner may read it); run chmod 600 {path}")

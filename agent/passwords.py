"""Technician password hashing: scrypt from the standard library, self-describing strings.

Format: ``scrypt$N$r$p$salt_b64$hash_b64``. Only the hash is stored (http.password_hash).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import sys

SCRYPT_N = 2**14  # ~16 MiB and ~50 ms per check: slow for guessing, fine for a login
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=HASH_BYTES)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True only for the right password; never raises on a malformed hash."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and expected):
            return False
        digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                                dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def hash_password_main(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        first = getpass.getpass("Technician password: ")
        second = getpass.getpass("Again: ")
        if first != second:
            print("edc-agent: the two passwords differ", file=sys.stderr)
            return 1
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if len(first) < MIN_PASSWORD_LENGTH:
        print(f"edc-agent: use at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 1
    print(hash_password(first))
    return 0

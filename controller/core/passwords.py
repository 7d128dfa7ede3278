"""Charger passwords (security profiles 1 and 2) as salted scrypt hashes: derive and verify, pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

SCHEME = "scrypt"
# scrypt is memory-hard: n=2**14, r=8 needs 16 MiB per derivation and takes tens of milliseconds
# (50-150 ms on an edge box), cheap once per handshake, expensive for anyone guessing offline.
N, R, P = 2**14, 8, 1
DKLEN = 32
SALT_BYTES = 16
_MAXMEM = 64 * 1024 * 1024  # OpenSSL's default cap (32 MiB) is too close to 128 * n * r


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=dklen)


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """A JSON-ready record {scheme, n, r, p, salt, hash} for the password; slow on purpose."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, N, R, P, DKLEN)
    return {"scheme": SCHEME, "n": N, "r": R, "p": P, "salt": _b64(salt), "hash": _b64(digest)}


def verify_password(password: str, record: Mapping[str, Any]) -> bool:
    """True if the password matches the record (its own parameters); False for a malformed record."""
    try:
        if record["scheme"] != SCHEME:
            return False
        salt = base64.b64decode(record["salt"], validate=True)
        want = base64.b64decode(record["hash"], validate=True)
        n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
        got = _scrypt(password, salt, n, r, p, len(want))
    except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError
        return False
    return hmac.compare_digest(got, want)

"""The web UI's HTTPS certificate: the operator's pair as is, else a self-signed one made at first start."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path

VALID_DAYS = 3650  # self-signed: nobody renews it, and browsers ask once for an exception anyway


class TlsError(RuntimeError):
    """The certificate cannot be used or made; the message says what to do."""


def subject_alt_names(hosts: Iterable[str]) -> str:
    """An openssl subjectAltName value for localhost, the loopback addresses and the given names."""
    names: list[str] = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    for host in hosts:
        if not host or host in ("0.0.0.0", "::"):
            continue
        try:
            entry = f"IP:{ipaddress.ip_address(host)}"
        except ValueError:
            entry = f"DNS:{host}"
        if entry not in names:
            names.append(entry)
    return ",".join(names)


def ensure_certificate(cert: Path, key: Path, hosts: Iterable[str] = ()) -> bool:
    """Use an existing cert/key pair unchanged; if neither exists make a self-signed one. True if made."""
    if cert.exists() and key.exists():
        return False
    if cert.exists() or key.exists():
        raise TlsError(f"only one of {cert} and {key} exists; restore the other or remove both to regenerate")
    exe = shutil.which("openssl")
    if exe is None:
        raise TlsError("openssl not found: install it, or set [api] cert/key, or [api] tls = false")
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    # Made under temporary names and renamed: a crash in between never leaves half a pair behind.
    tmp_cert, tmp_key = cert.with_name(cert.name + ".new"), key.with_name(key.name + ".new")
    names = subject_alt_names([*hosts, socket.gethostname()])
    args = [
        exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(tmp_key), "-out", str(tmp_cert), "-days", str(VALID_DAYS),
        "-subj", "/O=siteedge/CN=siteedge web UI",
        "-addext", f"subjectAltName={names}",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature",
        "-addext", "extendedKeyUsage=serverAuth",
    ]  # fmt: skip
    old_umask = os.umask(0o077)  # the key is never readable by others, not even for a moment
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    finally:
        os.umask(old_umask)
    if done.returncode != 0:
        tmp_cert.unlink(missing_ok=True)
        tmp_key.unlink(missing_ok=True)
        raise TlsError(f"openssl could not make a certificate: {done.stderr.strip()[-500:]}")
    os.chmod(tmp_key, 0o600)
    os.replace(tmp_key, key)
    os.replace(tmp_cert, cert)
    return True

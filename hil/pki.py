"""A throwaway test PKI made with the openssl CLI: a CA, server and client certificates."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CertFiles:
    """A certificate and its private key, PEM files on disk."""

    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("openssl not found: apt-get install openssl")
    subprocess.run([exe, *args], check=True, capture_output=True)


class TestPki:
    """A CA in a directory that issues server and client certificates for 127.0.0.1."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path, ca_name: str = "siteedge test CA") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = CertFiles(self.dir / "ca.pem", self.dir / "ca.key")
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(self.ca.key),
            "-out",
            str(self.ca.cert),
            "-days",
            "2",
            "-subj",
            f"/CN={ca_name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )

    def issue(self, name: str, common_name: str, *, server: bool) -> CertFiles:
        """A certificate signed by this CA; servers get SANs for 127.0.0.1 and localhost."""
        files = CertFiles(self.dir / f"{name}.pem", self.dir / f"{name}.key")
        csr = self.dir / f"{name}.csr"
        ext = self.dir / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        lines = ["basicConstraints=CA:FALSE", f"extendedKeyUsage={usage}"]
        if server:
            lines.append("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost")
        ext.write_text("\n".join(lines) + "\n")
        _openssl(
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(files.key),
            "-out",
            str(csr),
            "-subj",
            f"/CN={common_name}",
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(self.ca.cert),
            "-CAkey",
            str(self.ca.key),
            "-CAcreateserial",
            "-out",
            str(files.cert),
            "-days",
            "2",
            "-extfile",
            str(ext),
        )
        return files

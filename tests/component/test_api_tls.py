"""The web UI over HTTPS: a self-signed certificate made once at first start, or the operator's own."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import ssl
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.app import SiteController
from controller.core.access import Role
from controller.core.config import ConfigError, validate
from hil.pki import TestPki
from hil.siteconfig import SiteSpec, render
from tests.api import api_client, api_url, tls_context

PASSWORD = "correct horse battery"


async def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents on 127.0.0.1:port (no verification)."""
    # In a thread: the server runs on this test's loop.
    pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port), timeout=5)
    return ssl.PEM_cert_to_DER_cert(pem)


def der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


async def test_first_start_makes_a_certificate_serves_https_and_a_restart_reuses_it(
    site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Any]
) -> None:
    spec = dataclasses.replace(site_spec, api_tls=True)
    tls_dir = Path(spec.data_dir) / "tls"
    assert not tls_dir.exists()
    ctl: SiteController = await start_controller(spec)
    cert, key = tls_dir / "api.crt", tls_dir / "api.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert await served_certificate(ctl.api_port) == der(cert)

    # Verified against the generated certificate itself (it names 127.0.0.1).
    async with api_client(ctl, "viewer") as http:
        assert str(http.base_url).startswith("https://")
        assert (await http.get("/api/v1/health")).status_code == 200
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the HTTPS port gets nowhere
        async with httpx.AsyncClient(trust_env=False) as plain:
            await plain.get(f"http://127.0.0.1:{ctl.api_port}/api/v1/auth/state", timeout=5)

    # Cookies are Secure under HTTPS.
    await ctl.security.add_user("tech", PASSWORD, Role.TECHNICIAN)
    async with httpx.AsyncClient(base_url=api_url(ctl), verify=tls_context(ctl), trust_env=False) as browser:
        r = await browser.post("/api/v1/auth/login", json={"username": "tech", "password": PASSWORD})
        assert r.status_code == 200
        cookies = r.headers.get_list("set-cookie")
        assert len(cookies) == 2 and all("secure" in c.lower() for c in cookies)
        assert (await browser.get("/api/v1/health")).status_code == 200

    first = cert.read_bytes(), key.read_bytes()
    await ctl.stop()
    again: SiteController = await start_controller(spec)
    assert (cert.read_bytes(), key.read_bytes()) == first  # made once, then used as is
    assert await served_certificate(again.api_port) == der(cert)


async def test_the_operators_certificate_is_used_as_is(
    tmp_path: Path, site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Any]
) -> None:
    pki = TestPki(tmp_path / "pki")
    own = pki.issue("web", "siteedge.example", server=True)
    spec = dataclasses.replace(site_spec, api_tls=True)
    tls_dir = Path(spec.data_dir) / "tls"
    tls_dir.mkdir(parents=True)
    shutil.copy(own.cert, tls_dir / "api.crt")
    shutil.copy(own.key, tls_dir / "api.key")
    ctl: SiteController = await start_controller(spec)
    assert await served_certificate(ctl.api_port) == der(own.cert)
    trusted = ssl.create_default_context(cafile=str(pki.ca.cert))
    async with httpx.AsyncClient(base_url=api_url(ctl), verify=trusted, trust_env=False) as http:
        assert (await http.get("/api/v1/auth/state")).status_code == 200


async def test_configured_certificate_paths(tmp_path: Path, site_spec: SiteSpec) -> None:
    pki = TestPki(tmp_path / "pki")
    own = pki.issue("web", "siteedge.example", server=True)
    text = render(dataclasses.replace(site_spec, api_tls=True))
    text = text.replace("tls = true", f'tls = true\ncert = "{own.cert}"\nkey = "{own.key}"', 1)
    ctl = SiteController(validate(tomllib.loads(text)))
    await ctl.start()
    try:
        assert await served_certificate(ctl.api_port) == der(own.cert)
        assert not (Path(site_spec.data_dir) / "tls").exists()  # nothing made when paths are given
    finally:
        await ctl.stop()

    missing = text.replace(str(own.cert), str(tmp_path / "nope.crt"))
    broken = SiteController(validate(tomllib.loads(missing)))
    with pytest.raises(RuntimeError, match=r"nope\.crt does not exist"):
        await broken.start()
    await broken.stop()


@pytest.mark.parametrize(
    ("api", "problem"),
    [
        ({"cert": "/etc/a.crt"}, "api.cert: cert and key go together"),
        ({"tls": False, "cert": "/etc/a.crt", "key": "/etc/a.key"}, "api.cert: a certificate is set"),
        ({"tls": "yes"}, "api.tls: must be a boolean"),
    ],
)
def test_api_tls_settings_are_validated(site_spec: SiteSpec, api: dict[str, Any], problem: str) -> None:
    doc = tomllib.loads(render(site_spec))
    doc["api"] = {"port": 0, **api}
    with pytest.raises(ConfigError) as refused:
        validate(doc)
    assert any(str(p).startswith(problem) for p in refused.value.problems), refused.value.problems


def test_https_is_the_default(site_spec: SiteSpec) -> None:
    doc = tomllib.loads(render(site_spec))
    doc["api"] = {"port": 0}
    assert validate(doc).api.tls is True
    assert validate(tomllib.loads(render(site_spec))).api.tls is False  # test sites opt out

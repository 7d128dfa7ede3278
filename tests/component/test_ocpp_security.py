"""Issue 3 item 2: security profiles 1-3 on ws:// and wss://, never downgraded."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from controller.app import SiteController
from controller.core.config import validate
from controller.store.documents import KEY_FIELD
from hil.siteconfig import SimCharger, SiteSpec, render

PASSWORD = "0123456789abcdef0123"
BOOT = json.dumps([2, "b", "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1, client certificates with CN CP-3 and WRONG."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=site CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn, ext in (("server", "127.0.0.1", True), ("cp3", "CP-3", False), ("wrong", "WRONG", False)):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}/O=CPO",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
                 *(["-extfile", "san.ext"] if ext else []), cwd=d)  # fmt: skip
    return d


def _charger(cp_id: str, profile: int, password: str | None) -> str:
    pw = f'password = "{password}"\n' if password else ""
    return (
        f'[[chargers]]\nid = "{cp_id}"\n{pw}security_profile = {profile}\n'
        f'[[chargers.evses]]\nocpp_evse = 1\nevse_uid = "{cp_id}-1"\n\n'
    )


@pytest.fixture
async def secured(site_spec: SiteSpec, pki: Path) -> AsyncIterator[SiteController]:
    site_spec.chargers.clear()
    tls = (
        f'tls_port = 0\ntls_cert = "{pki / "server.pem"}"\ntls_key = "{pki / "server.key"}"\n'
        f'tls_ca = "{pki / "ca.pem"}"\n'
    )
    text = render(site_spec).replace("[ocpp]\n", "[ocpp]\n" + tls)
    text += _charger("CP-1", 1, PASSWORD) + _charger("CP-2", 2, PASSWORD) + _charger("CP-3", 3, None)
    ctl = SiteController(validate(tomllib.loads(text)))
    await ctl.start()
    yield ctl
    await ctl.stop()


def _client_tls(pki: Path, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
    return ctx


async def _boot(url: str, cp_id: str, password: str | None = None, tls: ssl.SSLContext | None = None) -> str:
    """Connect, boot, return the registration status; raises InvalidStatus if refused."""
    headers = {}
    if password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{cp_id}:{password}".encode()).decode()
    async with connect(
        f"{url}/ocpp/{cp_id}", subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers, ssl=tls
    ) as ws:
        await ws.send(BOOT)
        while True:  # a reconnect after an accepted boot may first get siteedge's TriggerMessage
            reply = json.loads(await ws.recv())
            if reply[:2] == [3, "b"]:
                return str(reply[2]["status"])


def _status(exc: pytest.ExceptionInfo[InvalidStatus]) -> int:
    return int(exc.value.response.status_code)


async def test_profile_1_basic_auth_over_ws(secured: SiteController) -> None:
    ws = f"ws://127.0.0.1:{secured.ocpp_port}"
    assert await _boot(ws, "CP-1", PASSWORD) == "Accepted"
    with pytest.raises(InvalidStatus) as exc:
        await _boot(ws, "CP-1", "wrong-password-0000")
    assert _status(exc) == 401


async def test_profile_2_needs_tls_and_basic_auth(secured: SiteController, pki: Path) -> None:
    ws, wss = f"ws://127.0.0.1:{secured.ocpp_port}", f"wss://127.0.0.1:{secured.ocpp_tls_port}"
    with pytest.raises(InvalidStatus) as exc:
        await _boot(ws, "CP-2", PASSWORD)  # right password, but no downgrade to plain ws://
    assert _status(exc) == 403
    with pytest.raises(InvalidStatus) as exc:
        await _boot(wss, "CP-2", None, _client_tls(pki, None))
    assert _status(exc) == 401
    assert await _boot(wss, "CP-2", PASSWORD, _client_tls(pki, None)) == "Accepted"


async def test_profile_3_needs_a_client_certificate_whose_cn_is_the_charger_id(
    secured: SiteController, pki: Path
) -> None:
    ws, wss = f"ws://127.0.0.1:{secured.ocpp_port}", f"wss://127.0.0.1:{secured.ocpp_tls_port}"
    with pytest.raises(InvalidStatus) as exc:
        await _boot(ws, "CP-3")
    assert _status(exc) == 403
    with pytest.raises(InvalidStatus) as exc:
        await _boot(wss, "CP-3", None, _client_tls(pki, None))
    assert _status(exc) == 403
    with pytest.raises(InvalidStatus) as exc:
        await _boot(wss, "CP-3", None, _client_tls(pki, "wrong"))
    assert _status(exc) == 403
    assert await _boot(wss, "CP-3", None, _client_tls(pki, "cp3")) == "Accepted"
    # A profile 1 charger may use the stronger listener too (an upgrade, not a downgrade).
    assert await _boot(wss, "CP-1", PASSWORD, _client_tls(pki, None)) == "Accepted"


def _password_records(registry_json: str) -> dict[str, dict[str, Any]]:
    """The registry file's password hash records by charger id (TinyDB numbers its documents)."""
    table = json.loads(registry_json).get("passwords", {})
    return {doc[KEY_FIELD]: doc for doc in table.values()}


async def test_profile_1_password_is_stored_only_as_an_scrypt_hash(
    secured: SiteController, site_spec: SiteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 3 item 2: per-charger password, stored hashed; a wrong one is still refused."""
    from controller.ocpp import credentials

    scrypt_checks: list[str] = []
    real = credentials.verify_password

    def counting(password: str, record: Any) -> bool:
        scrypt_checks.append(password)
        return real(password, record)

    monkeypatch.setattr(credentials, "verify_password", counting)
    ws = f"ws://127.0.0.1:{secured.ocpp_port}"
    assert await _boot(ws, "CP-1", PASSWORD) == "Accepted"
    text = (Path(site_spec.data_dir) / "registry.json").read_text()
    assert PASSWORD not in text
    record = _password_records(text)["CP-1"]
    assert record["scheme"] == "scrypt" and record["n"] >= 2**14 and len(record["salt"]) >= 16
    with pytest.raises(InvalidStatus) as exc:
        await _boot(ws, "CP-1", PASSWORD[:-1] + "X")
    assert _status(exc) == 401
    # A reconnect with the right password is answered from the in-memory cache: no scrypt run.
    checks = len(scrypt_checks)
    assert await _boot(ws, "CP-1", PASSWORD) == "Accepted"
    assert len(scrypt_checks) == checks
    # So is a charger retrying the same wrong password: one scrypt run, then remembered.
    with pytest.raises(InvalidStatus):
        await _boot(ws, "CP-1", PASSWORD[:-1] + "X")
    assert len(scrypt_checks) == checks


async def test_a_changed_configured_password_renews_the_hash_and_retires_the_old_one(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    site_spec.chargers = [SimCharger("CP-1", "1.6", password=PASSWORD)]
    first = SiteController(validate(tomllib.loads(render(site_spec))))
    await first.start()
    try:
        assert await _boot(f"ws://127.0.0.1:{first.ocpp_port}", "CP-1", PASSWORD) == "Accepted"
    finally:
        await first.stop()
    registry = Path(site_spec.data_dir) / "registry.json"
    old = _password_records(registry.read_text())["CP-1"]
    new_password = "fedcba9876543210fedc"
    site_spec.chargers = [SimCharger("CP-1", "1.6", password=new_password)]
    ws = f"ws://127.0.0.1:{(await start_controller(site_spec)).ocpp_port}"  # same data_dir
    with pytest.raises(InvalidStatus) as exc:
        await _boot(ws, "CP-1", PASSWORD)
    assert _status(exc) == 401
    assert await _boot(ws, "CP-1", new_password) == "Accepted"
    text = registry.read_text()
    assert new_password not in text and PASSWORD not in text
    assert _password_records(text)["CP-1"]["hash"] != old["hash"]

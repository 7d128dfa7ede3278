"""Issues 3 and 8: technicians set a charger's Basic password; pushed if connected, else required next."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from controller.app import SiteController
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.siteconfig import SimCharger, SiteSpec
from tests.api import api_client
from tests.conftest import config_of

OLD = "00112233445566778899aabbccddeeff"  # a 1.6 AuthorizationKey: 16 bytes as hex
NEW = "ffeeddccbbaa99887766554433221100ffeeddcc"  # 20 bytes as hex
NEW_201 = "Site-Secret:2026+abc"  # 20 characters, fine for 2.0.1, not a 1.6 hex key


async def _handshake(ctl: SiteController, cp_id: str, password: str | None, proto: str = "ocpp1.6") -> int:
    """101 if the charger's WebSocket handshake is accepted, else the HTTP status it was refused with."""
    headers = {}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{cp_id}:{password}".encode()).decode()
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp/{cp_id}"
    try:
        async with connect(url, subprotocols=[Subprotocol(proto)], additional_headers=headers):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


def _siteedge_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What siteedge itself logged (the simulators' `ocpp` library logs every frame it receives)."""
    mine = ("controller", "local_api", "drivers", "uvicorn", "websockets.server")
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(mine))


async def _frames(ctl: SiteController, cp_id: str, action: str) -> str:
    """The charger's logged frames of one action, once the message log has committed some."""
    async with api_client(ctl, "viewer") as api:
        for _ in range(100):  # the log commits in groups, twice a second
            reply = await api.get(f"/api/v1/chargers/{cp_id}/messages", params={"action": action})
            if reply.json()["items"]:
                return reply.text
            await asyncio.sleep(0.05)
    raise AssertionError(f"no {action} frame of {cp_id} in the message log")


def _registry_text(spec: SiteSpec) -> str:
    return (Path(spec.data_dir) / "registry.json").read_text()


async def _set(ctl: SiteController, cp_id: str, body: dict[str, Any], role: str = "technician") -> Any:
    async with api_client(ctl, role) as api:
        return await api.post(f"/api/v1/chargers/{cp_id}/credentials", json=body)


async def test_a_waiting_charger_gets_a_generated_password_it_must_present_even_after_a_restart(
    site_spec: SiteSpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = config_of(site_spec)
    ctl = SiteController(config)
    await ctl.start()
    try:
        url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
        async with ChargePointSimulator("NEWBIE", url) as cp:
            assert await cp.boot() == "Pending"
        assert await _handshake(ctl, "NEWBIE", None) == 101  # no password asked yet (profile 0)
        reply = await _set(ctl, "NEWBIE", {"generate": True})
        assert reply.status_code == 200, reply.text
        out = reply.json()
        assert out["path"] == "stored" and out["security_profile"] == 1
        password = out["password"]
        assert re.fullmatch(r"[0-9a-f]{40}", password)
        async with api_client(ctl, "technician") as api:
            assert (await api.post("/api/v1/chargers/NEWBIE/approve")).status_code == 200
        assert await _handshake(ctl, "NEWBIE", None) == 401
        assert await _handshake(ctl, "NEWBIE", "0" * 40) == 401
        async with ChargePointSimulator("NEWBIE", url, password=password) as cp:
            assert await cp.boot() == "Accepted"
        async with api_client(ctl, "admin") as api:
            audit = (await api.get("/api/v1/audit")).text
        assert "set credentials of NEWBIE (generated password, stored)" in audit
        assert password not in audit
    finally:
        await ctl.stop()
    assert password not in _registry_text(site_spec) and '"scheme":"scrypt"' in _registry_text(site_spec)
    assert password not in _siteedge_logs(caplog)

    again = SiteController(config)
    await again.start()
    try:
        assert await _handshake(again, "NEWBIE", None) == 401
        assert await _handshake(again, "NEWBIE", "0" * 40) == 401
        url = f"ws://127.0.0.1:{again.ocpp_port}/ocpp"
        async with ChargePointSimulator("NEWBIE", url, password=password) as cp:
            assert await cp.boot() == "Accepted"
    finally:
        await again.stop()


async def test_rotating_a_connected_16_charger_keeps_the_old_password_until_the_new_one_is_used(
    site_spec: SiteSpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site_spec.chargers[0] = SimCharger("CP-1", "1.6", evses=2, password=OLD)
    config = config_of(site_spec)
    ctl = SiteController(config)
    await ctl.start()
    try:
        url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
        async with ChargePointSimulator("CP-1", url, connectors=2, password=OLD) as cp:
            assert await cp.boot() == "Accepted"
            reply = await _set(ctl, "CP-1", {"password": NEW})
            assert reply.status_code == 200, reply.text
            out = reply.json()
            assert out["path"] == "pushed" and out["ocpp_version"] == "1.6" and "password" not in out
            assert ("ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW}) in cp.received
            assert cp.password == NEW
            log = await _frames(ctl, "CP-1", "ChangeConfiguration")
            assert "AuthorizationKey" in log and NEW not in log
        assert await _handshake(ctl, "CP-1", OLD) == 101  # not yet reconnected with the new one
        async with ChargePointSimulator("CP-1", url, connectors=2, password=NEW) as cp:
            assert await cp.boot() == "Accepted"
        assert await _handshake(ctl, "CP-1", OLD) == 401
        assert await _handshake(ctl, "CP-1", NEW) == 101
    finally:
        await ctl.stop()
    assert NEW not in _siteedge_logs(caplog) and NEW not in _registry_text(site_spec)

    # The configuration still says OLD, which the technician replaced: the technician's password stands.
    again = SiteController(config)
    await again.start()
    try:
        assert await _handshake(again, "CP-1", NEW) == 101
        assert await _handshake(again, "CP-1", OLD) == 401
    finally:
        await again.stop()

    # An edited configuration password is newer than the technician's and applies again.
    site_spec.chargers[0] = SimCharger("CP-1", "1.6", evses=2, password="a" * 32)
    edited = SiteController(config_of(site_spec))
    await edited.start()
    try:
        assert await _handshake(edited, "CP-1", "a" * 32) == 101
        assert await _handshake(edited, "CP-1", NEW) == 401
    finally:
        await edited.stop()


async def test_rotating_a_connected_201_charger_from_no_password(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
    async with ChargePointSimulator201("NEW201", url) as cp:
        assert await cp.boot() == "Pending"
        async with api_client(ctl, "technician") as api:
            assert (await api.post("/api/v1/chargers/NEW201/approve")).status_code == 200
        assert await cp.boot() == "Accepted"
        reply = await _set(ctl, "NEW201", {"password": NEW_201})
        assert reply.status_code == 200, reply.text
        assert reply.json()["path"] == "pushed" and reply.json()["security_profile"] == 1
        (call,) = [p for action, p in cp.received if action == "SetVariables"]
        assert call["setVariableData"] == [
            {
                "attributeValue": NEW_201,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
        assert cp.password == NEW_201
    assert await _handshake(ctl, "NEW201", None, "ocpp2.0.1") == 101  # as before, until the switch
    assert await _handshake(ctl, "NEW201", "wrong-password-1234", "ocpp2.0.1") == 401
    async with ChargePointSimulator201("NEW201", url, password=NEW_201) as cp:
        assert await cp.boot() == "Accepted"
    assert await _handshake(ctl, "NEW201", None, "ocpp2.0.1") == 401
    assert await _handshake(ctl, "NEW201", NEW_201, "ocpp2.0.1") == 101


async def test_a_charger_refusing_the_new_password_keeps_its_old_one(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    site_spec.chargers[0] = SimCharger("CP-1", "1.6", evses=2, password=OLD)
    ctl: SiteController = await start_controller(site_spec)
    headers = {"Authorization": "Basic " + base64.b64encode(f"CP-1:{OLD}".encode()).decode()}
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp/CP-1"
    async with connect(url, subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers) as ws:
        setting = asyncio.create_task(_set(ctl, "CP-1", {"generate": True}))
        while True:  # skip siteedge's own calls (TriggerMessage after a reconnect, ...) until ours
            frame = json.loads(await ws.recv())
            if frame[0] == 2 and frame[2] == "ChangeConfiguration":
                assert frame[3]["key"] == "AuthorizationKey"
                await ws.send(json.dumps([3, frame[1], {"status": "Rejected"}]))
                break
            if frame[0] == 2:
                await ws.send(json.dumps([4, frame[1], "NotSupported", "", {}]))
        reply = await setting
    assert reply.status_code == 502 and reply.json()["code"] == "upstream"
    assert "Rejected" in reply.json()["detail"] and "nothing changed" in reply.json()["detail"]
    assert await _handshake(ctl, "CP-1", OLD) == 101


async def test_bad_requests_are_refused_with_a_reason(site_spec: SiteSpec, start_controller: Any) -> None:
    site_spec.chargers[0] = SimCharger("CP-1", "1.6", evses=2, password=OLD)
    site_spec.chargers.append(SimCharger("CP-0", "1.6", evses=1))  # profile 0: no password configured
    ctl: SiteController = await start_controller(site_spec)
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
    async with ChargePointSimulator201("NEW201", url) as cp:
        assert await cp.boot() == "Pending"

    async def refused(cp_id: str, body: dict[str, Any], status: int, words: str) -> None:
        reply = await _set(ctl, cp_id, body)
        assert reply.status_code == status, reply.text
        assert words in reply.json()["detail"], reply.json()

    await refused("NOBODY", {"generate": True}, 404, "neither configured nor ever booted")
    await refused("CP-1", {"password": "0123456789abcdef"}, 422, "32 to 40 hexadecimal")  # 16 chars, 1.6
    await refused("CP-1", {"password": "x" * 40}, 422, "hexadecimal")
    await refused("CP-1", {"password": OLD + "a"}, 422, "hexadecimal")  # odd: not whole bytes
    await refused("NEW201", {"password": "short-1234"}, 422, "16 to 40 characters")
    await refused("NEW201", {"password": "has spaces in it 1234"}, 422, "use only letters")
    await refused("NEW201", {"password": "a" * 41}, 422, "16 to 40 characters")
    await refused("NEW201", {}, 422, "either a password or")
    await refused("NEW201", {"generate": True, "password": NEW_201}, 422, "either a password or")
    await refused("NEW201", {"generate": True, "security_profile": 3}, 422, "client certificates")
    await refused("NEW201", {"generate": True, "security_profile": 2}, 409, "wss://")
    await refused("CP-0", {"generate": True}, 409, "without a security profile")
    reply = await _set(ctl, "NEW201", {"generate": True}, role="viewer")
    assert reply.status_code == 403
    # Nothing was stored by any of these: NEW201 still connects without a password.
    assert await _handshake(ctl, "NEW201", None, "ocpp2.0.1") == 101

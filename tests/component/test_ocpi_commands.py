"""OCPI commands from the eMSP over a real broker, carried out by simulated chargers."""

from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import pytest

from controller.app import SiteController
from controller.core.config import validate
from controller.core.sessions import session_id_of
from hil.broker import Broker
from hil.sim.backend import BackendSimulator, Received
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.siteconfig import SimCharger, SiteSpec, render

ROOT = "siteedge/v1/NL/SED/DEMO01"
LOCATION = "DEMO01"


def token(uid: str, whitelist: str = "NEVER") -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "ABC",
        "uid": uid,
        "type": "APP_USER",
        "contract_id": f"C-{uid}",
        "issuer": "ABC",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": "2026-11-01T00:00:00Z",
    }


def reply(command_id: str, kind: str) -> Any:
    return lambda m: m.topic == f"{ROOT}/commands/{command_id}/{kind}"


@pytest.fixture
async def site(site_spec: SiteSpec, broker: Broker) -> Any:
    site_spec.chargers = [SimCharger("CP-1", "1.6", evses=2), SimCharger("CP-2", "2.0.1", evses=1)]
    site_spec.free_vend, site_spec.auth_timeout = False, 0.3  # the eMSP never answers in these tests
    with BackendSimulator(broker.url, ROOT) as backend:
        ctl = SiteController(validate(tomllib.loads(render(site_spec))))
        await ctl.start()
        url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
        async with (
            ChargePointSimulator("CP-1", url, connectors=2, speed=60) as cp1,
            ChargePointSimulator201("CP-2", url, connectors=1, speed=60) as cp2,
        ):
            for cp in (cp1, cp2):
                assert await cp.boot() == "Accepted"
                for n in cp.connectors:
                    await cp.status(n, "Available")
            try:
                yield ctl, backend
            finally:
                await ctl.stop()
        assert backend.contract.violations == []


async def command(
    backend: BackendSimulator, kind: str, body: dict[str, Any]
) -> tuple[Received, Received | None]:
    backend.publish(f"commands/{kind}", body)
    response = await backend.wait_for_async(reply(body["command_id"], "response"))
    if response.payload["data"]["result"] != "ACCEPTED":
        return response, None
    return response, await backend.wait_for_async(reply(body["command_id"], "result"), within=30.0)


@pytest.mark.parametrize(("evse_uid", "version"), [("CP-1-2", "1.6"), ("CP-2-1", "2.0.1")])
async def test_start_session_is_accepted_and_the_charger_starts(
    site: Any, evse_uid: str, version: str
) -> None:
    ctl, backend = site
    body = {
        "command_id": f"start-{version}",
        "location_id": LOCATION,
        "evse_uid": evse_uid,
        "token": token("APP-42"),
        "response_url": "https://emsp.example/cmd/1",
    }
    response, result = await command(backend, "START_SESSION", body)
    assert response.payload["data"] == {"result": "ACCEPTED", "timeout": 30}
    assert result is not None and result.payload["data"]["result"] == "ACCEPTED"
    # The NEVER token is not asked about again: the command authorized it (OCPI COMMAND).
    granted = [e for e in ctl.authorizer.audit if e.uid == "APP-42"]
    assert granted and "START_SESSION" in granted[0].reason
    # The charger started the transaction; STOP_SESSION by its OCPI session id ends it.
    for _ in range(1000):
        if evse_uid in ctl.site.running_transactions():
            break
        await asyncio.sleep(0.01)
    session_id = session_id_of(ctl.site.running_transactions()[evse_uid])
    stop = {"command_id": f"stop-{version}", "session_id": session_id}
    response, result = await command(backend, "STOP_SESSION", stop)
    assert response.payload["data"]["result"] == "ACCEPTED"
    assert result is not None and result.payload["data"]["result"] == "ACCEPTED"


async def test_refusals_say_why(site: Any) -> None:
    _, backend = site
    wrong_site = {"command_id": "c1", "location_id": "ELSEWHERE", "evse_uid": "CP-1-1", "token": token("T1")}
    response, _ = await command(backend, "START_SESSION", wrong_site)
    assert response.payload["data"]["result"] == "REJECTED"
    assert "not this site" in response.payload["data"]["message"][0]["text"]
    no_evse = {"command_id": "c2", "location_id": LOCATION, "evse_uid": "NOPE", "token": token("T1")}
    assert (await command(backend, "START_SESSION", no_evse))[0].payload["data"]["result"] == "REJECTED"
    bad_token = {"command_id": "c3", "location_id": LOCATION, "evse_uid": "CP-1-1", "token": {"uid": "x"}}
    response, _ = await command(backend, "START_SESSION", bad_token)
    assert (
        response.payload["data"]["result"] == "REJECTED"
        and "token." in response.payload["data"]["message"][0]["text"]
    )
    unknown = await command(backend, "STOP_SESSION", {"command_id": "c4", "session_id": "no-such-session"})
    assert unknown[0].payload["data"]["result"] == "UNKNOWN_SESSION"
    backend.publish("commands/START_SESSION", {"no": "command id"})
    err = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/errors")
    assert "command_id" in err.payload["data"]["reason"]


async def test_unlock_reserve_and_cancel(site: Any) -> None:
    _, backend = site
    unlock = {"command_id": "u1", "location_id": LOCATION, "evse_uid": "CP-2-1", "connector_id": "1"}
    assert (await command(backend, "UNLOCK_CONNECTOR", unlock))[1].payload["data"]["result"] == "ACCEPTED"
    reserve = {
        "command_id": "r1",
        "location_id": LOCATION,
        "evse_uid": "CP-1-1",
        "token": token("R-7"),
        "expiry_date": "2030-01-01T00:00:00Z",
        "reservation_id": "emsp-res-1",
    }
    assert (await command(backend, "RESERVE_NOW", reserve))[1].payload["data"]["result"] == "ACCEPTED"
    cancel = {"command_id": "x1", "reservation_id": "emsp-res-1"}
    assert (await command(backend, "CANCEL_RESERVATION", cancel))[1].payload["data"][
        "result"
    ] == "CANCELED_RESERVATION"
    again = {"command_id": "x2", "reservation_id": "emsp-res-1"}
    assert (await command(backend, "CANCEL_RESERVATION", again))[1].payload["data"][
        "result"
    ] == "UNKNOWN_RESERVATION"

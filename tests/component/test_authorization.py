"""Roaming authorization over a real broker: the eMSP's answers, its silence, and outages."""

from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import pytest

from controller.app import SiteController
from controller.core.config import validate
from controller.core.tokens import Outcome
from hil.broker import Broker
from hil.sim.backend import BackendSimulator
from hil.siteconfig import SiteSpec, render
from tests.api import api_client

ROOT = "siteedge/v1/NL/SED/DEMO01"


def tok(uid: str, whitelist: str, valid: bool = True) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "ABC",
        "uid": uid,
        "type": "RFID",
        "contract_id": f"C-{uid}",
        "issuer": "ABC",
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": "2026-11-01T00:00:00Z",
    }


EMSP = {
    "OFFLINE-OK": {"allowed": "BLOCKED"},  # ALLOWED_OFFLINE, but the eMSP says no while reachable
    "NEVER-OK": {"allowed": "ALLOWED"},
    "STRANGER": {"status_code": 2004},
}


@pytest.fixture
async def site(site_spec: SiteSpec, broker: Broker) -> Any:
    with BackendSimulator(broker.url, ROOT) as backend:
        backend.emsp = EMSP.get  # answers what it knows, stays silent otherwise
        site_spec.free_vend, site_spec.auth_timeout = False, 0.5
        ctl = SiteController(validate(tomllib.loads(render(site_spec))))
        await ctl.start()
        try:
            tokens = [
                tok("ALWAYS-1", "ALWAYS"),
                tok("OFFLINE-OK", "ALLOWED_OFFLINE"),
                tok("OFFLINE-SILENT", "ALLOWED_OFFLINE"),
                tok("NEVER-OK", "NEVER"),
                tok("NEVER-SILENT", "NEVER"),
            ]
            backend.publish("tokens/full/s1/0", {"total": 1, "version": 1, "tokens": tokens})
            await backend.wait_for_async(
                lambda m: m.topic == f"{ROOT}/tokens/state" and m.payload["data"]["version"] == 1
            )
            yield ctl, backend
        finally:
            await ctl.stop()
        assert backend.contract.violations == []


async def outcome(ctl: SiteController, uid: str) -> tuple[Outcome, str]:
    d = await ctl.authorizer.authorize(uid, charger_id="CP-1", evse_uid="CP-1-1")
    return d.outcome, d.reason


async def test_online_the_emsp_decides_and_its_silence_falls_back_by_whitelist(site: Any) -> None:
    ctl, backend = site
    assert (await outcome(ctl, "always-1"))[0] is Outcome.ACCEPT  # case-insensitive uid, never asked
    assert await outcome(ctl, "OFFLINE-OK") == (Outcome.REJECT, "eMSP answered BLOCKED")
    assert (await outcome(ctl, "NEVER-OK"))[0] is Outcome.ACCEPT
    assert await outcome(ctl, "STRANGER") == (Outcome.REJECT, "eMSP answered UNKNOWN")
    silent_ok, why = await outcome(ctl, "OFFLINE-SILENT")
    assert silent_ok is Outcome.ACCEPT and "did not answer" in why
    assert (await outcome(ctl, "NEVER-SILENT"))[0] is Outcome.REJECT
    asked = {m.payload["data"]["token_uid"] for m in backend.messages("auth/requests")}
    assert asked == {"OFFLINE-OK", "NEVER-OK", "STRANGER", "OFFLINE-SILENT", "NEVER-SILENT"}  # not ALWAYS
    async with api_client(ctl) as http:
        latest = (await http.get("/api/v1/authorizations", params={"limit": 2})).json()["items"]
        card = (await http.get("/api/v1/tokens/never-ok")).json()
    assert [d["uid"] for d in latest] == ["NEVER-SILENT", "OFFLINE-SILENT"]  # newest first
    assert card["known"] and card["decision"] == "ASK" and card["if_emsp_silent"]["decision"] == "REJECT"
    audit = [e.as_json() for e in ctl.authorizer.audit]
    assert [a["uid"] for a in audit][:2] == ["always-1", "OFFLINE-OK"]
    assert audit[1]["reason"] == "eMSP answered BLOCKED" and audit[1]["token"] == "DE*ABC*OFFLINE-OK"


async def test_uplink_down_decides_locally_without_asking(site: Any, broker: Broker) -> None:
    ctl, _ = site
    broker.kill()
    for _ in range(500):
        if not ctl.uplink.connected:
            break
        await asyncio.sleep(0.01)
    assert (await outcome(ctl, "OFFLINE-OK"))[0] is Outcome.ACCEPT  # eMSP unreachable: OCPI says accept
    assert (await outcome(ctl, "NEVER-OK"))[0] is Outcome.REJECT
    assert (await outcome(ctl, "STRANGER"))[0] is Outcome.REJECT  # unknown offline: site policy
    assert (await outcome(ctl, "ALWAYS-1"))[0] is Outcome.ACCEPT
    explained = ctl.authorizer.explain("NEVER-OK", ctl.tokens.lookup("NEVER-OK")[0])
    assert explained["decision"] == "REJECT" and "NEVER" in explained["reason"]
    broker.start()


async def test_drivers_at_a_real_charger_online_and_offline(site: Any, broker: Broker) -> None:
    """Issue 6 acceptance: OCPP Authorize answered by the OCPI rules, uplink up and down."""
    from hil.sim.chargepoint import ChargePointSimulator

    ctl, _ = site
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
    async with ChargePointSimulator("CP-1", url, connectors=2) as cp16:
        assert await cp16.boot() == "Accepted"
        assert await cp16.authorize("OFFLINE-OK") is False  # the eMSP says BLOCKED while reachable
        assert await cp16.authorize("NEVER-OK") is True
        broker.kill()
        for _ in range(500):
            if not ctl.uplink.connected:
                break
            await asyncio.sleep(0.01)
        assert await cp16.authorize("OFFLINE-OK") is True  # eMSP unreachable: accepted (OCPI)
        assert await cp16.authorize("NEVER-SILENT") is False  # NEVER offline: rejected
        broker.start()
    why = [e.as_json()["reason"] for e in ctl.authorizer.audit if e.charger_id == "CP-1"]
    assert why == [
        "eMSP answered BLOCKED",
        "allowed by the eMSP in real time",
        "whitelist ALLOWED_OFFLINE and the eMSP did not answer",
        "whitelist NEVER and the eMSP did not answer",
    ]


async def test_late_truth_a_start_with_a_rejected_token_is_kept_and_marked_invalid(site: Any) -> None:
    """Issue 6 item 4: the charger started (e.g. offline); the verdict is negative; nothing is lost."""
    from hil.sim.chargepoint import ChargePointSimulator

    ctl, backend = site
    async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        assert await cp.boot() == "Accepted"
        await cp.start_transaction(1, "OFFLINE-OK", 1000.0)  # the eMSP blocks this card
        await cp.meter_values(1, 1400.0, 7000.0)
        await cp.stop_transaction(1, 1800.0)
        await backend.wait_for_async(
            lambda m: m.topic.startswith(f"{ROOT}/sessions/") and m.payload["data"]["status"] == "INVALID",
            within=10.0,
        )
    (record,) = [r for r in ctl.journal.transactions("CP-1") if r.id_tag == "OFFLINE-OK"]
    assert record.ended and record.energy_wh == 800.0  # kept, with its energy
    assert backend.messages("cdrs/") == []  # OCPI: an INVALID session is not billed

"""Issue 3 item 3: unknown chargers wait for approval in the API; approval makes the next boot Accepted."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

from controller.app import SiteController
from controller.core.config import validate
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.siteconfig import SiteSpec, render
from tests.api import api_client


async def test_unknown_charger_waits_is_approved_and_its_evses_are_adopted(
    site_spec: SiteSpec, start_controller: object
) -> None:
    ctl: SiteController = await start_controller(site_spec)  # type: ignore[operator]
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
    api = api_client(ctl)
    async with api, ChargePointSimulator201("NEWBIE", url, connectors=2, serial="SN-42") as cp:
        assert await cp.boot() == "Pending"
        (waiting,) = (await api.get("/api/v1/chargers/pending")).json()
        assert waiting["id"] == "NEWBIE" and waiting["waiting_for_approval"]
        assert waiting["boot"] == {
            "vendor": "siteedge-hil",
            "model": "SimCharger",
            "serial": "SN-42",
            "firmware": "1.0.0",
            "ocpp_version": "2.0.1",
        }
        assert (await api.post("/api/v1/chargers/NOBODY/approve")).status_code == 404
        assert (await api.post("/api/v1/chargers/NEWBIE/approve")).status_code == 200
        assert (await api.get("/api/v1/chargers/pending")).json() == []
        assert await cp.boot() == "Accepted"
        await cp.status(2, "Occupied")
        # Not configured, so its EVSEs are adopted as {id}-{n} when they first report.
        assert ctl.site.evses["NEWBIE-2"].status.value == "CHARGING"
        registry = {c["id"]: c for c in (await api.get("/api/v1/chargers/registry")).json()}
        assert registry["NEWBIE"]["registration"] == "approved" and registry["CP-1"]["configured"]
    stored = json.loads((Path(site_spec.data_dir) / "registry.json").read_text())
    assert any(d.get("_key") == "NEWBIE" for d in stored["chargers"].values())


async def test_approval_survives_a_restart_and_reject_refuses_the_next_boot(site_spec: SiteSpec) -> None:
    config = validate(tomllib.loads(render(site_spec)))
    first = SiteController(config)
    await first.start()
    try:
        async with ChargePointSimulator("NEWBIE", f"ws://127.0.0.1:{first.ocpp_port}/ocpp") as cp:
            assert await cp.boot() == "Pending"
        assert first.registry.approve("NEWBIE")
    finally:
        await first.stop()
    again = SiteController(config)
    await again.start()
    try:
        url = f"ws://127.0.0.1:{again.ocpp_port}/ocpp"
        async with ChargePointSimulator("NEWBIE", url) as cp:
            assert await cp.boot() == "Accepted"
            await cp.status(1, "Available")
            assert again.site.evses["NEWBIE-1"].status.value == "AVAILABLE"
            async with api_client(again) as api:
                assert (await api.post("/api/v1/chargers/NEWBIE/reject")).status_code == 200
                assert (await api.post("/api/v1/chargers/CP-1/reject")).status_code == 404
            assert await cp.boot() == "Rejected"
    finally:
        await again.stop()


async def test_rejected_policy_still_lists_the_charger_as_waiting(site_spec: SiteSpec) -> None:
    text = render(site_spec).replace("[ocpp]\n", '[ocpp]\nunknown_chargers = "rejected"\n')
    ctl = SiteController(validate(tomllib.loads(text)))
    await ctl.start()
    try:
        async with ChargePointSimulator("NEWBIE", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp") as cp:
            assert await cp.boot() == "Rejected"
            assert [c["id"] for c in ctl.registry.listing() if c["waiting_for_approval"]] == ["NEWBIE"]
            ctl.registry.approve("NEWBIE")
            assert await cp.boot() == "Accepted"
        await asyncio.sleep(0)
    finally:
        await ctl.stop()

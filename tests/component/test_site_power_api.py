"""GET /api/v1/site/power and /api/v1/modbus/models against a real controller and a simulated grid meter."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimMeter, SiteSpec
from tests.api import api_client


async def test_dashboard_gets_the_grid_power_history_and_the_site_limit(
    site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Any], meter_sim: MeterSimulator
) -> None:
    grid = SimMeter("grid", meter_sim.port, "grid")
    spec = dataclasses.replace(site_spec, meters=[grid], max_power_kw=63.0)
    await meter_sim.set_values({"power": 42_000.0}, strict=False)
    ctl = await start_controller(spec)
    async with api_client(ctl, "viewer") as http:
        for _ in range(100):
            body = (await http.get("/api/v1/site/power")).json()
            if body["points"]:
                break
            await asyncio.sleep(0.1)
        assert body["limit_kw"] == 63.0 and body["source"] == "grid"
        assert body["points"][-1]["kw"] == 42.0
        assert body["points"][-1]["t"].endswith("Z")
        health = (await http.get("/api/v1/health")).json()
        assert health["power"]["kw"] == 42.0

        bad = await http.get("/api/v1/site/power?minutes=0")
        assert bad.status_code == 422
        too_long = await http.get("/api/v1/site/power?minutes=61")
        assert too_long.status_code == 422

        models = (await http.get("/api/v1/modbus/models")).json()["models"]
        sdm = next(m for m in models if m["name"] == "eastron_sdm630")
        assert sdm == {
            "name": "eastron_sdm630",
            "vendor": "Eastron",
            "model": "SDM630 Modbus v2",
            "kind": "meter",
        }
        assert any(m["kind"] == "charger" for m in models)

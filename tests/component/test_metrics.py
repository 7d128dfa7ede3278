"""GET /metrics: the site in Prometheus text format, from a running controller."""

from __future__ import annotations

import asyncio
from typing import Any

from hil.sim.chargepoint import ChargePointSimulator
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimMeter, SiteSpec
from tests.api import api_client


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def test_metrics_show_uplink_chargers_evses_meters_and_modbus_counters(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    async with MeterSimulator("eastron_sdm630", values={"power": 4200.0}) as meter:
        site_spec.meters.append(SimMeter("grid", meter.port, "grid"))
        ctl = await start_controller(site_spec)
        async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
            await cp.boot()
            await cp.status(1, "Charging")
            async with api_client(ctl) as http:
                for _ in range(200):
                    resp = await http.get("/metrics")
                    got = samples(resp.text)
                    if got.get('siteedge_meter_ok{meter="grid",role="grid"}') == 1.0:
                        break
                    await asyncio.sleep(0.05)
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert got["siteedge_uplink_connected"] == 1.0
    assert got["siteedge_outbox_near_limit"] == 0.0 and got["siteedge_telemetry_dropped_total"] == 0.0
    assert got['siteedge_charger_connected{charger="CP-1"}'] == 1.0
    assert got['siteedge_evse_status{charger="CP-1",evse_uid="CP-1-1",status="CHARGING"}'] == 1.0
    assert got['siteedge_evse_status{charger="CP-1",evse_uid="CP-1-1",status="AVAILABLE"}'] == 0.0
    assert got['siteedge_meter_value{meter="grid",quantity="power"}'] == 4200.0
    assert got['siteedge_modbus_polls_total{meter="grid"}'] >= 1
    assert "# TYPE siteedge_modbus_timeouts_total counter" in resp.text

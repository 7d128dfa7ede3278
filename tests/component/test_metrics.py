"""GET /metrics: the site in Prometheus text format, from a running controller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from controller.app import SiteController
from hil.sim.chargepoint import BaseChargePointSimulator, ChargePointSimulator
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


@asynccontextmanager
async def charging_site(
    site_spec: SiteSpec, start_controller: Any
) -> AsyncIterator[tuple[SiteController, BaseChargePointSimulator, MeterSimulator]]:
    """A controller with a 4.2 kW grid meter and CP-1 (1.6, two EVSEs) booted, EVSE 1 charging."""
    async with MeterSimulator("eastron_sdm630", values={"power": 4200.0}) as meter:
        site_spec.meters.append(SimMeter("grid", meter.port, "grid"))
        ctl = await start_controller(site_spec)
        async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
            await cp.boot()
            await cp.status(1, "Charging")
            yield ctl, cp, meter


async def scrape_until(ctl: SiteController, ready: Callable[[str], bool]) -> httpx.Response:
    """GET /metrics until `ready(text)` holds (or 10 s passed); the last answer."""
    async with api_client(ctl) as http:
        for _ in range(200):
            resp = await http.get("/metrics")
            if ready(resp.text):
                break
            await asyncio.sleep(0.05)
    return resp


async def test_metrics_show_uplink_chargers_evses_meters_and_modbus_counters(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    async with charging_site(site_spec, start_controller) as (ctl, _cp, _meter):
        resp = await scrape_until(
            ctl, lambda text: samples(text).get('siteedge_meter_ok{meter="grid",role="grid"}') == 1.0
        )
    got = samples(resp.text)
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert got["siteedge_uplink_connected"] == 1.0
    assert got["siteedge_outbox_near_limit"] == 0.0 and got["siteedge_telemetry_dropped_total"] == 0.0
    assert got['siteedge_charger_connected{charger="CP-1"}'] == 1.0
    assert got['siteedge_evse_status{charger="CP-1",evse_uid="CP-1-1",status="CHARGING"}'] == 1.0
    assert got['siteedge_evse_status{charger="CP-1",evse_uid="CP-1-1",status="AVAILABLE"}'] == 0.0
    assert got['siteedge_meter_value{meter="grid",quantity="power"}'] == 4200.0
    assert got['siteedge_modbus_polls_total{meter="grid"}'] >= 1
    assert "# TYPE siteedge_modbus_timeouts_total counter" in resp.text


async def raw_exchange(url: str, frames: list[str]) -> list[Any]:
    """A second charger (CP-RAW, never booted) sends frames and reads one answer to each."""
    async with connect(url, subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        answers = []
        for frame in frames:
            await ws.send(frame)
            async with asyncio.timeout(5):
                answers.append(json.loads(await ws.recv()))
        return answers


async def test_metrics_count_ocpp_calls_both_ways_with_latency_histograms_in_valid_exposition_format(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    async with charging_site(site_spec, start_controller) as (ctl, cp, meter):
        await cp.heartbeat()
        got = await ctl.commands.call("CP-1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
        assert got.status.value == "accepted"
        offline = await ctl.commands.call("CP-9", "ClearCache", {})
        assert offline.status.value == "offline"  # never sent: not counted as a call
        answers = await raw_exchange(
            f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp/CP-RAW",
            ["not json", '[2,"u1","Heartbeat",{}]', '[2,"u2","FlyToTheMoon",{}]'],
        )
        assert [a[2] for a in answers] == ["FormationViolation", "SecurityError", "NotImplemented"]
        text = (
            await scrape_until(
                ctl, lambda text: 'siteedge_modbus_request_seconds_count{transport="tcp://' in text
            )
        ).text

    # prometheus_client's own parser: the text must be valid exposition format, histograms included.
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(family: str, sample: str, **labels: str) -> float:
        found = [s.value for s in families[family].samples if s.name == sample and s.labels == labels]
        assert len(found) == 1, (sample, labels, families[family].samples)
        return float(found[0])

    received = "siteedge_ocpp_calls_received"
    assert families[received].type == "counter"
    assert value(received, received + "_total", action="BootNotification", outcome="result") == 1
    assert value(received, received + "_total", action="StatusNotification", outcome="result") >= 1
    assert value(received, received + "_total", action="Heartbeat", outcome="result") == 1
    # The unbooted charger's Heartbeat was refused; an unknown action is counted under "unknown".
    assert value(received, received + "_total", action="Heartbeat", outcome="error") == 1
    assert value(received, received + "_total", action="unknown", outcome="error") == 1
    sent = "siteedge_ocpp_calls_sent"
    assert value(sent, sent + "_total", action="GetConfiguration", outcome="result") == 1
    assert not [s for s in families[sent].samples if s.labels.get("action") == "ClearCache"]
    assert value("siteedge_ocpp_malformed_frames", "siteedge_ocpp_malformed_frames_total") == 1
    assert value("siteedge_ocpp_connections", "siteedge_ocpp_connections_total") == 2

    handling = "siteedge_ocpp_call_handling_seconds"
    assert families[handling].type == "histogram"
    calls_in = sum(s.value for s in families[received].samples)
    assert value(handling, handling + "_count") == calls_in
    assert value(handling, handling + "_bucket", le="+Inf") == calls_in
    assert 0 < value(handling, handling + "_sum") < calls_in * 5.0
    roundtrip = "siteedge_ocpp_call_roundtrip_seconds"
    assert value(roundtrip, roundtrip + "_count") >= 1  # GetConfiguration, plus any status trigger
    modbus = "siteedge_modbus_request_seconds"
    transport = f"tcp://127.0.0.1:{meter.port}"
    assert value(modbus, modbus + "_count", transport=transport) >= 1
    assert families["siteedge_uplink_ack_seconds"].type == "histogram"

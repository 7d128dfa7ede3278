"""The walking skeleton end to end: charger and meter in, a real broker and the web API out."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft7Validator

from controller.app import SiteController
from controller.core.config import validate
from hil.broker import Broker
from hil.sim.backend import BackendSimulator
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimMeter, SiteSpec, render
from tests.api import api_client

SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"
ROOT = "siteedge/v1/NL/SED/DEMO01"


def check(schema: str, instance: Any) -> None:
    """Validate against a docs/schemas file, date-time formats included."""
    validator = Draft7Validator(
        json.loads((SCHEMAS / schema).read_text()), format_checker=Draft7Validator.FORMAT_CHECKER
    )
    validator.validate(instance)


def is_status(uid: str, status: str) -> Any:
    return lambda m: m.topic == f"{ROOT}/evses/{uid}/status" and m.payload["data"]["status"] == status


@pytest.fixture
def backend(broker: Broker) -> Any:
    with BackendSimulator(broker.url, ROOT) as b:
        yield b
    # Every message any test here made siteedge publish must honour the contract.
    assert b.contract.violations == []
    assert dict(b.contract.gaps) == {}, b.contract.gap_evidence


async def test_status_telemetry_online_and_health(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator
) -> None:
    async with MeterSimulator("eastron_sdm630", values={"power": 7400.0, "energy_import": 12345.5}) as meter:
        site_spec.meters.append(SimMeter("grid", meter.port, "grid"))
        ctl: SiteController = await start_controller(site_spec)
        online = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/online" and m.payload["online"])
        check("online.json", online.payload)
        assert online.retain is False or online.retain is True  # live or retained, both carry the flag

        async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
            assert await cp.boot() == "Accepted"
            await cp.status(1, "Available")
            await cp.status(2, "Charging")
            avail = await backend.wait_for_async(is_status("CP-1-1", "AVAILABLE"))
            charging = await backend.wait_for_async(is_status("CP-1-2", "CHARGING"))
            for msg in (avail, charging):
                check("envelope.json", msg.payload)
                check("evse_status.json", msg.payload["data"])
            assert charging.payload["data"]["ocpp"]["status"] == "Charging"
            history = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/events/status")
            check("envelope.json", history.payload)

            tele = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/telemetry/meters/grid")
            check("envelope.json", tele.payload)
            check("meter_reading.json", tele.payload["data"])
            values = tele.payload["data"]["values"]
            assert values["power"] == pytest.approx(7400.0)
            assert values["energy_import"] == pytest.approx(12345.5, abs=1.0)  # float32 kWh register

            async with api_client(ctl) as http:
                health = (await http.get("/api/v1/health")).json()
        assert health["uplink"]["connected"] is True
        (charger,) = [c for c in health["chargers"] if c["id"] == "CP-1"]
        assert charger["connected"] is True and charger["ocpp_version"] == "1.6"
        assert {e["evse_uid"]: e["status"] for e in charger["evses"]} == {
            "CP-1-1": "AVAILABLE",
            "CP-1-2": "CHARGING",
        }
        (grid,) = health["meters"]
        assert grid["ok"] is True and grid["last_reading_age_s"] is not None
        assert grid["values"]["power"] == pytest.approx(7400.0)
        # At-least-once, but no gratuitous duplicates on a healthy link.
        assert backend.summary()["duplicate_ids"] == 0


async def test_disconnect_publishes_unknown_and_a_late_subscriber_sees_retained_status(
    site_spec: SiteSpec, start_controller: Any, broker: Broker, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp = ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2)
    await cp.connect()
    await cp.boot()
    await cp.status(1, "Faulted", error_code="GroundFailure")
    await backend.wait_for_async(is_status("CP-1-1", "OUTOFORDER"))
    await cp.close()
    await backend.wait_for_async(is_status("CP-1-1", "UNKNOWN"))
    # A subscriber that arrives later (a restarted backend) still learns every EVSE's state.
    with BackendSimulator(broker.url, ROOT) as late:
        got = await late.wait_for_async(lambda m: m.retain and m.topic == f"{ROOT}/evses/CP-1-1/status")
    assert got.payload["data"]["status"] == "UNKNOWN"


async def test_ocpp201_station_status_reaches_the_backend(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with ChargePointSimulator201("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        assert await cp.boot() == "Accepted"
        await cp.status(2, "Occupied")
        msg = await backend.wait_for_async(is_status("CP-1-2", "CHARGING"))
    assert msg.payload["data"]["ocpp"]["connectorStatus"] == "Occupied"


async def test_unknown_charger_is_pending_and_publishes_nothing(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with ChargePointSimulator("STRANGER", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp") as cp:
        assert await cp.boot() == "Pending"
    health = ctl.site.health()
    assert any(c["id"] == "STRANGER" and not c["configured"] for c in health["chargers"])
    assert not backend.messages(f"{ROOT}/evses/STRANGER")


async def test_broker_outage_reconnects_and_delivers_what_happened_meanwhile(
    site_spec: SiteSpec, start_controller: Any, broker: Broker, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        await cp.boot()
        await cp.status(1, "Available")
        await backend.wait_for_async(is_status("CP-1-1", "AVAILABLE"))

        broker.kill()
        await _until(lambda: not ctl.uplink.connected)
        await cp.status(1, "Preparing")  # happens while the uplink is down
        await cp.status(2, "Faulted")
        # Two retained statuses and two history entries wait on disk.
        await _until(lambda: ctl.outbox.stats().pending == 4)

        broker.start()  # same port; no persistence: only the outbox can bring these back
        await _until(lambda: ctl.uplink.connected, within=15.0)
        await backend.wait_for_async(is_status("CP-1-1", "CHARGING"), within=15.0)
        await backend.wait_for_async(is_status("CP-1-2", "OUTOFORDER"), within=15.0)
    await _until(lambda: ctl.outbox.stats().pending == 0)
    history = [m.payload for m in backend.messages(f"{ROOT}/events/status")]
    seqs = [h["seq"] for h in history]
    assert seqs == sorted(seqs)


async def _until(cond: Any, within: float = 10.0) -> None:
    """Poll a condition on the loop; fail the test with a clear message if it never holds."""
    import asyncio

    for _ in range(int(within / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition did not hold within {within} s")


def test_schemas_are_valid_draft7() -> None:
    for path in SCHEMAS.glob("*.json"):
        Draft7Validator.check_schema(json.loads(path.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        check(
            "evse_status.json",
            {"evse_uid": "X", "status": "OCCUPIED", "last_updated": "x", "charger_id": "C", "ocpp": {}},
        )


async def test_mqtt_311_fallback_and_meter_fixture(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator, charge_point: Any, meter_sim: Any
) -> None:
    """A broker that only speaks MQTT 3.1.1 still gets status and telemetry."""
    site_spec.meters.append(SimMeter("grid", meter_sim.port, "grid"))
    await meter_sim.set_values({"power": 1500.0})
    text = render(site_spec).replace("[mqtt]\n", '[mqtt]\nprotocol = "3.1.1"\n')
    config = validate(tomllib.loads(text))
    assert config.mqtt.protocol == "3.1.1"
    ctl = SiteController(config)
    await ctl.start()
    try:
        cp = await charge_point(ctl, connectors=2)
        await cp.boot()
        await cp.status(2, "Reserved")
        await backend.wait_for_async(is_status("CP-1-2", "RESERVED"))
        tele = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/telemetry/meters/grid")
        assert tele.payload["data"]["values"]["power"] == pytest.approx(1500.0)
    finally:
        await ctl.stop()

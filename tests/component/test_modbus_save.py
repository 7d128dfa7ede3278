"""Saving a commissioned Modbus meter (POST /api/v1/modbus/devices) into the config file, as a technician."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import SiteController, load_config
from controller.core.sessions import session_id_of
from hil.broker import Broker
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SiteSpec, render
from tests.api import api_client
from tests.component.test_system_api import (
    CP_SECRET,
    MQTT_SECRET,
    MQTT_USER,
    backups_of,
    text,
    until,
    write_site,
)

COMMENT = "# site config kept by hand\n"


@pytest.fixture
def broker_with_password() -> Iterator[Broker]:
    """A broker that only lets the site in with its MQTT password (a secret the file must keep)."""
    with Broker(users={MQTT_USER: MQTT_SECRET}) as b:
        yield b


@pytest.fixture
def site_path(tmp_path: Path, broker_with_password: Broker) -> Path:
    """site.toml with two secrets and a comment of the operator's."""
    path = write_site(tmp_path, broker_with_password)
    path.write_text(COMMENT + path.read_text())
    return path


@pytest.fixture
async def controllers() -> AsyncIterator[list[SiteController]]:
    """Controllers started by a test from a config file; stopped at teardown."""
    started: list[SiteController] = []
    yield started
    for ctl in reversed(started):
        await ctl.stop()


async def start(path: Path, started: list[SiteController]) -> SiteController:
    ctl = SiteController(load_config(path), config_path=path)
    await ctl.start()
    started.append(ctl)
    return ctl


def meter(port: int, **over: Any) -> dict[str, Any]:
    return {
        "id": "grid-1",
        "model": "eastron_sdm630",
        "transport": f"tcp://127.0.0.1:{port}",
        "unit": 1,
        "role": "grid",
        "poll_interval": 0.5,
        **over,
    }


async def test_a_technician_saves_a_meter_which_is_polled_at_once_and_after_a_restart(
    site_path: Path, controllers: list[SiteController], meter_sim: MeterSimulator
) -> None:
    original = text(site_path)
    await meter_sim.set_values({"power": 7_000.0}, strict=False)
    ctl = await start(site_path, controllers)
    async with api_client(ctl, "technician") as http:

        async def grid_power(http: Any, watts: float) -> bool:
            health = (await http.get("/api/v1/health")).json()
            read = any(m["id"] == "grid-1" and m["values"].get("power") == watts for m in health["meters"])
            # A grid meter is the site's power from now on, not the sum over the EVSEs.
            power = health["power"]
            return read and power["source"] == "grid" and power["kw"] == watts / 1000

        r = await http.post("/api/v1/modbus/devices", json=meter(meter_sim.port))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["saved"] is True and body["id"] == "grid-1"
        assert body["active"] is True and body["restart_required"] is False
        [backup] = backups_of(site_path)
        assert body["backup"] == backup.name and text(backup) == original
        # The operator's file is kept as written (comment, both secrets), the meter appended.
        written = text(site_path)
        assert written.startswith(original) and COMMENT in written
        assert CP_SECRET in written and MQTT_SECRET in written
        assert 'id = "grid-1"' in written[len(original) :]
        # What runs is what the file says: no restart is waiting.
        assert (await http.get("/api/v1/system")).json()["restart_required"] is False
        await until(lambda: grid_power(http, 7_000.0), "the saved meter's power, without a restart")
        devices = (await http.get("/api/v1/modbus/devices")).json()["devices"]
        assert [d["id"] for d in devices if d["id"] == "grid-1"] == ["grid-1"]
    async with api_client(ctl, "admin") as http:
        audit = (await http.get("/api/v1/audit")).json()["items"]
    [entry] = [a for a in audit if a["path"] == "/api/v1/modbus/devices"]
    assert entry["method"] == "POST" and entry["status"] == 201 and entry["role"] == "technician"
    assert entry["summary"].startswith("meter grid-1 (eastron_sdm630, tcp://127.0.0.1:")
    assert "added to the config and polled" in entry["summary"]
    assert MQTT_SECRET not in str(audit) and CP_SECRET not in str(audit)
    await ctl.stop()

    await meter_sim.set_values({"power": 12_500.0}, strict=False)
    again = await start(site_path, controllers)
    async with api_client(again, "viewer") as http:
        await until(lambda: grid_power(http, 12_500.0), "the saved meter's power reading after the restart")


async def test_a_meter_saved_while_an_edit_waits_is_polled_and_the_restart_still_waits(
    site_path: Path, controllers: list[SiteController], meter_sim: MeterSimulator
) -> None:
    ctl = await start(site_path, controllers)
    async with api_client(ctl, "admin") as http:
        edited = text(site_path).replace("heartbeat_interval = 60", "heartbeat_interval = 120")
        assert edited != text(site_path)
        # ... and a meter added by hand in the same edit: it waits for the restart as well.
        edited += (
            '\n[[meters]]\nid = "pending-m"\nmodel = "eastron_sdm630"\n'
            f'transport = "tcp://127.0.0.1:{meter_sim.port}"\nunit = 1\nrole = "pv"\n'
        )
        r = await http.put("/api/v1/system/config", json={"toml": edited})
        assert r.status_code == 200 and r.json()["restart_required"] is True
        r = await http.post("/api/v1/modbus/devices", json=meter(meter_sim.port))
        assert r.status_code == 201 and r.json()["active"] is True
        # The heartbeat edit still needs a restart, whatever the meter did.
        assert r.json()["restart_required"] is True
        assert (await http.get("/api/v1/system")).json()["restart_required"] is True
        assert ctl.config.ocpp.heartbeat_interval != 120
        # Only the saved meter went live, not the one the pending edit added.
        assert {"grid-1"} <= {m.id for m in ctl.config.meters} and "pending-m" not in {
            m.id for m in ctl.config.meters
        }
        polled = {d["id"] for d in (await http.get("/api/v1/modbus/devices")).json()["devices"]}
        assert "grid-1" in polled and "pending-m" not in polled


async def test_a_duplicate_or_invalid_device_is_refused_with_key_and_reason_and_nothing_written(
    site_path: Path, controllers: list[SiteController]
) -> None:
    ctl = await start(site_path, controllers)
    async with api_client(ctl, "technician") as http:
        assert (await http.post("/api/v1/modbus/devices", json=meter(1502))).status_code == 201
        saved = text(site_path)
        backups = backups_of(site_path)

        r = await http.post("/api/v1/modbus/devices", json=meter(1503, unit=2))
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert r.json()["errors"] == [{"key": "id", "reason": "duplicate meter id 'grid-1'"}]

        bad = meter(1502, id="pv 1", unit=300, role="garage", model="no_such_meter", transport="ftp://x")
        r = await http.post("/api/v1/modbus/devices", json=bad)
        assert r.status_code == 422 and r.json()["code"] == "invalid"
        keys = {e["key"] for e in r.json()["errors"]}
        assert {"id", "unit", "role", "model"} <= keys
        assert all(e["reason"] for e in r.json()["errors"])

        odd = {**meter(1502, id="m2"), "colour": "red", "unit": None}
        r = await http.post("/api/v1/modbus/devices", json=odd)
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"key": "colour", "reason": "unknown key"},
            {"key": "unit", "reason": "must be a string or a number"},
        ]
        r = await http.post("/api/v1/modbus/devices", json={"id": "m3"})
        assert r.status_code == 422
        assert {"model", "transport", "role"} <= {e["key"] for e in r.json()["errors"]}
        for junk in (b"[1, 2]", b"not json", b'"x"'):
            r = await http.post(
                "/api/v1/modbus/devices", content=junk, headers={"content-type": "application/json"}
            )
            assert r.status_code in (400, 422), (junk, r.text)
        assert text(site_path) == saved and backups_of(site_path) == backups
    async with api_client(ctl, "viewer") as http:
        r = await http.post("/api/v1/modbus/devices", json=meter(1502, id="m9"))
        assert r.status_code == 403 and text(site_path) == saved


async def test_without_a_config_file_saving_answers_409(
    site_path: Path, controllers: list[SiteController]
) -> None:
    ctl = SiteController(load_config(site_path))
    await ctl.start()
    controllers.append(ctl)
    async with api_client(ctl, "technician") as http:
        r = await http.post("/api/v1/modbus/devices", json=meter(1502))
    assert r.status_code == 409 and r.json()["code"] == "conflict"


async def test_a_meter_bound_to_an_evse_live_bills_that_evses_next_session_not_the_running_one(
    tmp_path: Path,
    site_spec: SiteSpec,
    controllers: list[SiteController],
    meter_sim: MeterSimulator,
    charge_point: Any,
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(render(site_spec))
    await meter_sim.set_values({"energy_import": 1_000_000.0}, strict=False)
    ctl = await start(path, controllers)
    cp = await charge_point(ctl)
    await cp.boot()
    running = await cp.start_transaction(1, "TAG-A", 0.0)
    async with api_client(ctl, "technician") as http:
        bound = meter(meter_sim.port, id="evse-meter-1", role="evse:CP-1-1", poll_interval=1.0)
        r = await http.post("/api/v1/modbus/devices", json=bound)
        assert r.status_code == 201 and r.json()["active"] is True, r.text
        await until(lambda: _meter_reads(http, "evse-meter-1", 1_000_000.0), "the bound meter's register")
        # The session already running has no start reading from the new meter: the charger bills it.
        # (Steps of at most 300 Wh a second on values a float32 register holds exactly:
        # the driver refuses faster jumps as implausible.)
        await meter_sim.set_values({"energy_import": 1_000_250.0}, strict=False)
        await cp.stop_transaction(1, 1_500.0)
        first = await _ended_settlement(ctl, http, f"CP-1/{running}")
        assert first["energy_source"] == "charger" and first["charger_kwh"] == 1.5

        # The next session at that EVSE bills the meter's delta.
        await until(lambda: _meter_reads(http, "evse-meter-1", 1_000_250.0), "the meter at 1000.25 kWh")
        second_tx = await cp.start_transaction(1, "TAG-B", 1_500.0)
        await asyncio.sleep(1.0)  # a poll inside the session
        await meter_sim.set_values({"energy_import": 1_000_500.0}, strict=False)
        await until(lambda: _meter_reads(http, "evse-meter-1", 1_000_500.0), "the meter at 1000.5 kWh")
        await cp.stop_transaction(1, 1_752.0)
        second = await _ended_settlement(ctl, http, f"CP-1/{second_tx}")
        assert second["energy_source"] == "meter" and second["meter_id"] == "evse-meter-1"
        assert (second["meter_kwh"], second["charger_kwh"]) == (0.25, 0.252)
        # Within tolerance, with a start reading: no mismatch, no fallback (this VM's clock may be
        # unsynchronized, which is flagged too and is not the point here).
        kinds = {f["kind"] for f in second["flags"]}
        assert not kinds & {"energy_mismatch", "energy_source_fallback", "meter_gap"}, second["flags"]


async def _meter_reads(http: Any, meter_id: str, wh: float) -> bool:
    meters = (await http.get("/api/v1/health")).json()["meters"]
    return any(m["id"] == meter_id and m["values"].get("energy_import") == wh for m in meters)


async def _ended_settlement(ctl: SiteController, http: Any, key: str) -> dict[str, Any]:
    """The settlement view of the session of a transaction key, once its CDR exists."""
    sid = session_id_of(key)

    async def ended() -> bool:
        r = await http.get(f"/api/v1/sessions/{sid}/settlement")
        return r.status_code == 200 and bool(r.json()["cdrs"])

    await until(ended, f"the CDR of {key}")
    found: dict[str, Any] = (await http.get(f"/api/v1/sessions/{sid}/settlement")).json()
    return found

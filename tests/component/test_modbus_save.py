"""Saving a commissioned Modbus meter (POST /api/v1/modbus/devices) into the config file, as a technician."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import SiteController, load_config
from hil.broker import Broker
from hil.sim.meter import MeterSimulator
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


async def test_a_technician_saves_a_meter_which_is_polled_after_a_restart(
    site_path: Path, controllers: list[SiteController], meter_sim: MeterSimulator
) -> None:
    original = text(site_path)
    ctl = await start(site_path, controllers)
    async with api_client(ctl, "technician") as http:
        r = await http.post("/api/v1/modbus/devices", json=meter(meter_sim.port))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["saved"] is True and body["restart_required"] is True and body["id"] == "grid-1"
        [backup] = backups_of(site_path)
        assert body["backup"] == backup.name and text(backup) == original
        # The operator's file is kept as written (comment, both secrets), the meter appended.
        written = text(site_path)
        assert written.startswith(original) and COMMENT in written
        assert CP_SECRET in written and MQTT_SECRET in written
        assert 'id = "grid-1"' in written[len(original) :]
        assert (await http.get("/api/v1/system")).json()["restart_required"] is True
        # Not polled yet: the running site's meters are fixed at start.
        devices = (await http.get("/api/v1/modbus/devices")).json()["devices"]
        assert [d for d in devices if d["id"] == "grid-1"] == []
    async with api_client(ctl, "admin") as http:
        audit = (await http.get("/api/v1/audit")).json()["items"]
    [entry] = [a for a in audit if a["path"] == "/api/v1/modbus/devices"]
    assert entry["method"] == "POST" and entry["status"] == 201 and entry["role"] == "technician"
    assert entry["summary"].startswith("meter grid-1 (eastron_sdm630, tcp://127.0.0.1:")
    assert MQTT_SECRET not in str(audit) and CP_SECRET not in str(audit)
    await ctl.stop()

    await meter_sim.set_values({"power": 12_500.0}, strict=False)
    again = await start(site_path, controllers)
    async with api_client(again, "viewer") as http:

        async def grid_power_read() -> bool:
            meters = (await http.get("/api/v1/health")).json()["meters"]
            return any(m["id"] == "grid-1" and m["values"].get("power") == 12_500.0 for m in meters)

        await until(grid_power_read, "the saved meter's power reading after the restart")


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

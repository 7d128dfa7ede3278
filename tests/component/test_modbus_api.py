"""Commissioning over the web API: scan a pty RTU bus, test-read with plausibility hints, device health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.core.clock import SystemClock
from controller.core.config import MeterSettings, parse_transport
from drivers.library import load_device
from drivers.service import ModbusService
from local_api import LiveHub, create_app
from tests.api import bearer, make_security
from tests.component.rtu_pty import RtuPtyBus, Unit

SDM = load_device("eastron_sdm630")
GOOD = {"voltage_l1": 231.0, "voltage_l2": 229.5, "voltage_l3": 230.2, "frequency": 50.0, "power": 7400.0}


class NoSite:
    def health(self) -> dict[str, Any]:
        return {}


def sdm(word_order: str | None = None) -> Unit:
    u = Unit()
    u.load(SDM, GOOD, word_order)
    return u


@pytest.fixture
async def line() -> AsyncIterator[RtuPtyBus]:
    units = {1: sdm(), 2: sdm("CDAB"), 5: sdm(), 9: Unit(exception=2)}
    async with RtuPtyBus(units) as bus:
        yield bus


@pytest.fixture
async def api(line: RtuPtyBus, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = line.url()
    polled = MeterSettings("grid", "eastron_sdm630", parse_transport(url), url, 1, "grid", 0.05, 0.1, 0.05)
    service = ModbusService([polled], SystemClock(), lambda _e: None)
    task = asyncio.create_task(service.run())
    security = make_security(tmp_path)
    app = create_app(NoSite(), LiveHub(), "test", modbus=service, security=security)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://box", headers=bearer(security, "technician")
    )
    try:
        yield client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def test_scan_finds_responding_units_while_the_bus_keeps_polling(
    api: httpx.AsyncClient, line: RtuPtyBus
) -> None:
    started = await api.post(
        "/api/v1/modbus/scan", json={"transport": line.url(), "first": 1, "last": 12, "timeout": 0.05}
    )
    assert started.status_code == 202
    job = started.json()
    assert job["state"] == "running" and job["total"] == 12
    # A second scan of the same line is refused: one master, one scan.
    again = await api.post("/api/v1/modbus/scan", json={"transport": line.url(), "first": 1, "last": 2})
    assert again.status_code == 409
    for _ in range(500):
        status = (await api.get(f"/api/v1/modbus/scan/{job['id']}")).json()
        if status["state"] != "running":
            break
        await asyncio.sleep(0.02)
    assert status["state"] == "done" and status["done"] == 12
    assert {f["unit"]: f["reply"] for f in status["found"]} == {
        1: "registers",
        2: "registers",
        5: "registers",
        9: "exception 2",  # an exception reply still proves a device is there
    }
    devices = (await api.get("/api/v1/modbus/devices")).json()
    (grid,) = devices["devices"]
    assert grid["id"] == "grid" and grid["good_polls"] >= 1 and grid["state"] == "ok"
    assert devices["buses"][0]["line"]["baud"] == 115200


async def test_scan_input_is_validated(api: httpx.AsyncClient, line: RtuPtyBus) -> None:
    bad = await api.post("/api/v1/modbus/scan", json={"transport": line.url(), "first": 9, "last": 3})
    assert bad.status_code == 400
    assert (
        await api.post("/api/v1/modbus/scan", json={"transport": "ftp://x", "wait": True})
    ).status_code == 400
    assert (await api.get("/api/v1/modbus/scan/nope")).status_code == 404


async def test_test_read_decodes_and_passes_plausibility(api: httpx.AsyncClient, line: RtuPtyBus) -> None:
    res = (
        await api.post(
            "/api/v1/modbus/test-read", json={"transport": line.url(), "unit": 5, "model": "eastron_sdm630"}
        )
    ).json()
    assert res["errors"] == []
    assert res["values"]["voltage_l1"]["value"] == pytest.approx(231.0)
    assert res["values"]["frequency"]["problem"] is None
    assert res["hints"] == []


async def test_test_read_points_out_a_wrong_word_order(api: httpx.AsyncClient, line: RtuPtyBus) -> None:
    res = (
        await api.post(
            "/api/v1/modbus/test-read", json={"transport": line.url(), "unit": 2, "model": "eastron_sdm630"}
        )
    ).json()
    assert res["ok"] is False
    v1 = res["values"]["voltage_l1"]
    assert v1["problem"] and "CDAB" in v1["hint"] and "231" in v1["hint"]
    assert res["values"]["frequency"]["hint"].startswith("with word order CDAB")
    assert any("CDAB" in h for h in res["hints"])


async def test_test_read_reports_an_unknown_model_and_a_silent_unit(
    api: httpx.AsyncClient, line: RtuPtyBus
) -> None:
    unknown = await api.post(
        "/api/v1/modbus/test-read", json={"transport": line.url(), "unit": 1, "model": "nope"}
    )
    assert unknown.status_code == 400
    silent = await api.post(
        "/api/v1/modbus/test-read",
        json={"transport": line.url(), "unit": 44, "model": "eastron_sdm630", "timeout": 0.05},
    )
    body = silent.json()
    assert silent.status_code == 200 and body["ok"] is False and "timeout" in body["errors"][0]

"""Modbus chargers through the bus scheduler: verified setpoints, pause, watchdog kept alive, failsafe."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from controller.core.clock import SystemClock
from controller.core.config import (
    ConfigError,
    MeterSettings,
    ModbusChargerSettings,
    parse_transport,
    validate,
)
from controller.core.events import MeterRead, ModbusChargerStatus
from drivers.bus import Bus
from drivers.charger import ChargerDevice, effective_amps
from drivers.library import DeviceModel, load_device, models_of
from drivers.scheduler import BusScheduler
from drivers.service import ModbusService
from hil.sim.meter import DeviceSimulator, MeterSimulator
from hil.sim.rtu import RtuBus
from local_api import LiveHub, create_app
from tests.api import bearer, make_security

TCP_CHARGERS = [m for m in models_of("charger") if "tcp" in load_device(m).transports]
WATCHDOG_S = 2.0  # shortened device timeout: keep-alives at <= 1 s, so a test sees several


def settings(cid: str, model: str, url: str, unit: int, *, failsafe: float = 6.0) -> ModbusChargerSettings:
    return ModbusChargerSettings(cid, model, parse_transport(url), url, unit, None, failsafe, 32.0, 0.2, 0.3)


async def until(cond: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition did not hold in time")


@asynccontextmanager
async def serving(service: ModbusService) -> AsyncIterator[ModbusService]:
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def setpoint_reads(sim: DeviceSimulator) -> int:
    assert sim.model.charger is not None
    reg = sim.model.register(sim.model.charger.setpoint)
    return sum(1 for a in sim.accesses if a.function == 3 and a.address <= reg.address < a.address + a.count)


def test_below_six_amps_pauses_and_the_maximum_caps() -> None:
    assert effective_amps(5.9, 6.0, 16.0) == 0.0
    assert effective_amps(6.0, 6.0, 16.0) == 6.0
    assert effective_amps(40.0, 6.0, 16.0) == 16.0
    with pytest.raises(ValueError):
        effective_amps(-1.0, 6.0, 16.0)


@pytest.mark.parametrize("name", TCP_CHARGERS)
async def test_setpoint_is_written_read_back_and_paused_over_tcp(name: str) -> None:
    model = load_device(name)
    assert model.charger is not None
    spec = model.charger
    async with MeterSimulator(
        name, unit_id=5, values={"watchdog_timeout": 30.0} if "watchdog_timeout" in model.names() else None
    ) as sim:
        await sim.set_state("C")
        url = f"tcp://127.0.0.1:{sim.port}"
        events: list[object] = []
        async with serving(
            ModbusService([], SystemClock(), events.append, [settings("c1", name, url, 5)])
        ) as svc:
            await until(lambda: any(isinstance(e, ModbusChargerStatus) and e.state == "C" for e in events))
            reads_before = setpoint_reads(sim)
            assert await svc.set_current("c1", 13.0)
            assert sim.value(spec.setpoint) == pytest.approx(13.0)
            setpoint = model.register(spec.setpoint)
            if setpoint.readable:  # verified by a read of the register right after the write
                assert setpoint_reads(sim) > reads_before
            if spec.enable.kind == "register" and spec.enable.register:
                assert sim.value(spec.enable.register) == spec.enable.on
            listing = svc.chargers()[0]
            assert listing["state"] == "C" and listing["verified_setpoint_a"] == 13.0

            assert await svc.set_current("c1", 4.0)  # below the IEC 61851 minimum: pause
            if spec.enable.kind == "register" and spec.enable.register:
                assert sim.value(spec.enable.register) == spec.enable.off
            else:
                assert sim.value(spec.setpoint) == 0.0
            assert await svc.set_current("c1", 40.0)  # clamped to max_current
            assert sim.value(spec.setpoint) == pytest.approx(32.0)
    status = [e for e in events if isinstance(e, ModbusChargerStatus)][-1]
    assert status.setpoint == 32.0 and status.health == "ok"


async def test_heidelberg_on_a_shared_rtu_line_with_a_meter() -> None:
    charger = DeviceSimulator("heidelberg_ec", unit_id=3, values={"watchdog_timeout": 10_000.0})
    meter = DeviceSimulator("eastron_sdm630", unit_id=4, values={"power": 1234.0})
    async with RtuBus([charger, meter], baudrate=19200, parity="E") as line:
        await charger.set_state("B")
        url = f"rtu://{line.port}?baud=19200"
        m = MeterSettings("m", "eastron_sdm630", parse_transport(url), url, 4, "grid", 0.2, 0.3, 1.0)
        events: list[object] = []
        svc = ModbusService(
            [m], SystemClock(), events.append, [settings("hd", "heidelberg_ec", url, 3, failsafe=8.0)]
        )
        assert len(svc.buses) == 1
        async with serving(svc):
            await until(lambda: charger.value("safe_current") == 8.0)  # failsafe programmed at first contact
            assert await svc.set_current("hd", 16.0)
            assert charger.value("current_limit") == pytest.approx(16.0)
            await until(lambda: sum(isinstance(e, MeterRead) for e in events) >= 3)
        stats = line.stats
    assert stats.gap_violations == 0  # writes kept the line's t3.5 like reads
    assert [e for e in events if isinstance(e, MeterRead)][-1].values["power"] == pytest.approx(1234.0)
    status = [e for e in events if isinstance(e, ModbusChargerStatus)][-1]
    assert status.state == "B" and status.failsafe_current == 8.0 and status.watchdog_ok


def _short_watchdog(model: DeviceModel) -> tuple[DeviceModel, dict[str, float]]:
    """The model with a 2 s watchdog: in the timeout register where it has one, else in the file's data."""
    assert model.charger is not None
    wd = model.charger.watchdog
    if wd.timeout_register is not None:
        scale = 1000.0 if wd.timeout_unit == "ms" else 1.0
        return model, {wd.timeout_register: WATCHDOG_S * scale}
    short = dataclasses.replace(wd, timeout_s=WATCHDOG_S, keepalive_s=WATCHDOG_S / 2)
    return dataclasses.replace(model, charger=dataclasses.replace(model.charger, watchdog=short)), {}


WATCHDOG_MODELS = [m for m in models_of("charger") if load_device(m).charger.watchdog.kind != "none"]  # type: ignore[union-attr]


@pytest.mark.parametrize("name", WATCHDOG_MODELS)
async def test_watchdog_is_kept_alive_and_the_failsafe_engages_once_siteedge_stops(name: str) -> None:
    model, values = _short_watchdog(load_device(name))
    assert model.charger is not None
    skew = [0.0]  # the simulator's clock: real time, plus a jump after siteedge stopped

    def sim_clock() -> float:
        return time.monotonic() + skew[0]

    init = {**values, **({"safe_current": 6.0} if "safe_current" in model.names() else {})}
    server: MeterSimulator | RtuBus
    sim: DeviceSimulator
    if "tcp" in model.transports:
        sim = server = MeterSimulator(model, unit_id=2, values=init, clock=sim_clock)
        await server.start()
        url = f"tcp://127.0.0.1:{server.port}"
    else:  # Heidelberg: RS-485 only
        sim = DeviceSimulator(model, unit_id=2, values=init, clock=sim_clock)
        server = await RtuBus([sim], baudrate=19200, parity="E").start()
        url = f"rtu://{server.port}?baud=19200"
    try:
        clock = SystemClock()
        events: list[object] = []
        device = ChargerDevice(settings("wd", name, url, 2, failsafe=6.0), clock, events.append, model=model)
        bus = Bus(url, parse_transport(url), 0.3, clock.monotonic)
        sched = BusScheduler(bus, [device], clock.monotonic)
        device.wake = sched.wake
        task = asyncio.create_task(sched.run())
        try:
            kind = device.spec.watchdog.kind
            # The timeout is read at first contact (Alfen's validity time needs a setpoint first).
            await until(lambda: device.keepalive_interval_s() is not None or kind == "rewrite_setpoint")
            assert await device.set_current(13.0)
            interval = device.keepalive_interval_s()
            assert interval is not None and interval <= WATCHDOG_S / 2
            # Three timeouts long the charger must never fall back while siteedge runs.
            for _ in range(int(3 * WATCHDOG_S / 0.02)):
                assert not sim.watchdog_expired(), "the charger's failsafe engaged while siteedge was running"
                assert sim.effective_current() == pytest.approx(13.0)
                await asyncio.sleep(0.02)
            assert device.watchdog_ok() is True
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # siteedge is gone: once the timeout passed, the charger applies its failsafe current.
        skew[0] += WATCHDOG_S + 0.5
        assert sim.watchdog_expired()
        failsafe = model.charger.watchdog.failsafe_register
        assert sim.effective_current() == (6.0 if failsafe else 0.0)
    finally:
        await server.stop()


async def test_api_lists_chargers_and_sets_current(tmp_path: Path) -> None:
    async with MeterSimulator("keba_p30", unit_id=255, values={"watchdog_timeout": 30.0}) as sim:
        await sim.set_state("B")
        url = f"tcp://127.0.0.1:{sim.port}"
        svc = ModbusService([], SystemClock(), lambda _e: None, [settings("keba", "keba_p30", url, 255)])

        class View:
            def health(self) -> dict[str, object]:
                return {}

        security = make_security(tmp_path)
        app = create_app(View(), LiveHub(), "test", modbus=svc, modbus_chargers=svc, security=security)
        transport = httpx.ASGITransport(app=app)
        async with (
            serving(svc),
            httpx.AsyncClient(transport=transport, base_url="http://t", headers=bearer(security)) as http,
        ):
            await until(lambda: svc.chargers()[0]["state"] == "B")
            listing = (await http.get("/api/v1/modbus/chargers")).json()["chargers"]
            assert listing[0]["id"] == "keba" and listing[0]["watchdog"]["kind"] == "write_timeout"
            r = await http.post("/api/v1/modbus/chargers/keba/current", json={"amps": 11})
            assert r.status_code == 200 and r.json()["ok"] and r.json()["charger"]["setpoint_a"] == 11.0
            assert (
                await http.post("/api/v1/modbus/chargers/nope/current", json={"amps": 11})
            ).status_code == 404
            assert (
                await http.post("/api/v1/modbus/chargers/keba/current", json={"amps": -1})
            ).status_code == 422
        assert sim.value("current_limit") == pytest.approx(11.0)


def test_modbus_chargers_config_is_validated() -> None:
    doc = tomllib.loads((Path(__file__).parents[2] / "docs" / "config.example.toml").read_text())
    doc["modbus_chargers"] = [
        {"id": "wb1", "model": "keba_p30", "transport": "tcp://127.0.0.1:1502", "evse_uid": "CP001-1"}
    ]
    cfg = validate(doc)
    (mc,) = cfg.modbus_chargers
    assert (mc.unit, mc.failsafe_current, mc.max_current, mc.evse_uid) == (None, 6.0, 32.0, "CP001-1")
    doc["modbus_chargers"] = [
        {"id": "grid", "model": "keba_p30", "transport": "tcp://127.0.0.1:1502", "evse_uid": "nope"},
        {"id": "wb2", "model": "keba_p30", "transport": "udp://x", "failsafe_current": 3.0},
    ]
    with pytest.raises(ConfigError) as info:
        validate(doc)
    keys = {p.key for p in info.value.problems}
    assert {
        "modbus_chargers[0].evse_uid",
        "modbus_chargers[0].id",
        "modbus_chargers[1].failsafe_current",
    } <= keys

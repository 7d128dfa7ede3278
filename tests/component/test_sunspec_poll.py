"""SunSpec meters in the poller: the model chain is discovered at first contact and after an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from controller.core.clock import SystemClock
from controller.core.config import MeterSettings, parse_transport
from controller.core.events import MeterFailed, MeterRead
from drivers.service import ModbusService
from drivers.sunspec_meter import SunSpecMeter
from hil.sim.meter import MeterSimulator

VALUES = {
    "voltage_l1": 231.0,
    "voltage_l2": 229.0,
    "voltage_l3": 230.0,
    "current_l1": 10.5,
    "power": 7250.0,
    "frequency": 50.0,
    "energy_import": 123_400.0,
}


def meter(url: str, model: str) -> MeterSettings:
    return MeterSettings("ss", model, parse_transport(url), url, 1, "grid", 0.1, 0.3, 0.1)


async def until(cond: Callable[[], bool], within: float = 15.0) -> None:
    for _ in range(int(within / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition did not hold in time")


@pytest.mark.parametrize(
    ("configured", "template", "model_id", "base"),
    [
        ("sunspec", "sunspec_meter_int", 203, 40000),
        ("sunspec", "sunspec_meter_float", 213, 50000),
        ("sunspec_meter_int", "sunspec_meter_int", 203, 0),
    ],
)
async def test_discovers_the_chain_then_polls_with_canonical_names(
    configured: str, template: str, model_id: int, base: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("drivers.device.MIN_PROBE_S", 0.1)  # re-probe quickly once offline
    events: list[object] = []
    sim = MeterSimulator(template, values=VALUES, sunspec_model=model_id, sunspec_base=base)
    await sim.start()
    port = sim.port
    url = f"tcp://127.0.0.1:{port}"
    service = ModbusService([meter(url, configured)], SystemClock(), events.append)
    device = service.devices_by_id["ss"]
    assert isinstance(device, SunSpecMeter)
    task = asyncio.create_task(service.run())

    def reads() -> list[MeterRead]:
        return [e for e in events if isinstance(e, MeterRead)]

    try:
        await until(lambda: any(r.values.get("energy_import") for r in reads()))
        got = [r for r in reads() if r.values.get("energy_import")][-1].values
        for name, want in VALUES.items():
            assert got[name] == pytest.approx(want, rel=1e-3), name
        assert device.chain is not None and device.chain.base == base
        assert device.identity["serial"] == f"SIM{model_id}"
        assert device.discoveries == 1

        # Offline, then back with another layout (a replaced meter): the chain is walked again.
        await sim.stop()
        await until(lambda: device.offline and device.chain is None)
        other = 50000 if base != 50000 else 40000
        sim = MeterSimulator(
            template, port=port, values={**VALUES, "power": 500.0}, sunspec_model=model_id, sunspec_base=other
        )
        await sim.start()
        await until(lambda: bool(reads()) and reads()[-1].values.get("power") == pytest.approx(500.0))
        assert device.discoveries == 2 and device.chain is not None and device.chain.base == other
        assert any(isinstance(e, MeterFailed) for e in events)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()


async def test_a_device_without_sunspec_fails_with_a_reason() -> None:
    events: list[object] = []
    async with MeterSimulator("eastron_sdm630") as sim:
        url = f"tcp://127.0.0.1:{sim.port}"
        service = ModbusService([meter(url, "sunspec")], SystemClock(), events.append)
        task = asyncio.create_task(service.run())
        try:
            await until(lambda: any(isinstance(e, MeterFailed) for e in events))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    failed = next(e for e in events if isinstance(e, MeterFailed))
    assert "no SunSpec marker" in failed.reason

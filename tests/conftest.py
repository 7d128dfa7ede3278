"""Shared fixtures: a private Mosquitto, a controller on free ports, simulated devices."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from controller.app import SiteController
from controller.core.config import Config, validate
from hil.broker import Broker
from hil.sim.chargepoint import BaseChargePointSimulator, ChargePointSimulator, ChargePointSimulator201
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimCharger, SimMeter, SiteSpec, render


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A private mosquitto on a free 127.0.0.1 port (stop/start keep the port)."""
    with Broker() as b:
        yield b


@pytest.fixture
def site_spec(tmp_path: Path, broker: Broker) -> SiteSpec:
    """A small free-vend site: one 1.6J charger with two EVSEs, no meters (tests add them)."""
    return SiteSpec(
        data_dir=str(tmp_path / "data"),
        mqtt_url=broker.url,
        chargers=[SimCharger("CP-1", "1.6", evses=2)],
        reconnect_max=1.0,
        telemetry_interval=0.0,
        poll_interval=0.2,
        free_vend=True,  # roaming authorization has its own tests; the rest must not wait for an eMSP
    )


def config_of(spec: SiteSpec) -> Config:
    """Validate a spec's rendered TOML exactly as `siteedge run` would."""
    return validate(tomllib.loads(render(spec)))


@pytest.fixture
async def start_controller() -> AsyncIterator[Callable[[SiteSpec], object]]:
    """Factory: start a SiteController in this loop from a spec; all are stopped at teardown."""
    started: list[SiteController] = []

    async def start(spec: SiteSpec) -> SiteController:
        ctl = SiteController(config_of(spec))
        await ctl.start()
        started.append(ctl)
        return ctl

    yield start  # type: ignore[misc]
    for ctl in reversed(started):
        await ctl.stop()


@pytest.fixture
async def meter_sim() -> AsyncIterator[MeterSimulator]:
    """An Eastron SDM630 Modbus TCP simulator on a free 127.0.0.1 port."""
    async with MeterSimulator("eastron_sdm630") as meter:
        yield meter


@pytest.fixture
async def charge_point() -> AsyncIterator[Callable[..., BaseChargePointSimulator]]:
    """Factory: a connected 1.6J (or 2.0.1) simulator for a controller; closed at teardown."""
    made: list[BaseChargePointSimulator] = []

    async def connect(ctl: SiteController, cp_id: str = "CP-1", version: str = "1.6", **kw: object) -> object:
        cls = ChargePointSimulator201 if version == "2.0.1" else ChargePointSimulator
        cp = cls(cp_id, f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", **kw)  # type: ignore[arg-type]
        await cp.connect()
        made.append(cp)
        return cp

    yield connect  # type: ignore[misc]
    for cp in made:
        await cp.close()


__all__ = ["SimCharger", "SimMeter", "config_of"]

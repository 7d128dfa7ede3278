"""Shared fixtures: a private Mosquitto, a controller on free ports, simulated devices."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from controller.app import SiteController
from controller.core.config import Config, validate
from hil.broker import Broker
from hil.siteconfig import SimCharger, SimMeter, SiteSpec, render


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A private mosquitto on a free 127.0.0.1 port (stop/start keep the port)."""
    with Broker() as b:
        yield b


@pytest.fixture
def site_spec(tmp_path: Path, broker: Broker) -> SiteSpec:
    """A small simulated site: one 1.6J charger with two EVSEs, no meters (tests add them)."""
    return SiteSpec(
        data_dir=str(tmp_path / "data"),
        mqtt_url=broker.url,
        chargers=[SimCharger("CP-1", "1.6", evses=2)],
        reconnect_max=1.0,
        telemetry_interval=0.0,
        poll_interval=0.2,
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


__all__ = ["SimCharger", "SimMeter", "config_of"]

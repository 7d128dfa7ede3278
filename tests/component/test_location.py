"""The retained OCPI Location: valid OCPI 2.2.1, and last_updated moves only on real change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from hil.broker import Broker
from hil.sim.backend import BackendSimulator
from hil.siteconfig import SiteSpec

OCPI = Path(__file__).parents[2].parent / "shared" / "ocpi-schemas" / "2.2.1"
ROOT = "siteedge/v1/NL/SED/DEMO01"


def ocpi_validator(name: str) -> Draft7Validator:
    path = OCPI / f"ocpi.2_2_1.{name}.json"
    assert path.is_file(), f"OCPI schemas expected beside the project at {OCPI}"
    return Draft7Validator(json.loads(path.read_text()), format_checker=Draft7Validator.FORMAT_CHECKER)


async def _location(broker: Broker, ctl: Any) -> dict[str, Any]:
    """The retained Location once this controller's copy is acknowledged by the broker."""
    for _ in range(500):
        if ctl.uplink.connected and ctl.outbox.stats().pending == 0:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the controller never delivered its Location")
    with BackendSimulator(broker.url, ROOT) as late:
        msg = await late.wait_for_async(lambda m: m.topic == f"{ROOT}/location" and m.retain)
    assert isinstance(msg.payload, dict)
    return msg.payload


async def test_location_is_valid_ocpi_and_stable_across_restarts(
    site_spec: SiteSpec, start_controller: Any, broker: Broker
) -> None:
    ctl = await start_controller(site_spec)
    first = await _location(broker, ctl)
    errors = sorted(ocpi_validator("location").iter_errors(first), key=str)
    assert not errors, [e.message for e in errors]
    assert [e["uid"] for e in first["evses"]] == ["CP-1-1", "CP-1-2"]
    assert first["evses"][0]["evse_id"] == "NL*SED*ECP1*1"
    assert first["coordinates"] == {"latitude": "52.090700", "longitude": "5.121400"}

    await ctl.stop()
    again = await start_controller(site_spec)  # same data_dir, same configuration
    second = await _location(broker, again)
    assert second["last_updated"] == first["last_updated"]

    await again.stop()
    site_spec.name = "renamed depot"
    third = await _location(broker, await start_controller(site_spec))
    assert third["name"] == "renamed depot"
    assert third["last_updated"] > first["last_updated"]

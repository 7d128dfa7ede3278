"""Charger local lists: the tokens a charger may decide offline, kept in step by versioned updates."""

from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import pytest

from controller.app import SiteController
from controller.core.config import validate
from hil.broker import Broker
from hil.sim.backend import BackendSimulator
from hil.sim.chargepoint import BaseChargePointSimulator, ChargePointSimulator, ChargePointSimulator201
from hil.siteconfig import SimCharger, SiteSpec, render

ROOT = "siteedge/v1/NL/SED/DEMO01"


def tok(uid: str, whitelist: str, party: str = "ABC", valid: bool = True) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": party,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"C-{uid}",
        "issuer": party,
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": "2026-11-01T00:00:00Z",
    }


async def until(cond: Any, within: float = 15.0) -> None:
    for _ in range(int(within / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


@pytest.fixture
async def site(site_spec: SiteSpec, broker: Broker) -> Any:
    site_spec.chargers = [SimCharger("CP-1", "1.6", evses=1), SimCharger("CP-2", "2.0.1", evses=1)]
    site_spec.free_vend, site_spec.auth_timeout = False, 0.3
    text = render(site_spec).replace("[auth]\n", '[auth]\nlocal_list_partners = ["DE*ABC"]\n')
    with BackendSimulator(broker.url, ROOT) as backend:
        ctl = SiteController(validate(tomllib.loads(text)))
        await ctl.start()
        # Seven ALWAYS cards of partner ABC (more than the simulators' 5 per message), one
        # NEVER card (never decided offline, so never on a charger) and one of another partner.
        tokens = [tok(f"ABC{i}", "ALWAYS") for i in range(7)] + [
            tok("NEVER1", "NEVER"),
            tok("XYZ1", "ALWAYS", "XYZ"),
        ]
        backend.publish("tokens/full/s1/0", {"total": 1, "version": 1, "tokens": tokens})
        await backend.wait_for_async(
            lambda m: m.topic == f"{ROOT}/tokens/state" and m.payload["data"]["version"] == 1
        )
        try:
            yield ctl, backend
        finally:
            await ctl.stop()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_list_converges_through_deltas_and_a_version_mismatch(site: Any, version: str) -> None:
    ctl, backend = site
    cls: type[BaseChargePointSimulator] = (
        ChargePointSimulator201 if version == "2.0.1" else ChargePointSimulator
    )
    cp_id = "CP-2" if version == "2.0.1" else "CP-1"
    async with cls(cp_id, f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=1) as cp:
        assert await cp.boot() == "Accepted"
        expected = {f"ABC{i}": "Accepted" for i in range(7)}
        await until(lambda: cp.local_list == expected)  # full list, sent in chunks of 5
        first_version = cp.local_list_version
        assert first_version >= 2

        # Deltas: one card blocked, one removed, one added.
        backend.publish(
            "tokens/delta",
            {
                "from_version": 1,
                "to_version": 2,
                "upserts": [tok("ABC1", "ALWAYS", valid=False), tok("ABC9", "ALWAYS")],
                "deletes": [{"country_code": "DE", "party_id": "ABC", "uid": "ABC2"}],
            },
        )
        expected = {f"ABC{i}": "Accepted" for i in (0, 3, 4, 5, 6, 9)} | {"ABC1": "Blocked"}
        await until(lambda: cp.local_list == expected)
        assert cp.local_list_version > first_version

        # The charger lost track (e.g. a factory reset): its version no longer matches ours, the
        # Differential is refused with VersionMismatch and siteedge sends the whole list again.
        cp.local_list_version, cp.local_list = 1000, {"STALE": "Accepted"}
        backend.publish(
            "tokens/delta",
            {
                "from_version": 2,
                "to_version": 3,
                "upserts": [tok("ABC10", "ALWAYS")],
            },
        )
        expected = expected | {"ABC10": "Accepted"}
        await until(lambda: cp.local_list == expected)
        assert "NEVER1" not in cp.local_list and "XYZ1" not in cp.local_list
        if version == "1.6":
            assert cp.config["LocalPreAuthorize"][0] == "false"  # ALLOWED_OFFLINE cards must be asked
            assert cp.config["AllowOfflineTxForUnknownId"][0] == "false"  # site policy: reject unknown
            assert cp.config["AuthorizationCacheEnabled"][0] == "false"  # no replay of NEVER tokens

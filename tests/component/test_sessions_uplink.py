"""Sessions, CDRs and tariffs over a real broker: 1.6 and 2.0.1 chargers, restarts, bad tariffs."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from controller.app import SiteController
from controller.core.config import validate
from hil.broker import Broker
from hil.sim.backend import BackendSimulator, Received
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.siteconfig import SimCharger, SiteSpec, render
from tests.api import api_client

ROOT = "siteedge/v1/NL/SED/DEMO01"
OCPI = Path(__file__).parents[2].parent / "shared" / "ocpi-schemas" / "2.2.1"
TARIFF_ID = "AC-STANDARD"
TARIFF: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "SED",
    "id": TARIFF_ID,
    "currency": "EUR",
    "type": "AD_HOC_PAYMENT",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 0},
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 100},
            ]
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def hand_cost(delta_wh: int) -> tuple[Decimal, Decimal]:
    """FLAT 0.50 + ENERGY 0.30/kWh with energy rounded up to 100 Wh; 21 % VAT on both."""
    billed_kwh = (Decimal(delta_wh) / 100).to_integral_value(ROUND_CEILING) * 100 / 1000
    excl = Decimal("0.50") + billed_kwh * Decimal("0.30")
    return excl, (excl * Decimal("1.21")).quantize(Decimal("0.0001"))


def validator(name: str) -> Draft7Validator:
    schema = json.loads((OCPI / f"ocpi.2_2_1.{name}.json").read_text())
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


@pytest.fixture
def backend(broker: Broker) -> Any:
    with BackendSimulator(broker.url, ROOT) as b:
        yield b
    assert b.contract.violations == []
    assert dict(b.contract.gaps) == {}, b.contract.gap_evidence


@pytest.fixture
async def controllers(site_spec: SiteSpec) -> AsyncIterator[Callable[[], Any]]:
    """Factory: a controller on the spec with a site tariff, CP-1 (1.6) and CP-2 (2.0.1)."""
    site_spec.chargers = [SimCharger("CP-1", evses=1), SimCharger("CP-2", "2.0.1", evses=1)]
    text = render(site_spec).replace("[site]\n", f'[site]\ndefault_tariff_id = "{TARIFF_ID}"\n', 1)
    config = validate(tomllib.loads(text))
    running: list[SiteController] = []

    async def start() -> SiteController:
        ctl = SiteController(config)
        await ctl.start()
        running.append(ctl)
        return ctl

    yield start
    for ctl in running:
        await ctl.stop()


async def until(cond: Callable[[], Any], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition did not hold within {within} s")


async def price_of(ctl: SiteController, evse_uid: str) -> dict[str, Any]:
    async with api_client(ctl) as http:
        reply = await http.get(f"/api/v1/evses/{evse_uid}/price")
        assert reply.status_code == 200
        found: dict[str, Any] = reply.json()
        return found


async def publish_tariff(ctl: SiteController, backend: BackendSimulator) -> None:
    backend.publish(f"tariffs/{TARIFF_ID}", TARIFF, retain=True)
    await until(lambda: TARIFF_ID in ctl.tariffs.known)


def cdrs(backend: BackendSimulator) -> list[dict[str, Any]]:
    return [m.payload["data"] for m in backend.messages("cdrs/")]


def sessions_of(backend: BackendSimulator, session_id: str) -> list[dict[str, Any]]:
    return [m.payload["data"] for m in backend.messages(f"sessions/{session_id}")]


def is_cdr(session_id: str) -> Callable[[Received], bool]:
    return lambda m: m.topic.startswith(f"{ROOT}/cdrs/") and m.payload["data"]["session_id"] == session_id


def check_cdr(cdr: dict[str, Any], delta_wh: int) -> None:
    assert list(validator("cdr").iter_errors(cdr)) == []
    assert cdr["total_energy"] == pytest.approx(delta_wh / 1000, abs=1e-4)
    excl, incl = hand_cost(delta_wh)
    assert cdr["total_cost"] == {"excl_vat": float(excl), "incl_vat": float(incl)}
    assert cdr["total_fixed_cost"]["excl_vat"] == 0.5
    assert cdr["tariffs"] == [TARIFF] and cdr["currency"] == "EUR"
    assert cdr["auth_method"] == "WHITELIST"  # free vend: decided locally
    assert cdr["cdr_location"]["evse_id"].startswith("NL*SED*E")


async def test_16_and_201_sessions_reach_the_backend_with_one_cdr_each(
    controllers: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await controllers()
    await publish_tariff(ctl, backend)
    price = await price_of(ctl, "CP-1-1")
    assert price["tariff_id"] == TARIFF_ID and "0.36 EUR/kWh incl. VAT" in price["text"]
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp"
    async with ChargePointSimulator("CP-1", url) as cp16, ChargePointSimulator201("CP-2", url) as cp201:
        assert await cp16.boot() == "Accepted" and await cp201.boot() == "Accepted"
        await cp16.start_transaction(1, "TAG16", 1000.0)
        await cp201.start_transaction(1, "TAG201", 50000.0)
        for wh16, wh201 in ((1500.0, 50800.5), (2600.0, 51400.0), (3000.0, 52000.0)):
            await cp16.meter_values(1, wh16, 7000.0)
            await cp201.meter_values(1, wh201, 7000.0)
        await cp16.stop_transaction(1, 3345.0)
        await cp201.stop_transaction(1, 52250.0)
        cdr16 = (await backend.wait_for_async(lambda m: m.topic.startswith(f"{ROOT}/cdrs/"))).payload["data"]
        await until(lambda: len(cdrs(backend)) == 2)
    by_tag = {c["cdr_token"]["uid"]: c for c in cdrs(backend)}
    assert set(by_tag) == {"TAG16", "TAG201"} and cdr16 in by_tag.values()
    check_cdr(by_tag["TAG16"], 3345 - 1000)
    check_cdr(by_tag["TAG201"], 52250 - 50000)
    for cdr in by_tag.values():
        updates = sessions_of(backend, cdr["session_id"])
        for session in updates:
            assert list(validator("session").iter_errors(session)) == []
        statuses = [s["status"] for s in updates]
        # Start and end at once; the rate limit (30 s) holds back the meter values in between.
        assert statuses == ["PENDING", "ACTIVE", "COMPLETED"]
        final = updates[-1]
        assert final["kwh"] == cdr["total_energy"] and final["total_cost"] == cdr["total_cost"]
        assert final["cdr_token"] == {
            "country_code": "NL",
            "party_id": "SED",
            "uid": cdr["cdr_token"]["uid"],
            "type": "OTHER",  # not in the whitelist: the site's own token
            "contract_id": cdr["cdr_token"]["uid"],
        }
    await until(lambda: ctl.outbox.stats().pending == 0)
    assert len(cdrs(backend)) == 2  # exactly one per session

    async with api_client(ctl) as http:
        listed = (await http.get("/api/v1/sessions", params={"status": "COMPLETED"})).json()
        one = (await http.get(f"/api/v1/sessions/{by_tag['TAG16']['session_id']}")).json()
        report = (await http.get("/api/v1/reports/partners")).json()
        assert (await http.get("/api/v1/sessions/nope")).status_code == 404
    assert len(listed["items"]) == 2 and one["status"] == "COMPLETED"
    (nl,) = report["partners"]
    assert nl["sessions"] == 2 and nl["kwh"] == pytest.approx(2.345 + 2.25)
    expected = hand_cost(2345)[0] + hand_cost(2250)[0]
    assert nl["revenue_excl_vat"] == float(expected)


async def test_restart_mid_session_and_after_the_stop_never_makes_a_second_cdr(
    controllers: Any, backend: BackendSimulator
) -> None:
    first: SiteController = await controllers()
    await publish_tariff(first, backend)
    cp = ChargePointSimulator("CP-1", f"ws://127.0.0.1:{first.ocpp_port}/ocpp")
    await cp.connect()
    await cp.boot()
    tx = await cp.start_transaction(1, "TAG-R", 20000.0)
    await cp.meter_values(1, 21000.0, 7000.0)
    await backend.wait_for_async(lambda m: m.topic.startswith(f"{ROOT}/sessions/"))
    await cp.close()
    await first.stop()

    second: SiteController = await controllers()  # same data_dir: journal, sessions, outbox
    await until(second.sessions.resumed.is_set)
    again = ChargePointSimulator("CP-1", f"ws://127.0.0.1:{second.ocpp_port}/ocpp")
    await again.connect()
    await again.boot()
    again.connectors[1].tx_id = tx  # the charger remembers its running transaction
    await again.meter_values(1, 22500.0, 7000.0)
    await again.stop_transaction(1, 23100.0)
    cdr = (await backend.wait_for_async(lambda m: m.topic.startswith(f"{ROOT}/cdrs/"))).payload["data"]
    check_cdr(cdr, 23100 - 20000)
    await again.close()
    await until(lambda: second.outbox.stats().pending == 0)
    await second.stop()

    third: SiteController = await controllers()
    await until(third.sessions.resumed.is_set)
    await until(lambda: third.outbox.stats().pending == 0)
    assert [c["id"] for c in cdrs(backend)] == [cdr["id"]]
    statuses = [s["status"] for s in sessions_of(backend, cdr["session_id"])]
    assert statuses[0] == "PENDING" and statuses[-1] == "COMPLETED" and statuses.count("COMPLETED") == 1


async def test_a_malformed_tariff_is_rejected_and_the_old_one_still_applies(
    controllers: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await controllers()
    await publish_tariff(ctl, backend)
    broken = {**TARIFF, "currency": "euro", "elements": [{"price_components": [{"type": "ENERGY"}]}]}
    backend.publish(f"tariffs/{TARIFF_ID}", broken, retain=True)
    error = await backend.wait_for_async(
        lambda m: m.topic == f"{ROOT}/errors" and m.payload["data"]["topic"] == f"tariffs/{TARIFF_ID}"
    )
    assert "currency" in error.payload["data"]["reason"]
    backend.publish(f"tariffs/{TARIFF_ID}", {**TARIFF, "id": "OTHER"}, retain=True)
    await backend.wait_for_async(
        lambda m: m.topic == f"{ROOT}/errors" and "differs from the topic" in m.payload["data"]["reason"]
    )
    assert ctl.tariffs.known[TARIFF_ID].raw == TARIFF
    cp = ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp")
    await cp.connect()
    await cp.boot()
    await cp.start_transaction(1, "TAG-B", 0.0)
    await cp.stop_transaction(1, 1234.0)
    cdr = (await backend.wait_for_async(lambda m: m.topic.startswith(f"{ROOT}/cdrs/"))).payload["data"]
    await cp.close()
    check_cdr(cdr, 1234)
    # An empty retained payload deletes: the EVSE then has no tariff.
    backend.publish(f"tariffs/{TARIFF_ID}", None, retain=True)
    await until(lambda: TARIFF_ID not in ctl.tariffs.known)
    assert (await price_of(ctl, "CP-1-1"))["tariff_id"] is None

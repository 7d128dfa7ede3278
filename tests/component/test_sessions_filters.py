"""GET /api/v1/sessions filtered by partner (the token's eMSP) and by charger, as JSON and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from controller.app import SiteController
from controller.core.token_sync import parse_chunk
from hil.sim.chargepoint import ChargePointSimulator
from hil.siteconfig import SimCharger, SiteSpec
from tests.api import api_client


def token(uid: str, country: str, party: str) -> dict[str, Any]:
    return {
        "country_code": country,
        "party_id": party,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{country}-{party}-C{uid}",
        "issuer": party,
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2026-11-01T00:00:00Z",
    }


async def charge(ctl: SiteController, cp_id: str, connector: int, tag: str) -> None:
    async with ChargePointSimulator(cp_id, f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        assert await cp.boot() == "Accepted"
        await cp.start_transaction(connector, tag, 1000.0)
        await cp.meter_values(connector, 2000.0, 7_000.0)
        await cp.stop_transaction(connector, 2500.0)


async def test_sessions_filter_by_partner_and_charger_in_json_and_csv(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    site_spec.chargers = [SimCharger("CP-1", "1.6", evses=2), SimCharger("CP-2", "1.6", evses=2)]
    ctl: SiteController = await start_controller(site_spec)
    ctl.tokens.apply_chunk(
        parse_chunk(
            "s1",
            0,
            {
                "total": 1,
                "version": 1,
                "tokens": [token("CARD-DE", "DE", "ABC"), token("CARD-NL", "NL", "XYZ")],
            },
        )
    )
    await charge(ctl, "CP-1", 1, "CARD-DE")
    await charge(ctl, "CP-1", 2, "CARD-NL")
    await charge(ctl, "CP-2", 1, "CARD-NL")
    for _ in range(500):
        if len([r for r in ctl.session_store.listing(10, None) if r.status.final]) == 3:
            break
        await asyncio.sleep(0.02)

    async def listed(**params: str) -> list[tuple[str, str]]:
        reply = await http.get("/api/v1/sessions", params=params)
        assert reply.status_code == 200, reply.text
        return sorted((s["evse_uid"], s["cdr_token"]["uid"]) for s in reply.json()["items"])

    async with api_client(ctl, "viewer") as http:
        assert len(await listed()) == 3
        assert await listed(partner="NL-XYZ") == [("CP-1-2", "CARD-NL"), ("CP-2-1", "CARD-NL")]
        assert await listed(partner="nl*xyz") == await listed(partner="NL-XYZ")  # as the CSV writes it
        assert await listed(partner="DE-ABC") == [("CP-1-1", "CARD-DE")]
        assert await listed(partner="FR-QQQ") == []
        assert await listed(charger="CP-1") == [("CP-1-1", "CARD-DE"), ("CP-1-2", "CARD-NL")]
        assert await listed(charger="CP-1", partner="NL-XYZ") == [("CP-1-2", "CARD-NL")]
        assert await listed(charger="CP-9") == []
        paged = (await http.get("/api/v1/sessions", params={"partner": "NL-XYZ", "limit": 1})).json()
        assert len(paged["items"]) == 1 and paged["next_offset"] == 1

        as_csv = await http.get("/api/v1/sessions", params={"format": "csv", "partner": "NL-XYZ"})
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert sorted((r["charger_id"], r["emsp"]) for r in rows) == [("CP-1", "NL*XYZ"), ("CP-2", "NL*XYZ")]
        as_csv = await http.get("/api/v1/sessions", params={"format": "csv", "charger": "CP-2"})
        assert [r["evse_uid"] for r in csv.DictReader(io.StringIO(as_csv.text))] == ["CP-2-1"]

        for bad in ("NLXYZ", "N-XYZ", "NL-", "NL-TOOLONG", "12-ABC", ""):
            reply = await http.get("/api/v1/sessions", params={"partner": bad})
            assert reply.status_code == 422, bad
            assert reply.json()["code"] == "invalid" and "partner" in reply.json()["detail"]

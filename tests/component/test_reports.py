"""Reports against a real controller: status history, uptime, maintenance, quarterly data, MQTT reports."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import tomllib
import zoneinfo
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.app import SiteController
from controller.core.config import validate
from controller.core.uptime import to_us
from controller.store.status_history import SqliteStatusHistory
from hil.broker import Broker
from hil.sim.backend import BackendSimulator
from hil.sim.chargepoint import ChargePointSimulator
from hil.siteconfig import SiteSpec, render
from tests.api import api_client

ROOT = "siteedge/v1/NL/SED/DEMO01"
AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")  # hil.siteconfig's site time zone


def this_month() -> str:
    return datetime.now(AMS).strftime("%Y-%m")


def this_quarter() -> str:
    now = datetime.now(AMS)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


@pytest.fixture
def backend(broker: Broker) -> Iterator[BackendSimulator]:
    with BackendSimulator(broker.url, ROOT) as b:
        yield b
    assert b.contract.violations == []
    assert dict(b.contract.gaps) == {}, b.contract.gap_evidence


async def until(cond: Callable[[], Any], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition did not hold within {within} s")


async def history(ctl: SiteController, evse_uid: str) -> list[dict[str, str]]:
    ctl.status_history.flush()
    async with api_client(ctl, "viewer") as http:
        reply = await http.get(f"/api/v1/reports/status-history/{evse_uid}")
    assert reply.status_code == 200
    items: list[dict[str, str]] = reply.json()["items"]
    return items


async def port_month(ctl: SiteController, evse_uid: str) -> dict[str, Any]:
    ctl.status_history.flush()
    async with api_client(ctl, "viewer") as http:
        reply = await http.get("/api/v1/reports/uptime", params={"month": this_month()})
    assert reply.status_code == 200
    port = next(p for p in reply.json()["ports"] if p["evse_uid"] == evse_uid)
    month: dict[str, Any] = port["months"][0]
    return month


async def test_status_history_uptime_and_maintenance_windows_survive_a_restart(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        assert await cp.boot() == "Accepted"
        await cp.status(1, "Available")
        await cp.status(2, "Available")
        await cp.status(1, "Faulted", "GroundFailure")
        await asyncio.sleep(0.6)  # an outage long enough to tell apart from the start-up UNKNOWN
        await cp.status(1, "Available")
        await until(lambda: ctl.site.evse_status("CP-1-1") == "AVAILABLE")
        steps = [(h["status"], h["reason"]) for h in await history(ctl, "CP-1-1")]
        assert steps == [
            ("UNKNOWN", "siteedge started; no status yet"),
            ("AVAILABLE", "Available"),
            ("OUTOFORDER", "Faulted GroundFailure"),
            ("AVAILABLE", "Available"),
        ]
        faulty, healthy = await port_month(ctl, "CP-1-1"), await port_month(ctl, "CP-1-2")
        assert faulty["outage_minutes"] > healthy["outage_minutes"] and faulty["uptime_percent"] < 100
        assert faulty["outages"][1]["minutes"] > 0.009  # the 0.6 s fault, in minutes

        # Declared maintenance over the outages: excluded, so the port counts as fully up.
        now = datetime.now(UTC)
        window = {
            "evse_uid": "CP-1-1",
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
            "kind": "maintenance",
            "note": "ground fault relay",
        }
        async with api_client(ctl, "technician") as http:
            created = await http.post("/api/v1/maintenance", json=window)
            bad = await http.post("/api/v1/maintenance", json={**window, "kind": "holiday"})
            unknown = await http.post("/api/v1/maintenance", json={**window, "evse_uid": "CP-9-9"})
            listed = (await http.get("/api/v1/maintenance")).json()
        assert created.status_code == 201 and created.json()["note"] == "ground fault relay"
        assert bad.status_code == 422 and "kind must be one of" in bad.json()["detail"]
        assert unknown.status_code == 422 and "CP-9-9" in unknown.json()["detail"]
        assert [w["id"] for w in listed["items"]] == [created.json()["id"]]
        covered = await port_month(ctl, "CP-1-1")
        assert covered["excluded_minutes"] == covered["outage_minutes"] and covered["uptime_percent"] == 100.0

    # The charger is gone: UNKNOWN while it is unreachable, and the window is still on disk after a restart.
    await until(lambda: ctl.site.evse_status("CP-1-1") == "UNKNOWN")
    await ctl.stop()
    again: SiteController = await start_controller(site_spec)
    steps = [(h["status"], h["reason"]) for h in await history(again, "CP-1-1")]
    assert steps[-1] == ("UNKNOWN", "charger offline")  # already UNKNOWN: the restart adds nothing
    assert (await port_month(again, "CP-1-1"))["uptime_percent"] == 100.0  # the window still applies
    async with api_client(again, "technician") as http:
        (kept,) = (await http.get("/api/v1/maintenance")).json()["items"]
        assert (await http.delete(f"/api/v1/maintenance/{kept['id']}")).status_code == 204
        assert (await http.delete(f"/api/v1/maintenance/{kept['id']}")).status_code == 404
    assert (await port_month(again, "CP-1-1"))["uptime_percent"] < 100
    async with api_client(again, "viewer") as http:
        assert (await http.get("/api/v1/reports/uptime", params={"month": "2026-13"})).status_code == 422
        trailing = await http.get("/api/v1/reports/uptime", params={"trailing": 12, "format": "csv"})
    assert trailing.status_code == 200 and trailing.headers["content-type"].startswith("text/csv")
    assert "attachment" in trailing.headers["content-disposition"]


async def test_quarterly_data_sessions_csv_and_partner_failures(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        assert await cp.boot() == "Accepted"
        await cp.start_transaction(1, "CARD-1", 1000.0)
        await cp.meter_values(1, 2000.0, 11_000.0)
        await cp.meter_values(1, 3000.0, 7_400.0)
        await cp.stop_transaction(1, 3500.0)
        await cp.start_transaction(2, "CARD-2", 500.0)
        await cp.stop_transaction(2, 500.0)  # nothing delivered: an unsuccessful session
        await until(
            lambda: (
                len(
                    ctl.session_store.started_between(
                        datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
                    )
                )
                == 2
            )
        )
        await until(lambda: all(r.status.final for r in ctl.session_store.listing(10, None)))
    ctl.status_history.flush()
    async with api_client(ctl, "viewer") as http:
        report = (await http.get("/api/v1/reports/quarterly", params={"quarter": this_quarter()})).json()
        as_csv = await http.get(
            "/api/v1/reports/quarterly", params={"quarter": this_quarter(), "format": "csv"}
        )
        listing = await http.get("/api/v1/sessions", params={"format": "csv", "evse_uid": "CP-1-2"})
        page = (await http.get("/api/v1/sessions", params={"limit": 1})).json()
        partners = (await http.get("/api/v1/reports/partners")).json()
        bad = await http.get("/api/v1/reports/quarterly", params={"quarter": "2026-Q5"})
    by_port = {s["evse_uid"]: s for s in report["sessions"]}
    good, empty = by_port["CP-1-1"], by_port["CP-1-2"]
    assert good["kwh"] == 2.5 and good["peak_kw"] == 11.0 and good["successful"] is True
    assert good["error_code"] is None and good["charger_id"] == "CP-1" and good["payment_method"] == "OTHER"
    assert empty["successful"] is False and empty["error_code"] == "NoEnergyDelivered"
    assert {p["evse_uid"] for p in report["uptime"]["ports"]} == {"CP-1-1", "CP-1-2"}

    assert as_csv.headers["content-disposition"] == f'attachment; filename="sessions-{this_quarter()}.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sorted((r["evse_uid"], r["error_code"]) for r in rows) == [
        ("CP-1-1", ""),
        ("CP-1-2", "NoEnergyDelivered"),
    ]
    (only,) = list(csv.DictReader(io.StringIO(listing.text)))
    assert only["evse_uid"] == "CP-1-2" and only["token_uid"] == "CARD-2" and only["kwh"] == "0.0"
    assert len(page["items"]) == 1 and page["next_offset"] == 1
    (site_partner,) = partners["partners"]
    assert site_partner["sessions"] == 2 and site_partner["failed_sessions"] == 1
    assert site_partner["failed_session_codes"] == {"NoEnergyDelivered": 1}
    assert bad.status_code == 422 and bad.json()["code"] == "invalid"


async def test_refused_authorizations_are_kept_across_restarts_and_counted_per_partner(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    site_spec.free_vend = False
    site_spec.auth_timeout = 0.2  # the backend simulator plays no eMSP here: asks go unanswered
    ctl: SiteController = await start_controller(site_spec)
    decision = await ctl.authorizer.authorize("STRANGER-1", charger_id="CP-1", evse_uid="CP-1-1")
    assert decision.outcome.value == "REJECT"
    await ctl.stop()
    again: SiteController = await start_controller(site_spec)
    async with api_client(again, "viewer") as http:
        audit = (await http.get("/api/v1/authorizations")).json()["items"]
        partners = (await http.get("/api/v1/reports/partners")).json()
    assert [(d["uid"], d["outcome"]) for d in audit] == [("STRANGER-1", "REJECT")]
    assert partners["unknown_token_failed_authorizations"] == 1


async def test_reports_go_up_on_request_and_valid_against_the_contract(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
        assert await cp.boot() == "Accepted"
        await cp.status(1, "Available")
        await cp.start_transaction(2, "CARD-9", 0.0)
        await cp.meter_values(2, 1200.0, 3_700.0)
        await cp.stop_transaction(2, 1500.0)
        await until(lambda: any(r.status.final for r in ctl.session_store.listing(10, None)))
    month, quarter = this_month(), this_quarter()
    for request_id, report, period in (
        ("r-1", "uptime", month),
        ("r-2", "quarterly", quarter),
        ("r-3", "partners", month),
    ):
        backend.publish("reports/request", {"request_id": request_id, "report": report, "period": period})
    uptime = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/reports/uptime/{month}")
    part0 = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/reports/quarterly/{quarter}/0")
    partners = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/reports/partners/{month}")
    assert uptime.payload["data"]["request_id"] == "r-1" and uptime.payload["data"]["complete"] is False
    ports = {p["evse_uid"]: p for p in uptime.payload["data"]["ports"]}
    assert set(ports) == {"CP-1-1", "CP-1-2"} and ports["CP-1-1"]["trailing_12"] is not None
    data = part0.payload["data"]
    assert data["parts"] == 1 and data["sessions_total"] == 1 and data["sessions"][0]["kwh"] == 1.5
    assert partners.payload["data"]["partners"][0]["sessions"] == 1

    backend.publish("reports/request", {"request_id": "r-4", "report": "uptime", "period": "2999-01"})
    backend.publish("reports/request", {"request_id": "r 5", "report": "uptime", "period": month})

    def refusals() -> list[str]:
        return sorted(
            m.payload["data"]["reason"]
            for m in backend.messages("errors")
            if m.payload["data"]["topic"] == "reports/request"
        )

    await until(lambda: len(refusals()) == 2)
    reasons = refusals()
    assert "has not begun" in reasons[0] and "request_id" in reasons[1]
    await until(lambda: ctl.outbox.stats().pending == 0)


class _OctoberClosed:
    """The site's clock ten minutes into November 2026 (Amsterdam); monotonic time is real."""

    def now(self) -> datetime:
        return datetime(2026, 11, 1, 0, 10, tzinfo=AMS).astimezone(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def seed_october(data_dir: Path) -> None:
    """October's history as a running site would have left it: in service since September."""
    data_dir.mkdir(parents=True, exist_ok=True)
    seeded = SqliteStatusHistory(data_dir / "reports.sqlite3")
    seeded.load([("CP-1-1", to_us(datetime(2026, 9, 20, tzinfo=UTC)), "AVAILABLE", "NoError")])
    seeded.load([("CP-1-1", to_us(datetime(2026, 10, 10, 12, tzinfo=UTC)), "OUTOFORDER", "GroundFailure")])
    seeded.load([("CP-1-1", to_us(datetime(2026, 10, 10, 13, tzinfo=UTC)), "AVAILABLE", "NoError")])
    seeded.mark_alive(datetime(2026, 11, 1, 0, 9, tzinfo=AMS))  # then stopped for a minute
    seeded.close()


async def test_closed_periods_are_sent_once_without_being_asked(
    site_spec: SiteSpec, backend: BackendSimulator
) -> None:
    seed_october(Path(site_spec.data_dir))
    config = validate(tomllib.loads(render(site_spec)))
    ctl = SiteController(config, clock=_OctoberClosed())
    await ctl.start()
    try:
        sent = await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/reports/uptime/2026-10")
        await until(lambda: ctl.outbox.stats().pending == 0)
    finally:
        await ctl.stop()
    (port,) = [p for p in sent.payload["data"]["ports"] if p["evse_uid"] == "CP-1-1"]
    october = port["months"][0]
    assert october["outage_minutes"] == 60 and october["period_minutes"] == 44_700  # DST: 745 h
    assert october["uptime_percent"] == round((44_700 - 60) / 44_700 * 100, 4)
    assert "request_id" not in sent.payload["data"] and sent.payload["data"]["complete"] is True
    # Q3 closed a month ago: its data goes too; October's partner report waits for its 24 hours.
    # Nothing goes twice after a restart.
    again = SiteController(config, clock=_OctoberClosed())
    await again.start()
    try:
        await until(again.reports.checked.is_set)
        await until(lambda: again.outbox.stats().pending == 0)
        await asyncio.sleep(0.3)  # anything the broker acknowledged reaches the subscriber by now
    finally:
        await again.stop()
    topics = sorted(m.topic for m in backend.messages("reports/"))
    assert topics == [f"{ROOT}/reports/quarterly/2026-Q3/0", f"{ROOT}/reports/uptime/2026-10"]

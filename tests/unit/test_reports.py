"""Report rules: failed sessions, peak power, quarterly rows and parts, partner failures, due periods."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from controller.core.reports import (
    AuditEntry,
    PeakTracker,
    due_reports,
    partner_report,
    periods_peak_kw,
    quarterly_parts,
    quarterly_row,
    session_error,
)
from controller.core.sessions import AuthMethod, Authorization, CdrToken, SessionRecord, SessionStatus

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 10, 5, 8, tzinfo=UTC)


def record(
    sid: str,
    status: SessionStatus = SessionStatus.COMPLETED,
    kwh: float = 10.0,
    stop: str | None = "Local",
    party: str = "ABC",
) -> SessionRecord:
    token = CdrToken("DE", party, f"UID-{sid}", "RFID", f"DE-{party}-C{sid}")
    rec = SessionRecord(
        session_id=sid,
        key=f"CP-1/{sid}",
        charger_id="CP-1",
        evse_uid="CP-1-1",
        connector_id="1",
        status=status,
        started_at=T0,
        token=token,
        auth=Authorization(AuthMethod.WHITELIST),
        currency="EUR",
        tariff=None,
        meter_id=None,
        last_updated=T0,
        ended_at=T0 + timedelta(hours=1) if status.final else None,
        stop_reason=stop if status.final else None,
        invalid=status is SessionStatus.INVALID,
    )
    rec.ocpi = {"kwh": kwh, "total_cost": {"excl_vat": 2.0, "incl_vat": 2.42}}
    return rec


def test_unsuccessful_sessions_get_an_error_code_and_running_ones_none() -> None:
    assert session_error(record("1")) is None
    assert session_error(record("2", SessionStatus.INVALID)) == "AuthorizationInvalid"
    assert session_error(record("3", stop="EmergencyStop")) == "EmergencyStop"
    assert session_error(record("4", kwh=0.0)) == "NoEnergyDelivered"
    assert session_error(record("5", kwh=0.0, stop="PowerLoss")) == "PowerLoss"
    assert session_error(record("6", SessionStatus.ACTIVE, kwh=0.0)) is None
    assert session_error(record("7", stop="EVDisconnected")) is None  # the driver unplugged: normal


def test_peak_power_takes_reported_power_and_energy_over_real_intervals() -> None:
    peaks = PeakTracker()
    assert peaks.update("k", T0, 0.0, None) is None
    assert peaks.update("k", T0 + timedelta(seconds=5), 100.0, None) is None  # 5 s: too short to trust
    assert peaks.update("k", T0 + timedelta(minutes=1), 200.0, 7_000.0) == 12_000.0  # 200 Wh in 1 min
    assert peaks.update("k", T0 + timedelta(minutes=2), 300.0, 6_500.0) is None  # lower: no news
    assert peaks.update("k", T0 + timedelta(minutes=3), 300.0, 22_000.0) == 22_000.0
    peaks.forget("k")
    assert peaks.update("k", T0 + timedelta(minutes=4), 300.0, 1_000.0) == 1_000.0


def test_quarterly_row_has_the_nevi_fields_with_a_fallback_peak_from_charging_periods() -> None:
    rec = record("9")
    rec.ocpi["charging_periods"] = [
        {
            "start_date_time": "x",
            "dimensions": [{"type": "ENERGY", "volume": 2.5}, {"type": "TIME", "volume": 0.25}],
        },
        {
            "start_date_time": "y",
            "dimensions": [{"type": "ENERGY", "volume": 1.0}, {"type": "TIME", "volume": 0.25}],
        },
    ]
    row = quarterly_row(rec, "DE*ABC*E1", None)
    assert row["peak_kw"] == 10.0 == periods_peak_kw(rec.ocpi)
    assert (row["evse_id"], row["start"], row["end"]) == (
        "DE*ABC*E1",
        "2026-10-05T08:00:00.000Z",
        "2026-10-05T09:00:00.000Z",
    )
    assert (row["successful"], row["error_code"], row["payment_method"], row["emsp"]) == (
        True,
        None,
        "RFID",
        "DE*ABC",
    )
    assert quarterly_row(rec, None, 7_400.0)["peak_kw"] == 7.4
    assert quarterly_row(record("10", SessionStatus.ACTIVE), None, None)["successful"] is None


def test_a_big_quarter_goes_up_in_parts_with_the_uptime_only_in_the_first() -> None:
    report = {"quarter": "2026-Q4", "uptime": {"ports": []}, "sessions": list(range(1_001))}
    parts = quarterly_parts(report, 500)
    assert [(p["part"], p["parts"], len(p["sessions"])) for p in parts] == [
        (0, 3, 500),
        (1, 3, 500),
        (2, 3, 1),
    ]
    assert "uptime" in parts[0] and "uptime" not in parts[1]
    assert quarterly_parts({**report, "sessions": []})[0]["sessions"] == []


def test_partner_report_adds_failures_and_partners_seen_only_failing() -> None:
    base = [
        {"country_code": "DE", "party_id": "ABC", "sessions": 2, "revenue_excl_vat": 4.0},
    ]
    records = [record("1"), record("2", kwh=0.0), record("3", SessionStatus.INVALID, party="XYZ")]
    report = partner_report(base, records, {("DE", "ABC"): 3, ("NL", "QQQ"): 1, None: 2})
    rows = {(r["country_code"], r["party_id"]): r for r in report["partners"]}
    assert set(rows) == {("DE", "ABC"), ("DE", "XYZ"), ("NL", "QQQ")}
    abc = rows[("DE", "ABC")]
    assert (abc["failed_sessions"], abc["failed_authorizations"], abc["average_revenue_excl_vat"]) == (
        1,
        3,
        2.0,
    )
    assert rows[("DE", "XYZ")]["failed_session_codes"] == {"AuthorizationInvalid": 1}
    assert rows[("NL", "QQQ")]["sessions"] == 0 and rows[("NL", "QQQ")]["failed_authorizations"] == 1
    assert report["unknown_token_failed_authorizations"] == 2


def test_audit_entry_names_its_partner() -> None:
    known = AuditEntry(T0, "u", "CP-1", None, "REJECT", "why", "DE*ABC*U*1")
    assert known.partner == ("DE", "ABC")
    assert AuditEntry(T0, "u", "CP-1", None, "REJECT", "why", None).partner is None


def test_closed_periods_are_due_after_their_grace_once_and_only_if_siteedge_saw_them() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    early = datetime(2026, 11, 1, 0, 1, tzinfo=AMS)  # one minute into November
    q3_sent = [("quarterly", "2026-Q3")]
    assert due_reports(early, AMS, since, q3_sent) == []
    later = datetime(2026, 11, 1, 0, 10, tzinfo=AMS)
    assert [(d.kind, d.period.name) for d in due_reports(later, AMS, since, q3_sent)] == [
        ("uptime", "2026-10")
    ]
    day_after = datetime(2026, 11, 2, 1, tzinfo=AMS)
    due = [(d.kind, d.period.name) for d in due_reports(day_after, AMS, since, [("uptime", "2026-10")])]
    assert due == [("partners", "2026-10"), ("quarterly", "2026-Q3")]
    assert due_reports(day_after, AMS, datetime(2026, 11, 1, 12, tzinfo=UTC), []) == []  # installed after
    assert due_reports(day_after, AMS, None, []) == []

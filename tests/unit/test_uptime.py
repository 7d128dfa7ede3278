"""NEVI uptime (23 CFR 680.116(b)) from a scripted month of statuses, checked against hand figures."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from controller.core.uptime import (
    PeriodError,
    PortHistory,
    Window,
    last_closed_month,
    last_closed_quarter,
    months_of,
    parse_month,
    parse_quarter,
    to_us,
    trailing_months,
    uptime_report,
    window_from_json,
)

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
YEAR = 525_600  # the CFR's P for a year


def t(day: int, hh: int, mm: int = 0, month: int = 10) -> int:
    return to_us(datetime(2026, month, day, hh, mm, tzinfo=UTC))


def dt(day: int, hh: int, mm: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=UTC)


# October 2026 for port P1 (UTC month: 31 x 1440 = 44,640 minutes); AVAILABLE since September.
SCRIPT = [
    (t(3, 10), "CHARGING"),
    (t(3, 11, 30), "AVAILABLE"),  # charging is up time
    (t(5, 8), "OUTOFORDER"),
    (t(5, 10, 30), "AVAILABLE"),  # outage 150 min
    (t(12, 2), "UNKNOWN"),
    (t(12, 2, 45), "AVAILABLE"),  # charger unreachable: outage 45 min
    (t(20, 6), "INOPERATIVE"),
    (t(20, 10), "AVAILABLE"),  # outage 240 min, 180 of them inside the maintenance window
    (t(25, 22), "OUTOFORDER"),
    (t(26, 1), "UNKNOWN"),
    (t(26, 1, 20), "AVAILABLE"),  # one outage of 200 min, 60 of them in the site's utility outage
    (t(31, 23, 30), "OUTOFORDER"),  # runs into November: 30 min count in October
    (t(2, 0, month=11), "AVAILABLE"),
]
WINDOWS = [
    Window(1, "P1", dt(20, 5), dt(20, 9), "maintenance", "contactor swap"),
    Window(2, None, dt(25, 23), dt(26, 0), "utility_outage", "grid operator"),
    Window(3, None, dt(3, 10), dt(3, 11), "maintenance", "no outage then: excludes nothing"),
    Window(4, "P2", dt(1, 0), dt(2, 0), "maintenance", "another port's window"),
]

# Hand computation (minutes):
#   T_outage   = 150 + 45 + 240 + 200 + 30 = 665
#   T_excluded = 180 (06:00-09:00 on the 20th) + 60 (23:00-24:00 on the 25th) = 240
#   P          = 44,640
#   uptime     = (44,640 - (665 - 240)) / 44,640 x 100 = 44,215 / 44,640 x 100 = 99.0479 %
HAND_UPTIME = 99.0479


def histories() -> dict[str, PortHistory]:
    return {
        "P1": PortHistory("P1", t(15, 0, month=9), "AVAILABLE", list(SCRIPT)),
        # Commissioned on the 16th: counted from then (16 days = 23,040 minutes), never down.
        "P2": PortHistory("P2", t(16, 0), None, [(t(16, 0), "AVAILABLE")]),
    }


def test_a_scripted_month_gives_the_hand_computed_nevi_uptime() -> None:
    october = parse_month("2026-10", UTC)
    report = uptime_report(histories(), WINDOWS, [october], datetime(2026, 12, 1, tzinfo=UTC))
    by_port = {p["evse_uid"]: p["months"][0] for p in report["ports"]}
    p1 = by_port["P1"]
    assert p1["period_minutes"] == 44_640
    assert p1["outage_minutes"] == 665
    assert p1["excluded_minutes"] == 240
    assert p1["uptime_percent"] == HAND_UPTIME
    assert by_port["P2"] == {
        "month": "2026-10",
        "evse_uid": "P2",
        "period_minutes": 23_040,
        "outage_minutes": 0,
        "excluded_minutes": 0,
        "uptime_percent": 100.0,
    }
    assert report["complete"] is True


def test_outages_are_listed_with_their_duration_and_excluded_part() -> None:
    october = parse_month("2026-10", UTC)
    report = uptime_report(histories(), WINDOWS, [october], dt(1, 0, month=12), with_outages=True)
    outages = next(p for p in report["ports"] if p["evse_uid"] == "P1")["months"][0]["outages"]
    assert [(o["start"], o["minutes"], o["excluded_minutes"]) for o in outages] == [
        ("2026-10-05T08:00:00.000Z", 150, 0),
        ("2026-10-12T02:00:00.000Z", 45, 0),
        ("2026-10-20T06:00:00.000Z", 240, 180),
        ("2026-10-25T22:00:00.000Z", 200, 60),
        ("2026-10-31T23:30:00.000Z", 30, 0),
    ]


def test_the_running_month_counts_up_to_now_and_says_it_is_incomplete() -> None:
    october = parse_month("2026-10", UTC)
    report = uptime_report(histories(), [], [october], dt(5, 9))  # one hour into the first outage
    p1 = next(p for p in report["ports"] if p["evse_uid"] == "P1")["months"][0]
    assert p1["period_minutes"] == 4 * 1440 + 9 * 60 and p1["outage_minutes"] == 60
    assert report["complete"] is False
    assert [p["evse_uid"] for p in report["ports"]] == ["P1", "P2"]
    assert next(p for p in report["ports"] if p["evse_uid"] == "P2")["months"][0]["uptime_percent"] is None


def test_trailing_twelve_months_sum_minutes_then_apply_the_formula() -> None:
    months = trailing_months(parse_month("2026-10", UTC), 12, UTC)
    assert [m.name for m in (months[0], months[-1])] == ["2025-11", "2026-10"]
    h = PortHistory("P1", to_us(datetime(2025, 1, 1, tzinfo=UTC)), "AVAILABLE", list(SCRIPT))
    report = uptime_report({"P1": h}, WINDOWS, months, datetime(2026, 12, 1, tzinfo=UTC))
    (port,) = report["ports"]
    assert port["trailing"]["period_minutes"] == YEAR == 525_600  # Nov 2025 - Oct 2026: 365 days
    # (525,600 - (665 - 240)) / 525,600 x 100 = 99.9191 %
    assert port["trailing"]["uptime_percent"] == 99.9191
    assert [m["uptime_percent"] for m in port["months"][:-1]] == [100.0] * 11



def test_months_follow_the_site_time_zone_including_dst() -> None:
    october = parse_month("2026-10", AMS)  # the clocks go back on 25 October: one hour longer
    assert october.start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert (october.end - october.start).total_seconds() / 60 == 44_700
    q3 = parse_quarter("2026-q3", AMS)
    assert [m.name for m in months_of(q3, AMS)] == ["2026-07", "2026-08", "2026-09"]
    now = datetime(2026, 11, 27, 14, tzinfo=UTC)
    assert last_closed_month(now, AMS).name == "2026-10"
    assert last_closed_quarter(now, AMS).name == "2026-Q3"
    assert last_closed_quarter(datetime(2026, 2, 1, tzinfo=UTC), AMS).name == "2025-Q4"


@pytest.mark.parametrize("text", ["2026-13", "26-10", "2026-1", "october", ""])
def test_a_malformed_month_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(PeriodError, match="2026-10"):
        parse_month(text, UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"evse_uid": "NOPE", "start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}, "evse_uid"),
        ({"evse_uid": None, "start": "2026-10-02T00:00:00Z", "end": "2026-10-01T00:00:00Z"}, "after start"),
        ({"evse_uid": None, "start": "2026-10-01T00:00:00", "end": "2026-10-02T00:00:00Z"}, "time zone"),
        ({"evse_uid": None, "start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "31 days"),
        ({"evse_uid": None, "start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}, "kind"),
        ({"start": "x", "end": "2026-10-02T00:00:00Z", "kind": "maintenance"}, "RFC 3339"),
        ({"evse": "P1"}, "unknown field"),
    ],
)
def test_a_bad_window_is_refused_with_its_reason(body: dict[str, object], reason: str) -> None:
    with pytest.raises(PeriodError, match=reason):
        window_from_json(body, ["P1"], dt(1, 0))


def test_a_valid_window_is_accepted() -> None:
    body = {"evse_uid": "P1", "start": "2026-10-20T07:00:00+02:00", "end": "2026-10-20T09:00:00Z"}
    w = window_from_json({**body, "kind": "maintenance", "note": "x"}, ["P1"], dt(1, 0))
    assert (w.start, w.end, w.kind) == (dt(20, 5), dt(20, 9), "maintenance")

"""Site power history: 10-s averages over an hour, grid meter else EVSE sum; [site] max_power_kw."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.core.config import ConfigError, validate
from controller.core.events import MeterFailed, MeterRead, TransactionStarted, TransactionUpdated
from controller.core.power_history import PowerHistory
from controller.core.site import Site

from .test_site import FakeClock

EXAMPLE = Path(__file__).parents[2] / "docs" / "config.example.toml"
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def doc() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def test_readings_in_one_bucket_are_averaged_and_gaps_stay_gaps() -> None:
    h = PowerHistory()
    h.record(T0, 10.0)
    h.record(T0 + timedelta(seconds=5), 20.0)
    h.record(T0 + timedelta(seconds=12), 7.0)
    h.record(T0 + timedelta(seconds=95), 3.0)  # nothing measured in between
    h.record(T0 + timedelta(seconds=96), math.nan)  # a garbled float is no reading
    points = h.points(T0 + timedelta(seconds=100), 3600)
    assert points == [
        (T0, 15.0),
        (T0 + timedelta(seconds=10), 7.0),
        (T0 + timedelta(seconds=90), 3.0),
    ]


def test_ring_keeps_one_hour_and_windows_by_minutes() -> None:
    h = PowerHistory()
    for i in range(500):  # 5000 s of readings, one per 10 s
        h.record(T0 + timedelta(seconds=10 * i), float(i))
    now = T0 + timedelta(seconds=4990)
    everything = h.points(now, 3600)
    assert len(everything) == 360
    assert everything[-1] == (now, 499.0)
    assert [kw for _, kw in h.points(now, 60)] == [493.0, 494.0, 495.0, 496.0, 497.0, 498.0, 499.0]


def test_a_late_reading_is_dropped_and_a_big_clock_step_back_restarts() -> None:
    h = PowerHistory()
    h.record(T0, 5.0)
    h.record(T0 - timedelta(seconds=30), 99.0)
    assert h.points(T0, 3600) == [(T0, 5.0)]
    back = T0 - timedelta(days=1)
    h.record(back, 1.0)
    assert h.points(back, 3600) == [(back, 1.0)]


def site_of(raw: dict[str, Any]) -> tuple[Site, FakeClock]:
    clock = FakeClock()
    return Site(validate(raw), clock, lambda _e: None, telemetry_interval=5.0), clock


def test_site_power_follows_the_grid_meter_and_reports_the_limit() -> None:
    raw = doc()
    raw["site"]["max_power_kw"] = 50
    site, clock = site_of(raw)
    grid = next(m["id"] for m in raw["meters"] if m["role"] == "grid")
    site.handle(MeterRead(grid, clock.now(), {"power": 12_500.0}))
    clock.advance(10)
    site.handle(MeterRead(grid, clock.now(), {"power": 20_000.0}))
    assert site.health()["power"] == {"kw": 20.0, "limit_kw": 50.0, "source": "grid"}
    history = site.power_history(60)
    assert history["limit_kw"] == 50.0 and history["step_s"] == 10
    assert [p["kw"] for p in history["points"]] == [12.5, 20.0]
    assert history["points"][0]["t"].startswith("2026-11-27T12:00:00")
    site.handle(MeterFailed(grid, clock.now(), "timeout"))
    assert site.health()["power"]["kw"] is None  # unknown, not zero


def test_without_a_grid_meter_site_power_is_the_sum_of_evse_power() -> None:
    raw = doc()
    raw["meters"] = [m for m in raw["meters"] if m["role"] != "grid" and not m["role"].startswith("evse:")]
    site, clock = site_of(raw)
    charger = raw["chargers"][0]["id"]
    key = f"{charger}/1"
    site.handle(TransactionStarted(key, charger, "1.6", 1, 1, "1", "TAG", clock.now(), 0.0))
    site.handle(
        TransactionUpdated(
            key, charger, "1.6", 1, 1, "1", "TAG", clock.now(), clock.now(), 500.0, 7_400.0, None
        )
    )
    assert site.health()["power"] == {"kw": 7.4, "limit_kw": None, "source": "evses"}
    # Both readings fall in one 10-s bucket: 0 kW at the start, 7.4 kW once metered.
    assert [p["kw"] for p in site.power_history(60)["points"]] == [pytest.approx(3.7)]


def test_max_power_kw_must_be_positive() -> None:
    raw = doc()
    raw["site"]["max_power_kw"] = 0
    with pytest.raises(ConfigError) as info:
        validate(raw)
    assert [p.key for p in info.value.problems] == ["site.max_power_kw"]
    raw["site"]["max_power_kw"] = "50"
    with pytest.raises(ConfigError):
        validate(raw)

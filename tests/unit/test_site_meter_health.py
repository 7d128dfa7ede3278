"""Site keeps the driver's health and value problems and shows them in health() (additive keys)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

from controller.core.config import validate
from controller.core.events import MeterFailed, MeterHealth, MeterRead
from controller.core.site import Site
from hil.siteconfig import SimMeter, SiteSpec, render

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.mono = 100.0

    def now(self) -> datetime:
        return T0

    def monotonic(self) -> float:
        return self.mono


def site() -> tuple[Site, FakeClock]:
    spec = SiteSpec(
        data_dir="/tmp/x", mqtt_url="mqtt://127.0.0.1:1883", meters=[SimMeter("grid", 5020, "grid")]
    )
    clock = FakeClock()
    return Site(validate(tomllib.loads(render(spec))), clock, lambda _e: None, 0.0), clock


def test_health_shows_state_counts_and_problems() -> None:
    s, clock = site()
    s.handle(MeterRead("grid", T0, {"power": 5.0, "energy_import": None}, {"energy_import": "rejected: x"}))
    s.handle(MeterHealth("grid", T0, "degraded", {"polls": 3, "timeouts": 1}, "timeout: no reply", T0, T0))
    (m,) = s.health()["meters"]
    assert m["ok"] is True and m["values"]["power"] == 5.0  # existing keys unchanged
    assert m["state"] == "degraded" and m["modbus"]["timeouts"] == 1
    assert m["problems"] == {"energy_import": "rejected: x"}
    clock.mono += 100.0  # stale: values and their problems are no longer shown
    (m,) = s.health()["meters"]
    assert m["ok"] is False and m["values"] == {} and m["problems"] == {}


def test_failed_meter_keeps_its_health_report() -> None:
    s, _ = site()
    s.handle(MeterHealth("grid", T0, "offline", {"polls": 3}, "timeout", T0, None))
    s.handle(MeterFailed("grid", T0, "timeout"))
    (m,) = s.health()["meters"]
    assert m["state"] == "offline" and m["last_error"] == "timeout" and m["modbus"]["last_good_at"] is None

"""Site state: status changes become OCPI publications; stale meter values are never reused."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.core.config import validate
from controller.core.events import (
    ChargerConnected,
    ChargerDisconnected,
    ConnectorStatusChanged,
    EvseStatusPublished,
    MeterFailed,
    MeterRead,
    TelemetryReady,
)
from controller.core.site import Site
from controller.core.status import EvseStatus

CONFIG = validate(tomllib.loads((Path(__file__).parents[2] / "docs" / "config.example.toml").read_text()))


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        self.mono += seconds


def make() -> tuple[Site, FakeClock, list[object]]:
    out: list[object] = []
    clock = FakeClock()
    return Site(CONFIG, clock, out.append, telemetry_interval=5.0), clock, out


def status(connector: int, value: str, clock: FakeClock) -> ConnectorStatusChanged:
    return ConnectorStatusChanged(
        "CP001", "1.6", connector, connector, value, None, clock.now(), {"status": value}
    )


def test_status_notification_publishes_mapped_status_once_per_change() -> None:
    site, clock, out = make()
    site.handle(ChargerConnected("CP001", "1.6", clock.now()))
    site.handle(status(1, "Available", clock))
    site.handle(status(1, "Available", clock))  # repeat: nothing new to say
    site.handle(status(1, "Preparing", clock))
    site.handle(status(1, "Charging", clock))  # still CHARGING in OCPI: no publication
    published = [e for e in out if isinstance(e, EvseStatusPublished)]
    assert [(e.evse_uid, e.status) for e in published] == [
        ("CP001-1", EvseStatus.AVAILABLE),
        ("CP001-1", EvseStatus.CHARGING),
    ]


def test_connector_zero_faulted_takes_every_evse_out_of_order() -> None:
    site, clock, out = make()
    site.handle(status(1, "Available", clock))
    site.handle(status(2, "Available", clock))
    out.clear()
    site.handle(status(0, "Faulted", clock))
    assert {(e.evse_uid, e.status) for e in out if isinstance(e, EvseStatusPublished)} == {
        ("CP001-1", EvseStatus.OUTOFORDER),
        ("CP001-2", EvseStatus.OUTOFORDER),
    }


def test_disconnect_makes_evses_unknown() -> None:
    site, clock, out = make()
    site.handle(ChargerConnected("CP001", "1.6", clock.now()))
    site.handle(status(1, "Charging", clock))
    out.clear()
    site.handle(ChargerDisconnected("CP001", clock.now()))
    assert [e.status for e in out if isinstance(e, EvseStatusPublished) and e.evse_uid == "CP001-1"] == [
        EvseStatus.UNKNOWN
    ]
    assert site.health()["chargers"][0]["connected"] is False


def test_unmapped_connector_and_unknown_charger_publish_nothing() -> None:
    site, clock, out = make()
    site.handle(status(9, "Available", clock))
    site.handle(ConnectorStatusChanged("STRANGER", "1.6", 1, 1, "Available", None, clock.now()))
    assert not [e for e in out if isinstance(e, EvseStatusPublished)]
    assert any(c["id"] == "STRANGER" and not c["configured"] for c in site.health()["chargers"])


def test_meter_values_go_stale_and_failures_clear_them() -> None:
    site, clock, _ = make()
    site.handle(MeterRead("grid", clock.now(), {"power": 1200.0}))
    assert site.meter_values("grid") == {"power": 1200.0}
    clock.advance(2.9)  # poll interval 1 s: stale after 3 periods
    assert site.meter_values("grid") == {"power": 1200.0}
    clock.advance(0.2)
    assert site.meter_values("grid") == {}
    health = site.health()["meters"][0]
    assert health["ok"] is False and health["last_reading_age_s"] == 3.1
    site.handle(MeterRead("grid", clock.now(), {"power": 1300.0}))
    site.handle(MeterFailed("grid", clock.now(), "timeout"))
    assert site.meter_values("grid") == {}
    assert site.health()["meters"][0]["last_error"] == "timeout"


def test_telemetry_is_rate_limited() -> None:
    site, clock, out = make()
    for _ in range(10):
        site.handle(MeterRead("grid", clock.now(), {"power": 1.0}))
        clock.advance(1.0)
    assert len([e for e in out if isinstance(e, TelemetryReady)]) == 2  # t=0 and t=5


def test_outbox_near_its_disk_bound_is_an_alarm_in_health() -> None:
    from controller.core.events import UplinkChanged

    site, clock, _ = make()
    site.handle(UplinkChanged(True, 10, clock.now(), "connected", dropped_telemetry=7, near_limit=True))
    health = site.health()
    assert health["uplink"]["near_limit"] is True and health["uplink"]["dropped_telemetry"] == 7
    assert health["status"] == "degraded"

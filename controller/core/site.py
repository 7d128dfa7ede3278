"""The site's live state: applies input events, decides what must be published, answers health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.config import Config
from controller.core.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ConnectorStatusChanged,
    EvseStatusPublished,
    MeterFailed,
    MeterRead,
    TelemetryReady,
    UplinkChanged,
)
from controller.core.status import EvseStatus, combine, ocpi_status

Emit = Callable[[object], None]


@dataclass(slots=True)
class EvseState:
    """One EVSE as the site sees it."""

    evse_uid: str
    charger_id: str
    ocpp_evse: int
    status: EvseStatus = EvseStatus.UNKNOWN
    last_updated: datetime | None = None
    connectors: dict[int, EvseStatus] = field(default_factory=dict)
    ocpp: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ChargerState:
    """One charge point as the site sees it."""

    charger_id: str
    configured: bool
    connected: bool = False
    ocpp_version: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    last_seen: datetime | None = None


@dataclass(slots=True)
class MeterState:
    """One meter's latest trusted reading (None once it failed)."""

    meter_id: str
    role: str
    poll_interval: float
    values: dict[str, float | None] = field(default_factory=dict)
    read_at: datetime | None = None
    read_mono: float | None = None
    last_error: str | None = None
    last_published_mono: float | None = None


@dataclass(slots=True)
class UplinkState:
    """The uplink as last reported by the sync adapter."""

    connected: bool = False
    backlog: int = 0
    since: datetime | None = None
    detail: str = ""


class Site:
    """Applies events to the site state and emits output events; all decisions, no I/O."""

    # A reading older than this many poll periods is stale and reported as unavailable.
    STALE_PERIODS = 3.0

    def __init__(self, config: Config, clock: Clock, emit: Emit, telemetry_interval: float) -> None:
        self._clock = clock
        self._emit = emit
        self._identity = {
            "name": config.site.name,
            "location_id": config.site.location_id,
            "country_code": config.site.country_code,
            "party_id": config.site.party_id,
        }
        self._telemetry_interval = telemetry_interval
        self.chargers: dict[str, ChargerState] = {}
        self.evses: dict[str, EvseState] = {}
        self._evse_by_ocpp: dict[tuple[str, int], str] = {}
        for c in config.chargers:
            self.chargers[c.id] = ChargerState(c.id, configured=True)
            for e in c.evses:
                self.evses[e.evse_uid] = EvseState(e.evse_uid, c.id, e.ocpp_evse)
                self._evse_by_ocpp[(c.id, e.ocpp_evse)] = e.evse_uid
        self.meters = {m.id: MeterState(m.id, m.role, m.poll_interval) for m in config.meters}
        self.uplink = UplinkState()

    # --- inputs ---------------------------------------------------------------------------

    def handle(self, event: object) -> None:
        """Apply one input event; unknown event types are ignored."""
        match event:
            case ChargerConnected():
                ch = self._charger(event.charger_id)
                ch.connected, ch.ocpp_version, ch.last_seen = True, event.ocpp_version, event.at
            case ChargerDisconnected():
                ch = self._charger(event.charger_id)
                ch.connected, ch.last_seen = False, event.at
                # OCPI: UNKNOWN "also used when offline"; the backend must not route drivers here.
                for evse in self._evses_of(event.charger_id):
                    evse.connectors = {k: EvseStatus.UNKNOWN for k in evse.connectors}
                    self._set_status(evse, EvseStatus.UNKNOWN, event.at, {"reason": "charger offline"})
            case ChargerBooted():
                ch = self._charger(event.charger_id)
                ch.vendor, ch.model, ch.firmware = event.vendor, event.model, event.firmware
                ch.last_seen = event.at
            case ConnectorStatusChanged():
                self._on_status(event)
            case MeterRead():
                self._on_meter(event)
            case MeterFailed():
                m = self.meters.get(event.meter_id)
                if m is not None:
                    m.values, m.read_at, m.read_mono, m.last_error = {}, None, None, event.reason
            case UplinkChanged():
                if event.connected != self.uplink.connected:
                    self.uplink.since = event.at
                self.uplink.connected, self.uplink.backlog = event.connected, event.backlog
                self.uplink.detail = event.detail

    def _charger(self, charger_id: str) -> ChargerState:
        return self.chargers.setdefault(charger_id, ChargerState(charger_id, configured=False))

    def _evses_of(self, charger_id: str) -> list[EvseState]:
        return [e for e in self.evses.values() if e.charger_id == charger_id]

    def _on_status(self, ev: ConnectorStatusChanged) -> None:
        ch = self._charger(ev.charger_id)
        ch.last_seen = ev.at
        mapped = ocpi_status(ev.ocpp_version, ev.ocpp_status)
        if ev.ocpp_evse == 0:
            # The whole charge point: only an inoperative state says anything about the EVSEs.
            if mapped in (EvseStatus.INOPERATIVE, EvseStatus.OUTOFORDER):
                for evse in self._evses_of(ev.charger_id):
                    self._set_status(evse, mapped, ev.at, dict(ev.raw))
            return
        uid = self._evse_by_ocpp.get((ev.charger_id, ev.ocpp_evse))
        if uid is None:
            return  # not mapped to an OCPI EVSE in the configuration: nothing to publish
        evse = self.evses[uid]
        evse.connectors[ev.connector_id] = mapped
        self._set_status(evse, combine(list(evse.connectors.values())), ev.at, dict(ev.raw))

    def _set_status(self, evse: EvseState, status: EvseStatus, at: datetime, raw: dict[str, Any]) -> None:
        changed = status != evse.status or evse.last_updated is None
        evse.ocpp = raw
        if not changed:
            return
        evse.status, evse.last_updated = status, at
        self._emit(EvseStatusPublished(evse.evse_uid, status, at, evse.charger_id, raw))

    def _on_meter(self, ev: MeterRead) -> None:
        m = self.meters.get(ev.meter_id)
        if m is None:
            return
        now = self._clock.monotonic()
        m.values, m.read_at, m.read_mono, m.last_error = dict(ev.values), ev.at, now, None
        due = m.last_published_mono is None or now - m.last_published_mono >= self._telemetry_interval
        if due:
            m.last_published_mono = now
            self._emit(TelemetryReady(m.meter_id, m.role, ev.at, dict(ev.values)))

    # --- queries --------------------------------------------------------------------------

    def meter_age(self, meter_id: str) -> float | None:
        """Seconds since the meter's last good reading, None if it has none."""
        m = self.meters[meter_id]
        return None if m.read_mono is None else max(0.0, self._clock.monotonic() - m.read_mono)

    def meter_values(self, meter_id: str) -> dict[str, float | None]:
        """The meter's values if fresh; empty when stale, so nobody reuses an old value."""
        m = self.meters[meter_id]
        age = self.meter_age(meter_id)
        if age is None or age > self.STALE_PERIODS * m.poll_interval:
            return {}
        return dict(m.values)

    def health(self) -> dict[str, Any]:
        """The site at a glance, as JSON-ready data (GET /api/health and the UI)."""
        chargers = []
        for ch in self.chargers.values():
            chargers.append(
                {
                    "id": ch.charger_id,
                    "configured": ch.configured,
                    "connected": ch.connected,
                    "ocpp_version": ch.ocpp_version,
                    "vendor": ch.vendor,
                    "model": ch.model,
                    "firmware": ch.firmware,
                    "last_seen": rfc3339(ch.last_seen) if ch.last_seen else None,
                    "evses": [
                        {
                            "evse_uid": e.evse_uid,
                            "ocpp_evse": e.ocpp_evse,
                            "status": e.status.value,
                            "last_updated": rfc3339(e.last_updated) if e.last_updated else None,
                        }
                        for e in self._evses_of(ch.charger_id)
                    ],
                }
            )
        meters = []
        for m in self.meters.values():
            age = self.meter_age(m.meter_id)
            fresh = self.meter_values(m.meter_id)
            meters.append(
                {
                    "id": m.meter_id,
                    "role": m.role,
                    "ok": bool(fresh),
                    "last_reading_age_s": None if age is None else round(age, 3),
                    "values": fresh,
                    "last_error": m.last_error,
                }
            )
        ok = (
            self.uplink.connected
            and all(c["connected"] for c in chargers if c["configured"])
            and all(m["ok"] for m in meters)
        )
        return {
            "status": "ok" if ok else "degraded",
            "site": dict(self._identity),
            "time": rfc3339(self._clock.now()),
            "uplink": {
                "connected": self.uplink.connected,
                "backlog": self.uplink.backlog,
                "since": rfc3339(self.uplink.since) if self.uplink.since else None,
                "detail": self.uplink.detail,
            },
            "chargers": chargers,
            "meters": meters,
        }

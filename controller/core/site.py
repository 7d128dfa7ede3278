"""The site's live state: applies input events, decides what must be published, answers health."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.config import Config, MeterSettings
from controller.core.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargerReported,
    ConnectorStatusChanged,
    EvseStatusPublished,
    MaintenanceRequested,
    MeterFailed,
    MeterHealth,
    MeterRead,
    ModbusChargerStatus,
    TelemetryReady,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    UplinkChanged,
)
from controller.core.maintenance import (
    REQUESTED,
    SECURITY_EVENTS_KEPT,
    Progress,
    follows,
    progress_of,
    security_event,
)
from controller.core.power_history import PowerHistory
from controller.core.registry import ChargerApproved
from controller.core.status import EvseStatus, combine, ocpi_status
from controller.core.transactions import TransactionRecord

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
    transaction: TransactionView | None = None


@dataclass(slots=True)
class TransactionView:
    """The running transaction of an EVSE, as health() shows it."""

    key: str
    id_tag: str | None
    started: datetime | None
    energy_wh: float | None = None
    power_w: float | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for health()."""
        return {
            "id": self.key,
            "id_tag": self.id_tag,
            "started": rfc3339(self.started) if self.started else None,
            "energy_wh": self.energy_wh,
            "power_w": self.power_w,
        }


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
    approved: bool = False  # approved in the registry though not configured: EVSEs are adopted
    firmware_update: Progress | None = None  # the latest FirmwareStatusNotification
    log_upload: Progress | None = None  # the latest Diagnostics/LogStatusNotification
    # The latest SecurityEventNotifications, newest last (all of them are in the message log).
    security_events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SECURITY_EVENTS_KEPT))


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
    problems: dict[str, str] = field(default_factory=dict)  # why a value is missing or rejected
    value_ages: dict[str, float] = field(default_factory=dict)  # older-than-the-reading values
    device: MeterHealth | None = None  # the Modbus driver's health report


@dataclass(slots=True)
class ModbusChargerState:
    """A charger controlled over Modbus: its latest status report and when it arrived."""

    charger_id: str
    evse_uid: str | None
    poll_interval: float
    status: ModbusChargerStatus | None = None
    status_mono: float | None = None


@dataclass(slots=True)
class UplinkState:
    """The uplink as last reported by the sync adapter."""

    connected: bool = False
    backlog: int = 0
    since: datetime | None = None
    detail: str = ""
    dropped_telemetry: int = 0
    near_limit: bool = False


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
        self.modbus_chargers = {
            c.id: ModbusChargerState(c.id, c.evse_uid, c.poll_interval) for c in config.modbus_chargers
        }
        self._max_power_kw = config.site.max_power_kw
        self._grid_meters = [m.id for m in config.meters if m.role == "grid"]
        self._evse_meters = {m.role[5:]: m.id for m in config.meters if m.role.startswith("evse:")}
        self._power = PowerHistory()

    def _set_progress(self, charger_id: str, progress: Progress, new_request: bool = False) -> None:
        """Show a firmware or log progress; a late note about an earlier 2.0.1 request is ignored."""
        ch = self._charger(charger_id)
        current = ch.firmware_update if progress.kind == "firmware" else ch.log_upload
        if new_request:
            # `at` is when the request was sent: a note heard since (a charger may answer and report
            # before the answer reaches the caller) is already newer than "requested".
            if current is not None and current.at >= progress.at:
                return
        elif not follows(current, progress):
            return
        if progress.kind == "firmware":
            ch.firmware_update = progress
        else:
            ch.log_upload = progress

    def add_meter(self, m: MeterSettings) -> None:
        """Take a meter commissioned while running into the site (its role counts from now on)."""
        self.meters[m.id] = MeterState(m.id, m.role, m.poll_interval)
        if m.role == "grid":
            self._grid_meters.append(m.id)
        elif m.role.startswith("evse:"):
            self._evse_meters[m.role[5:]] = m.id

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
            case ChargerApproved():
                self._charger(event.charger_id).approved = True
            case ChargerReported() if event.message == "SecurityEventNotification":
                self._charger(event.charger_id).security_events.append(security_event(event))
            case ChargerReported():
                progress = progress_of(event.message, dict(event.data), event.at)
                if progress is not None:
                    self._set_progress(event.charger_id, progress)
            case MaintenanceRequested():
                requested = Progress(event.kind, REQUESTED, event.at, event.request_id)
                self._set_progress(event.charger_id, requested, new_request=True)
            case MeterRead():
                self._on_meter(event)
            case MeterHealth():
                if (hm := self.meters.get(event.meter_id)) is not None:
                    hm.device = event
            case ModbusChargerStatus():
                if (mc := self.modbus_chargers.get(event.charger_id)) is not None:
                    mc.status, mc.status_mono = event, self._clock.monotonic()
            case MeterFailed():
                m = self.meters.get(event.meter_id)
                if m is not None:
                    m.values, m.read_at, m.read_mono, m.last_error = {}, None, None, event.reason
            case TransactionStarted() | TransactionUpdated() | TransactionEnded():
                self._on_transaction(event)
                self._sample_power()
            case UplinkChanged():
                if event.connected != self.uplink.connected:
                    self.uplink.since = event.at
                self.uplink.connected, self.uplink.backlog = event.connected, event.backlog
                self.uplink.detail = event.detail
                self.uplink.dropped_telemetry, self.uplink.near_limit = (
                    event.dropped_telemetry,
                    event.near_limit,
                )

    def resume_transactions(self, records: list[TransactionRecord]) -> None:
        """Know the transactions that were running when the controller last stopped."""
        for rec in records:
            evse = self._evse_at(rec.charger_id, rec.ocpp_evse)
            if evse is not None and not rec.ended:
                evse.transaction = TransactionView(
                    rec.key, rec.id_tag, rec.started_at, rec.energy_wh, rec.power_w
                )

    def running_transactions(self) -> dict[str, str]:
        """Transaction key of every EVSE with a running transaction, by evse_uid."""
        return {uid: e.transaction.key for uid, e in self.evses.items() if e.transaction is not None}

    def evse_status(self, evse_uid: str) -> str | None:
        """An EVSE's current OCPI status, None if the site has no such EVSE."""
        evse = self.evses.get(evse_uid)
        return None if evse is None else evse.status.value

    def evse_uid_of(self, charger_id: str, ocpp_evse: int | None) -> str | None:
        """The OCPI EVSE uid of a charger's OCPP EVSE (configured or adopted), None if unmapped."""
        evse = self._evse_at(charger_id, ocpp_evse)
        return None if evse is None else evse.evse_uid

    def _evse_at(self, charger_id: str, ocpp_evse: int | None) -> EvseState | None:
        uid = None if ocpp_evse is None else self._evse_by_ocpp.get((charger_id, ocpp_evse))
        return None if uid is None else self.evses[uid]

    def _on_transaction(self, ev: TransactionStarted | TransactionUpdated | TransactionEnded) -> None:
        evse = self._evse_at(ev.charger_id, ev.ocpp_evse)
        if evse is None:
            return  # not a configured EVSE (or a 1.6 message that names none): nothing to show
        match ev:
            case TransactionStarted():
                evse.transaction = TransactionView(ev.key, ev.id_tag, ev.started_at, 0.0, None)
            case TransactionUpdated():
                view = evse.transaction
                if view is None or view.key != ev.key:
                    view = evse.transaction = TransactionView(ev.key, ev.id_tag, ev.started_at)
                view.energy_wh, view.power_w = ev.energy_wh, ev.power_w
            case TransactionEnded():
                if evse.transaction is not None and evse.transaction.key == ev.key:
                    evse.transaction = None

    def _charger(self, charger_id: str) -> ChargerState:
        return self.chargers.setdefault(charger_id, ChargerState(charger_id, configured=False))

    def _adopt(self, charger_id: str, ocpp_evse: int) -> str | None:
        """An approved, unconfigured charger's EVSE n becomes evse_uid "{id}-{n}" when first reported."""
        ch = self.chargers.get(charger_id)
        if ch is None or ch.configured or not ch.approved:
            return None
        uid = f"{charger_id}-{ocpp_evse}"
        if uid in self.evses or len(uid) > 36:
            return None  # taken by a configured EVSE, or too long for an OCPI uid: configure it
        self.evses[uid] = EvseState(uid, charger_id, ocpp_evse)
        self._evse_by_ocpp[(charger_id, ocpp_evse)] = uid
        return uid

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
        uid = self._evse_by_ocpp.get((ev.charger_id, ev.ocpp_evse)) or self._adopt(
            ev.charger_id, ev.ocpp_evse
        )
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
        m.problems, m.value_ages = dict(ev.problems), dict(ev.value_ages)
        self._sample_power()
        due = m.last_published_mono is None or now - m.last_published_mono >= self._telemetry_interval
        if due:
            m.last_published_mono = now
            self._emit(TelemetryReady(m.meter_id, m.role, ev.at, dict(ev.values)))

    def _sample_power(self) -> None:
        kw = self.site_power_kw()
        if kw is not None:
            self._power.record(self._clock.now(), kw)

    # --- queries --------------------------------------------------------------------------

    def site_power_kw(self) -> float | None:
        """Site power now: the grid meters' power, else the sum over EVSEs; None if unknown."""
        if self._grid_meters:
            readings = [self.meter_values(m).get("power") for m in self._grid_meters]
            # One grid meter out means the site total is unknown, not smaller.
            if any(w is None for w in readings):
                return None
            return sum(w for w in readings if w is not None) / 1000.0
        if not self.evses:
            return None
        total_w = 0.0
        for uid, evse in self.evses.items():
            meter = self._evse_meters.get(uid)
            w = self.meter_values(meter).get("power") if meter is not None else None
            if w is None and evse.transaction is not None:
                w = evse.transaction.power_w  # the charger's own MeterValues when no Modbus meter
            total_w += w or 0.0
        return total_w / 1000.0

    def power_history(self, minutes: int) -> dict[str, Any]:
        """Site power over the last `minutes` as 10-second averages, with the configured limit."""
        points = self._power.points(self._clock.now(), minutes * 60.0)
        return {
            "limit_kw": self._max_power_kw,
            "source": "grid" if self._grid_meters else "evses",
            "step_s": self._power.step_s,
            "points": [{"t": rfc3339(t), "kw": round(kw, 3)} for t, kw in points],
        }

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
        """The site at a glance, as JSON-ready data (GET /api/v1/health and the UI)."""
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
                    "firmware_update": ch.firmware_update.as_json() if ch.firmware_update else None,
                    "log_upload": ch.log_upload.as_json() if ch.log_upload else None,
                    "security_events": list(reversed(ch.security_events)),
                    "last_seen": rfc3339(ch.last_seen) if ch.last_seen else None,
                    "evses": [
                        {
                            "evse_uid": e.evse_uid,
                            "ocpp_evse": e.ocpp_evse,
                            "status": e.status.value,
                            "last_updated": rfc3339(e.last_updated) if e.last_updated else None,
                            "transaction": e.transaction.as_json() if e.transaction else None,
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
                    "state": m.device.state if m.device else None,
                    "problems": dict(m.problems) if fresh else {},
                    "value_ages_s": dict(m.value_ages) if fresh else {},
                    "modbus": _device_json(m.device),
                }
            )
        modbus_chargers = [self._modbus_charger_json(mc) for mc in self.modbus_chargers.values()]
        ok = (
            self.uplink.connected
            and not self.uplink.near_limit
            and all(c["connected"] for c in chargers if c["configured"])
            and all(m["ok"] for m in meters)
            and all(mc["ok"] for mc in modbus_chargers)
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
                "dropped_telemetry": self.uplink.dropped_telemetry,
                "near_limit": self.uplink.near_limit,
            },
            "chargers": chargers,
            "meters": meters,
            "modbus_chargers": modbus_chargers,
            "power": {
                "kw": self.site_power_kw(),
                "limit_kw": self._max_power_kw,
                "source": "grid" if self._grid_meters else "evses",
            },
        }

    def _modbus_charger_json(self, mc: ModbusChargerState) -> dict[str, Any]:
        """A Modbus charger for health(): fresh status only, like a meter's values."""
        st = mc.status
        age = None if mc.status_mono is None else max(0.0, self._clock.monotonic() - mc.status_mono)
        fresh = st is not None and age is not None and age <= self.STALE_PERIODS * mc.poll_interval
        return {
            "id": mc.charger_id,
            "evse_uid": mc.evse_uid,
            # ok: read in time, reachable, and its watchdog (if it has one) kept alive.
            "ok": bool(fresh and st and st.health in ("ok", "degraded") and st.watchdog_ok is not False),
            "state": st.state if fresh and st else None,
            "health": st.health if st else None,
            "setpoint_a": st.setpoint if st else None,
            "current_applied_a": st.current_applied if fresh and st else None,
            "failsafe_current_a": st.failsafe_current if st else None,
            "watchdog_ok": st.watchdog_ok if st else None,
            "last_status_age_s": None if age is None else round(age, 3),
            "values": dict(st.values) if fresh and st else {},
            "problems": dict(st.problems) if st else {},
            "last_error": st.last_error if st else None,
        }


def _device_json(h: MeterHealth | None) -> dict[str, Any] | None:
    """A driver health report as JSON-ready data (None before the first poll)."""
    if h is None:
        return None
    return {
        "state": h.state,
        **h.counts,
        "last_error": h.last_error,
        "last_error_at": rfc3339(h.last_error_at) if h.last_error_at else None,
        "last_good_at": rfc3339(h.last_good_at) if h.last_good_at else None,
    }

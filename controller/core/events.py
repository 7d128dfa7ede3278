"""Events that flow one way through the site: adapters publish inputs, the core publishes outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from controller.core.status import EvseStatus

# --- inputs: facts adapters observed -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargerConnected:
    """A charge point opened its OCPP WebSocket."""

    charger_id: str
    ocpp_version: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargerDisconnected:
    """A charge point's OCPP WebSocket closed (its EVSEs become UNKNOWN)."""

    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargerBooted:
    """A charge point sent BootNotification."""

    charger_id: str
    vendor: str
    model: str
    serial: str | None
    firmware: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ConnectorStatusChanged:
    """A charge point reported a connector (or EVSE) status."""

    charger_id: str
    ocpp_version: str
    ocpp_evse: int  # 1.6: connectorId; 2.0.1: evseId (0 = the whole charge point)
    connector_id: int
    ocpp_status: str
    error_code: str | None
    at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MeterRead:
    """A meter poll succeeded; values are SI (W, Wh, V, A, Hz), None where unavailable."""

    meter_id: str
    at: datetime
    values: Mapping[str, float | None]
    # Why a value is None (sentinel, rejected counter jump, ...), by value name.
    problems: Mapping[str, str] = field(default_factory=dict)
    # Seconds a value was read before `at` (slow-rate values carried over from an earlier poll).
    value_ages: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MeterHealth:
    """A Modbus device's health after a poll: ok/degraded/offline, error counts, last error."""

    meter_id: str
    at: datetime
    state: str  # unknown | ok | degraded | offline
    counts: Mapping[str, int]  # polls, requests, timeouts, crc_errors, exceptions, bad_replies, ...
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_good_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MeterFailed:
    """A meter poll failed; its last values must no longer be trusted."""

    meter_id: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class ModbusChargerStatus:
    """A charger controlled over Modbus after a poll or a write: IEC state, current, watchdog, health."""

    charger_id: str
    at: datetime
    state: str | None  # IEC 61851 A..F; None when unknown or the charger is unreachable
    current_applied: float | None  # A the charger applies (its own report, else the verified setpoint)
    setpoint: float | None  # A siteedge asked for (0 = paused); None before anyone asked
    watchdog_ok: bool | None  # the charger's watchdog kept alive in time; None: it has none or it is off
    health: str  # unknown | ok | degraded | offline (as for meters)
    evse_uid: str | None = None
    failsafe_current: float | None = None  # A the charger falls back to, as read from it (None: unknown)
    values: Mapping[str, float | None] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)  # e.g. watchdog off, failsafe not programmable
    counts: Mapping[str, int] = field(default_factory=dict)
    last_error: str | None = None
    last_good_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UplinkChanged:
    """The uplink's connection state or backlog changed."""

    connected: bool
    backlog: int
    at: datetime
    detail: str = ""
    dropped_telemetry: int = 0  # telemetry dropped to keep the outbox within its disk bound
    near_limit: bool = False  # the outbox is close to its disk bound: an alarm for technicians


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampled value as a charger reported it, the same for OCPP 1.6 and 2.0.1."""

    at: datetime
    measurand: str  # OCPP measurand, default Energy.Active.Import.Register
    value: float | None  # None when not numeric (a 1.6 SignedData block)
    unit: str  # as reported: Wh, kWh, W, kW, A, V, Percent, ...
    multiplier: int = 0  # 2.0.1 unitOfMeasure.multiplier: value x 10^multiplier
    phase: str | None = None
    context: str | None = None
    location: str | None = None
    signed: Mapping[str, Any] | None = None  # signed data as received (format unresolved, see STANDARDS)

    def si(self) -> float | None:
        """The value in Wh, W, varh, var or the reported unit otherwise; None if not numeric."""
        if self.value is None:
            return None
        scale = 10.0**self.multiplier
        if self.unit in ("kWh", "kW", "kvarh", "kvar", "kVA", "kVAh"):
            scale *= 1000.0
        return self.value * scale


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    """A charging transaction began (or siteedge first heard of it), either protocol version."""

    key: str  # siteedge-wide: "{charger_id}/{ocpp transaction id}"
    charger_id: str
    ocpp_version: str
    ocpp_evse: int | None  # 1.6: connectorId; 2.0.1: evseId
    connector_id: int | None
    ocpp_transaction_id: str
    id_tag: str | None
    started_at: datetime
    meter_start_wh: float | None
    offline: bool = False
    remote_start_id: int | None = None


@dataclass(frozen=True, slots=True)
class TransactionUpdated:
    """A running transaction reported meter samples or a charging state."""

    key: str
    charger_id: str
    ocpp_version: str
    ocpp_evse: int | None
    connector_id: int | None
    ocpp_transaction_id: str
    id_tag: str | None
    started_at: datetime | None
    at: datetime
    energy_wh: float | None  # delivered so far (register - meter start), None if unknown
    power_w: float | None
    charging_state: str | None
    samples: tuple[MeterSample, ...] = ()
    offline: bool = False


@dataclass(frozen=True, slots=True)
class TransactionAuthorizationFailed:
    """The site's verdict on a running transaction's token is negative (e.g. started offline).

    The transaction is kept (never dropped): the charger applies StopTransactionOnInvalidId and
    the session is marked INVALID for the backend (not billed).
    """

    key: str
    charger_id: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TransactionEnded:
    """A transaction stopped; the facts a session record and a CDR need."""

    key: str
    charger_id: str
    ocpp_version: str
    ocpp_evse: int | None
    connector_id: int | None
    ocpp_transaction_id: str
    id_tag: str | None
    started_at: datetime | None  # None if siteedge never heard the start
    stopped_at: datetime
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_wh: float | None
    stop_reason: str
    samples: tuple[MeterSample, ...] = ()
    offline: bool = False


@dataclass(frozen=True, slots=True)
class MeterValuesReported:
    """A charger sent meter samples outside any transaction."""

    charger_id: str
    ocpp_version: str
    ocpp_evse: int
    at: datetime
    samples: tuple[MeterSample, ...]


@dataclass(frozen=True, slots=True)
class TransactionAnomaly:
    """Something about a transaction message was off (seqNo gap, unknown or stopped transaction)."""

    key: str | None
    charger_id: str
    detail: str
    at: datetime


@dataclass(frozen=True, slots=True)
class MaintenanceRequested:
    """A charger accepted a firmware update or log upload; its status notes will follow."""

    charger_id: str
    kind: str  # firmware | logs
    at: datetime  # when the request was sent
    request_id: int | None = None  # 2.0.1: the requestId its notes carry


@dataclass(frozen=True, slots=True)
class ChargerReported:
    """A charger notification without site-state effect (firmware, diagnostics, log, security, ...)."""

    charger_id: str
    ocpp_version: str
    message: str  # the OCPP action, e.g. SecurityEventNotification
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


# --- outputs: what the core decided the world must hear ------------------------------------


@dataclass(frozen=True, slots=True)
class EvseStatusPublished:
    """An EVSE's OCPI status changed: the backend and the UI must learn it."""

    evse_uid: str
    status: EvseStatus
    last_updated: datetime
    charger_id: str
    ocpp: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TelemetryReady:
    """A meter reading is due for the uplink (rate-limited by the core)."""

    meter_id: str
    role: str
    at: datetime
    values: Mapping[str, float | None]


E = TypeVar("E")
Handler = Callable[[Any], None]


class EventBus:
    """Synchronous, in-process publish/subscribe by event type; handlers must not block."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Call handler for every event of exactly this type, in subscription order."""
        self._handlers.setdefault(event_type, []).append(handler)

    def publish(self, event: object) -> None:
        """Deliver event to its subscribers now; a failing handler does not starve the others."""
        errors: list[Exception] = []
        for handler in self._handlers.get(type(event), []):
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - one broken subscriber must not stop the site
                errors.append(exc)
        if errors:
            raise ExceptionGroup(f"{len(errors)} handler(s) failed for {type(event).__name__}", errors)

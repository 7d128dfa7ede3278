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


@dataclass(frozen=True, slots=True)
class MeterFailed:
    """A meter poll failed; its last values must no longer be trusted."""

    meter_id: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class UplinkChanged:
    """The uplink's connection state or backlog changed."""

    connected: bool
    backlog: int
    at: datetime
    detail: str = ""


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

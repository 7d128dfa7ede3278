"""OCPP connector status to OCPI EVSE status (OCPI defines no mapping; see docs/architecture.md)."""

from __future__ import annotations

from enum import StrEnum


class EvseStatus(StrEnum):
    """OCPI 2.2.1 EvseStatus."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


# OCPP 1.6 ChargePointStatus: every "a car is on this connector" state is CHARGING in OCPI,
# because OCPI has no "occupied" and a roaming app must not send a second driver there.
_V16 = {
    "Available": EvseStatus.AVAILABLE,
    "Preparing": EvseStatus.CHARGING,
    "Charging": EvseStatus.CHARGING,
    "SuspendedEV": EvseStatus.CHARGING,
    "SuspendedEVSE": EvseStatus.CHARGING,
    "Finishing": EvseStatus.CHARGING,
    "Reserved": EvseStatus.RESERVED,
    "Unavailable": EvseStatus.INOPERATIVE,
    "Faulted": EvseStatus.OUTOFORDER,
}

# OCPP 2.0.1 ConnectorStatusEnumType, as the citrineos OCPI mapper does it.
_V201 = {
    "Available": EvseStatus.AVAILABLE,
    "Occupied": EvseStatus.CHARGING,
    "Reserved": EvseStatus.RESERVED,
    "Unavailable": EvseStatus.INOPERATIVE,
    "Faulted": EvseStatus.OUTOFORDER,
}


def ocpi_status(ocpp_version: str, ocpp_status: str) -> EvseStatus:
    """Map one OCPP connector status to OCPI; anything unrecognised is UNKNOWN."""
    table = _V16 if ocpp_version.startswith("1.6") or ocpp_version == "ocpp1.6" else _V201
    return table.get(ocpp_status, EvseStatus.UNKNOWN)


# An EVSE serves one car at a time: a connector in use makes the whole EVSE busy; otherwise
# the EVSE is as usable as its most usable connector.
_PRECEDENCE = [
    EvseStatus.CHARGING,
    EvseStatus.RESERVED,
    EvseStatus.AVAILABLE,
    EvseStatus.BLOCKED,
    EvseStatus.INOPERATIVE,
    EvseStatus.OUTOFORDER,
    EvseStatus.UNKNOWN,
]


def combine(statuses: list[EvseStatus]) -> EvseStatus:
    """Status of an EVSE from its connectors' statuses (UNKNOWN when none is known)."""
    known = [s for s in statuses if s in _PRECEDENCE]
    if not known:
        return EvseStatus.UNKNOWN
    return min(known, key=_PRECEDENCE.index)

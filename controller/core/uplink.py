"""What the backend must hear for each output event, as outbox messages (docs/mqtt-contract.md)."""

from __future__ import annotations

from typing import Any

from controller.core.clock import rfc3339
from controller.core.envelope import Lane, Outgoing, Topics
from controller.core.events import EvseStatusPublished, TelemetryReady


def status_messages(ev: EvseStatusPublished, topics: Topics) -> list[Outgoing]:
    """Retained latest status (coalesced per EVSE) plus one entry in the ordered history stream."""
    data = {
        "evse_uid": ev.evse_uid,
        "status": ev.status.value,
        "last_updated": rfc3339(ev.last_updated),
        "charger_id": ev.charger_id,
        "ocpp": dict(ev.ocpp),
    }
    return [
        Outgoing(
            topic=topics.evse_status(ev.evse_uid),
            stream=f"evse_status/{ev.evse_uid}",
            type="evse_status",
            data=data,
            lane=Lane.STATUS,
            retain=True,
            coalesce_key=f"evse_status/{ev.evse_uid}",
        ),
        Outgoing(
            topic=topics.status_events(),
            stream="events/status",
            type="evse_status",
            data=data,
            lane=Lane.SESSION,
        ),
    ]


def telemetry_message(ev: TelemetryReady, topics: Topics) -> Outgoing:
    """One meter reading for the telemetry lane (QoS 0, droppable, counted when dropped)."""
    return Outgoing(
        topic=topics.meter_telemetry(ev.meter_id),
        stream=f"telemetry/{ev.meter_id}",
        type="meter_reading",
        data={"meter_id": ev.meter_id, "role": ev.role, "read_at": rfc3339(ev.at), "values": dict(ev.values)},
        lane=Lane.TELEMETRY,
        qos=0,
    )


def location_message(location: dict[str, Any], topics: Topics) -> Outgoing:
    """The retained OCPI Location, unwrapped so the backend can forward it unchanged."""
    return Outgoing(
        topic=topics.location(),
        stream="location",
        type="location",
        data=location,
        lane=Lane.STATUS,
        retain=True,
        envelope=False,
        coalesce_key="location",
    )

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


def rejection_message(topic: str, reason: str, topics: Topics) -> Outgoing:
    """Tell the backend a downlink message was refused, and why (nothing of it was applied)."""
    return Outgoing(
        topic=topics.errors(),
        stream="errors",
        type="downlink_rejected",
        data={"topic": topic, "reason": reason},
        lane=Lane.COMMAND,
    )


def token_state_message(version: int, count: int, topics: Topics) -> Outgoing:
    """The whitelist version the box holds, so the backend sends deltas from there."""
    return Outgoing(
        topic=topics.token_state(),
        stream="tokens/state",
        type="token_state",
        data={"version": version, "count": count},
        lane=Lane.COMMAND,
    )


def token_resync_message(have_version: int, reason: str, topics: Topics) -> Outgoing:
    """Ask the backend for a full whitelist snapshot (after a gap or a broken snapshot)."""
    return Outgoing(
        topic=topics.token_resync(),
        stream="tokens/resync",
        type="token_resync_request",
        data={"have_version": have_version, "reason": reason},
        lane=Lane.COMMAND,
    )


def auth_request_message(
    request_id: str, uid: str, token_type: str, evse_uid: str | None, location_id: str, topics: Topics
) -> Outgoing:
    """A real-time authorization request; the answer comes on auth/responses/{request_id}."""
    return Outgoing(
        topic=topics.auth_requests(),
        stream="auth/requests",
        type="auth_request",
        data={
            "request_id": request_id,
            "token_uid": uid,
            "token_type": token_type,
            "location_id": location_id,
            "evse_uid": evse_uid,
        },
        lane=Lane.COMMAND,
    )


def session_message(session: dict[str, Any], topics: Topics) -> Outgoing:
    """The full OCPI Session (PUT semantics), ordered per session, never dropped."""
    return Outgoing(
        topic=topics.session(session["id"]),
        stream=f"sessions/{session['id']}",
        type="session",
        data=session,
        lane=Lane.SESSION,
    )


def cdr_message(cdr: dict[str, Any], topics: Topics) -> Outgoing:
    """The OCPI CDR of a finished session, sent once (a re-send after a crash is the same CDR)."""
    return Outgoing(
        topic=topics.cdr(cdr["id"]),
        stream=f"cdrs/{cdr['id']}",
        type="cdr",
        data=cdr,
        lane=Lane.SESSION,
    )


def _message(text: str) -> list[dict[str, str]]:
    return [{"language": "en", "text": text[:512]}] if text else []


def command_response_message(
    command_id: str, result: str, timeout_s: int, why: str, topics: Topics
) -> Outgoing:
    """OCPI CommandResponse, at once: whether the command was taken on."""
    data: dict[str, Any] = {"result": result, "timeout": timeout_s}
    if why:
        data["message"] = _message(why)
    return Outgoing(
        topic=topics.command_response(command_id),
        stream="commands",
        type="command_response",
        data=data,
        lane=Lane.COMMAND,
    )


def command_result_message(command_id: str, result: str, why: str, topics: Topics) -> Outgoing:
    """OCPI CommandResult, once the charger acted or the timeout passed."""
    data: dict[str, Any] = {"result": result}
    if why:
        data["message"] = _message(why)
    return Outgoing(
        topic=topics.command_result(command_id),
        stream="commands",
        type="command_result",
        data=data,
        lane=Lane.COMMAND,
    )

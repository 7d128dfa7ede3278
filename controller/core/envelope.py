"""The uplink envelope and topics of the MQTT contract (docs/mqtt-contract.md)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core.clock import rfc3339


class Lane:
    """Outbox lanes: lower drains first. Status and commands beat backlog (AFIR freshness)."""

    STATUS = 0
    COMMAND = 1
    SESSION = 2
    TELEMETRY = 3


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the site wants the backend to receive, before the outbox numbers it."""

    topic: str
    stream: str
    type: str
    data: dict[str, Any]
    lane: int
    qos: int = 1
    retain: bool = False
    envelope: bool = True
    coalesce_key: str | None = None  # a newer message with the same key replaces an unsent one


def uuid7() -> str:
    """A time-ordered UUIDv7 (RFC 9562), so ids sort by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def wrap(msg_id: str, seq: int, ts: datetime, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The envelope every non-retained up message carries: id, per-stream seq, ts, type, data."""
    return {"id": msg_id, "seq": seq, "ts": rfc3339(ts), "type": type_, "data": data}


class Topics:
    """Topic names under one site's root; nothing is published outside {root}/#."""

    def __init__(self, root: str) -> None:
        self.root = root

    def online(self) -> str:
        return f"{self.root}/online"

    def location(self) -> str:
        return f"{self.root}/location"

    def evse_status(self, evse_uid: str) -> str:
        return f"{self.root}/evses/{evse_uid}/status"

    def status_events(self) -> str:
        return f"{self.root}/events/status"

    def meter_telemetry(self, meter_id: str) -> str:
        return f"{self.root}/telemetry/meters/{meter_id}"

    def errors(self) -> str:
        return f"{self.root}/errors"

    def token_state(self) -> str:
        return f"{self.root}/tokens/state"

    def token_resync(self) -> str:
        return f"{self.root}/tokens/resync"

    def auth_requests(self) -> str:
        return f"{self.root}/auth/requests"

    def command_response(self, command_id: str) -> str:
        return f"{self.root}/commands/{command_id}/response"

    def command_result(self, command_id: str) -> str:
        return f"{self.root}/commands/{command_id}/result"

    def session(self, session_id: str) -> str:
        return f"{self.root}/sessions/{session_id}"

    def cdr(self, cdr_id: str) -> str:
        return f"{self.root}/cdrs/{cdr_id}"

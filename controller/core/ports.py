"""Interfaces the core needs from the outside world; adapters implement them, app.py wires them."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from controller.core.envelope import Outgoing
from controller.core.msglog import OcppFrame
from controller.core.transactions import Decision, TransactionFact, TransactionRecord


@dataclass(frozen=True, slots=True)
class Stored:
    """An outbox message as stored: numbered, enveloped, ready to publish."""

    row: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    lane: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Backlog counts for health and alarms."""

    pending: int
    bytes: int
    dropped_telemetry: int
    near_limit: bool


class Outbox(Protocol):
    """Durable store-and-forward queue: nothing leaves it before the broker acknowledged it."""

    def put(self, messages: Sequence[Outgoing]) -> Future[None]:
        """Queue messages for the writer; the future resolves once they are committed to disk."""
        ...

    def pending(self, limit: int, exclude: set[int]) -> list[Stored]:
        """Up to `limit` committed messages not in `exclude`, lane first, then insertion order."""
        ...

    def ack(self, rows: Sequence[int]) -> Future[None]:
        """Forget delivered messages (idempotent); resolves once committed."""
        ...

    def stats(self) -> OutboxStats:
        """Current backlog figures."""
        ...

    def close(self) -> None:
        """Flush pending writes and close; later calls fail."""
        ...


class DocumentStore(Protocol):
    """Small human-readable documents (charger registry, users), written atomically."""

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The document stored under key, or None."""
        ...

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        """Insert or replace the document under key; durable when this returns."""
        ...

    def delete(self, table: str, key: str) -> None:
        """Remove the document under key if present; durable when this returns."""
        ...

    def all(self, table: str) -> dict[str, dict[str, Any]]:
        """Every document of a table by key."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


class MessageLog(Protocol):
    """Bounded, persisted per-charger OCPP frame log for diagnostics (not a durable record)."""

    def record(self, frame: OcppFrame) -> None:
        """Queue a redacted frame for writing; never blocks the caller on disk."""
        ...

    def recent(self, charger_id: str, limit: int, action: str | None = None) -> list[OcppFrame]:
        """The charger's newest frames, newest first; blocking (call it off the loop)."""
        ...

    def close(self) -> None:
        """Write what is queued and close."""
        ...


class ChargerAdmin(Protocol):
    """The charger registry as the web API sees it: list, approve, reject."""

    def listing(self) -> list[dict[str, Any]]:
        """Every known charger with its registration state and last boot data, JSON-ready."""
        ...

    def approve(self, charger_id: str) -> bool:
        """Approve a charger (its next boot is Accepted); False if the registry never saw it."""
        ...

    def reject(self, charger_id: str) -> bool:
        """Reject a charger (its next boot is Rejected); False if the registry never saw it."""
        ...


class ModbusBusy(Exception):
    """A commissioning request was refused because the bus (or the scan budget) is busy."""


class ModbusControl(Protocol):
    """The Modbus side as the web API sees it: device health and commissioning helpers."""

    def devices(self) -> dict[str, Any]:
        """Every bus and device with health counters, timing and read plan, JSON-ready."""
        ...

    async def start_scan(self, transport: str, first: int, last: int, timeout_s: float) -> dict[str, Any]:
        """Start scanning unit ids on a bus; the job as JSON (ValueError: bad input, ModbusBusy)."""
        ...

    def scan(self, scan_id: str) -> dict[str, Any] | None:
        """A scan job's progress and findings, None if unknown."""
        ...

    async def wait_scan(self, scan_id: str) -> dict[str, Any] | None:
        """The scan job once finished, None if unknown."""
        ...

    async def test_read(self, transport: str, unit: int, model: str, timeout_s: float) -> dict[str, Any]:
        """A device read with a chosen model: decoded values, plausibility hints (ValueError: bad input)."""
        ...


class ChargerSetpoints(Protocol):
    """Current limits of chargers controlled over Modbus: load management and the API set them here."""

    async def set_current(self, charger_id: str, amps: float) -> bool:
        """Ask for amps (below 6 A: pause); True once written (and read back where the device allows).

        KeyError for an unknown charger, ValueError for a negative or non-finite value.
        """
        ...


class ModbusChargers(ChargerSetpoints, Protocol):
    """The Modbus chargers as the web API sees them: status and setpoints."""

    def chargers(self) -> list[dict[str, Any]]:
        """Every Modbus charger: model, IEC state, setpoint, applied current, watchdog, health; JSON-ready."""
        ...


class TransactionJournal(Protocol):
    """Durable transaction journal: a fact is on disk before its future resolves."""

    def record(self, fact: TransactionFact) -> Future[Decision]:
        """Decide and commit one fact; the future resolves with the decision after the commit."""
        ...

    def open_transactions(self) -> list[TransactionRecord]:
        """Every transaction not ended (to resume them after a restart); blocking read."""
        ...

    def transactions(self, charger_id: str | None = None, limit: int = 100) -> list[TransactionRecord]:
        """Transactions, newest first, of one charger or all; blocking read."""
        ...

    def get(self, key: str) -> TransactionRecord | None:
        """One transaction by its siteedge key; blocking read."""
        ...

    def close(self) -> None:
        """Commit what is queued and close; later records fail."""
        ...


class CommandStatus(StrEnum):
    """The outcome of a command to a charger, the same for every protocol version."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NOT_SUPPORTED = "not_supported"
    TIMEOUT = "timeout"
    OFFLINE = "offline"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command's typed result: status, the charger's reply (OCPP camelCase) and why, if it failed."""

    status: CommandStatus
    command: str
    charger_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    ocpp_status: str | None = None  # the reply's own status word (Accepted, Scheduled, Unlocked, ...)
    error: str | None = None  # InvalidParams, UnknownCommand, UnknownEvse, or the CALLERROR code
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for the API and the uplink."""
        return {
            "status": self.status.value,
            "command": self.command,
            "charger_id": self.charger_id,
            "payload": self.payload,
            "ocpp_status": self.ocpp_status,
            "error": self.error,
            "detail": self.detail,
        }


class ChargerCommands(Protocol):
    """CSMS -> charger calls; the uplink, the API and load management never branch on the version."""

    def commands(self, charger_id: str) -> list[str]:
        """The OCPP actions this charger's protocol version offers (empty while it is offline)."""
        ...

    async def call(
        self, charger_id: str, command: str, params: dict[str, Any], timeout_s: float | None = None
    ) -> CommandResult:
        """Send one OCPP action (params in OCPP camelCase) and wait for its typed result."""
        ...

    async def remote_start(self, evse_uid: str, id_tag: str, timeout_s: float | None = None) -> CommandResult:
        """Start a transaction on an EVSE for an id tag."""
        ...

    async def remote_stop(self, transaction_key: str, timeout_s: float | None = None) -> CommandResult:
        """Stop a transaction by its siteedge key."""
        ...

    async def reset(
        self, charger_id: str, hard: bool = False, timeout_s: float | None = None
    ) -> CommandResult:
        """Reboot a charger: hard (1.6 Hard / 2.0.1 Immediate) or when idle (Soft / OnIdle)."""
        ...

    async def reserve(
        self, evse_uid: str, id_tag: str, expiry: str, reservation_id: int, timeout_s: float | None = None
    ) -> CommandResult:
        """Reserve an EVSE for an id tag until expiry (RFC 3339) under siteedge's reservation id."""
        ...

    async def cancel_reservation(
        self, evse_uid: str, reservation_id: int, timeout_s: float | None = None
    ) -> CommandResult:
        """Cancel siteedge's reservation id on the EVSE's charger."""
        ...

    async def unlock(self, evse_uid: str, timeout_s: float | None = None) -> CommandResult:
        """Unlock an EVSE's connector."""
        ...

    async def change_availability(
        self, charger_id: str, evse_uid: str | None, operative: bool, timeout_s: float | None = None
    ) -> CommandResult:
        """Make one EVSE (or the whole charger, evse_uid None) operative or inoperative."""
        ...

    async def trigger_status(
        self, charger_id: str, evse_uid: str | None = None, timeout_s: float | None = None
    ) -> CommandResult:
        """Ask for fresh StatusNotifications (one EVSE or all)."""
        ...

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        retries: int | None = None,
        timeout_s: float | None = None,
    ) -> CommandResult:
        """Install firmware from a URL (fetched from retrieve_at); progress comes as ChargerReported."""
        ...

    async def upload_logs(
        self, charger_id: str, location: str, timeout_s: float | None = None
    ) -> CommandResult:
        """Have the charger upload its diagnostics log to a URL; progress comes as ChargerReported."""
        ...

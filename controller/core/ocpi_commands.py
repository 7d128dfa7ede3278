"""OCPI 2.2.1 commands from the eMSP: validated bodies and the answers the backend gets (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.core.ports import CommandResult, CommandStatus
from controller.core.tokens import TokenError, parse_token

COMMAND_TYPES = ("START_SESSION", "STOP_SESSION", "RESERVE_NOW", "CANCEL_RESERVATION", "UNLOCK_CONNECTOR")
_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


class CommandError(ValueError):
    """A command body is unusable; the message is the reason given to the eMSP."""


class ResponseType(StrEnum):
    """OCPI CommandResponseType: the immediate answer."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ResultType(StrEnum):
    """OCPI CommandResultType: the outcome once the charger acted (or did not)."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


@dataclass(frozen=True, slots=True)
class OcpiCommand:
    """A validated command: its type, correlation id and body."""

    type: str
    command_id: str
    body: dict[str, Any]

    def text(self, key: str) -> str:
        """A required string field of the body."""
        value = self.body.get(key)
        if not isinstance(value, str) or not value:
            raise CommandError(f"{key}: required string is missing")
        return value


def parse_command(type_: str, payload: Any, location_id: str) -> OcpiCommand:
    """Validate a command of a known type addressed to this site; CommandError says why not."""
    if type_ not in COMMAND_TYPES:
        raise CommandError(f"unknown command type {type_!r}")
    if not isinstance(payload, dict):
        raise CommandError("body: must be a JSON object")
    command_id = payload.get("command_id")
    if not isinstance(command_id, str) or not _ID.fullmatch(command_id):
        raise CommandError("command_id: required, 1-64 letters, digits, '.', '_' or '-'")
    cmd = OcpiCommand(type_, command_id, payload)
    if (
        type_ in ("START_SESSION", "RESERVE_NOW", "UNLOCK_CONNECTOR")
        and cmd.text("location_id") != location_id
    ):
        raise CommandError(f"location_id {payload.get('location_id')!r} is not this site ({location_id})")
    if type_ in ("START_SESSION", "RESERVE_NOW"):
        try:
            parse_token(payload.get("token"))
        except TokenError as exc:
            raise CommandError(f"token.{exc}") from exc
    return cmd


def result_of(res: CommandResult) -> ResultType:
    """OCPI CommandResult for what the charger answered to the OCPP call."""
    match res.status:
        case CommandStatus.ACCEPTED:
            return ResultType.ACCEPTED
        case CommandStatus.TIMEOUT:
            return ResultType.TIMEOUT
        case CommandStatus.NOT_SUPPORTED:
            return ResultType.NOT_SUPPORTED
        case CommandStatus.REJECTED:
            return ResultType.REJECTED
        case _:
            return ResultType.FAILED  # offline or a protocol error: the eMSP can retry


def evse_blocker(status: str | None) -> ResultType | None:
    """Why a session cannot start on an EVSE in this OCPI status, None if nothing is in the way."""
    if status == "CHARGING":
        return ResultType.EVSE_OCCUPIED
    if status in ("INOPERATIVE", "OUTOFORDER", "UNKNOWN", "REMOVED"):
        return ResultType.EVSE_INOPERATIVE
    return None


class ReservationIds:
    """Charger-side reservation ids, unique across eMSPs (OCPI: never reuse the eMSP's own id)."""

    def __init__(self, start: int = 1) -> None:
        self._next = start
        self._by_emsp: dict[tuple[str, str, str], int] = {}

    def assign(self, country_code: str, party_id: str, reservation_id: str) -> int:
        """The local id for an eMSP's reservation (the same one again for a repeated RESERVE_NOW)."""
        key = (country_code.upper(), party_id.upper(), reservation_id)
        if key not in self._by_emsp:
            self._by_emsp[key] = self._next
            self._next += 1
        return self._by_emsp[key]

    def find(self, reservation_id: str) -> int | None:
        """The local id of an eMSP reservation id (any issuer), None if unknown."""
        return next((v for (_, _, rid), v in self._by_emsp.items() if rid == reservation_id), None)

    def forget(self, reservation_id: str) -> None:
        """Drop a cancelled reservation."""
        self._by_emsp = {k: v for k, v in self._by_emsp.items() if k[2] != reservation_id}

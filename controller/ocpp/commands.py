"""CSMS -> charger calls for OCPP 1.6 and 2.0.1 behind one typed, version-neutral service."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.exceptions import ConnectionClosed

from controller.core.clock import Clock, SystemClock, rfc3339
from controller.core.config import Config
from controller.core.events import MaintenanceRequested
from controller.core.ports import CommandResult, CommandStatus
from controller.core.transactions import split_key
from controller.ocpp.sessions import Link, Sessions

log = logging.getLogger(__name__)

COMMANDS_16 = (
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "UnlockConnector",
    "Reset",
    "ChangeAvailability",
    "ChangeConfiguration",
    "GetConfiguration",
    "ClearCache",
    "TriggerMessage",
    "SendLocalList",
    "GetLocalListVersion",
    "ReserveNow",
    "CancelReservation",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "UpdateFirmware",
    "GetDiagnostics",
    "DataTransfer",
)
COMMANDS_201 = (
    "RequestStartTransaction",
    "RequestStopTransaction",
    "UnlockConnector",
    "Reset",
    "ChangeAvailability",
    "SetVariables",
    "GetVariables",
    "GetBaseReport",
    "ClearCache",
    "TriggerMessage",
    "SendLocalList",
    "GetLocalListVersion",
    "ReserveNow",
    "CancelReservation",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "UpdateFirmware",
    "GetLog",
    "DataTransfer",
    "SetDisplayMessage",
)
_MODULES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "1.6": (call16, COMMANDS_16),
    "2.0.1": (call201, COMMANDS_201),
}
# Reply status words that mean "done or will be done" and "this charger cannot do that".
# AcceptedCanceled (2.0.1 UpdateFirmware, GetLog): accepted, and the request before it was cancelled.
_ACCEPTED = {"Accepted", "AcceptedCanceled", "Scheduled", "Unlocked", "RebootRequired"}
_NOT_SUPPORTED = {"NotSupported", "NotImplemented", "UnknownVendorId", "UnknownMessageId"}
_CALLERROR_NOT_SUPPORTED = {"NotImplemented", "NotSupported"}
DEFAULT_TIMEOUT_S = 30.0  # the ocpp library's own response timeout on each link is 30 s as well


def _status_of(command: str, reply: dict[str, Any]) -> CommandStatus:
    word = reply.get("status")
    if command == "GetLocalListVersion" and reply.get("listVersion", reply.get("versionNumber")) == -1:
        return CommandStatus.NOT_SUPPORTED  # 1.6: -1 means no local list support
    if word is None or word in _ACCEPTED:
        return CommandStatus.ACCEPTED  # replies without a status (GetConfiguration, ...) are answers
    if word in _NOT_SUPPORTED:
        return CommandStatus.NOT_SUPPORTED
    return CommandStatus.REJECTED


class CommandService:
    """Sends OCPP actions to connected chargers with a timeout and answers with a CommandResult."""

    def __init__(
        self,
        sessions: Sessions,
        config: Config,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        emit: Callable[[object], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._emit = emit  # MaintenanceRequested goes to the site through this
        self._clock: Clock = clock or SystemClock()
        self._sessions = sessions
        self._default_timeout_s = default_timeout_s
        self._evses = {e.evse_uid: (c.id, e.ocpp_evse) for c in config.chargers for e in c.evses}
        # remoteStartId only correlates a request with its TransactionEvent; random start, no reuse.
        self._remote_ids = itertools.count(random.randrange(1, 2**30))
        self._request_ids = itertools.count(random.randrange(1, 2**30))  # UpdateFirmware, GetLog

    def commands(self, charger_id: str) -> list[str]:
        """The actions the charger's protocol version offers; empty while it is offline."""
        link = self._sessions.get(charger_id)
        return list(_MODULES[link.ocpp_version][1]) if link is not None else []

    async def call(
        self, charger_id: str, command: str, params: dict[str, Any], timeout_s: float | None = None
    ) -> CommandResult:
        """Send one action (params in OCPP camelCase, as on the wire) and wait for the typed result."""

        def result(status: CommandStatus, **kw: Any) -> CommandResult:
            return CommandResult(status, command, charger_id, **kw)

        link = self._sessions.get(charger_id)
        if link is None:
            return result(CommandStatus.OFFLINE, detail=f"charger {charger_id} is not connected")
        module, names = _MODULES[link.ocpp_version]
        if command not in names:
            why = f"{command} is not an OCPP {link.ocpp_version} command siteedge sends"
            return result(CommandStatus.NOT_SUPPORTED, error="UnknownCommand", detail=why)
        try:
            payload = getattr(module, command)(**camel_to_snake_case(dict(params)))
            wire = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
            # Checked here so a bad request is told apart from the charger's CALLERROR.
            await validate_payload(Call("0", command, wire), link.ocpp_version)
        except (TypeError, OCPPError) as exc:
            return result(CommandStatus.ERROR, error="InvalidParams", detail=str(exc))
        try:
            async with asyncio.timeout(timeout_s or self._default_timeout_s):
                reply = await link.call(payload, suppress=False)
        except TimeoutError:
            return result(
                CommandStatus.TIMEOUT, detail=f"no reply within {timeout_s or self._default_timeout_s} s"
            )
        except ConnectionClosed:
            return result(CommandStatus.OFFLINE, detail="connection closed before the reply")
        except OCPPError as exc:
            code = str(getattr(exc, "code", type(exc).__name__))
            status = CommandStatus.NOT_SUPPORTED if code in _CALLERROR_NOT_SUPPORTED else CommandStatus.ERROR
            return result(status, error=code, detail=str(getattr(exc, "description", exc)))
        answer = remove_nones(snake_to_camel_case(serialize_as_dict(reply)))
        word = answer.get("status")
        return result(
            _status_of(command, answer), payload=answer, ocpp_status=word if isinstance(word, str) else None
        )

    # --- version-neutral helpers -------------------------------------------------------------

    def _evse(self, evse_uid: str) -> tuple[str, int] | None:
        return self._evses.get(evse_uid)

    def _version(self, charger_id: str) -> str | None:
        link: Link | None = self._sessions.get(charger_id)
        return link.ocpp_version if link is not None else None

    @staticmethod
    def _fail(command: str, charger_id: str, status: CommandStatus, error: str, detail: str) -> CommandResult:
        return CommandResult(status, command, charger_id, error=error, detail=detail)

    async def remote_start(self, evse_uid: str, id_tag: str, timeout_s: float | None = None) -> CommandResult:
        """RemoteStartTransaction (1.6) or RequestStartTransaction (2.0.1) on one EVSE."""
        found = self._evse(evse_uid)
        if found is None:
            return self._fail("remote_start", "", CommandStatus.ERROR, "UnknownEvse", f"no EVSE {evse_uid}")
        charger_id, evse = found
        if self._version(charger_id) == "2.0.1":
            params = {
                "idToken": {"idToken": id_tag, "type": "Central"},
                "remoteStartId": next(self._remote_ids),
                "evseId": evse,
            }
            return await self.call(charger_id, "RequestStartTransaction", params, timeout_s)
        return await self.call(
            charger_id, "RemoteStartTransaction", {"idTag": id_tag, "connectorId": evse}, timeout_s
        )

    async def remote_stop(self, transaction_key: str, timeout_s: float | None = None) -> CommandResult:
        """RemoteStopTransaction (1.6) or RequestStopTransaction (2.0.1) by siteedge transaction key."""
        parts = split_key(transaction_key)
        if parts is None:
            why = f"{transaction_key!r} is not a transaction key"
            return self._fail("remote_stop", "", CommandStatus.ERROR, "UnknownTransaction", why)
        charger_id, tx_id = parts
        if self._version(charger_id) == "2.0.1":
            return await self.call(charger_id, "RequestStopTransaction", {"transactionId": tx_id}, timeout_s)
        if not tx_id.isdigit():
            why = f"{tx_id!r} is not a 1.6 transaction id"
            return self._fail("remote_stop", charger_id, CommandStatus.ERROR, "UnknownTransaction", why)
        return await self.call(charger_id, "RemoteStopTransaction", {"transactionId": int(tx_id)}, timeout_s)

    async def reset(
        self, charger_id: str, hard: bool = False, timeout_s: float | None = None
    ) -> CommandResult:
        """Reset: hard (1.6 Hard, 2.0.1 Immediate) or when idle (1.6 Soft, 2.0.1 OnIdle)."""
        if self._version(charger_id) == "2.0.1":
            return await self.call(
                charger_id, "Reset", {"type": "Immediate" if hard else "OnIdle"}, timeout_s
            )
        return await self.call(charger_id, "Reset", {"type": "Hard" if hard else "Soft"}, timeout_s)

    async def unlock(self, evse_uid: str, timeout_s: float | None = None) -> CommandResult:
        """UnlockConnector for an EVSE (2.0.1: its connector 1)."""
        found = self._evse(evse_uid)
        if found is None:
            return self._fail("unlock", "", CommandStatus.ERROR, "UnknownEvse", f"no EVSE {evse_uid}")
        charger_id, evse = found
        if self._version(charger_id) == "2.0.1":
            params: dict[str, Any] = {"evseId": evse, "connectorId": 1}
        else:
            params = {"connectorId": evse}
        return await self.call(charger_id, "UnlockConnector", params, timeout_s)

    async def reserve(
        self, evse_uid: str, id_tag: str, expiry: str, reservation_id: int, timeout_s: float | None = None
    ) -> CommandResult:
        """ReserveNow on one EVSE until expiry (RFC 3339), under siteedge's own reservation id."""
        found = self._evse(evse_uid)
        if found is None:
            return self._fail("reserve", "", CommandStatus.ERROR, "UnknownEvse", f"no EVSE {evse_uid}")
        charger_id, evse = found
        if self._version(charger_id) == "2.0.1":
            params: dict[str, Any] = {
                "id": reservation_id,
                "expiryDateTime": expiry,
                "idToken": {"idToken": id_tag, "type": "Central"},
                "evseId": evse,
            }
        else:
            params = {
                "connectorId": evse,
                "expiryDate": expiry,
                "idTag": id_tag,
                "reservationId": reservation_id,
            }
        return await self.call(charger_id, "ReserveNow", params, timeout_s)

    async def cancel_reservation(
        self, evse_uid: str, reservation_id: int, timeout_s: float | None = None
    ) -> CommandResult:
        """CancelReservation of siteedge's reservation id on the EVSE's charger."""
        found = self._evse(evse_uid)
        if found is None:
            return self._fail(
                "cancel_reservation", "", CommandStatus.ERROR, "UnknownEvse", f"no EVSE {evse_uid}"
            )
        return await self.call(found[0], "CancelReservation", {"reservationId": reservation_id}, timeout_s)

    async def change_availability(
        self, charger_id: str, evse_uid: str | None, operative: bool, timeout_s: float | None = None
    ) -> CommandResult:
        """ChangeAvailability of one EVSE, or of the whole charger when evse_uid is None."""
        evse = 0
        if evse_uid is not None:
            found = self._evse(evse_uid)
            if found is None or found[0] != charger_id:
                why = f"no EVSE {evse_uid} on {charger_id}"
                return self._fail("change_availability", charger_id, CommandStatus.ERROR, "UnknownEvse", why)
            evse = found[1]
        word = "Operative" if operative else "Inoperative"
        if self._version(charger_id) == "2.0.1":
            params: dict[str, Any] = {"operationalStatus": word}
            if evse:
                params["evse"] = {"id": evse}
        else:
            params = {"connectorId": evse, "type": word}
        return await self.call(charger_id, "ChangeAvailability", params, timeout_s)

    async def trigger_status(
        self, charger_id: str, evse_uid: str | None = None, timeout_s: float | None = None
    ) -> CommandResult:
        """TriggerMessage(StatusNotification) for one EVSE or all."""
        found = self._evse(evse_uid) if evse_uid is not None else None
        if evse_uid is not None and (found is None or found[0] != charger_id):
            why = f"no EVSE {evse_uid} on {charger_id}"
            return self._fail("trigger_status", charger_id, CommandStatus.ERROR, "UnknownEvse", why)
        params: dict[str, Any] = {"requestedMessage": "StatusNotification"}
        if found is not None:
            evse = found[1]
            v201 = self._version(charger_id) == "2.0.1"
            params.update({"evse": {"id": evse, "connectorId": 1}} if v201 else {"connectorId": evse})
        return await self.call(charger_id, "TriggerMessage", params, timeout_s)

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        retries: int | None = None,
        timeout_s: float | None = None,
    ) -> CommandResult:
        """UpdateFirmware from a URL at a time; 2.0.1 gets a fresh requestId (its status notes carry it)."""
        when = rfc3339(retrieve_at)
        request_id = next(self._request_ids) if self._version(charger_id) == "2.0.1" else None
        if request_id is not None:
            params: dict[str, Any] = {
                "requestId": request_id,
                "firmware": {"location": location, "retrieveDateTime": when},
            }
        else:
            params = {"location": location, "retrieveDate": when}
        if retries is not None:
            params["retries"] = retries
        sent = self._clock.now()
        result = await self.call(charger_id, "UpdateFirmware", params, timeout_s)
        self._requested(result, "firmware", sent, request_id)
        return result

    async def upload_logs(
        self, charger_id: str, location: str, timeout_s: float | None = None
    ) -> CommandResult:
        """Ask for the charger's diagnostics log at a URL (1.6 GetDiagnostics, 2.0.1 GetLog)."""
        sent = self._clock.now()
        if self._version(charger_id) == "2.0.1":
            request_id = next(self._request_ids)
            params = {
                "requestId": request_id,
                "logType": "DiagnosticsLog",
                "log": {"remoteLocation": location},
            }
            result = await self.call(charger_id, "GetLog", params, timeout_s)
            self._requested(result, "logs", sent, request_id)
            return result
        result = await self.call(charger_id, "GetDiagnostics", {"location": location}, timeout_s)
        if result.status is CommandStatus.ACCEPTED and not (result.payload or {}).get("fileName"):
            # 1.6: no fileName means there is no diagnostics information, so no upload follows.
            return dataclasses.replace(
                result, status=CommandStatus.REJECTED, detail="the charger has no diagnostics to upload"
            )
        self._requested(result, "logs", sent, None)
        return result

    def _requested(self, result: CommandResult, kind: str, sent: datetime, request_id: int | None) -> None:
        """Tell the site an accepted firmware or log request is under way (its notes will follow)."""
        if result.status is CommandStatus.ACCEPTED and self._emit is not None:
            self._emit(MaintenanceRequested(result.charger_id, kind, sent, request_id))

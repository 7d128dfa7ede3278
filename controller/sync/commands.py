"""OCPI commands from the eMSP over MQTT: answer at once, act through the command service, report."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from controller.core.envelope import Outgoing, Topics
from controller.core.ocpi_commands import (
    COMMAND_TYPES,
    CommandError,
    OcpiCommand,
    ReservationIds,
    ResponseType,
    ResultType,
    evse_blocker,
    parse_command,
    result_of,
)
from controller.core.ports import ChargerCommands
from controller.core.tokens import Authorizer, parse_token
from controller.core.uplink import command_response_message, command_result_message
from controller.sync.downlink import Downlink, Rejected

log = logging.getLogger(__name__)

# What the eMSP is promised in CommandResponse.timeout: the charger's reply must come well within.
RESULT_TIMEOUT_S = 30
CHARGER_TIMEOUT_S = 25.0


class OcpiCommands:
    """START_SESSION, STOP_SESSION, RESERVE_NOW, CANCEL_RESERVATION, UNLOCK_CONNECTOR."""

    def __init__(
        self,
        chargers: ChargerCommands,
        authorizer: Authorizer,
        topics: Topics,
        location_id: str,
        send: Callable[[Sequence[Outgoing]], object],
        evse_status: Callable[[str], str | None],
        transaction_of_session: Callable[[str], str | None],
        evse_uids: Sequence[str],
    ) -> None:
        self._chargers = chargers
        self._authorizer = authorizer
        self._topics = topics
        self._location_id = location_id
        self._send = send
        self._evse_status = evse_status
        self._transaction_of = transaction_of_session
        self._evse_uids = frozenset(evse_uids)
        self._reservations = ReservationIds()
        self._reserved_evse: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, downlink: Downlink) -> None:
        """Route {root}/commands/{type} to this service."""
        downlink.route(
            "commands/+", rf"commands/({'|'.join(COMMAND_TYPES)}|[^/]+)", self._on_command, immediate=True
        )

    async def close(self) -> None:
        """Wait for commands still in progress (their results are already queued or will time out)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the immediate answer ------------------------------------------------------------------

    async def _on_command(self, match: re.Match[str], payload: Any) -> None:
        try:
            cmd = parse_command(match.group(1), payload, self._location_id)
        except CommandError as exc:
            command_id = payload.get("command_id") if isinstance(payload, dict) else None
            if isinstance(command_id, str) and command_id:
                self._respond(command_id, ResponseType.REJECTED, str(exc))
                return
            raise Rejected(str(exc)) from exc
        try:
            action = self._plan(cmd)
        except CommandError as exc:
            self._respond(cmd.command_id, ResponseType.REJECTED, str(exc))
            return
        if action is None:
            self._respond(cmd.command_id, ResponseType.UNKNOWN_SESSION, "no such session on this site")
            return
        self._respond(cmd.command_id, ResponseType.ACCEPTED, "")
        task = asyncio.create_task(
            self._finish(cmd.command_id, action), name=f"ocpi-{cmd.type}-{cmd.command_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _respond(self, command_id: str, result: ResponseType, why: str) -> None:
        self._send([command_response_message(command_id, result.value, RESULT_TIMEOUT_S, why, self._topics)])

    def _plan(self, cmd: OcpiCommand) -> Coroutine[Any, Any, tuple[ResultType, str]] | None:
        """The work a command needs (CommandError: refuse it; None: unknown session)."""
        match cmd.type:
            case "START_SESSION":
                return self._start(cmd, self._known_evse(cmd))
            case "STOP_SESSION":
                key = self._transaction_of(cmd.text("session_id"))
                return None if key is None else self._stop(key)
            case "UNLOCK_CONNECTOR":
                return self._unlock(self._known_evse(cmd))
            case "RESERVE_NOW":
                return self._reserve(cmd, self._known_evse(cmd))
            case "CANCEL_RESERVATION":
                return self._cancel(cmd.text("reservation_id"))
        raise CommandError(f"{cmd.type} is not supported")  # pragma: no cover - parse_command filters

    def _known_evse(self, cmd: OcpiCommand) -> str:
        evse_uid = cmd.text("evse_uid")  # siteedge needs it: it does not pick an EVSE for the driver
        if evse_uid not in self._evse_uids:
            raise CommandError(f"evse_uid {evse_uid!r} is not on this site")
        return evse_uid

    # --- the result ----------------------------------------------------------------------------

    async def _finish(self, command_id: str, work: Coroutine[Any, Any, tuple[ResultType, str]]) -> None:
        try:
            result, why = await work
        except Exception:
            log.exception("OCPI command %s failed", command_id)
            result, why = ResultType.FAILED, "internal error"
        log.info("OCPI command %s: %s %s", command_id, result.value, why)
        self._send([command_result_message(command_id, result.value, why, self._topics)])

    async def _start(self, cmd: OcpiCommand, evse_uid: str) -> tuple[ResultType, str]:
        blocker = evse_blocker(self._evse_status(evse_uid))
        if blocker is not None:
            return blocker, f"EVSE {evse_uid} is {self._evse_status(evse_uid)}"
        token = parse_token(cmd.body["token"])
        self._authorizer.grant(
            token, f"START_SESSION {cmd.command_id} from {token.country_code}*{token.party_id}"
        )
        res = await self._chargers.remote_start(evse_uid, token.uid, timeout_s=CHARGER_TIMEOUT_S)
        return result_of(res), res.detail

    async def _stop(self, transaction_key: str) -> tuple[ResultType, str]:
        res = await self._chargers.remote_stop(transaction_key, timeout_s=CHARGER_TIMEOUT_S)
        return result_of(res), res.detail

    async def _unlock(self, evse_uid: str) -> tuple[ResultType, str]:
        res = await self._chargers.unlock(evse_uid, timeout_s=CHARGER_TIMEOUT_S)
        return result_of(res), res.detail

    async def _reserve(self, cmd: OcpiCommand, evse_uid: str) -> tuple[ResultType, str]:
        blocker = evse_blocker(self._evse_status(evse_uid))
        if blocker is not None:
            return blocker, f"EVSE {evse_uid} is {self._evse_status(evse_uid)}"
        token = parse_token(cmd.body["token"])
        local = self._reservations.assign(token.country_code, token.party_id, cmd.text("reservation_id"))
        self._reserved_evse[local] = evse_uid
        self._authorizer.grant(
            token, f"RESERVE_NOW {cmd.command_id} from {token.country_code}*{token.party_id}"
        )
        res = await self._chargers.reserve(
            evse_uid, token.uid, cmd.text("expiry_date"), local, timeout_s=CHARGER_TIMEOUT_S
        )
        return result_of(res), res.detail

    async def _cancel(self, reservation_id: str) -> tuple[ResultType, str]:
        local = self._reservations.find(reservation_id)
        if local is None or local not in self._reserved_evse:
            return ResultType.UNKNOWN_RESERVATION, f"no reservation {reservation_id} on this site"
        res = await self._chargers.cancel_reservation(
            self._reserved_evse[local], local, timeout_s=CHARGER_TIMEOUT_S
        )
        result = result_of(res)
        if result is ResultType.ACCEPTED:
            self._reservations.forget(reservation_id)
            return ResultType.CANCELED_RESERVATION, ""
        return result, res.detail

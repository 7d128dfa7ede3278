"""Keeps each charger's local authorization list and offline settings in step with the site."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.local_list import (
    Entry,
    ListMessage,
    LocalListSource,
    UpdateType,
    apply,
    choose,
    from_json,
    offline_settings_16,
    offline_settings_201,
    plan,
    to_json,
)
from controller.core.ports import ChargerCommands, CommandStatus, DocumentStore

log = logging.getLogger(__name__)

TABLE = "local_lists"
DEFAULT_CAPACITY = 1000
DEFAULT_PER_MESSAGE = 50
TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class LocalListSettings:
    """Site choices: which partners' ALWAYS tokens go to chargers, how far back "recent" reaches."""

    partners: tuple[tuple[str, str], ...] = ()
    recent_days: int = 90
    accept_unknown_offline: bool = False
    realtime_first: bool = True  # some tokens must be asked about while online


def _entries_16(items: tuple[tuple[str, Entry | None], ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _, e in items:
        if e is None:
            continue
        info: dict[str, Any] = {"status": e.status}
        if e.parent and len(e.parent) <= 20:
            info["parentIdTag"] = e.parent
        out.append({"idTag": e.uid, "idTagInfo": info})
    return out


def _kind(token_type: str) -> str:
    return "ISO14443" if token_type == "RFID" else "Central"


def _entries_201(items: tuple[tuple[str, Entry | None], ...], held: dict[str, Entry]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for uid, e in items:
        if e is None:
            # A Differential delete is an entry without idTokenInfo, with the token as it was sent.
            gone = held.get(uid)
            out.append(
                {
                    "idToken": {
                        "idToken": gone.uid if gone else uid,
                        "type": _kind(gone.token_type if gone else "RFID"),
                    }
                }
            )
            continue
        info: dict[str, Any] = {"status": e.status}
        if e.parent:
            info["groupIdToken"] = {"idToken": e.parent, "type": "Central"}
        out.append({"idToken": {"idToken": e.uid, "type": _kind(e.token_type)}, "idTokenInfo": info})
    return out


class LocalListManager:
    """Sends each charger the tokens it should decide offline, as versioned SendLocalList updates."""

    def __init__(
        self,
        commands: ChargerCommands,
        source: LocalListSource,
        state: DocumentStore,
        settings: LocalListSettings,
        clock: Clock,
        version_of: Callable[[str], str | None],
    ) -> None:
        self._commands = commands
        self._source = source
        self._state = state
        self._settings = settings
        self._clock = clock
        self._version_of = version_of
        self._locks: dict[str, asyncio.Lock] = {}

    async def sync(self, charger_id: str) -> str:
        """Bring one charger's list and offline settings up to date; a one-word outcome."""
        lock = self._locks.setdefault(charger_id, asyncio.Lock())
        async with lock:  # one update sequence per charger at a time, or versions would race
            version = self._version_of(charger_id)
            if version is None:
                return "offline"
            try:
                return await self._sync(charger_id, version)
            except Exception:
                log.exception("local list of %s: update failed", charger_id)
                return "error"

    async def _sync(self, charger_id: str, version: str) -> str:
        v201 = version == "2.0.1"
        limits = await (self._limits_201(charger_id) if v201 else self._limits_16(charger_id))
        if limits is None:
            return "not_supported"
        capacity, per_message = limits
        await self._settings_apply(charger_id, v201)
        since = rfc3339(self._clock.now() - timedelta(days=self._settings.recent_days))
        recent, partners = await asyncio.to_thread(
            lambda: (
                self._source.recent_tokens(since, capacity),
                self._source.partner_tokens(list(self._settings.partners), capacity),
            )
        )
        wanted = choose(partners, recent, capacity)
        charger_version = await self._list_version(charger_id, v201)
        stored = await asyncio.to_thread(self._state.get, TABLE, charger_id)
        held = None
        if stored is not None and stored.get("version") == charger_version:
            held = from_json(stored.get("entries", {}))
        outcome = await self._send(charger_id, v201, held, wanted, charger_version, per_message)
        if outcome == "mismatch":
            # The charger's list is not what we think: replace it whole (OCPP: Full after
            # VersionMismatch or Failed).
            charger_version = await self._list_version(charger_id, v201)
            outcome = await self._send(charger_id, v201, None, wanted, charger_version, per_message)
        return outcome

    async def _send(
        self,
        charger_id: str,
        v201: bool,
        held: dict[str, Entry] | None,
        wanted: dict[str, Entry],
        version: int,
        per_message: int,
    ) -> str:
        messages = plan(held, wanted, version, per_message)
        current = dict(held or {})
        for message in messages:
            payload = self._payload(message, v201, current)
            res = await self._commands.call(charger_id, "SendLocalList", payload, TIMEOUT_S)
            word = res.ocpp_status
            if res.status is CommandStatus.ACCEPTED:
                current = apply(current, message)
                await asyncio.to_thread(
                    self._state.put,
                    TABLE,
                    charger_id,
                    {"version": message.version, "entries": to_json(current)},
                )
                continue
            if word in ("VersionMismatch", "Failed") and held is not None:
                log.info("local list of %s: %s; sending it in full", charger_id, word)
                return "mismatch"
            log.warning("local list of %s: %s (%s)", charger_id, word or res.status.value, res.detail)
            return "not_supported" if word == "NotSupported" else "failed"
        return "unchanged" if not messages else ("full" if held is None else "updated")

    @staticmethod
    def _payload(message: ListMessage, v201: bool, held: dict[str, Entry]) -> dict[str, Any]:
        if v201:
            return {
                "versionNumber": message.version,
                "updateType": message.update_type.value,
                "localAuthorizationList": _entries_201(message.entries, held) or None,
            }
        entries: list[dict[str, Any]] = _entries_16(message.entries)
        # A Differential delete is an entry without idTagInfo, with the id tag as it was sent.
        entries += [
            {"idTag": held[uid].uid if uid in held else uid} for uid, e in message.entries if e is None
        ]
        payload: dict[str, Any] = {"listVersion": message.version, "updateType": message.update_type.value}
        if entries or message.update_type is UpdateType.FULL:
            payload["localAuthorizationList"] = entries
        return payload

    async def _list_version(self, charger_id: str, v201: bool) -> int:
        res = await self._commands.call(charger_id, "GetLocalListVersion", {}, TIMEOUT_S)
        value = res.payload.get("versionNumber" if v201 else "listVersion", 0)
        return max(0, int(value)) if isinstance(value, int) else 0

    async def _limits_16(self, charger_id: str) -> tuple[int, int] | None:
        keys = ["LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength"]
        res = await self._commands.call(charger_id, "GetConfiguration", {"key": keys}, TIMEOUT_S)
        if res.status is not CommandStatus.ACCEPTED:
            return None
        values = {k["key"]: k.get("value") for k in res.payload.get("configurationKey", [])}
        if "LocalAuthListEnabled" not in values:
            return None  # the charger has no Local Auth List Management profile
        return _int(values.get("LocalAuthListMaxLength"), DEFAULT_CAPACITY), _int(
            values.get("SendLocalListMaxLength"), DEFAULT_PER_MESSAGE
        )

    async def _limits_201(self, charger_id: str) -> tuple[int, int] | None:
        wanted = [
            {
                "component": {"name": "LocalAuthListCtrlr"},
                "variable": {"name": "Entries"},
                "attributeType": "MaxSet",
            },
            {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "ItemsPerMessage"}},
        ]
        res = await self._commands.call(charger_id, "GetVariables", {"getVariableData": wanted}, TIMEOUT_S)
        if res.status is not CommandStatus.ACCEPTED:
            return None
        found = {
            r["variable"]["name"]: r.get("attributeValue")
            for r in res.payload.get("getVariableResult", [])
            if r.get("attributeStatus") == "Accepted"
        }
        return _int(found.get("Entries"), DEFAULT_CAPACITY), _int(
            found.get("ItemsPerMessage"), DEFAULT_PER_MESSAGE
        )

    async def _settings_apply(self, charger_id: str, v201: bool) -> None:
        s = self._settings
        if v201:
            data = [
                {"component": {"name": c}, "variable": {"name": v}, "attributeValue": value}
                for (c, v), value in offline_settings_201(s.accept_unknown_offline, s.realtime_first).items()
            ]
            await self._commands.call(charger_id, "SetVariables", {"setVariableData": data}, TIMEOUT_S)
            return
        for key, value in offline_settings_16(s.accept_unknown_offline, s.realtime_first).items():
            await self._commands.call(
                charger_id, "ChangeConfiguration", {"key": key, "value": value}, TIMEOUT_S
            )


def _int(value: Any, default: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        return default
    return number if number > 0 else default

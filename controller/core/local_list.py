"""Charger-level local authorization lists: which tokens a charger holds, and how to update it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from controller.core.tokens import Token, Whitelist, normalize_uid


class UpdateType(StrEnum):
    """SendLocalList updateType, the same in OCPP 1.6 and 2.0.1."""

    FULL = "Full"
    DIFFERENTIAL = "Differential"


@dataclass(frozen=True, slots=True)
class Entry:
    """One list entry: the token as the charger reads it and the status it may decide offline."""

    uid: str
    status: str  # "Accepted" or "Blocked"
    parent: str | None = None  # OCPI group_id, as parentIdTag / groupIdToken
    token_type: str = "RFID"


@dataclass(frozen=True, slots=True)
class ListMessage:
    """One SendLocalList call: version after it, type, entries (status None = delete)."""

    version: int
    update_type: UpdateType
    entries: tuple[tuple[str, Entry | None], ...]


def entry_of(token: Token) -> Entry | None:
    """The entry a cached token earns on a charger, None if it must not be decided offline there.

    NEVER tokens may only be decided by the eMSP, so they never go to a charger. An invalid token
    goes as Blocked, so an offline charger refuses a known-bad card instead of treating it as
    unknown (which AllowOfflineTxForUnknownId might let charge).
    """
    if token.whitelist is Whitelist.NEVER:
        return None
    return Entry(token.uid, "Accepted" if token.valid else "Blocked", token.group_id, token.type)


def choose(
    partner_tokens: Iterable[Token], recent_tokens: Iterable[Token], capacity: int
) -> dict[str, Entry]:
    """The list a charger should hold: tokens used here recently first, then ALWAYS partners.

    Recently used tokens are the likeliest to be presented again during an outage; capacity is the
    charger's LocalAuthListMaxLength (1.6) or LocalAuthListCtrlr.Entries (2.0.1).
    """
    chosen: dict[str, Entry] = {}
    for token in [*recent_tokens, *partner_tokens]:
        if len(chosen) >= capacity:
            break
        entry = entry_of(token)
        key = normalize_uid(token.uid)
        if entry is not None and key not in chosen:
            chosen[key] = entry
    return chosen


def plan(
    held: Mapping[str, Entry] | None,
    wanted: Mapping[str, Entry],
    version: int,
    per_message: int,
) -> list[ListMessage]:
    """SendLocalList calls taking a charger from `held` (None: unknown, send Full) to `wanted`.

    A Full update replaces the whole list, so it is sent as one Full message with the first chunk
    and Differential messages for the rest; versions rise by one per message.
    """
    per_message = max(1, per_message)
    if held is None:
        items: list[tuple[str, Entry | None]] = sorted(wanted.items())
        chunks = [items[i : i + per_message] for i in range(0, len(items), per_message)] or [[]]
        return [
            ListMessage(version + n + 1, UpdateType.FULL if n == 0 else UpdateType.DIFFERENTIAL, tuple(chunk))
            for n, chunk in enumerate(chunks)
        ]
    changes: list[tuple[str, Entry | None]] = [
        (uid, entry) for uid, entry in sorted(wanted.items()) if held.get(uid) != entry
    ]
    changes += [(uid, None) for uid in sorted(held) if uid not in wanted]
    return [
        ListMessage(version + n + 1, UpdateType.DIFFERENTIAL, tuple(changes[i : i + per_message]))
        for n, i in enumerate(range(0, len(changes), per_message))
    ]


def apply(held: Mapping[str, Entry], message: ListMessage) -> dict[str, Entry]:
    """The list a charger holds after accepting one message."""
    out = {} if message.update_type is UpdateType.FULL else dict(held)
    for uid, entry in message.entries:
        if entry is None:
            out.pop(uid, None)
        else:
            out[uid] = entry
    return out


def offline_settings_16(accept_unknown_offline: bool, realtime_first: bool) -> dict[str, str]:
    """OCPP 1.6 configuration consistent with the site's authorization policy.

    realtime_first: some tokens (ALLOWED_OFFLINE) must be asked about while the CSMS is reachable,
    so the charger must not start on its local list alone when online (LocalPreAuthorize false).
    """
    # The charger's own authorization cache would replay a real-time "Accepted" offline, also for
    # NEVER tokens that only the eMSP may decide: siteedge's local list replaces it.
    return {
        "AuthorizationCacheEnabled": "false",
        "LocalAuthListEnabled": "true",
        "LocalAuthorizeOffline": "true",
        "LocalPreAuthorize": "false" if realtime_first else "true",
        "AllowOfflineTxForUnknownId": "true" if accept_unknown_offline else "false",
    }


def offline_settings_201(accept_unknown_offline: bool, realtime_first: bool) -> dict[tuple[str, str], str]:
    """OCPP 2.0.1 variables (component, variable) consistent with the authorization policy."""
    return {
        ("AuthCacheCtrlr", "Enabled"): "false",
        ("LocalAuthListCtrlr", "Enabled"): "true",
        ("AuthCtrlr", "LocalAuthorizeOffline"): "true",
        ("AuthCtrlr", "LocalPreAuthorize"): "false" if realtime_first else "true",
        ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "true" if accept_unknown_offline else "false",
    }


class LocalListSource(Protocol):
    """Where the tokens for charger lists come from (the token cache)."""

    def recent_tokens(self, since: str, limit: int) -> list[Token]:
        """Tokens accepted at this site since an RFC 3339 time, most recent first."""
        ...

    def partner_tokens(self, partners: list[tuple[str, str]], limit: int) -> list[Token]:
        """ALWAYS tokens of the given (country_code, party_id) eMSPs."""
        ...


def to_json(entries: Mapping[str, Entry]) -> dict[str, Any]:
    """A held list as a JSON document (for the registry)."""
    return {uid: [e.uid, e.status, e.parent, e.token_type] for uid, e in entries.items()}


def from_json(doc: Mapping[str, Any]) -> dict[str, Entry]:
    """The inverse of to_json."""
    return {uid: Entry(v[0], v[1], v[2], v[3]) for uid, v in doc.items()}

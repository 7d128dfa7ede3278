"""Charger HTTP Basic credentials set by technicians: password rules, generation, the stored record, pure.

The registry keeps one record per charger (core/passwords.py fields plus the ones below), never the
password itself. A technician's record wins over the configuration file's password for as long as the
configuration's password is the one it replaced (`config` keeps that one's hash); an edited
configuration password is newer and wins again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

TECHNICIAN = "technician"  # record `source`: set through the API (else derived from the config file)
# OCPP 1.6 security whitepaper: AuthorizationKey is 16..20 bytes written as 32..40 hex characters.
_HEX_16 = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")
# OCPP 2.0.1 SecurityCtrlr.BasicAuthPassword: 16..40 characters (passwordString). Kept to the
# identifierString characters so the password survives any keypad, URL form and Basic header.
_TEXT_201 = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{16,40}")
GENERATED_BYTES = 20  # 40 hex characters: valid for both versions, 160 bits


class CredentialRefused(Exception):
    """A credential change refused with a reason: kind is unknown, invalid, conflict or upstream."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def password_problem(password: str, ocpp_version: str | None) -> str | None:
    """Why the password is unfit for a charger of this OCPP version (None: fit; unknown: 1.6 rules)."""
    if ocpp_version == "2.0.1":
        if not 16 <= len(password) <= 40:
            return f"an OCPP 2.0.1 BasicAuthPassword has 16 to 40 characters, not {len(password)}"
        if not _TEXT_201.fullmatch(password):
            return "use only letters, digits and * - _ = : + | @ ."
        return None
    if not _HEX_16.fullmatch(password):
        return (
            "an OCPP 1.6 AuthorizationKey is 16 to 20 bytes written as 32 to 40 hexadecimal characters "
            "(an even number)"
        )
    return None


def generate_password() -> str:
    """A strong random password that fits both OCPP 1.6 and 2.0.1 rules."""
    return secrets.token_hex(GENERATED_BYTES)


def technician_record(
    fresh: Mapping[str, Any],
    profile: int,
    at: str,
    *,
    previous: Mapping[str, Any] | None,
    previous_profile: int,
    switching: bool,
    config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The stored record of a technician-set password (fresh: its hash record).

    switching: the charger accepted the new password but has not yet connected with it, so its old
    credential (previous: the old record, None for none at all) is still accepted, under its old
    previous_profile.
    config: the hash record of the configuration password this one replaces (None if none).
    """
    record: dict[str, Any] = {**_hash_fields(fresh), "source": TECHNICIAN, "profile": profile, "set_at": at}
    record["config"] = _hash_fields(config) if config is not None else None
    if switching:
        record["switching"] = True
        record["previous"] = _hash_fields(previous) if previous is not None else None
        record["previous_profile"] = previous_profile
    return record


def switched(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record once the charger connected with its new password: the old one is refused from now."""
    return {k: v for k, v in record.items() if k not in ("switching", "previous", "previous_profile")}


def is_technician(record: Mapping[str, Any] | None) -> bool:
    """True if the record was set by a technician (not derived from the configuration file)."""
    return record is not None and record.get("source") == TECHNICIAN


def effective_profile(record: Mapping[str, Any] | None) -> int:
    """The security profile a charger's connection must meet (the old one while switching)."""
    if record is None:
        return 0
    key = "previous_profile" if record.get("switching") else "profile"
    return int(record.get(key) or 0)


def _hash_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("scheme", "n", "r", "p", "salt", "hash") if k in record}

"""The per-charger OCPP message log's record, and the redaction every record passes through."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Secrets OCPP carries in payloads: 1.6 ChangeConfiguration AuthorizationKey, 2.0.1
# SetVariables BasicAuthPassword, certificate private keys, and any key that names a password.
SECRET_KEYS = frozenset({"password", "authorizationkey", "basicauthpassword", "privatekey"})
SECRET_SETTINGS = frozenset({"authorizationkey", "basicauthpassword"})
REDACTED = "***"
# Firmware and log addresses (UpdateFirmware location, GetDiagnostics location, GetLog
# remoteLocation) may carry credentials: ftp://user:password@host/.
URL_KEYS = frozenset({"location", "remotelocation"})
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")  # up to the authority's last @

IN, OUT = "in", "out"  # charger → siteedge, siteedge → charger


@dataclass(frozen=True, slots=True)
class OcppFrame:
    """One OCPP-J frame as logged: who, when, which way, what; payload already redacted."""

    charger_id: str
    at: datetime
    direction: str  # IN or OUT
    message_type: int | None  # 2 CALL, 3 CALLRESULT, 4 CALLERROR, None unparseable
    unique_id: str | None
    action: str | None
    payload: Any  # the JSON payload (redacted), or the raw text of an unparseable frame

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "charger_id": self.charger_id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "direction": self.direction,
            "message_type": self.message_type,
            "unique_id": self.unique_id,
            "action": self.action,
            "payload": self.payload,
        }


def _names_secret(value: Any) -> bool:
    return isinstance(value, str) and value.replace("_", "").lower() in SECRET_SETTINGS


def redact(payload: Any) -> Any:
    """A copy of payload with every secret value replaced by REDACTED, recursively."""
    if isinstance(payload, list):
        return [redact(v) for v in payload]
    if not isinstance(payload, Mapping):
        return payload
    # {"key": "AuthorizationKey", "value": ...} (1.6) and {"variable": {"name":
    # "BasicAuthPassword"}, "attributeValue": ...} (2.0.1) name the secret beside its value.
    names_secret = _names_secret(payload.get("key")) or (
        isinstance(payload.get("variable"), Mapping) and _names_secret(payload["variable"].get("name"))
    )
    out: dict[str, Any] = {}
    for k, v in payload.items():
        lowered = str(k).replace("_", "").lower()
        if lowered in SECRET_KEYS or (names_secret and lowered in ("value", "attributevalue")):
            out[k] = REDACTED
        elif lowered in URL_KEYS and isinstance(v, str):
            out[k] = _USERINFO.sub(rf"\1{REDACTED}@", v)
        else:
            out[k] = redact(v)
    return out


def redact_text(raw: str) -> str:
    """An unparseable frame's text for the log: cut to size, secrets cannot be found so none kept."""
    lowered = raw.lower()
    if any(s in lowered for s in SECRET_KEYS):
        return "<unparseable frame mentioning a secret; not logged>"
    return raw if len(raw) <= 2048 else raw[:2048] + f"... ({len(raw)} characters)"

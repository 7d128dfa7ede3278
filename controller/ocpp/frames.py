"""OCPP-J framing, pure: parse one text frame strictly and name the CALLERROR a bad one deserves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

CALL, CALLRESULT, CALLERROR = 2, 3, 4
# OCPP-J: a message id is a string of at most 36 characters; an unreadable one is answered as "-1".
MAX_ID_LEN = 36
UNKNOWN_ID = "-1"
MAX_DESCRIPTION = 255  # 2.0.1 errorDescription maxLength
# The deepest OCPP payload (2.0.1 charging profiles) nests about 8 levels; far deeper is an attack
# on every recursive step after parsing (schema validation, redaction, logging).
MAX_DEPTH = 32

# Error codes that exist under another name (or not at all) in OCPP-J 1.6.
_CODES_16 = {
    "FormatViolation": "FormationViolation",  # 1.6 spells it FormationViolation (known typo, kept)
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",  # 1.6 typo, kept by the errata
    "RpcFrameworkError": "FormationViolation",  # 2.0.1-only; closest 1.6 meaning
    "MessageTypeNotSupported": "FormationViolation",  # 2.0.1-only
}
_CODES_201 = {
    "FormationViolation": "FormatViolation",
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
}
_VALID_16 = {
    "NotImplemented",
    "NotSupported",
    "InternalError",
    "ProtocolError",
    "SecurityError",
    "FormationViolation",
    "PropertyConstraintViolation",
    "OccurenceConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
}
_VALID_201 = {
    "FormatViolation",
    "GenericError",
    "InternalError",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "SecurityError",
    "TypeConstraintViolation",
}


def error_code(code: str, version: str) -> str:
    """The spelling of a CALLERROR code valid in this OCPP version; GenericError if it has none."""
    if version == "1.6":
        code = _CODES_16.get(code, code)
        return code if code in _VALID_16 else "GenericError"
    code = _CODES_201.get(code, code)
    return code if code in _VALID_201 else "GenericError"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A well-formed frame: a CALL (action set), a CALLRESULT or a CALLERROR."""

    message_type: int
    unique_id: str
    action: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    error: tuple[str, str, dict[str, Any]] | None = None  # CALLERROR code, description, details


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that is not valid OCPP-J; `reply` says whether a CALLERROR may answer it."""

    unique_id: str
    code: str
    description: str
    reply: bool
    message_type: int | None = None


def _reject_constant(name: str) -> Any:
    # json accepts NaN and Infinity; RFC 8259 (and so OCPP-J) does not.
    raise ValueError(f"{name} is not JSON")


def _readable_id(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LEN else None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def parse_frame(raw: str) -> Parsed | Malformed:
    """Parse a text frame into a message, or say how it is broken (never raises)."""
    try:
        msg = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return Malformed(UNKNOWN_ID, "RpcFrameworkError", "message is not valid JSON", reply=True)
    if not isinstance(msg, list) or not msg:
        return Malformed(UNKNOWN_ID, "RpcFrameworkError", "message is not a JSON array", reply=True)
    kind = msg[0]
    uid = _readable_id(msg[1]) if len(msg) > 1 else None
    # Nesting deeper than MAX_DEPTH needs more than MAX_DEPTH brackets: most frames skip the walk.
    if raw.count("[") + raw.count("{") > MAX_DEPTH and _depth_exceeds(msg, MAX_DEPTH):
        reply = kind == CALL
        return Malformed(uid or UNKNOWN_ID, "FormatViolation", f"nested deeper than {MAX_DEPTH}", reply)
    if isinstance(kind, bool) or kind not in (CALL, CALLRESULT, CALLERROR):
        return Malformed(
            uid or UNKNOWN_ID, "MessageTypeNotSupported", f"unknown MessageTypeId {kind!r}", reply=True
        )
    if uid is None:
        # A response we cannot match is dropped; a call we cannot name is answered as "-1".
        return Malformed(
            UNKNOWN_ID,
            "RpcFrameworkError",
            "MessageId is missing or not a string of 1-36 characters",
            reply=kind == CALL,
            message_type=kind,
        )
    if kind == CALL:
        if len(msg) != 4:
            return Malformed(uid, "RpcFrameworkError", "a CALL has exactly 4 elements", True, CALL)
        action, payload = msg[2], msg[3]
        if not isinstance(action, str) or not action:
            return Malformed(uid, "RpcFrameworkError", "Action must be a non-empty string", True, CALL)
        if not isinstance(payload, dict):
            return Malformed(uid, "FormatViolation", "payload must be a JSON object", True, CALL)
        return Parsed(CALL, uid, action, payload)
    if kind == CALLRESULT:
        if len(msg) != 3 or not isinstance(msg[2], dict):
            return Malformed(uid, "FormatViolation", "a CALLRESULT is [3, id, {payload}]", False, kind)
        return Parsed(CALLRESULT, uid, None, msg[2])
    # CALLERROR: errorDetails may be omitted by lenient peers; the rest must be strings.
    if len(msg) not in (4, 5) or not isinstance(msg[2], str) or not isinstance(msg[3], str):
        return Malformed(uid, "FormatViolation", "a CALLERROR is [4, id, code, description, {}]", False, kind)
    details = msg[4] if len(msg) == 5 and isinstance(msg[4], dict) else {}
    return Parsed(CALLERROR, uid, None, {}, (msg[2], msg[3], details))


def call_error(unique_id: str, code: str, description: str, version: str, details: Any = None) -> str:
    """A CALLERROR frame with a code valid for the version and a description within limits."""
    safe_details = details if isinstance(details, dict) else {}
    return json.dumps(
        [CALLERROR, unique_id, error_code(code, version), description[:MAX_DESCRIPTION], safe_details],
        separators=(",", ":"),
        default=str,
    )

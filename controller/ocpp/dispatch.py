"""The `ocpp` library's call dispatch steps, same results at a fraction of the CPU per message.

Per received CALL the library validates the payload and its own reply with `jsonschema` (in a
worker thread), converts every key with two regular expressions and inspects the handler's
signature. Here: the same OCPP JSON schemas compiled once by `jsonschema_rs` (Draft 4, formats
not asserted, exactly as the library's Draft4Validator), key conversions computed once per key
name, signatures once per handler. Anything the fast path does not accept goes through the
library's own validation, so every CALLERROR (code and text) is the library's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jsonschema_rs
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.messages import Call, CallResult, MessageType, get_validator, validate_payload

# The library validates these 1.6 messages with floats parsed as Decimal (multipleOf); rare
# enough to leave to it.
_DECIMAL_16 = {
    (MessageType.Call, "SetChargingProfile"),
    (MessageType.Call, "RemoteStartTransaction"),
    (MessageType.CallResult, "GetCompositeSchedule"),
}
_MAX_NAMES = 4096  # key names remembered per direction: a charger can invent custom keys
_compiled: dict[tuple[int, str, str], jsonschema_rs.Draft4Validator | None] = {}
_snake: dict[str, str] = {}
_camel: dict[str, str] = {}
_wants_unique_id: dict[Any, bool] = {}


def _fast_validator(kind: int, action: str, version: str) -> jsonschema_rs.Draft4Validator | None:
    key = (kind, action, version)
    if key not in _compiled:
        compiled = None
        if not (version == "1.6" and (kind, action) in _DECIMAL_16):
            try:
                schema = get_validator(kind, action, version).schema
                compiled = jsonschema_rs.Draft4Validator(schema, validate_formats=False)
            except Exception:  # noqa: BLE001 - no schema (the library answers) or one rs cannot compile
                compiled = None
        _compiled[key] = compiled
    return _compiled[key]


async def validate(message: Call | CallResult, version: str) -> None:
    """Raise the library's OCPPError if the payload breaks its schema; quick when it does not."""
    fast = _fast_validator(message.message_type_id, message.action, version)
    if fast is not None:
        try:
            if fast.is_valid(message.payload):
                return
        except Exception:  # noqa: BLE001 - data rs cannot take (a lone surrogate ...): ask the library
            pass
    # The library's verdict and error for everything else (in its worker thread, as it does).
    await validate_payload(message, version)


def _converted(data: Any, names: dict[str, str], convert: Callable[[Any], Any]) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            name = names.get(key)
            if name is None:
                name = next(iter(convert({key: None})))
                if len(names) < _MAX_NAMES:
                    names[key] = name
            out[name] = _converted(value, names, convert)
        return out
    if isinstance(data, list):
        return [_converted(v, names, convert) for v in data]
    return data


def snake_keys(data: Any) -> Any:
    """The library's camel_to_snake_case, each key name converted once."""
    return _converted(data, _snake, camel_to_snake_case)


def camel_keys(data: Any) -> Any:
    """The library's snake_to_camel_case, each key name converted once."""
    return _converted(data, _camel, snake_to_camel_case)


def wants_unique_id(handler: Callable[..., Any]) -> bool:
    """Does the handler take call_unique_id (the library passes it only then)?"""
    func = getattr(handler, "__func__", handler)
    found = _wants_unique_id.get(func)
    if found is None:
        found = _wants_unique_id[func] = "call_unique_id" in inspect.signature(handler).parameters
    return found

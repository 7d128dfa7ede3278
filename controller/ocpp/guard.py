"""A strict front for the `ocpp` ChargePoint: framing, pre-boot gate, error codes, message log."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult
from ocpp.v16 import call as call16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201.enums import Action as Action201
from websockets.exceptions import ConnectionClosed

from controller.core.msglog import IN, OUT, OcppFrame, redact, redact_text
from controller.ocpp.context import OcppContext
from controller.ocpp.dispatch import camel_keys, snake_keys, validate, wants_unique_id
from controller.ocpp.frames import (
    CALL,
    CALLERROR,
    CALLRESULT,
    UNKNOWN_ID,
    Malformed,
    Parsed,
    call_error,
    error_code,
    parse_frame,
)

log = logging.getLogger(__name__)

BOOT = "BootNotification"
_KNOWN_ACTIONS = {"1.6": {a.value for a in Action16}, "2.0.1": {a.value for a in Action201}}
# Close code for a binary frame (RFC 6455 1003: data of a type the endpoint cannot accept).
CLOSE_UNSUPPORTED_DATA = 1003


class _QuietLogger:
    """The `ocpp` library's logger, turned down: the message log already keeps every frame."""

    # The library logs each frame at INFO and each bad call with a traceback; a charger sending
    # garbage must not flood the journal on an SD card.
    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(name)

    def info(self, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)

    debug = info

    def warning(self, msg: str, *args: Any) -> None:
        self._log.info(msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._log.info(msg, *args)

    def exception(self, msg: str, *args: Any) -> None:
        self._log.info(msg, *args)


class _Tracker:
    """Wraps a received Call: remembers its reply, spells CALLERROR codes for the version."""

    # The library validates only exact Call instances (type(m) in [...]), so the Call itself
    # stays a Call and only its two factory methods are replaced on the instance.
    def __init__(self, call: Call, version: str) -> None:
        self.version = version
        self.result: dict[str, Any] | None = None
        self._result_of = call.create_call_result
        self._error_of = call.create_call_error
        call.create_call_result = self.create_call_result
        call.create_call_error = self.create_call_error

    def create_call_result(self, payload: Any) -> Any:
        self.result = payload if isinstance(payload, dict) else None
        return self._result_of(payload)

    def create_call_error(self, exception: Any) -> Any:
        err = self._error_of(exception)
        # The library echoes the offending message in the details and uses 2.0.1 spellings.
        details = {k: v for k, v in (err.error_details or {}).items() if k == "cause"}
        return CallError(
            err.unique_id, error_code(err.error_code, self.version), err.error_description[:255], details
        )


class GuardedChargePoint:
    """Mixin placed before a CentralSystem16/201 class: every frame passes through here.

    - text frames only (a binary frame closes the connection with 1003);
    - strict OCPP-J framing: unparseable frames get a CALLERROR (id "-1" if unreadable);
    - unknown actions get NotImplemented, known but unhandled ones NotSupported (OCPP-J 4.2.3);
    - calls other than BootNotification before an accepted boot get SecurityError;
    - schema validation of every inbound CALL, outbound CALL and CALLRESULT is enforced
      (inbound calls are dispatched by `_handle_call`, the library's steps made cheaper);
    - every frame in and out goes to the per-charger message log, redacted.
    """

    id: str
    _ctx: OcppContext
    _connection: Any
    _ocpp_version: str
    route_map: dict[str, dict[str, Any]]
    _response_queue: Any
    logger: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Never skip validation, whatever a handler's decorator says.
        for handlers in self.route_map.values():
            handlers["_skip_schema_validation"] = False
        self.logger = _QuietLogger("controller.ocpp.wire")
        self._pending: dict[str, str] = {}  # unique id of our CALLs awaiting a reply -> action
        self._actions_in: dict[str, str] = {}  # unique id of the charger's CALL being answered
        self._after_tasks: set[asyncio.Future[Any]] = set()

    # --- receiving -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve frames until the connection closes (ConnectionClosed propagates)."""
        while True:
            frame = await self._connection.recv()
            if isinstance(frame, bytes):
                self._log(IN, None, None, None, f"<binary frame, {len(frame)} bytes>")
                log.warning("charger %s sent a binary frame; closing (OCPP-J is text)", self.id)
                await self._connection.close(CLOSE_UNSUPPORTED_DATA, "OCPP-J frames are text")
                return
            await self.route_message(frame)

    async def route_message(self, raw_msg: str) -> None:
        """Dispatch one text frame; a bad one is answered or dropped, never raised."""
        try:
            await self._route(raw_msg)
        except ConnectionClosed:
            raise
        except Exception:  # last line of defence: one frame must not end the connection
            log.exception("charger %s: frame not handled: %.200r", self.id, raw_msg)

    async def _route(self, raw_msg: str) -> None:
        parsed = parse_frame(raw_msg)
        if isinstance(parsed, Malformed):
            await self._malformed(parsed, raw_msg)
            return
        action = parsed.action or self._pending.get(parsed.unique_id)
        self._ctx.log_text(self.id, IN, parsed.message_type, parsed.unique_id, action, raw_msg)
        if parsed.message_type == CALL:
            await self._on_call(parsed)
        elif parsed.unique_id not in self._pending:
            # Only replies someone waits for are queued: stray ones would pile up in the queue.
            log.info("charger %s: reply %s matches no pending call; dropped", self.id, parsed.unique_id)
        elif parsed.message_type == CALLRESULT:
            self._response_queue.put_nowait(CallResult(parsed.unique_id, parsed.payload))
        else:
            assert parsed.error is not None
            self._response_queue.put_nowait(CallError(parsed.unique_id, *parsed.error))

    async def _malformed(self, bad: Malformed, raw: str) -> None:
        uid = None if bad.unique_id == UNKNOWN_ID else bad.unique_id
        self._ctx.stats.malformed += 1
        self._log(IN, bad.message_type, uid, None, redact_text(raw))
        log.info("charger %s sent a malformed frame: %s", self.id, bad.description)
        if bad.reply:
            await self._send(call_error(bad.unique_id, bad.code, bad.description, self._ocpp_version))

    async def _on_call(self, msg: Parsed) -> None:
        assert msg.action is not None
        started = time.perf_counter()
        answered = False
        try:
            answered = await self._answer_call(msg)
        finally:
            known = msg.action in _KNOWN_ACTIONS.get(self._ocpp_version, ())
            self._ctx.stats.call_received(
                msg.action if known else "unknown",
                "result" if answered else "error",
                time.perf_counter() - started,
            )

    async def _answer_call(self, msg: Parsed) -> bool:
        """Answer one CALL; True when the answer was a CALLRESULT."""
        assert msg.action is not None
        version = self._ocpp_version
        if "_on_action" not in self.route_map.get(msg.action, {}):
            # OCPP-J 4.2.3: NotImplemented = action not known, NotSupported = known, not supported.
            known = msg.action in _KNOWN_ACTIONS.get(version, set())
            code, why = ("NotSupported", "not supported") if known else ("NotImplemented", "not known")
            await self._send(call_error(msg.unique_id, code, f"{msg.action} is {why} here", version))
            return False
        if msg.action != BOOT and not self._ctx.may_send(self.id):
            await self._send(
                call_error(
                    msg.unique_id,
                    "SecurityError",
                    f"{msg.action} refused: the charger has no accepted BootNotification",
                    version,
                )
            )
            return False
        call = Call(msg.unique_id, msg.action, dict(msg.payload))
        tracker = _Tracker(call, version)
        self._actions_in[msg.unique_id] = msg.action
        try:
            await self._handle_call(call)
        except ConnectionClosed:
            raise  # the connection is gone: nothing to answer, the server cleans up
        except OCPPError as error:  # schema violations of the call or of our own reply
            tracker.result = None  # our reply, if one was made, was not sent: a CALLERROR was
            await self._send(call.create_call_error(error).to_json())
        except Exception:  # one bad message must not end the connection
            tracker.result = None
            log.exception("charger %s: %s failed", self.id, msg.action)
            await self._send(call_error(msg.unique_id, "InternalError", "internal error", version))
        finally:
            self._actions_in.pop(msg.unique_id, None)
        if msg.action == BOOT and tracker.result is not None:
            self._ctx.record_boot(self.id, str(tracker.result.get("status")), self._boot_data(msg.payload))
        return tracker.result is not None

    def _boot_data(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._ocpp_version == "1.6":
            return {
                "vendor": payload.get("chargePointVendor"),
                "model": payload.get("chargePointModel"),
                "serial": payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
                "firmware": payload.get("firmwareVersion"),
                "ocpp_version": "1.6",
            }
        station = payload.get("chargingStation", {})
        return {
            "vendor": station.get("vendorName"),
            "model": station.get("model"),
            "serial": station.get("serialNumber"),
            "firmware": station.get("firmwareVersion"),
            "ocpp_version": self._ocpp_version,
        }

    async def _handle_call(self, msg: Call) -> None:
        """The library's ChargePoint._handle_call, step for step, with cheaper steps (dispatch.py)."""
        # _on_call made sure the action has an "_on_action" handler.
        handlers = self.route_map[msg.action]
        version = self._ocpp_version
        await validate(msg, version)
        payload = snake_keys(msg.payload)
        handler = handlers["_on_action"]
        try:
            if wants_unique_id(handler):
                response = handler(**payload, call_unique_id=msg.unique_id)
            else:
                response = handler(**payload)
            if inspect.isawaitable(response):
                response = await response
        except Exception as e:  # as the library: a failing handler is answered with a CALLERROR
            self.logger.exception("Error while handling request '%s'", msg)
            await self._send(msg.create_call_error(e).to_json())
            return
        result = msg.create_call_result(camel_keys(remove_nones(serialize_as_dict(response))))
        await validate(result, version)
        await self._send(result.to_json())
        after = handlers.get("_after_action")
        if after is not None:
            if wants_unique_id(after):
                later = after(**payload, call_unique_id=msg.unique_id)
            else:
                later = after(**payload)
            if inspect.isawaitable(later):
                # As the library: a task, so a call made inside the after-hook cannot block us.
                task = asyncio.ensure_future(later)
                self._after_tasks.add(task)
                task.add_done_callback(self._after_tasks.discard)

    # --- sending ---------------------------------------------------------------------------

    async def call(
        self,
        payload: Any,
        suppress: bool = True,
        unique_id: str | None = None,
        skip_schema_validation: bool = False,
    ) -> Any:
        """The library's call(), with schema validation always on."""
        unique_id = unique_id or str(uuid.uuid4())
        action = self._pending[unique_id] = type(payload).__name__
        started, outcome, took = time.perf_counter(), "abandoned", None
        try:
            reply = await super().call(payload, suppress, unique_id, False)  # type: ignore[misc]
            # With suppress the library answers a CALLERROR with None.
            outcome, took = ("result" if reply is not None else "error"), time.perf_counter() - started
            return reply
        except OCPPError:
            outcome, took = "error", time.perf_counter() - started
            raise
        except TimeoutError:
            outcome = "timeout"  # the library's own response timeout
            raise
        except ConnectionClosed:
            outcome = "closed"
            raise
        finally:
            self._pending.pop(unique_id, None)
            self._ctx.stats.call_sent(action, outcome, took)

    async def _send(self, message: str) -> None:
        self._log_out(message)
        await self._connection.send(message)

    def _log_out(self, message: str) -> None:
        if self._ctx.message_log is None:
            return
        try:
            msg = json.loads(message)
            kind, uid = msg[0], msg[1]
            if not isinstance(msg, list) or kind not in (CALL, CALLRESULT, CALLERROR):
                raise ValueError("not an OCPP-J frame")
        except (ValueError, IndexError, TypeError, KeyError):
            self._log(OUT, None, None, None, redact_text(message))
            return
        # Our own frames are well formed; the log stores their text and redacts secrets itself.
        action = msg[2] if kind == CALL else self._actions_in.get(uid)
        self._ctx.log_text(self.id, OUT, kind, uid, action, message)

    def _log(
        self, direction: str, kind: int | None, uid: str | None, action: str | None, payload: Any
    ) -> None:
        if self._ctx.message_log is None:
            return
        frame = OcppFrame(self.id, self._ctx.clock.now(), direction, kind, uid, action, redact(payload))
        self._ctx.log_frame(frame)

    # --- liveness --------------------------------------------------------------------------

    async def trigger_status(self) -> Any:
        """Ask the charger for a StatusNotification of every connector (after a reconnect)."""
        if self._ocpp_version == "1.6":
            return await self.call(call16.TriggerMessage(requested_message="StatusNotification"))
        return await self.call(call201.TriggerMessage(requested_message="StatusNotification"))

"""OCPP 1.6J handlers: each converts a charger message into a core event and a reply."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    DataTransferStatus,
    RegistrationStatus,
)

from controller.core.clock import rfc3339
from controller.core.events import (
    ChargerBooted,
    ChargerReported,
    ConnectorStatusChanged,
    TransactionAuthorizationFailed,
)
from controller.core.ocpp_facts import meter_16, start_16, stop_16
from controller.ocpp.authorize import decide, id_tag_info_16, recent
from controller.ocpp.context import OcppContext
from controller.ocpp.journaling import commit


class CentralSystem16(ChargePoint):  # type: ignore[misc]
    """One connected OCPP 1.6J charge point, seen from the CSMS side."""

    def __init__(self, charger_id: str, connection: Any, ctx: OcppContext) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self._ctx = ctx
        self.ocpp_version = "1.6"
        ctx.sessions.add(self)  # the command service reaches the charger through this link

    def _report(self, message: str, **data: Any) -> None:
        self._ctx.emit(ChargerReported(self.id, "1.6", message, self._ctx.clock.now(), data))

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        now = self._ctx.clock.now()
        self._ctx.emit(
            ChargerBooted(
                self.id,
                charge_point_vendor,
                charge_point_model,
                kw.get("charge_point_serial_number"),
                kw.get("firmware_version"),
                now,
            )
        )
        answer = self._ctx.boot_answer(self.id)  # registration + unknown-charger policy
        return call_result.BootNotification(
            current_time=rfc3339(now),
            interval=self._ctx.config.ocpp.heartbeat_interval,
            status=RegistrationStatus(answer.value),
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=rfc3339(self._ctx.clock.now()))

    @on(Action.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any) -> Any:
        raw = {"connectorId": connector_id, "status": status, "errorCode": error_code}
        raw.update({k: v for k, v in kw.items() if k in ("info", "vendor_error_code", "timestamp")})
        self._ctx.emit(
            ConnectorStatusChanged(
                self.id,
                "1.6",
                connector_id,
                connector_id,
                status,
                None if error_code == "NoError" else error_code,
                self._ctx.clock.now(),
                raw,
            )
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> Any:
        return call_result.Authorize(id_tag_info=id_tag_info_16(await decide(self._ctx, self.id, id_tag)))

    @on(Action.start_transaction)
    async def on_start(self, **payload: Any) -> Any:
        decision = await commit(self._ctx, start_16(self.id, self._ctx.clock.now(), payload))
        assert decision.record is not None  # a start always has its record
        # The transaction is on disk whatever the verdict: a start the charger made offline with a
        # card found invalid now is kept, and the charger applies StopTransactionOnInvalidId.
        verdict = await decide(self._ctx, self.id, payload["id_tag"], payload.get("connector_id"), reuse=True)
        if verdict is not None and not verdict.accepted:
            self._ctx.emit(
                TransactionAuthorizationFailed(
                    decision.record.key, self.id, verdict.reason, self._ctx.clock.now()
                )
            )
        return call_result.StartTransaction(
            transaction_id=int(decision.record.ocpp_tx_id), id_tag_info=id_tag_info_16(verdict)
        )

    @on(Action.stop_transaction)
    async def on_stop(self, **payload: Any) -> Any:
        # Unknown or already stopped: recorded and answered normally, so the charger's queue moves on.
        await commit(self._ctx, stop_16(self.id, self._ctx.clock.now(), payload))
        # Nobody is asked to authorize a stop: answer only with a decision this site already made.
        verdict = recent(self._ctx, payload["id_tag"]) if payload.get("id_tag") else None
        return call_result.StopTransaction(id_tag_info=id_tag_info_16(verdict) if verdict else None)

    @on(Action.meter_values)
    async def on_meter_values(self, **payload: Any) -> Any:
        await commit(self._ctx, meter_16(self.id, self._ctx.clock.now(), payload))
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        self._report("DataTransfer", vendor_id=vendor_id, **kw)
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str) -> Any:
        self._report("DiagnosticsStatusNotification", status=status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str) -> Any:
        self._report("FirmwareStatusNotification", status=status)
        return call_result.FirmwareStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **kw: Any) -> Any:
        self._report("SecurityEventNotification", type=type, timestamp=timestamp, **kw)
        return call_result.SecurityEventNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status: str, request_id: int) -> Any:
        self._report("SignedFirmwareStatusNotification", status=status, request_id=request_id)
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, request_id: int) -> Any:
        self._report("LogStatusNotification", status=status, request_id=request_id)
        return call_result.LogStatusNotification()

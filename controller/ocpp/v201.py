"""OCPP 2.0.1 handlers: each converts a charger message into a core event and a reply."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import (
    Action,
    DataTransferStatusEnumType,
    RegistrationStatusEnumType,
)

from controller.core.clock import rfc3339
from controller.core.events import (
    ChargerBooted,
    ChargerReported,
    ConnectorStatusChanged,
    TransactionAuthorizationFailed,
)
from controller.core.ocpp_facts import meter_201, transaction_event_201
from controller.ocpp.authorize import decide, id_token_info_201
from controller.ocpp.context import OcppContext
from controller.ocpp.journaling import commit


class CentralSystem201(ChargePoint):  # type: ignore[misc]
    """One connected OCPP 2.0.1 charging station, seen from the CSMS side."""

    def __init__(self, charger_id: str, connection: Any, ctx: OcppContext) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self._ctx = ctx
        self.ocpp_version = "2.0.1"
        ctx.sessions.add(self)  # the command service reaches the station through this link

    def _report(self, message: str, **data: Any) -> None:
        self._ctx.emit(ChargerReported(self.id, "2.0.1", message, self._ctx.clock.now(), data))

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str, **kw: Any) -> Any:
        now = self._ctx.clock.now()
        self._ctx.emit(
            ChargerBooted(
                self.id,
                charging_station.get("vendor_name", ""),
                charging_station.get("model", ""),
                charging_station.get("serial_number"),
                charging_station.get("firmware_version"),
                now,
            )
        )
        answer = self._ctx.boot_answer(self.id)  # registration + unknown-charger policy
        return call_result.BootNotification(
            current_time=rfc3339(now),
            interval=self._ctx.config.ocpp.heartbeat_interval,
            status=RegistrationStatusEnumType(answer.value),
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=rfc3339(self._ctx.clock.now()))

    @on(Action.status_notification)
    def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kw: Any
    ) -> Any:
        raw = {
            "evseId": evse_id,
            "connectorId": connector_id,
            "connectorStatus": connector_status,
            "timestamp": timestamp,
        }
        self._ctx.emit(
            ConnectorStatusChanged(
                self.id,
                "2.0.1",
                evse_id,
                connector_id,
                connector_status,
                None,
                self._ctx.clock.now(),
                raw,
            )
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
        verdict = await decide(self._ctx, self.id, str(id_token.get("id_token", "")))
        return call_result.Authorize(id_token_info=id_token_info_201(verdict))

    @on(Action.transaction_event)
    async def on_transaction_event(self, **payload: Any) -> Any:
        # Offline-queued events arrive in order on this connection (handled one at a time) with
        # offline=true and past timestamps; duplicates and seqNo gaps are the journal's to judge.
        decision = await commit(self._ctx, transaction_event_201(self.id, self._ctx.clock.now(), payload))
        id_token = payload.get("id_token")
        if not id_token:
            return call_result.TransactionEvent()
        evse = (payload.get("evse") or {}).get("id")
        verdict = await decide(self._ctx, self.id, str(id_token.get("id_token", "")), evse, reuse=True)
        if verdict is not None and not verdict.accepted and decision.record is not None:
            self._ctx.emit(
                TransactionAuthorizationFailed(
                    decision.record.key, self.id, verdict.reason, self._ctx.clock.now()
                )
            )
        return call_result.TransactionEvent(id_token_info=id_token_info_201(verdict))

    @on(Action.meter_values)
    async def on_meter_values(self, **payload: Any) -> Any:
        await commit(self._ctx, meter_201(self.id, self._ctx.clock.now(), payload))
        return call_result.MeterValues()

    @on(Action.notify_event)
    def on_notify_event(
        self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], **kw: Any
    ) -> Any:
        self._report("NotifyEvent", generated_at=generated_at, seq_no=seq_no, event_data=event_data, **kw)
        return call_result.NotifyEvent()

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, generated_at: str, seq_no: int, **kw: Any) -> Any:
        self._report("NotifyReport", request_id=request_id, generated_at=generated_at, seq_no=seq_no, **kw)
        return call_result.NotifyReport()

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **kw: Any) -> Any:
        self._report("SecurityEventNotification", type=type, timestamp=timestamp, **kw)
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **kw: Any) -> Any:
        self._report("FirmwareStatusNotification", status=status, **kw)
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, **kw: Any) -> Any:
        self._report("LogStatusNotification", status=status, **kw)
        return call_result.LogStatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        self._report("DataTransfer", vendor_id=vendor_id, **kw)
        return call_result.DataTransfer(status=DataTransferStatusEnumType.unknown_vendor_id)

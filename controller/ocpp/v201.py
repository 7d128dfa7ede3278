"""OCPP 2.0.1 handlers: each converts a charger message into a core event and a reply."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import (
    Action,
    AuthorizationStatusEnumType,
    DataTransferStatusEnumType,
    RegistrationStatusEnumType,
)

from controller.core.clock import rfc3339
from controller.core.commissioning import boot_answer
from controller.core.events import ChargerBooted, ConnectorStatusChanged
from controller.ocpp.context import OcppContext


class CentralSystem201(ChargePoint):  # type: ignore[misc]
    """One connected OCPP 2.0.1 charging station, seen from the CSMS side."""

    def __init__(self, charger_id: str, connection: Any, ctx: OcppContext) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self._ctx = ctx

    def _token_info(self) -> dict[str, str]:
        # Roaming authorization (OCPI whitelist rules) arrives with issue 6; until then the site
        # accepts every token, as an unconfigured free-vend site would.
        return {"status": AuthorizationStatusEnumType.accepted.value}

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
        answer = boot_answer(self._ctx.is_configured(self.id), self._ctx.config.ocpp.unknown_chargers)
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
    def on_authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
        return call_result.Authorize(id_token_info=self._token_info())

    @on(Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kw: Any,
    ) -> Any:
        return call_result.TransactionEvent(id_token_info=self._token_info() if kw.get("id_token") else None)

    @on(Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **kw: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.notify_event)
    def on_notify_event(
        self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], **kw: Any
    ) -> Any:
        return call_result.NotifyEvent()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        return call_result.DataTransfer(status=DataTransferStatusEnumType.unknown_vendor_id)

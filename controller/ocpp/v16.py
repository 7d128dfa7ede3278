"""OCPP 1.6J handlers: each converts a charger message into a core event and a reply."""

from __future__ import annotations

import itertools
import time
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    DataTransferStatus,
    RegistrationStatus,
)

from controller.core.clock import rfc3339
from controller.core.commissioning import boot_answer
from controller.core.events import ChargerBooted, ConnectorStatusChanged
from controller.ocpp.context import OcppContext

# Transaction ids must not repeat after a restart; until the session journal (issue 7) numbers
# them durably, start from the clock so a restarted controller never reuses a recent id.
_tx_ids = itertools.count(int(time.time()) % 1_000_000_000)


class CentralSystem16(ChargePoint):  # type: ignore[misc]
    """One connected OCPP 1.6J charge point, seen from the CSMS side."""

    def __init__(self, charger_id: str, connection: Any, ctx: OcppContext) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self._ctx = ctx

    def _id_tag_info(self) -> dict[str, str]:
        # Roaming authorization (OCPI whitelist rules) arrives with issue 6; until then the site
        # accepts every card, as an unconfigured free-vend site would.
        return {"status": AuthorizationStatus.accepted.value}

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
        answer = boot_answer(self._ctx.is_configured(self.id), self._ctx.config.ocpp.unknown_chargers)
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
    def on_authorize(self, id_tag: str) -> Any:
        return call_result.Authorize(id_tag_info=self._id_tag_info())

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any) -> Any:
        return call_result.StartTransaction(transaction_id=next(_tx_ids), id_tag_info=self._id_tag_info())

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any) -> Any:
        return call_result.StopTransaction(id_tag_info=self._id_tag_info() if kw.get("id_tag") else None)

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **kw: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str) -> Any:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str) -> Any:
        return call_result.FirmwareStatusNotification()

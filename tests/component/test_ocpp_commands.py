"""The command service against simulated chargers over real WebSockets, both OCPP versions."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from controller.app import SiteController
from controller.core.events import ChargerReported
from controller.core.ports import CommandStatus
from controller.ocpp.commands import COMMANDS_16, COMMANDS_201
from hil.siteconfig import SiteSpec
from tests.api import api_client

ACCEPTED, REJECTED = CommandStatus.ACCEPTED, CommandStatus.REJECTED
LATER = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
PROFILE_16 = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}
PROFILE_201 = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": [
        {
            "id": 1,
            "chargingRateUnit": "W",
            "startSchedule": datetime.now(UTC).isoformat(),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
        }
    ],
}
VARIABLE = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}

# (command, params, expected status, a field the reply must carry) in an order that makes sense
# to one charger: a limit before the composite schedule, a reservation before its cancellation.
CASES_16: list[tuple[str, dict[str, Any], CommandStatus, str | None]] = [
    ("GetConfiguration", {"key": ["HeartbeatInterval"]}, ACCEPTED, "configurationKey"),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}, ACCEPTED, None),
    ("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "9"}, REJECTED, None),
    ("ClearCache", {}, ACCEPTED, None),
    ("SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": []}, ACCEPTED, None),
    ("GetLocalListVersion", {}, ACCEPTED, "listVersion"),
    (
        "ReserveNow",
        {"connectorId": 1, "expiryDate": LATER, "idTag": "R1", "reservationId": 7},
        ACCEPTED,
        None,
    ),
    ("CancelReservation", {"reservationId": 7}, ACCEPTED, None),
    ("CancelReservation", {"reservationId": 8}, REJECTED, None),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": PROFILE_16}, ACCEPTED, None),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 3600}, ACCEPTED, "chargingSchedule"),
    ("ClearChargingProfile", {"connectorId": 1}, ACCEPTED, None),
    ("UnlockConnector", {"connectorId": 2}, ACCEPTED, None),
    ("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}, ACCEPTED, None),
    ("ChangeAvailability", {"connectorId": 2, "type": "Operative"}, ACCEPTED, None),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}, ACCEPTED, None),
    ("UpdateFirmware", {"location": "https://fw.example/1.bin", "retrieveDate": LATER}, ACCEPTED, None),
    ("GetDiagnostics", {"location": "ftp://diag.example/"}, ACCEPTED, "fileName"),
    ("DataTransfer", {"vendorId": "siteedge-hil", "data": "ping"}, ACCEPTED, "data"),
    ("DataTransfer", {"vendorId": "acme"}, CommandStatus.NOT_SUPPORTED, None),
    ("RemoteStopTransaction", {"transactionId": 424242}, REJECTED, None),
    ("RemoteStartTransaction", {"idTag": "REMOTE", "connectorId": 1}, ACCEPTED, None),
    ("Reset", {"type": "Soft"}, ACCEPTED, None),  # last: the charger reboots
]
CASES_201: list[tuple[str, dict[str, Any], CommandStatus, str | None]] = [
    ("GetVariables", {"getVariableData": [VARIABLE]}, ACCEPTED, "getVariableResult"),
    (
        "SetVariables",
        {"setVariableData": [{**VARIABLE, "attributeValue": "120"}]},
        ACCEPTED,
        "setVariableResult",
    ),
    ("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}, ACCEPTED, None),
    ("ClearCache", {}, ACCEPTED, None),
    ("SendLocalList", {"versionNumber": 2, "updateType": "Full"}, ACCEPTED, None),
    ("SendLocalList", {"versionNumber": 1, "updateType": "Differential"}, REJECTED, None),
    ("GetLocalListVersion", {}, ACCEPTED, "versionNumber"),
    (
        "ReserveNow",
        {"id": 5, "expiryDateTime": LATER, "idToken": {"idToken": "R", "type": "ISO14443"}, "evseId": 1},
        ACCEPTED,
        None,
    ),
    ("CancelReservation", {"reservationId": 5}, ACCEPTED, None),
    ("SetChargingProfile", {"evseId": 1, "chargingProfile": PROFILE_201}, ACCEPTED, None),
    ("GetCompositeSchedule", {"duration": 3600, "evseId": 1}, ACCEPTED, "schedule"),
    ("ClearChargingProfile", {"chargingProfileId": 1}, ACCEPTED, None),
    ("UnlockConnector", {"evseId": 2, "connectorId": 1}, ACCEPTED, None),
    ("UnlockConnector", {"evseId": 9, "connectorId": 1}, REJECTED, None),
    ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}}, ACCEPTED, None),
    ("ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}}, ACCEPTED, None),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, ACCEPTED, None),
    (
        "UpdateFirmware",
        {"requestId": 3, "firmware": {"location": "https://fw.example/2.bin", "retrieveDateTime": LATER}},
        ACCEPTED,
        None,
    ),
    (
        "GetLog",
        {"log": {"remoteLocation": "https://logs.example/"}, "logType": "DiagnosticsLog", "requestId": 4},
        ACCEPTED,
        "filename",
    ),
    ("DataTransfer", {"vendorId": "siteedge-hil", "data": {"n": 1}}, ACCEPTED, "data"),
    (
        "SetDisplayMessage",
        {"message": {"id": 9101, "priority": "InFront", "message": {"format": "UTF8", "content": "0.30"}}},
        ACCEPTED,
        None,
    ),
    ("RequestStopTransaction", {"transactionId": "nope"}, REJECTED, None),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 9, "evseId": 1},
        ACCEPTED,
        None,
    ),
    ("Reset", {"type": "Immediate"}, ACCEPTED, None),  # last: the station reboots
]


async def until(cond: Any, within: float = 15.0) -> None:
    for _ in range(int(within / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition did not hold within {within} s")


@pytest.mark.parametrize(
    ("version", "cases", "names"), [("1.6", CASES_16, COMMANDS_16), ("2.0.1", CASES_201, COMMANDS_201)]
)
async def test_every_command_reaches_the_charger_with_a_typed_result(
    site_spec: SiteSpec,
    start_controller: Any,
    charge_point: Any,
    version: str,
    cases: list[Any],
    names: tuple[str, ...],
) -> None:
    assert {c[0] for c in cases} == set(names)  # every command of the version is exercised
    ctl: SiteController = await start_controller(site_spec)
    reported: list[str] = []
    ctl.bus.subscribe(ChargerReported, lambda e: reported.append(e.message))
    cp = await charge_point(ctl, version=version, connectors=2)
    await cp.boot()
    assert ctl.commands.commands("CP-1") == list(names)
    for command, params, expected, field in cases:
        result = await ctl.commands.call("CP-1", command, params, timeout_s=5)
        assert result.status == expected, (command, result)
        assert result.charger_id == "CP-1" and result.command == command
        if field is not None:
            assert field in result.payload, (command, result.payload)
        assert cp.received[-1][0] == command
    # Calls that make the charger report back reach the core as version-neutral events. The firmware
    # is fetched LATER: a 2.0.1 station says DownloadScheduled now, a 1.6 charger nothing until then
    # (test_ocpp_maintenance follows a whole update).
    expected_reports = (
        {"DiagnosticsStatusNotification"}
        if version == "1.6"
        else {"FirmwareStatusNotification", "LogStatusNotification", "NotifyReport"}
    )
    await until(lambda: expected_reports <= set(reported))


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_remote_start_and_stop_by_transaction_key_in_either_version(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any, version: str
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp = await charge_point(ctl, version=version, connectors=2, speed=200.0)
    await cp.boot()
    started = await ctl.commands.remote_start("CP-1-2", "REMOTE-TAG", timeout_s=5)
    assert started.status == ACCEPTED
    await until(lambda: bool(ctl.journal.open_transactions()))
    # The journal is written before the CALLRESULT leaves, so the charger may not yet know its
    # transaction id; a real charger would reject a stop for an id it has not been given either.
    await until(lambda: cp.connectors[2].tx_id is not None)
    (rec,) = ctl.journal.open_transactions()
    assert rec.ocpp_evse == 2 and rec.id_tag == "REMOTE-TAG"
    stopped = await ctl.commands.remote_stop(rec.key, timeout_s=5)
    assert stopped.status == ACCEPTED
    await until(lambda: (r := ctl.journal.get(rec.key)) is not None and r.ended)
    assert ctl.journal.get(rec.key).stop_reason == "Remote"  # type: ignore[union-attr]
    for helper in (
        ctl.commands.unlock("CP-1-1", timeout_s=5),
        ctl.commands.change_availability("CP-1", "CP-1-1", operative=True, timeout_s=5),
        ctl.commands.trigger_status("CP-1", "CP-1-1", timeout_s=5),
        ctl.commands.reset("CP-1", hard=False, timeout_s=5),
    ):
        assert (await helper).status == ACCEPTED


async def test_a_charger_that_does_not_answer_gives_a_timeout_result(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    url = f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp/CP-1"
    async with connect(url, subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        boot = {"chargePointVendor": "Mute", "chargePointModel": "Silent"}
        await ws.send(json.dumps([2, "b1", "BootNotification", boot]))
        assert json.loads(await ws.recv())[0] == 3
        result = await ctl.commands.call("CP-1", "GetConfiguration", {}, timeout_s=0.3)
        assert result.status == CommandStatus.TIMEOUT
        assert json.loads(await ws.recv())[2] == "GetConfiguration"  # it was sent, never answered


async def test_offline_unknown_and_invalid_commands(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    assert (await ctl.commands.call("GHOST", "Reset", {"type": "Soft"})).status == CommandStatus.OFFLINE
    await (await charge_point(ctl)).boot()
    bad = await ctl.commands.call("CP-1", "Reset", {"type": "Sideways"})
    assert (bad.status, bad.error) == (CommandStatus.ERROR, "InvalidParams")
    wrong = await ctl.commands.call("CP-1", "RequestStartTransaction", {})
    assert (wrong.status, wrong.error) == (CommandStatus.NOT_SUPPORTED, "UnknownCommand")
    missing = await ctl.commands.call("CP-1", "UnlockConnector", {})
    assert missing.error == "InvalidParams"
    assert (await ctl.commands.remote_stop("not-a-key")).error == "UnknownTransaction"
    assert (await ctl.commands.unlock("NO-SUCH-EVSE")).error == "UnknownEvse"


async def test_rest_commands_and_transactions(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp = await charge_point(ctl, connectors=2)
    await cp.boot()
    tx_id = await cp.start_transaction(1, "REST", 10)
    async with api_client(ctl) as http:
        listed = (await http.get("/api/v1/chargers/CP-1/commands")).json()
        assert "GetConfiguration" in listed["commands"]
        r = await http.post(
            "/api/v1/chargers/CP-1/commands/GetConfiguration", json={"key": ["HeartbeatInterval"]}
        )
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        assert r.json()["payload"]["configurationKey"][0]["key"] == "HeartbeatInterval"
        r = await http.post("/api/v1/chargers/CP-1/commands/Reset", json={"type": "Sideways"})
        assert r.status_code == 422 and r.json()["error"] == "InvalidParams"
        r = await http.post("/api/v1/chargers/CP-1/commands/Reset", content=b"[1]")
        assert r.status_code == 422
        r = await http.post("/api/v1/chargers/GHOST/commands/ClearCache")
        assert r.status_code == 200 and r.json()["status"] == "offline"
        running = (await http.get("/api/v1/chargers/CP-1/transactions")).json()["items"]
        assert [(t["id"], t["active"], t["id_tag"]) for t in running] == [(f"CP-1/{tx_id}", True, "REST")]
        r = await http.post("/api/v1/transactions/stop", json={"id": f"CP-1/{tx_id}"})
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        r = await http.post("/api/v1/evses/CP-1-2/unlock")
        assert r.json()["status"] == "accepted"
        running_now = (await http.get("/api/v1/transactions?active=true")).json()["items"]
        assert running_now[0]["active"] is True

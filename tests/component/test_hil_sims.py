"""The HIL simulators against real components: mosquitto, a pymodbus client, an ocpp CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from drivers.codec import decode
from hil.broker import Broker, accepts, free_port
from hil.sim.backend import BackendSimulator
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201, utc_now
from hil.sim.meter import MeterSimulator
from hil.sim.physics import EvModel, SimClock, SiteModel

ROOT = "siteedge/v1/DE/ABC/LOC1"


# --- MQTT: broker + backend ----------------------------------------------------------------


def _publisher(broker: Broker) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


@pytest.fixture
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    client = _publisher(broker)
    yield client
    client.disconnect()
    client.loop_stop()


def test_backend_records_what_a_real_client_publishes(
    broker: Broker, publisher: mqtt.Client, tmp_path: Path
) -> None:
    out = tmp_path / "backend.jsonl"
    with BackendSimulator(broker.url, ROOT, out=out) as backend:
        publisher.publish(
            f"{ROOT}/online", json.dumps({"online": True}), qos=1, retain=True
        ).wait_for_publish(2)
        publisher.publish(f"{ROOT}/events/status", b"not json", qos=1).wait_for_publish(2)
        publisher.publish("elsewhere/x", b"{}", qos=1).wait_for_publish(2)

        got = backend.wait_for(lambda m: m.topic.endswith("/events/status"), timeout=5)
        assert got.payload == "not json"
        online = backend.latest("online")
        assert online is not None and online.payload == {"online": True}
        assert [m.topic for m in backend.messages("events")] == [f"{ROOT}/events/status"]
        assert all(m.topic.startswith(ROOT) for m in backend.messages())
        assert backend.summary()["streams"] == {"events": 1, "online": 1}

    # A late subscriber gets the retained message flagged as retained.
    with BackendSimulator(broker.url, ROOT) as late:
        retained = late.wait_for_topic("online", timeout=5)
        assert retained.retain is True

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["topic"] for line in lines] == [f"{ROOT}/online", f"{ROOT}/events/status"]


def test_broker_restarts_on_the_same_port_and_backend_reconnects(broker: Broker) -> None:
    port = broker.port
    with BackendSimulator(broker.url, ROOT) as backend:
        broker.stop()
        assert not broker.running and not accepts(port)
        broker.start()
        assert broker.port == port and broker.url == f"mqtt://127.0.0.1:{port}"
        client = _publisher(broker)
        try:
            # The backend resubscribes after its own reconnect; publish until it hears one.
            deadline = time.monotonic() + 10
            while not backend.messages("online"):
                assert time.monotonic() < deadline, "backend never resubscribed after the restart"
                client.publish(f"{ROOT}/online", b"{}", qos=1).wait_for_publish(2)
                time.sleep(0.1)
            assert backend.connects >= 2
        finally:
            client.disconnect()
            client.loop_stop()


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --- Modbus: meter simulator ------------------------------------------------------------------


@pytest.fixture
async def meter() -> AsyncIterator[MeterSimulator]:
    async with MeterSimulator("eastron_sdm630", unit_id=7) as sim:
        yield sim


@pytest.fixture
async def modbus(meter: MeterSimulator) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=meter.port, timeout=0.3, retries=0, reconnect_delay=0)
    assert await client.connect()
    yield client
    client.close()


async def _read_all(client: AsyncModbusTcpClient, meter: MeterSimulator) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for reg in meter.model.registers:
        # Identity fields (the SDM's serial number) are holding registers; values are input registers.
        read = client.read_input_registers if reg.function == 4 else client.read_holding_registers
        rr = await read(reg.address, count=reg.count, device_id=meter.unit_id)
        assert not rr.isError(), (reg.name, rr)
        out[reg.name] = decode(reg, list(rr.registers))
    return out


async def test_meter_serves_the_library_map_and_values_decode_back(
    meter: MeterSimulator, modbus: AsyncModbusTcpClient
) -> None:
    site = SiteModel(seed=1)
    site.add_evse("E1")
    site.set_power("E1", 7_400.0)
    site.step(3600.0)
    readings = site.grid_readings()
    await meter.set_values(readings)

    got = await _read_all(modbus, meter)
    assert set(got) == {r.name for r in meter.model.registers}
    for name, value in readings.items():
        # float32 on the wire: equal to about 7 significant digits.
        assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name
    assert got["power"] == pytest.approx(3_000.0 + 7_400.0)
    assert got["energy_import"] == pytest.approx(10_400.0, rel=1e-6)

    # Live update, and a sentinel-free NaN decodes to None (never zero).
    await meter.set_values({"power": math.nan, "frequency": 49.95})
    got = await _read_all(modbus, meter)
    assert got["power"] is None and got["frequency"] == pytest.approx(49.95)

    # Registers are input registers (FC4) only; reading them as holding registers is refused.
    rr = await modbus.read_holding_registers(0, count=2, device_id=meter.unit_id)
    assert rr.isError() and rr.exception_code == 2
    # The SDM fills gaps inside its map with zeros (read_gaps), so one bulk read works.
    rr = await modbus.read_input_registers(0, count=0x4C, device_id=meter.unit_id)
    assert not rr.isError() and len(rr.registers) == 0x4C
    with pytest.raises(KeyError):
        await meter.set_values({"no_such_register": 1.0})


async def test_meter_faults_and_restart(meter: MeterSimulator, modbus: AsyncModbusTcpClient) -> None:
    await meter.set_values({"voltage_l1": 231.0})

    meter.fail_with_exception(4)
    rr = await modbus.read_input_registers(0, count=2, device_id=meter.unit_id)
    assert rr.isError() and rr.exception_code == 4

    meter.recover()
    meter.go_silent()
    with pytest.raises(ModbusException):
        await modbus.read_input_registers(0, count=2, device_id=meter.unit_id)

    meter.recover()
    meter.freeze()
    await meter.set_values({"voltage_l1": 200.0})  # ignored: the meter is stuck
    meter.recover()
    assert (await _read_all(modbus, meter))["voltage_l1"] == pytest.approx(231.0)

    port = meter.port
    await meter.stop()
    modbus.close()
    await meter.start()
    assert meter.port == port
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.3, retries=0, reconnect_delay=0)
    assert await client.connect()
    try:
        # Values survive a restart: they are rebuilt from what was set last.
        assert (await _read_all(client, meter))["voltage_l1"] == pytest.approx(231.0)
    finally:
        client.close()
    assert meter.accesses and meter.accesses[-1].function in (3, 4)


# --- OCPP: tiny in-test central systems -------------------------------------------------------


@dataclass
class Csms:
    """What the in-test central system saw: (cp_id, action, payload) in arrival order."""

    url: str = ""
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    stations: dict[str, Any] = field(default_factory=dict)
    conns: dict[str, ServerConnection] = field(default_factory=dict)
    auth_headers: list[str | None] = field(default_factory=list)
    cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    def of(self, action: str) -> list[dict[str, Any]]:
        return [p for _, a, p in self.calls if a == action]

    async def wait(self, check: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within), self.cond:
            await self.cond.wait_for(check)

    async def record(self, cp_id: str, action: str, payload: dict[str, Any]) -> None:
        async with self.cond:
            self.calls.append((cp_id, action, payload))
            self.cond.notify_all()


_tx_ids = itertools.count(100)


class Central16(Cp16):  # type: ignore[misc]
    def __init__(self, cp_id: str, conn: ServerConnection, csms: Csms) -> None:
        super().__init__(cp_id, conn)
        self.csms = csms

    async def _handle_call(self, msg: Any) -> Any:
        await self.csms.record(self.id, msg.action, msg.payload)
        return await super()._handle_call(msg)

    @on(Action16.boot_notification)
    def on_boot(self, **_: Any) -> Any:
        return result16.BootNotification(current_time=utc_now(), interval=300, status="Accepted")

    @on(Action16.heartbeat)
    def on_heartbeat(self) -> Any:
        return result16.Heartbeat(current_time=utc_now())

    @on(Action16.status_notification)
    def on_status(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on(Action16.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": "Invalid" if id_tag == "BAD" else "Accepted"})

    @on(Action16.start_transaction)
    def on_start(self, **_: Any) -> Any:
        return result16.StartTransaction(transaction_id=next(_tx_ids), id_tag_info={"status": "Accepted"})

    @on(Action16.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @on(Action16.stop_transaction)
    def on_stop(self, **_: Any) -> Any:
        return result16.StopTransaction()


class Central201(Cp201):  # type: ignore[misc]
    def __init__(self, cp_id: str, conn: ServerConnection, csms: Csms) -> None:
        super().__init__(cp_id, conn)
        self.csms = csms

    async def _handle_call(self, msg: Any) -> Any:
        await self.csms.record(self.id, msg.action, msg.payload)
        return await super()._handle_call(msg)

    @on(Action201.boot_notification)
    def on_boot(self, **_: Any) -> Any:
        return result201.BootNotification(current_time=utc_now(), interval=300, status="Accepted")

    @on(Action201.heartbeat)
    def on_heartbeat(self) -> Any:
        return result201.Heartbeat(current_time=utc_now())

    @on(Action201.status_notification)
    def on_status(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @on(Action201.authorize)
    def on_authorize(self, **_: Any) -> Any:
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.transaction_event)
    def on_transaction_event(self, **kw: Any) -> Any:
        return result201.TransactionEvent(id_token_info={"status": "Accepted"} if "id_token" in kw else None)

    @on(Action201.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()


async def _central(version: str) -> AsyncIterator[Csms]:
    csms = Csms()
    handler_cls = Central16 if version == "1.6" else Central201

    async def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        cp_id = conn.request.path.rsplit("/", 1)[-1]
        csms.auth_headers.append(conn.request.headers.get("Authorization"))
        station = handler_cls(cp_id, conn, csms)
        csms.stations[cp_id], csms.conns[cp_id] = station, conn
        with contextlib.suppress(ConnectionClosed):
            await station.start()

    async with serve(handler, "127.0.0.1", 0, subprotocols=[Subprotocol(f"ocpp{version}")]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        csms.url = f"ws://127.0.0.1:{port}/ocpp"
        yield csms


@pytest.fixture
async def csms16() -> AsyncIterator[Csms]:
    async for csms in _central("1.6"):
        yield csms


@pytest.fixture
async def csms201() -> AsyncIterator[Csms]:
    async for csms in _central("2.0.1"):
        yield csms


async def test_cp16_boots_and_reports_to_a_real_ocpp_central_system(csms16: Csms) -> None:
    cp = ChargePointSimulator("CP-16", csms16.url, connectors=2, password="secret-password-16")
    try:
        await cp.connect()
        assert await cp.boot() == "Accepted"
        await cp.status(1, "Available")
        await cp.status(2, "Faulted", error_code="GroundFailure")
        assert await cp.authorize("TAG1") and not await cp.authorize("BAD")
        tx = await cp.start_transaction(1, "TAG1", 1000.0)
        await cp.meter_values(1, 1500.0, 7360.0)
        await cp.stop_transaction(1, 2000.0, reason="EVDisconnected")
    finally:
        await cp.close()

    assert csms16.auth_headers == ["Basic Q1AtMTY6c2VjcmV0LXBhc3N3b3JkLTE2"]  # CP-16:secret-password-16
    boot = csms16.of("BootNotification")[0]
    assert boot["chargePointVendor"] == "siteedge-hil" and boot["chargePointModel"] == "SimCharger"
    statuses = [(s["connectorId"], s["status"], s["errorCode"]) for s in csms16.of("StatusNotification")]
    assert statuses == [(1, "Available", "NoError"), (2, "Faulted", "GroundFailure")]
    assert csms16.of("StartTransaction")[0]["meterStart"] == 1000
    sampled = csms16.of("MeterValues")[0]["meterValue"][0]["sampledValue"]
    by_measurand = {(v["measurand"], v.get("phase")): float(v["value"]) for v in sampled}
    assert by_measurand[("Energy.Active.Import.Register", None)] == 1500.0
    assert by_measurand[("Current.Import", "L1")] == pytest.approx(7360.0 / 690.0, abs=0.01)
    stop = csms16.of("StopTransaction")[0]
    assert (stop["transactionId"], stop["meterStop"], stop["reason"]) == (tx, 2000, "EVDisconnected")


async def test_cp16_answers_central_system_commands(csms16: Csms) -> None:
    site = SiteModel(clock=SimClock(speed=600.0), seed=3)
    cp = ChargePointSimulator("CP-CMD", csms16.url, site=site, meter_interval_s=30, seed=3)
    try:
        await cp.connect()
        await cp.boot()
        central = csms16.stations["CP-CMD"]

        conf = await central.call(call16.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
        assert conf.configuration_key == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        assert conf.unknown_key == ["Nope"]
        assert (
            await central.call(call16.ChangeConfiguration(key="Nope", value="1"))
        ).status == "NotSupported"
        assert (
            await central.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="x"))
        ).status == "Rejected"
        assert (
            await central.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="60"))
        ).status == "Accepted"

        assert (await central.call(call16.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
        await csms16.wait(lambda: bool(csms16.of("Heartbeat")))

        started = await central.call(call16.RemoteStartTransaction(id_tag="REMOTE1", connector_id=1))
        assert started.status == "Accepted"
        await csms16.wait(lambda: bool(csms16.of("StartTransaction")))
        assert csms16.of("StartTransaction")[0]["idTag"] == "REMOTE1"
        busy = await central.call(call16.RemoteStartTransaction(id_tag="REMOTE2", connector_id=1))
        assert busy.status == "Rejected"

        tx_id = cp.connectors[1].tx_id
        assert isinstance(tx_id, int)

        # Smart charging: a 0 A limit pauses the car (SuspendedEVSE); clearing it resumes charging.
        await csms16.wait(lambda: any(s["status"] == "Charging" for s in csms16.of("StatusNotification")))
        profile = {
            "charging_profile_id": 1,
            "stack_level": 0,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 0.0}],
            },
        }
        limited = await central.call(call16.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))
        assert limited.status == "Accepted" and site.evses["CP-CMD-1"].limit_w == 0.0
        await csms16.wait(lambda: csms16.of("StatusNotification")[-1]["status"] == "SuspendedEVSE")
        assert site.evses["CP-CMD-1"].power_w == 0.0
        assert (await central.call(call16.ClearChargingProfile())).status == "Accepted"
        await csms16.wait(lambda: csms16.of("StatusNotification")[-1]["status"] == "Charging")
        assert (
            await central.call(call16.RemoteStopTransaction(transaction_id=tx_id + 999))
        ).status == "Rejected"
        assert (await central.call(call16.RemoteStopTransaction(transaction_id=tx_id))).status == "Accepted"
        await csms16.wait(lambda: bool(csms16.of("StopTransaction")))
        assert csms16.of("StopTransaction")[0]["reason"] == "Remote"

        avail = await central.call(call16.ChangeAvailability(connector_id=0, type="Inoperative"))
        assert avail.status in ("Accepted", "Scheduled")
        await csms16.wait(lambda: any(s["status"] == "Unavailable" for s in csms16.of("StatusNotification")))

        assert (await central.call(call16.Reset(type="Soft"))).status == "Accepted"
        await csms16.wait(lambda: len(csms16.of("BootNotification")) == 2, within=10)
        assert [action for action, _ in cp.received][:3] == [
            "GetConfiguration",
            "ChangeConfiguration",
            "ChangeConfiguration",
        ]
    finally:
        await cp.close()


async def test_cp16_runs_consistent_sessions(csms16: Csms) -> None:
    site = SiteModel(base_load_w=2_000.0, clock=SimClock(speed=600.0), seed=7)
    t_start = site.t
    ev = EvModel(
        battery_wh=2_000.0, arrival_soc=(0.5, 0.5), target_soc=(0.9, 0.9), linger_s=(30, 30), idle_s=(5, 5)
    )
    cp = ChargePointSimulator("CP-RUN", csms16.url, site=site, meter_interval_s=30, seed=7)
    stop = asyncio.Event()
    runner = asyncio.create_task(cp.run_sessions(ev, stop))
    try:
        await csms16.wait(lambda: bool(csms16.of("StopTransaction")), within=15)
        stop.set()
        await asyncio.wait_for(runner, 5)
    finally:
        stop.set()
        await cp.close()
        await asyncio.gather(runner, return_exceptions=True)

    start, stop_tx = csms16.of("StartTransaction")[0], csms16.of("StopTransaction")[0]
    delivered = stop_tx["meterStop"] - start["meterStart"]
    assert delivered == pytest.approx(0.4 * 2_000.0, abs=2)  # 50 % -> 90 % of a 2 kWh battery
    assert stop_tx["reason"] == "EVDisconnected"
    energies = [
        float(v["value"])
        for mv in csms16.of("MeterValues")
        for v in mv["meterValue"][0]["sampledValue"]
        if v["measurand"] == "Energy.Active.Import.Register"
    ]
    assert energies and energies == sorted(energies)
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop_tx["meterStop"]
    statuses = [s["status"] for s in csms16.of("StatusNotification") if s["connectorId"] == 1]
    wanted = iter(statuses)
    assert all(
        s in wanted for s in ("Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Available")
    )
    # The site's grid meter saw the same energy on top of its base load.
    grid = site.grid_readings()
    assert grid["energy_import"] == pytest.approx(
        site.evses["CP-RUN-1"].energy_wh + 2_000.0 * (site.t - t_start) / 3600, rel=1e-6
    )
    assert site.evses["CP-RUN-1"].power_w == 0.0


async def test_cp201_boots_and_runs_a_transaction_against_a_real_csms(csms201: Csms) -> None:
    cp = ChargePointSimulator201("CS-201", csms201.url, connectors=2)
    try:
        await cp.connect()
        assert await cp.boot() == "Accepted"
        await cp.status(1, "Available")
        await cp.status(2, "Occupied")
        assert await cp.authorize("TAG9")
        tx = await cp.start_transaction(2, "TAG9", 500.0)
        await cp.meter_values(2, 900.0, 11_000.0)
        await cp.stop_transaction(2, 1200.0, reason="EVDisconnected")

        central = csms201.stations["CS-201"]
        trig = await central.call(call201.TriggerMessage(requested_message="StatusNotification"))
        assert trig.status == "Accepted"
        await csms201.wait(lambda: len(csms201.of("StatusNotification")) == 4)
        got = await central.call(
            call201.GetVariables(
                get_variable_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                ]
            )
        )
        assert got.get_variable_result[0]["attribute_value"] == "300"
    finally:
        await cp.close()

    boot = csms201.of("BootNotification")[0]
    assert boot["reason"] == "PowerUp" and boot["chargingStation"]["vendorName"] == "siteedge-hil"
    statuses = [(s["evseId"], s["connectorStatus"]) for s in csms201.of("StatusNotification")][:2]
    assert statuses == [(1, "Available"), (2, "Occupied")]
    events = csms201.of("TransactionEvent")
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert [e["seqNo"] for e in events] == [0, 1, 2]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx}
    assert events[0]["idToken"] == {"idToken": "TAG9", "type": "ISO14443"}
    assert events[1]["meterValue"][0]["sampledValue"][0]["value"] == 900.0
    assert events[2]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert events[2]["triggerReason"] == "EVDeparted"


async def test_cp16_reconnects_and_boots_again_when_the_csms_drops_it(csms16: Csms) -> None:
    cp = ChargePointSimulator("CP-R", csms16.url, reconnect=True)
    try:
        await cp.connect()
        await cp.boot()
        await csms16.conns["CP-R"].close()
        await csms16.wait(lambda: len(csms16.of("BootNotification")) == 2)
        # After the reconnect the connector status is announced again, then traffic flows.
        await csms16.wait(
            lambda: len([s for s in csms16.of("StatusNotification") if s["connectorId"] == 1]) == 1
        )
        assert await cp.authorize("TAG1")
    finally:
        await cp.close()
    assert len(csms16.auth_headers) == 2


async def _read(client: AsyncModbusTcpClient, meter: MeterSimulator, name: str) -> float | None:
    reg = next(r for r in meter.model.registers if r.name == name)
    rr = await client.read_input_registers(reg.address, count=reg.count, device_id=meter.unit_id)
    return decode(reg, list(rr.registers))


async def test_cp201_sessions_drive_the_site_meters(csms201: Csms) -> None:
    site = SiteModel(base_load_w=1_500.0, clock=SimClock(speed=600.0), seed=11)
    ev = EvModel(
        battery_wh=2_000.0, arrival_soc=(0.3, 0.3), target_soc=(0.9, 0.9), linger_s=(30, 30), idle_s=(5, 5)
    )
    cp = ChargePointSimulator201("CS-RUN", csms201.url, site=site, meter_interval_s=30, seed=11)
    stop = asyncio.Event()
    async with MeterSimulator("eastron_sdm630", unit_id=1) as grid, MeterSimulator("eastron_sdm630") as evse:
        tasks = [
            asyncio.create_task(cp.run_sessions(ev, stop)),
            asyncio.create_task(grid.follow(site.grid_readings, 0.01, stop)),
            asyncio.create_task(evse.follow(lambda: site.evse_readings("CS-RUN-1"), 0.01, stop)),
        ]
        grid_client = AsyncModbusTcpClient(
            "127.0.0.1", port=grid.port, timeout=0.3, retries=0, reconnect_delay=0
        )
        evse_client = AsyncModbusTcpClient(
            "127.0.0.1", port=evse.port, timeout=0.3, retries=0, reconnect_delay=0
        )
        try:
            assert await grid_client.connect() and await evse_client.connect()
            await csms201.wait(
                lambda: any(
                    e["triggerReason"] == "MeterValuePeriodic" for e in csms201.of("TransactionEvent")
                ),
                within=10,
            )
            evse_power = await _read(evse_client, evse, "power")
            grid_power = await _read(grid_client, grid, "power")
            assert evse_power is not None and evse_power > 4_000.0
            assert grid_power == pytest.approx(1_500.0 + evse_power, abs=500.0)
            await csms201.wait(
                lambda: any(e["eventType"] == "Ended" for e in csms201.of("TransactionEvent")), 10
            )
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)
            await cp.close()
            grid_client.close()
            evse_client.close()

    events = [e for e in csms201.of("TransactionEvent") if e["transactionInfo"]["transactionId"]]
    first_tx = events[0]["transactionInfo"]["transactionId"]
    tx_events = [e for e in events if e["transactionInfo"]["transactionId"] == first_tx]
    assert [e["seqNo"] for e in tx_events] == list(range(len(tx_events)))
    states = [e["transactionInfo"].get("chargingState") for e in tx_events]
    assert states[0] == "EVConnected" and "Charging" in states and "SuspendedEV" in states
    energy = [e["meterValue"][0]["sampledValue"][0]["value"] for e in tx_events if "meterValue" in e]
    assert energy == sorted(energy) and energy[-1] - energy[0] == pytest.approx(0.6 * 2_000.0, abs=2)
    assert tx_events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    statuses = [s["connectorStatus"] for s in csms201.of("StatusNotification")]
    assert statuses[:3] == ["Available", "Occupied", "Available"]

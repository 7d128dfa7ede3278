"""Every model through a real pymodbus client against its simulator, over TCP and RTU on ptys."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from drivers.codec import Value, decode_block, encode, iec_state
from drivers.library import DeviceModel, load_device, models_of
from drivers.plan import plan_reads
from drivers.sunspec import discover, identity, meter_model, pymodbus_reader
from hil.sim.meter import DeviceSimulator, MeterSimulator
from hil.sim.physics import SiteModel
from hil.sim.rtu import RtuBus, crc16

METERS = models_of("meter")
RTU_BAUD = 115200  # line speed emulated; fast enough to read 11 meters in well under a second


def _readings(model: DeviceModel) -> dict[str, float]:
    site = SiteModel(seed=5)
    site.add_evse("E1")
    site.set_power("E1", 7_400.0)
    site.step(3600.0)
    out = {k: v for k, v in site.grid_readings().items() if k in model.names()}
    out.setdefault("power_factor", 0.97)
    if "power_factor" not in model.names():
        del out["power_factor"]
    return out


async def _read_model(client: Any, model: DeviceModel, unit: int) -> dict[str, Value]:
    """Read a model the way the poller does: planned, coalesced blocks, decoded with decode_block."""
    values: dict[str, Value] = {}
    for block in plan_reads(model, frozenset({"fast", "slow"})):
        read = client.read_input_registers if block.function == 4 else client.read_holding_registers
        rr = await read(block.address, count=block.count, device_id=unit)
        assert not rr.isError(), (model.name, block, rr)
        assert len(rr.registers) == block.count
        values.update(decode_block(block.registers, block.address, rr.registers))
    return values


def _check(model: DeviceModel, got: dict[str, Value], want: dict[str, float]) -> None:
    for name, value in want.items():
        reg = model.register(name)
        # float32 keeps ~7 digits; scaled integers keep what their scale allows.
        step = abs(reg.scale) if reg.type[0] in "us" and reg.scale_register is None else 0.0
        if reg.scale_register is not None:
            step = 1e-3 * max(1.0, abs(value))
        assert got[name] == pytest.approx(value, rel=2e-6, abs=step + 1e-6), (model.name, name)


async def _placed(sim: DeviceSimulator) -> DeviceModel:
    return sim.model  # a SunSpec simulator's model is already placed at its block


@pytest.mark.parametrize("name", METERS)
async def test_every_meter_reads_back_over_tcp(name: str) -> None:
    model = load_device(name)
    want = _readings(model)
    async with MeterSimulator(name, unit_id=3, values=want) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            got = await _read_model(client, await _placed(sim), 3)
        finally:
            client.close()
    _check(sim.model, got, want)


@pytest.fixture
async def meter_bus() -> AsyncIterator[tuple[RtuBus, list[DeviceSimulator]]]:
    sims = [
        DeviceSimulator(name, unit_id=i + 1, values=_readings(load_device(name)))
        for i, name in enumerate(METERS)
    ]
    async with RtuBus(sims, baudrate=RTU_BAUD, parity="E", latency_ms={s.unit_id: 1.0 for s in sims}) as bus:
        yield bus, sims


def _serial(bus: RtuBus, timeout: float = 0.5) -> AsyncModbusSerialClient:
    line = bus.client_settings()
    return AsyncModbusSerialClient(
        bus.port,
        framer=FramerType.RTU,
        baudrate=bus.baudrate,
        parity=str(line["parity"]),
        stopbits=bus.stopbits,
        timeout=timeout,
        retries=0,
    )


async def test_every_meter_reads_back_over_rtu_on_one_bus(
    meter_bus: tuple[RtuBus, list[DeviceSimulator]],
) -> None:
    bus, sims = meter_bus
    client = _serial(bus)
    assert await client.connect()
    try:
        for sim in sims:
            got = await _read_model(client, sim.model, sim.unit_id)
            polled = {r.name for r in sim.model.registers if r.rate != "once"}
            want = {k: float(v) for k, v in sim.values().items() if isinstance(v, float) and k in polled}
            assert set(want) <= set(got)
            _check(sim.model, got, want)
    finally:
        client.close()
    assert bus.stats.replies == bus.stats.requests and bus.stats.busy_s > 0


async def test_rtu_line_time_follows_the_baud_rate() -> None:
    sim = DeviceSimulator("eastron_sdm630", unit_id=1, values={"voltage_l1": 230.0})
    async with RtuBus([sim], baudrate=9600) as bus:
        client = _serial(bus, timeout=1.0)
        assert await client.connect()
        try:
            for _ in range(3):
                assert not (await client.read_input_registers(0, count=20, device_id=1)).isError()
        finally:
            client.close()
    # 8-byte request + 45-byte reply at 10 bits per character (8N1), measured on the emulated wire.
    assert bus.stats.busy_s == pytest.approx(3 * 53 * 10 / 9600)
    assert bus.cycle_time(8, 45, 1) == pytest.approx((8 + 45) * 10 / 9600 + 0.020 + 3.5 * 10 / 9600)


# --- SunSpec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "model_id", "base"),
    [("sunspec_meter_int", 203, 40000), ("sunspec_meter_int", 201, 0), ("sunspec_meter_float", 213, 50000)],
)
async def test_sunspec_discovery_walks_the_chain(template: str, model_id: int, base: int) -> None:
    want = _readings(load_device(template))
    values: dict[str, float | None] = dict(want)
    if model_id == 201:  # single phase: B and C are "not implemented" (0x8000)
        want = {k: v for k, v in want.items() if not k.endswith(("_l2", "_l3"))}
        values.update({k: None for k in values if k.endswith(("_l2", "_l3"))})
    sim = MeterSimulator(template, unit_id=1, values=values, sunspec_model=model_id, sunspec_base=base)
    async with sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            reader = pymodbus_reader(client, 1)
            chain = await discover(reader)
            assert chain.base == base and [b.model_id for b in chain.blocks] == [1, model_id]
            placed = meter_model(chain)
            assert placed.register("power").address == base + 2 + 68 + 18 + (10 if "float" in template else 0)
            ident = await identity(reader, chain)
            got = await _read_model(client, placed, 1)
        finally:
            client.close()
    assert ident["manufacturer"] == "siteedge-hil" and ident["serial"] == f"SIM{model_id}"
    _check(placed, got, want)
    if model_id == 201:
        assert got["voltage_l2"] is None and got["current_l3"] is None  # not implemented: missing, not zero


# --- chargers: writes, watchdog -------------------------------------------------------------------------


async def test_charger_accepts_setpoint_writes_and_refuses_read_only_and_torn_writes() -> None:
    now = [0.0]
    # Injected time: the watchdog is checked without waiting a minute.
    sim = MeterSimulator("alfen_ng9xx", unit_id=1, values={"safe_current": 6.0}, clock=lambda: now[0])
    async with sim:
        await sim.set_state("C")
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            model = sim.model
            reg = model.register("current_limit")
            rr = await client.write_registers(reg.address, encode(reg, 16.0), device_id=1)
            assert not rr.isError()
            got = await _read_model(client, model, 1)
            bad = await client.write_registers(model.register("safe_current").address, [0, 0], device_id=1)
            torn = await client.write_register(reg.address, 0x4180, device_id=1)
        finally:
            client.close()
    assert got["current_limit"] == 16.0 and iec_state(model, got) == "C"
    assert bad.isError() and bad.exception_code == 2
    assert torn.isError() and torn.exception_code == 3
    assert [w.name for w in sim.writes] == ["current_limit"] and sim.effective_current() == 16.0
    now[0] += 61.0  # validity time (60 s) passed without a rewrite: the failsafe current applies
    assert sim.watchdog_expired() and sim.effective_current() == 6.0


@pytest.mark.parametrize("name", models_of("charger"))
async def test_every_charger_serves_its_status_and_takes_its_setpoint(name: str) -> None:
    model = load_device(name)
    assert model.charger is not None
    async with MeterSimulator(name, unit_id=7) as sim:
        await sim.set_state("B")
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            reg = model.register(model.charger.setpoint)
            words = encode(reg, 10.0)
            rr = await (
                client.write_register(reg.address, words[0], device_id=7)
                if reg.write == 6
                else client.write_registers(reg.address, words, device_id=7)
            )
            assert not rr.isError(), rr
            readable = model.__class__(
                **{**_fields(model), "registers": tuple(r for r in model.registers if r.readable)}
            )
            got = await _read_model(client, readable, 7)
        finally:
            client.close()
    assert iec_state(model, got) == "B"
    assert sim.value(model.charger.setpoint) == pytest.approx(10.0)


def _fields(model: DeviceModel) -> dict[str, Any]:
    return {f: getattr(model, f) for f in model.__dataclass_fields__}


# --- faults, seen on the wire ---------------------------------------------------------------------------


@pytest.fixture
async def rtu_pair() -> AsyncIterator[tuple[RtuBus, DeviceSimulator, DeviceSimulator]]:
    a = DeviceSimulator("eastron_sdm630", unit_id=1, values={"voltage_l1": 230.0, "energy_import": 5000.0})
    b = DeviceSimulator("carlo_gavazzi_em24", unit_id=2, values={"voltage_l1": 231.0})
    async with RtuBus([a, b], baudrate=RTU_BAUD) as bus:
        yield bus, a, b


async def test_rtu_silence_on_an_unknown_unit_id(
    rtu_pair: tuple[RtuBus, DeviceSimulator, DeviceSimulator],
) -> None:
    bus, _, _ = rtu_pair
    client = _serial(bus, timeout=0.2)
    assert await client.connect()
    try:
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=2, device_id=9)  # pymodbus alone would say exception 4
        assert not (await client.read_input_registers(0, count=2, device_id=2)).isError()
    finally:
        client.close()
    assert bus.stats.dropped_unknown_unit == 1


async def test_rtu_crc_error_is_a_failed_read(
    rtu_pair: tuple[RtuBus, DeviceSimulator, DeviceSimulator],
) -> None:
    bus, a, _ = rtu_pair
    a.corrupt_crc()
    client = _serial(bus, timeout=0.2)
    assert await client.connect()
    try:
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=2, device_id=1)
        a.recover()
        await asyncio.sleep(0.05)  # let the discarded frame's bytes drain before the next request
        assert not (await client.read_input_registers(0, count=2, device_id=1)).isError()
    finally:
        client.close()
    assert bus.stats.crc_corrupted == 1


def test_crc16_matches_a_known_frame() -> None:
    # 01 04 00 00 00 14 -> CRC F0 05 (low byte first), as pymodbus sent it.
    assert crc16(bytes([1, 4, 0, 0, 0, 0x14])).to_bytes(2, "little") == bytes([0xF0, 0x05])


async def test_rtu_late_reply_is_taken_for_the_next_answer_by_pymodbus(
    rtu_pair: tuple[RtuBus, DeviceSimulator, DeviceSimulator],
) -> None:
    """The stale-reply trap (DEVICES.md 4), made to happen, so that schedulers can prove they cope."""
    bus, a, _ = rtu_pair
    a.reply_late(0.3)  # lands 0.1 s into the next request's 0.2 s window
    client = _serial(bus, timeout=0.2)
    assert await client.connect()
    try:
        with pytest.raises(ModbusIOException):
            await client.read_input_registers(0, count=2, device_id=1)  # voltage_l1, answered late
        a.recover()
        rr = await client.read_input_registers(0x48, count=4, device_id=1)  # asks for energy
    finally:
        client.close()
    assert bus.stats.late_replies == 1
    # pymodbus accepted the late voltage reply (2 registers) as the answer to the energy request.
    assert not rr.isError() and len(rr.registers) == 2
    assert decode_block([a.model.register("voltage_l1")], 0, rr.registers)["voltage_l1"] == 230.0


async def test_exception_frozen_reset_and_swapped_words(
    rtu_pair: tuple[RtuBus, DeviceSimulator, DeviceSimulator],
) -> None:
    bus, a, b = rtu_pair
    client = _serial(bus)
    assert await client.connect()
    try:
        a.fail_with_exception(6)
        rr = await client.read_input_registers(0, count=2, device_id=1)
        assert rr.isError() and rr.exception_code == 6
        a.recover()

        a.freeze()
        await a.set_values({"voltage_l1": 100.0})
        got = await _read_model(client, a.model, 1)
        assert got["voltage_l1"] == 230.0  # stale: the poller's freshness checks must catch it
        a.recover()

        await a.reset_counters()
        await a.set_values({"energy_import": 5100.0})  # physics counted on by 100 Wh
        got = await _read_model(client, a.model, 1)
        assert got["energy_import"] == pytest.approx(100.0)  # the counter restarted: a backward jump

        await b.swap_word_order()
        got = await _read_model(client, b.model, 2)
        assert got["voltage_l1"] != pytest.approx(231.0)  # absurd magnitude, as from a miswired meter
        assert got["voltage_l1"] is not None and (got["voltage_l1"] > 1e5 or got["voltage_l1"] < 1.0)
        await b.swap_word_order(False)
        assert (await _read_model(client, b.model, 2))["voltage_l1"] == pytest.approx(231.0)
    finally:
        client.close()


async def test_tcp_silent_device_times_out_and_nan_stays_missing() -> None:
    async with MeterSimulator("siemens_pac2200") as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.2, retries=0)
        assert await client.connect()
        try:
            await sim.set_values({"power": math.nan})
            got = await _read_model(client, sim.model, 1)
            assert got["power"] is None
            sim.go_silent()
            with pytest.raises(ModbusIOException):
                await client.read_input_registers(65, count=2, device_id=1)
        finally:
            client.close()

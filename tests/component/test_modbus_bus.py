"""Bus scheduler on pty serial lines and TCP: sharing, dead devices, stale replies, health, counters."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer

from controller.core.clock import SystemClock
from controller.core.config import MeterSettings, parse_transport
from controller.core.events import MeterFailed, MeterHealth, MeterRead
from controller.core.ports import ModbusBusy
from drivers.bus import Bus
from drivers.library import load_device
from drivers.service import ModbusService
from drivers.transport import RequestFailed
from hil.sim.meter import DeviceSimulator, MeterSimulator
from tests.component.rtu_pty import RtuPtyBus, Unit

SDM = load_device("eastron_sdm630")
VALUES = {"voltage_l1": 231.0, "voltage_l2": 229.5, "voltage_l3": 230.2, "frequency": 50.0, "power": 7400.0}


def meter(mid: str, url: str, unit: int = 1, *, poll: float = 0.05, timeout: float = 0.1) -> MeterSettings:
    return MeterSettings(mid, "eastron_sdm630", parse_transport(url), url, unit, "grid", poll, timeout, poll)


def sdm_unit(**values: float) -> Unit:
    u = Unit()
    u.load(SDM, {**VALUES, **values})
    return u


class Run:
    """A ModbusService running in the background, with the events it emitted."""

    def __init__(self, meters: list[MeterSettings]) -> None:
        self.events: list[object] = []
        self.service = ModbusService(meters, SystemClock(), self.events.append)
        self._task: asyncio.Task[None] | None = None

    def reads(self, mid: str) -> list[MeterRead]:
        return [e for e in self.events if isinstance(e, MeterRead) and e.meter_id == mid]

    def failures(self, mid: str) -> list[MeterFailed]:
        return [e for e in self.events if isinstance(e, MeterFailed) and e.meter_id == mid]

    def health(self, mid: str) -> MeterHealth:
        return [e for e in self.events if isinstance(e, MeterHealth) and e.meter_id == mid][-1]

    async def until(self, cond: Callable[[], bool], within: float = 15.0) -> None:
        for _ in range(int(within / 0.01)):
            if cond():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition did not hold in time")


@pytest.fixture
async def run() -> AsyncIterator[Callable[[list[MeterSettings]], Any]]:
    runs: list[tuple[Run, asyncio.Task[None]]] = []

    def start(meters: list[MeterSettings]) -> Run:
        r = Run(meters)
        runs.append((r, asyncio.create_task(r.service.run())))
        return r

    yield start
    for _, task in runs:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_several_meters_share_one_rtu_bus_and_decode(run: Any) -> None:
    async with RtuPtyBus({1: sdm_unit(), 2: sdm_unit(power=1000.0), 7: sdm_unit(power=-500.0)}) as line:
        url = line.url()
        r: Run = run([meter("a", url, 1), meter("b", url, 2), meter("c", url, 7)])
        assert len(r.service.buses) == 1
        await r.until(lambda: all(len(r.reads(m)) >= 3 for m in "abc"))
    assert r.reads("a")[-1].values["voltage_l1"] == pytest.approx(231.0)
    assert r.reads("b")[-1].values["power"] == pytest.approx(1000.0)
    assert r.reads("c")[-1].values["power"] == pytest.approx(-500.0)
    assert all(r.health(m).state == "ok" for m in "abc")


async def test_a_dead_device_does_not_stall_the_others(run: Any) -> None:
    units = {1: sdm_unit(), 2: sdm_unit(), 3: sdm_unit()}
    units[3].silent = True
    async with RtuPtyBus(units) as line:
        url = line.url()
        r: Run = run([meter("a", url, 1), meter("b", url, 2), meter("dead", url, 3)])
        await r.until(lambda: r.health("dead").state == "offline" if r.failures("dead") else False)
        base = {m: len(r.reads(m)) for m in "ab"}
        attempts = len(r.failures("dead"))
        await r.until(lambda: all(len(r.reads(m)) >= base[m] + 40 for m in "ab"))
    dead_attempts = len(r.failures("dead")) - attempts
    # 40 polls each of the live meters cost the dead one only a few backed-off probes.
    assert dead_attempts <= 8
    assert all(r.health(m).state == "ok" for m in "ab")
    dead = r.health("dead")
    assert dead.state == "offline" and dead.counts["timeouts"] >= 3 and dead.last_error


async def test_a_late_rtu_reply_is_never_taken_for_the_next_answer() -> None:
    unit = Unit(registers={0: 1000, 1: 1001, 100: 7, 101: 8})
    async with RtuPtyBus({1: unit}) as line:
        t = parse_transport(line.url())
        bus = Bus(line.url(), t, 0.1)
        try:
            unit.delay_once = 0.13  # answers 30 ms after the 0.1 s timeout
            with pytest.raises(RequestFailed) as failed:
                await bus.read(1, 4, 0, 2, timeout_s=0.1)
            assert failed.value.kind == "timeout"
            # Same length as the stale reply, so only the quiet time after the timeout protects this.
            assert await bus.read(1, 4, 100, 2, timeout_s=0.1) == [7, 8]
            assert bus.late_replies == 1
            unit.short_reply = 1
            with pytest.raises(RequestFailed) as short:
                await bus.read(1, 4, 100, 2, timeout_s=0.1)
            assert short.value.kind == "bad_reply"
            assert await bus.read(1, 4, 0, 2, timeout_s=0.1) == [1000, 1001]
        finally:
            bus.close()


async def test_exceptions_crc_errors_and_timeouts_are_counted(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("drivers.device.MIN_PROBE_S", 0.1)  # re-probe failing devices quickly
    units = {1: sdm_unit(), 2: sdm_unit(), 3: sdm_unit()}
    units[2].exception = 2
    units[3].corrupt_crc = 1000
    async with RtuPtyBus(units) as line:
        url = line.url()
        r: Run = run([meter("ok", url, 1), meter("exc", url, 2), meter("noise", url, 3)])
        await r.until(lambda: len(r.failures("exc")) >= 3 and len(r.failures("noise")) >= 3)
        units[3].corrupt_crc = 0
        await r.until(lambda: r.health("noise").counts["good_polls"] >= 1)
    exc, noise = r.health("exc"), r.health("noise")
    assert exc.state == "offline" and exc.counts["exceptions"] >= 3 and "exception" in (exc.last_error or "")
    assert noise.counts["crc_errors"] >= 3 and noise.counts["timeouts"] == 0
    assert noise.state == "degraded"  # back, but with recent errors
    assert r.health("ok").state == "ok"
    assert "exception response 2" in r.failures("exc")[-1].reason


async def test_counter_reset_is_rejected_then_rebased_over_tcp(run: Any) -> None:
    async with MeterSimulator("eastron_sdm630", values={"energy_import": 5000.0}) as sim:
        url = f"tcp://127.0.0.1:{sim.port}"
        r: Run = run([meter("m", url, poll=0.05)])

        def energies() -> list[float | None]:
            return [e.values.get("energy_import") for e in r.reads("m")]

        await r.until(lambda: 5000.0 in energies())
        await sim.set_values({"energy_import": 4000.0})  # a glitch backwards
        await r.until(
            lambda: any(e.problems.get("energy_import", "").startswith("rejected") for e in r.reads("m"))
        )
        await sim.set_values({"energy_import": 2.0})  # a genuine reset (power cycle): counts up from ~0
        for step in range(1, 40):
            await sim.set_values({"energy_import": 2.0 + step})
            await asyncio.sleep(0.03)
        await r.until(lambda: bool(energies()) and (energies()[-1] or 0) > 5000.0)
    accepted = [e for e in energies() if e is not None]
    assert accepted == sorted(accepted)  # never backwards
    assert 4000.0 not in accepted
    assert accepted[-1] == pytest.approx(5000.0 + 41.0, abs=2.0)  # re-based on the old total
    assert r.health("m").counts["rejected_values"] >= 1


async def test_rtu_over_tcp_gateway_shares_one_connection(run: Any) -> None:
    with socket.socket() as s:  # a free port for the gateway (pymodbus cannot report its own)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sims = [DeviceSimulator("eastron_sdm630", unit_id=u, values={"power": 100.0 * u}) for u in (1, 2)]
    server = ModbusSerialServer(
        [d.sim_device() for d in sims], framer=FramerType.RTU, port=f"socket://127.0.0.1:{port}"
    )
    await server.serve_forever(background=True)
    try:
        url = f"rtutcp://127.0.0.1:{port}?baud=19200"
        r: Run = run([meter("g1", url, 1), meter("g2", url, 2)])
        assert len(r.service.buses) == 1
        await r.until(lambda: len(r.reads("g1")) >= 2 and len(r.reads("g2")) >= 2)
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
    assert r.reads("g1")[-1].values["power"] == pytest.approx(100.0)
    assert r.reads("g2")[-1].values["power"] == pytest.approx(200.0)


async def test_meters_added_while_running_join_their_line_or_get_a_bus_of_their_own(run: Any) -> None:
    async with RtuPtyBus({1: sdm_unit(power=100.0), 2: sdm_unit(power=200.0)}) as line:
        url = line.url()
        r: Run = run([])  # nothing to poll at start: the service still waits for meters
        await asyncio.sleep(0.1)
        r.service.add_meter(meter("a", url, 1))  # a line of its own: a new bus starts
        await r.until(lambda: len(r.reads("a")) >= 2)
        r.service.add_meter(meter("b", url, 2))  # the same RS-485 line: one master, shared
        await r.until(lambda: len(r.reads("b")) >= 2)
        assert len(r.service.buses) == 1 and {d.id for d in r.service.devices_by_id.values()} == {"a", "b"}
        with pytest.raises(ValueError, match="already polled"):
            r.service.add_meter(meter("b", url, 2))
        a_before = len(r.reads("a"))
        await r.until(lambda: len(r.reads("a")) >= a_before + 3)  # both keep being polled
    assert r.reads("a")[-1].values["power"] == pytest.approx(100.0)
    assert r.reads("b")[-1].values["power"] == pytest.approx(200.0)


async def test_a_meter_cannot_join_a_line_a_scan_holds_nor_a_stopped_service(run: Any) -> None:
    async with MeterSimulator("eastron_sdm630") as sim:
        url = f"tcp://127.0.0.1:{sim.port}"
        r: Run = run([])
        # A scan of a line no scheduler polls uses a bus of its own: a second master would collide.
        job = await r.service.start_scan(url, 2, 247, 0.05)
        with pytest.raises(ModbusBusy, match="scan"):
            r.service.add_meter(meter("late", url, 1))
        assert "late" not in r.service.devices_by_id
        await r.service.wait_scan(job["id"])
        r.service.add_meter(meter("late", url, 1))  # the scan is over: it joins now
        await r.until(lambda: len(r.reads("late")) >= 1)
    stopped = Run([])
    task = asyncio.create_task(stopped.service.run())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    with pytest.raises(RuntimeError, match="stopped"):
        stopped.service.add_meter(meter("after", url, 1))

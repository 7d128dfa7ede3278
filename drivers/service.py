"""The site's Modbus side: one bus and scheduler per transport, health, commissioning (ModbusControl)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.config import MeterSettings, ModbusChargerSettings, TransportSettings, parse_transport
from controller.core.ports import ModbusBusy
from drivers import commissioning
from drivers.bus import Bus
from drivers.charger import ChargerDevice
from drivers.device import BusDevice, Emit
from drivers.library import load_device
from drivers.plan import cached_plan
from drivers.scheduler import BusScheduler
from drivers.sunspec_meter import SunSpecMeter, is_sunspec
from drivers.timing import cycle_minimum_s
from drivers.transport import RequestFailed

log = logging.getLogger(__name__)

MAX_SCANS = 2
KEEP_SCANS = 20


def bus_key(t: TransportSettings) -> tuple[str, str | None, int | None, str | None]:
    """What makes two transports the same line: kind and place (serial options describe it)."""
    return (t.kind, t.host, t.port, t.device)


class ModbusService:
    """Builds one Bus + BusScheduler per distinct transport from meters and chargers, and runs them."""

    def __init__(
        self,
        meters: Sequence[MeterSettings],
        clock: Clock,
        emit: Emit,
        chargers: Sequence[ModbusChargerSettings] = (),
    ) -> None:
        self._clock = clock
        self._emit = emit
        self.buses: dict[tuple[str, str | None, int | None, str | None], BusScheduler] = {}
        grouped: dict[tuple[str, str | None, int | None, str | None], list[BusDevice]] = {}
        for m in meters:
            grouped.setdefault(bus_key(m.transport), []).append(self._meter(m))
        for c in chargers:
            grouped.setdefault(bus_key(c.transport), []).append(ChargerDevice(c, clock, emit))
        for key, group in grouped.items():
            first = group[0].settings
            if any(d.settings.transport != first.transport for d in group):
                log.warning(
                    "devices on %s disagree on line settings; using %s", first.transport_url, first.id
                )
            bus = Bus(first.transport_url, first.transport, max(d.timeout for d in group), clock.monotonic)
            sched = BusScheduler(bus, group, clock.monotonic)
            for dev in group:
                if isinstance(dev, ChargerDevice):
                    dev.wake = sched.wake
            self.buses[key] = sched
        self._group: asyncio.TaskGroup | None = None  # set while run() runs: buses added live join it
        self._stopped = False
        self._scans: dict[str, dict[str, Any]] = {}
        self._scan_tasks: dict[str, asyncio.Task[None]] = {}
        self._scan_ids = itertools.count(1)

    def _meter(self, m: MeterSettings) -> BusDevice:
        return (
            SunSpecMeter(m, self._clock, self._emit)
            if is_sunspec(m.model)
            else BusDevice(m, self._clock, self._emit)
        )

    def add_meter(self, m: MeterSettings) -> None:
        """Start polling a meter now: on its line's running scheduler, or on a new bus of its own.

        ValueError: the id is taken; ModbusBusy: a scan holds the line (it would get two masters);
        RuntimeError: the service has stopped.
        """
        if self._stopped:
            raise RuntimeError("the Modbus service has stopped")
        if m.id in self.devices_by_id:
            raise ValueError(f"a Modbus device {m.id!r} is already polled")
        key = bus_key(m.transport)
        sched = self.buses.get(key)
        if sched is None and self._scanning(key):
            raise ModbusBusy(f"a scan of {m.transport_url} is running; the meter starts after a restart")
        meter = self._meter(m)
        if sched is not None:
            first = sched.devices[0].settings
            if first.transport != m.transport:
                log.warning(
                    "meter %s disagrees on line settings with %s; using %s's", m.id, first.id, first.id
                )
            # The scheduler reads its device list at every pick: the meter is polled from the next one.
            sched.devices.append(meter)
            sched.wake()
            return
        bus = Bus(m.transport_url, m.transport, meter.timeout, self._clock.monotonic)
        sched = BusScheduler(bus, [meter], self._clock.monotonic)
        self.buses[key] = sched
        if self._group is not None:
            self._group.create_task(sched.run(), name=f"modbus-bus {bus.url}")

    @property
    def devices_by_id(self) -> dict[str, BusDevice]:
        """Every configured device by meter id."""
        return {d.id: d for s in self.buses.values() for d in s.devices}

    @property
    def charger_devices(self) -> dict[str, ChargerDevice]:
        """Every Modbus charger by id."""
        return {d.id: d for d in self.devices_by_id.values() if isinstance(d, ChargerDevice)}

    # --- ModbusChargers / ChargerSetpoints ---------------------------------------------------------

    def chargers(self) -> list[dict[str, Any]]:
        """Every Modbus charger: model, IEC state, setpoint, applied current, watchdog, health."""
        return [c.describe_charger() for c in self.charger_devices.values()]

    async def set_current(self, charger_id: str, amps: float) -> bool:
        """Set a charger's current (below 6 A: pause); True once written and read back where possible."""
        charger = self.charger_devices.get(charger_id)
        if charger is None:
            raise KeyError(f"no Modbus charger {charger_id!r}")
        return await charger.set_current(amps)

    async def run(self) -> None:
        """Run every bus scheduler until cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                for s in self.buses.values():
                    tg.create_task(s.run(), name=f"modbus-bus {s.bus.url}")
                self._group = tg
                try:
                    # Held open even with no bus yet: a meter commissioned later gets its bus here.
                    await asyncio.get_running_loop().create_future()
                finally:
                    self._group = None  # shutting down: nothing may join any more
                    self._stopped = True
        finally:
            scans = list(self._scan_tasks.values())
            for task in scans:
                task.cancel()
            # Awaited, so no Modbus work outlives run(): a scan closes its temporary bus on the way out.
            await asyncio.gather(*scans, return_exceptions=True)

    # --- ModbusControl ---------------------------------------------------------------------

    def devices(self) -> dict[str, Any]:
        """Every bus with its timing and devices (health, plan, identity), JSON-ready."""
        buses = []
        for s in self.buses.values():
            line = s.bus.line
            entry: dict[str, Any] = {
                "transport": s.bus.url,
                "kind": s.bus.transport.kind,
                "requests": s.bus.requests,
                "late_replies": s.bus.late_replies,
                "crc_errors": s.bus.crc_errors,
                "devices": [d.describe() for d in s.devices],
            }
            if line is not None:
                plans = [
                    ([b.count for b in cached_plan(d.model, frozenset({"fast"}))], d.turnaround_s)
                    for d in s.devices
                ]
                entry["line"] = {
                    "baud": line.baud,
                    "char_ms": round(line.char_s * 1000, 3),
                    "gap_ms": round(line.gap_s * 1000, 3),
                    "fast_cycle_minimum_ms": round(cycle_minimum_s(line, plans) * 1000, 1),
                }
            buses.append(entry)
        return {"buses": buses, "devices": [d for b in buses for d in b["devices"]]}

    def _running_scans(self) -> list[dict[str, Any]]:
        return [j for j in self._scans.values() if j["state"] == "running"]

    def _scanning(self, key: tuple[str, str | None, int | None, str | None]) -> bool:
        """Is a scan running on this line (on a bus of its own, if no scheduler polls the line)?"""
        return any(bus_key(parse_transport(j["transport"])) == key for j in self._running_scans())

    def _bus_for(self, transport: str, timeout_s: float) -> tuple[Bus, bool]:
        """The configured bus for a transport URL (shared, one master), else a temporary one."""
        t = parse_transport(transport)
        sched = self.buses.get(bus_key(t))
        if sched is not None:
            return sched.bus, False
        return Bus(transport, t, timeout_s, self._clock.monotonic), True

    async def start_scan(self, transport: str, first: int, last: int, timeout_s: float) -> dict[str, Any]:
        """Start a background scan of unit ids first..last; the job as JSON."""
        if not 1 <= first <= last <= 247:
            raise ValueError("unit ids must satisfy 1 <= first <= last <= 247")
        if not 0.02 <= timeout_s <= 2.0:
            raise ValueError("timeout must be between 0.02 and 2.0 s")
        running = self._running_scans()
        if len(running) >= MAX_SCANS:
            raise ModbusBusy(f"{len(running)} scans already running")
        if self._scanning(bus_key(parse_transport(transport))):
            raise ModbusBusy("this bus is already being scanned")
        bus, temporary = self._bus_for(transport, timeout_s)
        scan_id = f"scan-{next(self._scan_ids)}"
        job: dict[str, Any] = {
            "id": scan_id,
            "transport": transport,
            "first": first,
            "last": last,
            "timeout": timeout_s,
            "state": "running",
            "done": 0,
            "total": last - first + 1,
            "found": [],
            "error": None,
            "started_at": rfc3339(self._clock.now()),
            "finished_at": None,
        }
        self._scans[scan_id] = job
        while len(self._scans) > KEEP_SCANS:
            oldest = next(k for k, j in self._scans.items() if j["state"] != "running")
            del self._scans[oldest]
        task = asyncio.create_task(self._run_scan(job, bus, temporary), name=f"modbus-{scan_id}")
        self._scan_tasks[scan_id] = task
        task.add_done_callback(lambda _t: self._scan_tasks.pop(scan_id, None))
        return dict(job)

    async def _run_scan(self, job: dict[str, Any], bus: Bus, temporary: bool) -> None:
        def progress(unit: int, answer: str | None) -> None:
            job["done"] += 1
            if answer is not None:
                job["found"].append({"unit": unit, "reply": answer})

        try:
            await commissioning.scan_units(bus, job["first"], job["last"], job["timeout"], progress)
            job["state"] = "done"
        except RequestFailed as exc:
            job["state"], job["error"] = "failed", str(exc)
        finally:
            job["finished_at"] = rfc3339(self._clock.now())
            if job["state"] == "running":
                job["state"] = "cancelled"
            if temporary:
                bus.close()

    def scan(self, scan_id: str) -> dict[str, Any] | None:
        """A scan job's progress and findings."""
        job = self._scans.get(scan_id)
        return None if job is None else {**job, "found": list(job["found"])}

    async def wait_scan(self, scan_id: str) -> dict[str, Any] | None:
        """The scan job once it finished."""
        task = self._scan_tasks.get(scan_id)
        if task is not None:
            await asyncio.shield(task)
        return self.scan(scan_id)

    async def test_read(self, transport: str, unit: int, model: str, timeout_s: float) -> dict[str, Any]:
        """Read a device with a chosen model: decoded values, plausibility problems and hints."""
        if not 1 <= unit <= 247:
            raise ValueError("unit must be 1..247")
        if not 0.02 <= timeout_s <= 5.0:
            raise ValueError("timeout must be between 0.02 and 5.0 s")
        try:
            device_model = load_device(model)
        except KeyError as exc:
            raise ValueError(str(exc)) from exc
        bus, temporary = self._bus_for(transport, timeout_s)
        try:
            result = await commissioning.test_read(bus, unit, device_model, timeout_s)
        finally:
            if temporary:
                bus.close()
        return {"transport": transport, **result}

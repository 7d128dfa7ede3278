"""Modbus devices built from the device library: the same register maps the drivers read.

`DeviceSimulator` is one device (meter or charger): its register image, the writes it accepted
and the faults injected into it. `MeterSimulator` serves one over Modbus TCP; `hil.sim.rtu.RtuBus`
serves several on one emulated RS-485 line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Protocol

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.codec import decode_value, encode, swapped_order
from drivers.codec import to_wire_order as _to_wire_order
from drivers.library import DeviceModel, Register, load_device
from drivers.sunspec import BASES, COMMON_ID, END_ID, MARKER, TEMPLATES, place
from drivers.sunspec import Block as SunSpecBlock

log = logging.getLogger(__name__)

_INPUT, _HOLDING = 4, 3
_WRITES = (5, 6, 15, 16)
SimValue = float | str | None


@dataclass(frozen=True, slots=True)
class Access:
    """One request inside the map that the device saw (served or failed by an injected fault)."""

    function: int
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class Write:
    """A write the device accepted: the register, the decoded value, and when (monotonic s)."""

    name: str
    value: SimValue
    at: float


@dataclass(slots=True)
class Faults:
    """Faults injected into one device; the TCP server and the RTU bridge both honour them."""

    exception: ExcCodes | None = None  # answer every request with this exception code
    silent: bool = False  # consume requests, never answer (a dead device: the master times out)
    frozen: bool = False  # ignore value updates: stale data keeps being served
    crc: bool = False  # RTU: corrupt the reply's CRC (the master discards it, like noise)
    late_s: float = 0.0  # RTU: hold each reply this long (past the master's timeout: the stale-reply trap)


class _Server(Protocol):
    async def async_setValues(self, device_id: int, func_code: int, address: int, values: list[int]) -> None:
        """pymodbus server datastore write."""


class DeviceSimulator:
    """One simulated device built from a device model; serve it with MeterSimulator or RtuBus.

    Registers sit in separate holding/input blocks (the SimDevice tuple form): a driver that reads
    with the wrong function code gets exception 2, as from a strict real meter. Addresses outside
    the map are illegal too, except the gaps a `read_gaps` device fills with zeros. A SunSpec
    template is laid out as a real chain: "SunS" at `sunspec_base`, common model, meter block, end.
    """

    def __init__(
        self,
        model: str | DeviceModel,
        *,
        unit_id: int | None = None,
        values: Mapping[str, SimValue] | None = None,
        history: int = 1000,
        sunspec_model: int | None = None,
        sunspec_base: int = BASES[0],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base_model = load_device(model) if isinstance(model, str) else model
        self._fixed: dict[tuple[int, int], int] = {}
        if base_model.sunspec is not None:
            base_model = self._lay_out_sunspec(base_model, sunspec_model, sunspec_base)
        self.model = base_model
        self.unit_id = base_model.unit_id if unit_id is None else unit_id
        self.faults = Faults()
        self.accesses: deque[Access] = deque(maxlen=history)
        self.writes: deque[Write] = deque(maxlen=history)
        self._clock = clock
        self._registers = {r.name: r for r in self.model.registers}
        self._values: dict[str, SimValue] = {
            r.name: (None if r.type == "str" else 0.0) for r in self.model.registers if not r.scale_factor
        }
        self._offsets: dict[str, float] = {}  # counter reset: what the physics said at the reset
        self._swapped = False
        self._sf: dict[str, int] = {}
        self._server: _Server | None = None
        self._write_map = self._writable_addresses()
        self.last_keepalive = clock()
        self._refresh: asyncio.Task[None] | None = None
        if values:
            self._check_names(values)
            self._values.update(values)
        self._image: dict[tuple[int, int], int] = {}
        self._rebuild()

    # --- SunSpec -------------------------------------------------------------------------------

    def _lay_out_sunspec(self, template: DeviceModel, model_id: int | None, base: int) -> DeviceModel:
        spec = template.sunspec
        assert spec is not None
        mid = model_id if model_id is not None else spec.models[-2 if len(spec.models) > 2 else 0]
        if TEMPLATES.get(mid) != template.name:
            raise ValueError(f"SunSpec model {mid} is not served by template {template.name}")
        common_len = 66
        common_at = base + 2
        meter_at = common_at + 2 + common_len
        words: list[int] = [*MARKER, COMMON_ID, common_len]
        common = [0] * common_len
        for off, text in ((0, "siteedge-hil"), (16, f"SunSpec {mid}"), (40, "1.0"), (48, f"SIM{mid}")):
            raw = text.encode().ljust(32 if off != 40 else 16, b"\0")
            for i in range(0, len(raw), 2):
                common[off + i // 2] = int.from_bytes(raw[i : i + 2], "big")
        common[64] = 1  # DA: the device's Modbus address
        words += common
        words += [mid, spec.length]
        # Offsets not in the template are "not implemented"; 0x8000 is the int16 marker for that.
        words += [0x8000] * spec.length
        words += [END_ID, 0]
        for i, w in enumerate(words):
            self._fixed[(_HOLDING, base + i)] = w
        return place(template, SunSpecBlock(mid, meter_at, spec.length))

    # --- values --------------------------------------------------------------------------------

    def values(self) -> dict[str, SimValue]:
        """Current engineering values by register name (what a correct driver should decode)."""
        return dict(self._values)

    def value(self, name: str) -> SimValue:
        """One current value (including what a master wrote)."""
        return self._values[name]

    def _check_names(self, names: Mapping[str, object]) -> None:
        unknown = set(names) - set(self._values)
        if unknown:
            raise KeyError(f"{self.model.name} has no registers {sorted(unknown)}")

    async def set_values(self, mapping: Mapping[str, SimValue], *, strict: bool = True) -> None:
        """Update registers live; strict=False skips names the model lacks (e.g. a 1-phase meter)."""
        if strict:
            self._check_names(mapping)
        if self.faults.frozen:
            return
        for name, value in mapping.items():
            if name not in self._values:
                continue
            reg = self._registers[name]
            if reg.counter and isinstance(value, float | int) and name in self._offsets:
                value = max(0.0, float(value) - self._offsets[name])
            self._values[name] = value
        await self._publish()

    async def follow(
        self, readings: Callable[[], Mapping[str, float]], interval_s: float, stop: asyncio.Event
    ) -> None:
        """Copy readings (e.g. SiteModel.grid_readings) into the registers every interval until stop."""
        while not stop.is_set():
            await self.set_values(readings(), strict=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def set_raw(self, address: int, words: list[int], *, function: int = _INPUT) -> None:
        """Write raw words (e.g. a wrong word order or a sentinel) bypassing the codec."""
        for i, w in enumerate(words):
            self._image[(function, address + i)] = w
        if self._server is None:
            raise RuntimeError("simulator not attached to a running server")
        await self._server.async_setValues(self.unit_id, function, address, words)

    async def set_state(self, state: str) -> None:
        """Charger: show this IEC 61851 state (A..F) with the model's own raw status encoding."""
        charger = self.model.charger
        if charger is None:
            raise ValueError(f"{self.model.name} is not a charger")
        raw = next((k for k, v in charger.states if v == state), None)
        update: dict[str, SimValue] = {}
        if charger.plug is not None:
            update[charger.plug] = 0.0 if state == "A" else float(charger.plug_connected[-1])
            if raw is None and state == "A":
                raw = charger.states[0][0]
        if raw is None:
            raise ValueError(f"{self.model.name} has no raw status for state {state}")
        status = self._registers[charger.status]
        update[charger.status] = raw if status.type == "str" else float(raw)
        await self.set_values(update)

    # --- faults --------------------------------------------------------------------------------

    def fail_with_exception(self, code: int = ExcCodes.DEVICE_FAILURE) -> None:
        """Answer every request with this Modbus exception code until recover()."""
        self.faults.exception = ExcCodes(code)

    def go_silent(self) -> None:
        """Send no replies (a hung meter, a dead RTU device, a broken gateway port)."""
        self.faults.silent = True

    def freeze(self) -> None:
        """Ignore set_values(): the device keeps answering with stale values until recover()."""
        self.faults.frozen = True

    def corrupt_crc(self) -> None:
        """RTU only: every reply arrives with a broken CRC (noise, bad termination)."""
        self.faults.crc = True

    def reply_late(self, seconds: float) -> None:
        """RTU only: every reply is held this long, so it lands after the master's timeout."""
        self.faults.late_s = seconds

    async def reset_counters(self) -> None:
        """Energy counters restart at zero (a meter swap, a power cycle); later readings count on from 0."""
        for name, reg in self._registers.items():
            value = self._values.get(name)
            if reg.counter and isinstance(value, float | int):
                self._offsets[name] = self._offsets.get(name, 0.0) + float(value)
                self._values[name] = 0.0
        await self._publish()

    async def swap_word_order(self, swapped: bool = True) -> None:
        """Serve every multi-register value in the wrong word order (a misconfigured meter)."""
        self._swapped = swapped
        await self._publish()

    def recover(self) -> None:
        """Clear every injected fault (values set while frozen are not replayed; resets stay)."""
        self.faults = Faults()

    # --- charger behaviour -------------------------------------------------------------------------

    def watchdog_expired(self, timeout_s: float | None = None) -> bool:
        """Charger: True if the keep-alive the model asks for has not come within the timeout."""
        charger = self.model.charger
        if charger is None or charger.watchdog.kind == "none":
            return False
        timeout = timeout_s if timeout_s is not None else self._watchdog_timeout()
        return timeout > 0 and self._clock() - self.last_keepalive > timeout

    def effective_current(self, timeout_s: float | None = None) -> float | None:
        """Charger: the current it applies: the setpoint, or the failsafe once the watchdog fired."""
        charger = self.model.charger
        if charger is None:
            return None
        if self.watchdog_expired(timeout_s):
            failsafe = charger.watchdog.failsafe_register
            value = self._values.get(failsafe) if failsafe else 0.0
            return float(value) if isinstance(value, float | int) else 0.0
        value = self._values.get(charger.setpoint)
        return float(value) if isinstance(value, float | int) else None

    def _watchdog_timeout(self) -> float:
        assert self.model.charger is not None
        wd = self.model.charger.watchdog
        if wd.timeout_register is not None:
            value = self._values.get(wd.timeout_register)
            if isinstance(value, float | int) and value > 0:
                return float(value) / (1000.0 if wd.timeout_unit == "ms" else 1.0)
        return wd.timeout_s

    def _on_write(self, reg: Register, value: SimValue) -> None:
        self._values[reg.name] = value
        self.writes.append(Write(reg.name, value, self._clock()))
        charger = self.model.charger
        if charger is None:
            return
        wd = charger.watchdog
        if (wd.kind == "rewrite_setpoint" and reg.name == charger.setpoint) or (
            wd.kind in ("life_bit", "write_timeout") and reg.name == wd.register
        ):
            self.last_keepalive = self._clock()

    # --- the register image ------------------------------------------------------------------------

    def _words(self, reg: Register) -> list[int]:
        value = self._values.get(reg.name)
        if self._swapped and reg.count > 1 and reg.type != "str":
            reg = replace(reg, word_order=swapped_order(reg.word_order))
        if value is None or (isinstance(value, float) and math.isnan(value) and reg.type[0] != "f"):
            if reg.type == "str":
                return [0] * reg.count
            if reg.type[0] == "f":
                return encode(reg, math.nan)
            sentinel = reg.sentinels[0] if reg.sentinels else 0
            raw = sentinel.to_bytes(2 * reg.count, "big")
            big = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
            return _to_wire_order(big, reg.word_order)
        return encode(reg, value, self._exponent(reg))

    def _exponent(self, reg: Register) -> int:
        if reg.scale_register is None:
            return 0
        return self._sf.get(reg.scale_register, 0)

    def _choose_exponents(self) -> None:
        """Per scale-factor group, the finest power of ten at which every value still fits."""
        groups: dict[str, list[Register]] = {}
        for reg in self.model.registers:
            if reg.scale_register is not None:
                groups.setdefault(reg.scale_register, []).append(reg)
        self._sf = {}
        for sf_name, regs in groups.items():
            for exp in range(-3, 10):
                try:
                    for reg in regs:
                        value = self._values.get(reg.name)
                        if isinstance(value, float | int) and not math.isnan(value):
                            encode(reg, value, exp)
                except ValueError:
                    continue
                self._sf[sf_name] = exp
                break

    def _rebuild(self) -> None:
        self._choose_exponents()
        image = dict(self._fixed)
        for reg in self.model.registers:
            words = [self._sf.get(reg.name, 0) & 65535] if reg.scale_factor else self._words(reg)
            table = _HOLDING if reg.function == _HOLDING else reg.function
            for i, w in enumerate(words):
                image[(table, reg.address + i)] = w
        self._image = image

    async def _publish(self) -> None:
        old = self._image
        self._rebuild()
        if self._server is None:
            return
        changed = sorted(k for k, w in self._image.items() if old.get(k) != w)
        for fc, start, words in _runs(changed, self._image):
            await self._server.async_setValues(self.unit_id, fc, start, words)

    def _writable_addresses(self) -> dict[tuple[int, int], Register]:
        out: dict[tuple[int, int], Register] = {}
        for reg in self.model.registers:
            if reg.writable:
                for a in range(reg.address, reg.address + reg.count):
                    out[(reg.function, a)] = reg
        return out

    # --- pymodbus glue -------------------------------------------------------------------------------

    def attach(self, server: _Server | None) -> None:
        """Route live updates to this running server (None: detached, values kept)."""
        self._server = server

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None and function_code in (_INPUT, _HOLDING):
            # Only our own async_setValues writes with a read function code: never fault those.
            return None
        self.accesses.append(Access(function_code, address, count))
        if self.faults.exception is not None:
            return self.faults.exception
        if self.model.charger is not None and self.model.charger.watchdog.kind == "read":
            self.last_keepalive = self._clock()
        result = None
        if function_code in _WRITES and set_values is not None:
            result = self._accept_write(function_code, address, [int(v) for v in set_values])
        self._follow_applied()
        return result

    def _follow_applied(self) -> None:
        """Charger: current_applied shows the setpoint, or the failsafe once the watchdog fired."""
        if self.model.charger is None or "current_applied" not in self._registers or self.faults.frozen:
            return
        applied = self.effective_current()
        if applied is None or self._values.get("current_applied") == applied:
            return
        self._values["current_applied"] = applied
        # The charger takes a moment to apply it: served from the next request on.
        if self._server is not None and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._publish())

    def _accept_write(self, fc: int, address: int, words: list[int]) -> ExcCodes | None:
        table = 1 if fc in (5, 15) else _HOLDING
        regs = {self._write_map.get((table, a)) for a in range(address, address + len(words))}
        if None in regs:
            return ExcCodes.ILLEGAL_ADDRESS  # read-only or unmapped: a real device refuses too
        for reg in regs:
            assert reg is not None
            if reg.address < address or reg.address + reg.count > address + len(words):
                return ExcCodes.ILLEGAL_VALUE  # half of a 32-bit value: refuse, never apply a torn value
        for reg in sorted(regs, key=lambda r: r.address if r else 0):
            assert reg is not None
            off = reg.address - address
            chunk = words[off : off + reg.count]
            for i, w in enumerate(chunk):
                self._image[(table, reg.address + i)] = w
            self._on_write(reg, decode_value(reg, chunk))
        return None

    def sim_device(self) -> SimDevice:
        """A pymodbus SimDevice serving the current image; live updates go through attach()."""
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(
            id=self.unit_id,
            simdata=(bits, list(bits), self._block(_HOLDING), self._block(_INPUT)),
            action=self._action,
        )

    def _block(self, table: int) -> list[SimData]:
        addrs = sorted(a for (t, a) in self._image if t == table)
        if not addrs:
            return [SimData(0, datatype=DataType.INVALID)]
        out: list[SimData] = []
        run: list[int] = []
        start = addrs[0]
        prev = start - 1
        for a in addrs:
            if a != prev + 1:
                gap = a - prev - 1
                if self.model.read_gaps and gap <= 125:
                    run += [0] * gap
                else:
                    out.append(SimData(start, values=run, datatype=DataType.REGISTERS))
                    run, start = [], a
            run.append(self._image[(table, a)])
            prev = a
        out.append(SimData(start, values=run, datatype=DataType.REGISTERS))
        return out


def _runs(
    keys: list[tuple[int, int]], image: Mapping[tuple[int, int], int]
) -> list[tuple[int, int, list[int]]]:
    """Group changed (table, address) keys into contiguous writes."""
    out: list[tuple[int, int, list[int]]] = []
    for fc, a in keys:
        if out and out[-1][0] == fc and out[-1][1] + len(out[-1][2]) == a:
            out[-1][2].append(image[(fc, a)])
        else:
            out.append((fc, a, [image[(fc, a)]]))
    return out


class MeterSimulator(DeviceSimulator):
    """Serves one device model on 127.0.0.1 over Modbus TCP; values are set live, faults injected."""

    def __init__(
        self,
        model: str | DeviceModel,
        *,
        unit_id: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        values: Mapping[str, SimValue] | None = None,
        history: int = 1000,
        sunspec_model: int | None = None,
        sunspec_base: int = BASES[0],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            model,
            unit_id=unit_id,
            values=values,
            history=history,
            sunspec_model=sunspec_model,
            sunspec_base=sunspec_base,
            clock=clock,
        )
        self.host = host
        self._port = port
        self._tcp: ModbusTcpServer | None = None

    @property
    def port(self) -> int:
        """The bound TCP port (the kernel's pick when constructed with port 0, once started)."""
        if not self._port:
            raise RuntimeError("meter simulator not started yet: no port bound")
        return self._port

    @property
    def running(self) -> bool:
        """True while the server is listening."""
        return self._tcp is not None

    async def start(self) -> MeterSimulator:
        """Start listening (again on the same port after a stop) with the current values."""
        if self._tcp is not None:
            return self
        server = ModbusTcpServer(
            self.sim_device(), address=(self.host, self._port), trace_packet=self._trace_packet
        )
        await server.serve_forever(background=True)
        listener = server.transport
        assert isinstance(listener, asyncio.Server)
        self._port = int(listener.sockets[0].getsockname()[1])
        self._tcp = server
        self.attach(server)
        log.debug("%s unit %d listening on %s:%d", self.model.name, self.unit_id, self.host, self._port)
        return self

    async def stop(self) -> None:
        """Stop listening and drop every client connection (the device goes offline); idempotent."""
        server, self._tcp = self._tcp, None
        self.attach(None)
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus 3.16

    async def __aenter__(self) -> MeterSimulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # An empty frame makes pymodbus write nothing: the request is consumed, the reply dropped.
        return b"" if sending and self.faults.silent else data


__all__ = ["Access", "DeviceSimulator", "Faults", "MeterSimulator", "SimValue", "Write"]

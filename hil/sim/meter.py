"""A Modbus TCP meter built from the device library: the same register map the driver reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.codec import encode
from drivers.library import DeviceModel, Register, load_device

log = logging.getLogger(__name__)

_INPUT, _HOLDING = 4, 3


@dataclass(frozen=True, slots=True)
class Access:
    """One request inside the map that the device saw (served or failed by an injected fault)."""

    function: int
    address: int
    count: int


class MeterSimulator:
    """Serves one device model on 127.0.0.1 over Modbus TCP; values are set live, faults injected.

    Registers sit in separate holding/input blocks (the SimDevice tuple form): a driver that reads
    with the wrong function code gets exception 2, as from a strict real meter. Addresses outside
    the map are illegal too, except the gaps a `read_gaps` device fills with zeros.
    """

    def __init__(
        self,
        model: str | DeviceModel,
        *,
        unit_id: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        values: Mapping[str, float] | None = None,
        history: int = 1000,
    ) -> None:
        self.model = load_device(model) if isinstance(model, str) else model
        self.unit_id = unit_id
        self.host = host
        self._port = port
        self._registers = {r.name: r for r in self.model.registers}
        self._values: dict[str, float] = dict.fromkeys(self._registers, 0.0)
        self._server: ModbusTcpServer | None = None
        self._fault: ExcCodes | None = None
        self._silent = False
        self._frozen = False
        self.accesses: deque[Access] = deque(maxlen=history)
        if values:
            self._check_names(values)
            self._values.update(values)

    @property
    def port(self) -> int:
        """The bound TCP port (the kernel's pick when constructed with port 0, once started)."""
        if not self._port:
            raise RuntimeError("meter simulator not started yet: no port bound")
        return self._port

    @property
    def running(self) -> bool:
        """True while the server is listening."""
        return self._server is not None

    def values(self) -> dict[str, float]:
        """Current engineering values by register name (what a correct driver should decode)."""
        return dict(self._values)

    def _check_names(self, names: Mapping[str, float]) -> None:
        unknown = set(names) - set(self._registers)
        if unknown:
            raise KeyError(f"{self.model.name} has no registers {sorted(unknown)}")

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> MeterSimulator:
        """Start listening (again on the same port after a stop) with the current values."""
        if self._server is not None:
            return self
        server = ModbusTcpServer(
            self._device(),
            address=(self.host, self._port),
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        listener = server.transport
        assert isinstance(listener, asyncio.Server)
        self._port = int(listener.sockets[0].getsockname()[1])
        self._server = server
        log.debug("meter %s unit %d listening on %s:%d", self.model.name, self.unit_id, self.host, self._port)
        return self

    async def stop(self) -> None:
        """Stop listening and drop every client connection (the meter goes offline); idempotent."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus 3.16

    async def __aenter__(self) -> MeterSimulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- values ----------------------------------------------------------------------------

    async def set_values(self, mapping: Mapping[str, float], *, strict: bool = True) -> None:
        """Update registers live; strict=False skips names the model lacks (e.g. a 1-phase meter)."""
        if strict:
            self._check_names(mapping)
        if self._frozen:
            return
        for name, value in mapping.items():
            reg = self._registers.get(name)
            if reg is None:
                continue
            words = encode(reg, value)
            self._values[name] = value
            if self._server is not None:
                await self._server.async_setValues(self.unit_id, reg.function, reg.address, words)

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
        if self._server is None:
            raise RuntimeError("meter simulator not running")
        await self._server.async_setValues(self.unit_id, function, address, words)

    # --- faults ----------------------------------------------------------------------------

    def fail_with_exception(self, code: int = ExcCodes.DEVICE_FAILURE) -> None:
        """Answer every request with this Modbus exception code until recover()."""
        self._fault = ExcCodes(code)

    def go_silent(self) -> None:
        """Keep the TCP connection but send no replies (a hung meter or a dead RTU gateway port)."""
        self._silent = True

    def freeze(self) -> None:
        """Ignore set_values(): the meter keeps answering with stale values until recover()."""
        self._frozen = True

    def recover(self) -> None:
        """Clear every injected fault (values set while frozen are not replayed)."""
        self._fault = None
        self._silent = False
        self._frozen = False

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # An empty frame makes pymodbus write nothing: the request is consumed, the reply dropped.
        return b"" if sending and self._silent else data

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
        return self._fault

    # --- building the device -----------------------------------------------------------------

    def _device(self) -> SimDevice:
        holding = [r for r in self.model.registers if r.function == _HOLDING]
        inputs = [r for r in self.model.registers if r.function == _INPUT]
        # Coil and discrete-input blocks must not be empty; one bit at 0 stands in for "none".
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(
            id=self.unit_id,
            simdata=(bits, list(bits), self._block(holding), self._block(inputs)),
            action=self._action,
        )

    def _block(self, regs: list[Register]) -> list[SimData]:
        if not regs:
            return [SimData(0, datatype=DataType.INVALID)]
        out: list[SimData] = []
        end: int | None = None
        for reg in sorted(regs, key=lambda r: r.address):
            if self.model.read_gaps and end is not None and reg.address > end:
                out.append(SimData(end, count=reg.address - end, values=0, datatype=DataType.REGISTERS))
            out.append(
                SimData(reg.address, values=encode(reg, self._values[reg.name]), datatype=DataType.REGISTERS)
            )
            end = reg.address + reg.count
        return out

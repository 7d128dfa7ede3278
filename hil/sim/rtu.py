"""An RS-485 Modbus RTU bus in one process: pty pairs, real line timing, several devices, faults.

The master opens `bus.port` (a pty) with any RTU client, with parity N: Linux ptys refuse parity
settings, so an 8E1 line is opened as 8N1 and timed as 8E1 (11 bits per character). A bridge
copies frames between that pty and a second one where one pymodbus ModbusSerialServer serves
every DeviceSimulator. The bridge
is the wire: it holds each frame for its bits on the line (a 9600-baud bus takes 9600-baud time),
lets the slave answer no earlier than max(t3.5, its turnaround) after the request, keeps a
unit id nobody owns silent (pymodbus would answer exception 4; a real bus stays quiet), and
applies the RTU faults of each device (silence, CRC errors, late replies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer

from hil.sim.meter import DeviceSimulator

log = logging.getLogger(__name__)


def char_time(baudrate: int, bits_per_char: int) -> float:
    """Seconds one character occupies the line."""
    return bits_per_char / baudrate


def t35(baudrate: int, bits_per_char: int) -> float:
    """The inter-frame gap: 3.5 characters up to 19200 Bd, 1.75 ms above (Modbus serial line 2.5.1.1)."""
    return 3.5 * char_time(baudrate, bits_per_char) if baudrate <= 19200 else 0.00175


def crc16(frame: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001), as sent low byte first."""
    crc = 0xFFFF
    for b in frame:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def request_length(buf: bytes) -> int | None:
    """Length of the RTU request at the start of buf, or None if more bytes are needed."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return None if len(buf) < 7 else 9 + buf[6]
    return len(buf)  # unsupported function: take what came (pymodbus answers exception 1)


def reply_length(buf: bytes) -> int | None:
    """Length of the RTU reply at the start of buf, or None if more bytes are needed."""
    if len(buf) < 3:
        return None
    fc = buf[1]
    if fc & 0x80:
        return 5
    if fc in (1, 2, 3, 4):
        return 5 + buf[2]
    if fc in (5, 6, 15, 16):
        return 8
    return len(buf)


@dataclass(slots=True)
class BusStats:
    """What happened on the wire (for tests and the benchmark)."""

    requests: int = 0
    replies: int = 0
    dropped_unknown_unit: int = 0  # requests to a unit id nobody on the bus has
    dropped_silent: int = 0
    crc_corrupted: int = 0
    late_replies: int = 0
    gap_violations: int = 0  # the master started a frame less than t3.5 after the last one ended
    busy_s: float = 0.0  # total line occupancy (request + reply bits)


@dataclass(slots=True)
class _Pending:
    device: DeviceSimulator
    request_end: float
    crc: bool
    late_s: float


class RtuBus:
    """Several simulated devices on one emulated RS-485 line behind a pty; `port` is the master's end."""

    def __init__(
        self,
        devices: Sequence[DeviceSimulator],
        *,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        emulate_line: bool = True,
        latency_ms: dict[int, float] | None = None,
    ) -> None:
        units = [d.unit_id for d in devices]
        if len(set(units)) != len(units):
            raise ValueError(f"unit ids must be unique on a bus: {units}")
        self.devices = {d.unit_id: d for d in devices}
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.bits_per_char = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
        self.emulate_line = emulate_line
        # How long each slave takes before it answers; defaults to its model's turnaround.
        self._latency = {
            u: (latency_ms or {}).get(u, float(d.model.turnaround_ms)) / 1000.0
            for u, d in self.devices.items()
        }
        self.stats = BusStats()
        self.port = ""
        self._fds: list[int] = []
        self._master_fd = -1  # our end of the master's pty
        self._slave_fd = -1  # our end of the server's pty
        self._server: ModbusSerialServer | None = None
        self._from_master = b""
        self._from_slave = b""
        self._pending: deque[_Pending] = deque()
        self._line_free_at = 0.0
        self._last_frame_end = -1.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def client_settings(self) -> dict[str, object]:
        """Serial settings for the master's end: the declared line, except parity (ptys refuse it)."""
        return {
            "port": self.port,
            "baudrate": self.baudrate,
            "parity": "N",
            "stopbits": self.stopbits,
            "bytesize": self.bytesize,
        }

    # --- timing ---------------------------------------------------------------------------------

    def wire_time(self, nbytes: int) -> float:
        """Seconds nbytes take on this line (0 when the line is not emulated)."""
        return nbytes * char_time(self.baudrate, self.bits_per_char) if self.emulate_line else 0.0

    @property
    def t35(self) -> float:
        """The inter-frame gap on this line."""
        return t35(self.baudrate, self.bits_per_char) if self.emulate_line else 0.0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> RtuBus:
        """Open both pty pairs, start the server on one and the bridge; `port` is ready after this."""
        self._loop = asyncio.get_running_loop()
        m_master, s_master = os.openpty()
        m_slave, s_slave = os.openpty()
        for fd in (s_master, s_slave):
            tty.setraw(fd)
        for fd in (m_master, m_slave):
            os.set_blocking(fd, False)
        self._fds = [m_master, s_master, m_slave, s_slave]
        self._master_fd, self._slave_fd = m_master, m_slave
        self.port = os.ttyname(s_master)
        server = ModbusSerialServer(
            [d.sim_device() for d in self.devices.values()],
            framer=FramerType.RTU,
            port=os.ttyname(s_slave),
            baudrate=self.baudrate,
            parity="N",  # ptys refuse parity (EINVAL); the bus still times the declared parity
            stopbits=self.stopbits,
            bytesize=self.bytesize,
        )
        await server.serve_forever(background=True)
        self._server = server
        for d in self.devices.values():
            d.attach(server)
        self._loop.add_reader(m_master, self._on_master_bytes)
        self._loop.add_reader(m_slave, self._on_slave_bytes)
        return self

    async def stop(self) -> None:
        """Stop the server and the bridge, close every pty; idempotent."""
        if self._loop is not None:
            for fd in (self._master_fd, self._slave_fd):
                if fd >= 0:
                    self._loop.remove_reader(fd)
        for d in self.devices.values():
            d.attach(None)
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus 3.16
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._master_fd = self._slave_fd = -1

    async def __aenter__(self) -> RtuBus:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- the wire -------------------------------------------------------------------------------

    def _read(self, fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except (BlockingIOError, OSError):
            return b""

    def _on_master_bytes(self) -> None:
        self._from_master += self._read(self._master_fd)
        while (n := request_length(self._from_master)) is not None and len(self._from_master) >= n:
            frame, self._from_master = self._from_master[:n], self._from_master[n:]
            self._request(frame)

    def _request(self, frame: bytes) -> None:
        assert self._loop is not None
        now = self._loop.time()
        start = max(now, self._line_free_at)
        if self._last_frame_end >= 0 and start - self._last_frame_end < self.t35 * 0.99:
            self.stats.gap_violations += 1
        end = start + self.wire_time(len(frame))
        self._line_free_at = self._last_frame_end = end
        self.stats.requests += 1
        self.stats.busy_s += end - start
        device = self.devices.get(frame[0])
        if device is None:
            self.stats.dropped_unknown_unit += 1  # nobody owns this id: the line stays quiet
            return
        if device.faults.silent:
            self.stats.dropped_silent += 1
            return
        faults = device.faults
        self._pending.append(_Pending(device, end, faults.crc, faults.late_s))
        self._loop.call_at(end, self._write, self._slave_fd, frame)

    def _on_slave_bytes(self) -> None:
        self._from_slave += self._read(self._slave_fd)
        while (n := reply_length(self._from_slave)) is not None and len(self._from_slave) >= n:
            frame, self._from_slave = self._from_slave[:n], self._from_slave[n:]
            self._reply(frame)

    def _reply(self, frame: bytes) -> None:
        assert self._loop is not None
        if not self._pending:
            return  # a reply nobody asked for (cannot happen with pymodbus; be safe)
        p = self._pending.popleft()
        now = self._loop.time()
        latency = self._latency.get(p.device.unit_id, 0.0)
        ready = max(now, p.request_end + max(self.t35, latency)) + p.late_s
        start = max(ready, self._line_free_at)
        end = start + self.wire_time(len(frame))
        self._line_free_at = self._last_frame_end = end
        self.stats.replies += 1
        self.stats.busy_s += end - start
        if p.late_s:
            self.stats.late_replies += 1
        if p.crc:
            self.stats.crc_corrupted += 1
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        self._loop.call_at(end, self._write, self._master_fd, frame)

    def _write(self, fd: int, data: bytes) -> None:
        if fd < 0:
            return
        try:
            os.write(fd, data)
        except OSError as exc:
            log.debug("rtu bus: write to pty failed: %s", exc)

    # --- physical minimum ----------------------------------------------------------------------------

    def cycle_time(self, request_bytes: int, reply_bytes: int, unit_id: int | None = None) -> float:
        """Bus time of one request/reply: request + max(t3.5, turnaround) + reply + t3.5 (DEVICES.md 3)."""
        latency = self._latency.get(unit_id, 0.0) if unit_id is not None else 0.0
        return self.wire_time(request_bytes) + max(self.t35, latency) + self.wire_time(reply_bytes) + self.t35


__all__ = ["BusStats", "RtuBus", "char_time", "crc16", "reply_length", "request_length", "t35"]

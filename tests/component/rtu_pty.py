"""A minimal Modbus RTU slave bus on a pty for tests: several units, faults per unit, no line timing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tty
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

from pymodbus.framer import FramerRTU

from drivers.codec import encode
from drivers.library import DeviceModel


def crc(frame: bytes) -> bytes:
    """The Modbus CRC of a frame, as the two bytes appended on the wire."""
    return FramerRTU.compute_CRC(frame).to_bytes(2, "big")


@dataclass
class Unit:
    """One simulated device: its registers (FC3 and FC4 share them) and injected faults."""

    registers: dict[int, int] = field(default_factory=dict)
    silent: bool = False  # a dead or absent device: no reply at all (as on a real RS-485 bus)
    exception: int | None = None  # answer every request with this exception code
    corrupt_crc: int = 0  # the next N replies carry a broken CRC
    delay_once: float = 0.0  # the next reply comes this late (the stale-reply trap)
    short_reply: int = 0  # the next N replies carry one register too few
    requests: int = 0

    def load(self, model: DeviceModel, values: Mapping[str, float], word_order: str | None = None) -> None:
        """Fill the registers of a model with engineering values (optionally in a wrong word order)."""
        for reg in model.registers:
            if reg.scale_factor or reg.type == "str":
                continue
            r = reg if word_order is None else dataclasses.replace(reg, word_order=word_order)
            for i, w in enumerate(encode(r, values.get(reg.name, 0.0))):
                self.registers[reg.address + i] = w


class RtuPtyBus:
    """Serves units on the master side of a pty; a client opens `path` as its serial port."""

    def __init__(self, units: dict[int, Unit]) -> None:
        self.units = units
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._buf = b""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._on_data)

    def url(self, baud: int = 115200) -> str:
        """The siteedge transport URL of this bus."""
        return f"rtu://{self.path}?baud={baud}"

    def close(self) -> None:
        """Stop serving and close the pty."""
        self._loop.remove_reader(self._master)
        os.close(self._master)
        os.close(self._slave)

    async def __aenter__(self) -> RtuPtyBus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _on_data(self) -> None:
        try:
            self._buf += os.read(self._master, 4096)
        except OSError:
            return
        while len(self._buf) >= 8:
            frame, self._buf = self._buf[:8], self._buf[8:]
            if crc(frame[:6]) != frame[6:]:
                self._buf = b""  # garbage: resynchronise on the next request
                return
            self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        unit_id, fc = frame[0], frame[1]
        address, count = int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big")
        unit = self.units.get(unit_id)
        if unit is None or unit.silent:
            return
        unit.requests += 1
        if unit.exception is not None or fc not in (3, 4):
            pdu = bytes([unit_id, fc | 0x80, unit.exception or 1])
        else:
            if unit.short_reply:
                unit.short_reply -= 1
                count -= 1
            data = b"".join(unit.registers.get(address + i, 0).to_bytes(2, "big") for i in range(count))
            pdu = bytes([unit_id, fc, len(data)]) + data
        reply = pdu + crc(pdu)
        if unit.corrupt_crc:
            unit.corrupt_crc -= 1
            reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
        delay, unit.delay_once = unit.delay_once, 0.0
        if delay:
            self._loop.call_later(delay, self._write, reply)
        else:
            self._write(reply)

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

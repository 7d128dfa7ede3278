"""Polls one Modbus meter on its own schedule and reports readings (or failures) as core events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pymodbus.exceptions import ModbusException

from controller.core.clock import Clock
from controller.core.config import MeterSettings
from controller.core.events import MeterFailed, MeterRead
from drivers.codec import decode
from drivers.library import load_device
from drivers.plan import ReadBlock, cached_plan
from drivers.transport import make_client

log = logging.getLogger(__name__)


class ReadError(Exception):
    """A poll failed: timeout, exception response, short reply or lost connection."""


class MeterPoller:
    """One meter's poll loop; a dead meter backs off and never blocks other devices."""

    MAX_BACKOFF_S = 30.0

    def __init__(self, settings: MeterSettings, clock: Clock, emit: Callable[[object], None]) -> None:
        self._s = settings
        self._clock = clock
        self._emit = emit
        self._model = load_device(settings.model)
        self._plan = cached_plan(self._model, frozenset({"fast", "slow"}))
        self._client: Any = make_client(settings.transport, settings.timeout)
        self._failures = 0
        self.polls = 0
        self.errors = 0

    @property
    def meter_id(self) -> str:
        """The configured meter id."""
        return self._s.id

    async def run(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                started = self._clock.monotonic()
                try:
                    values = await self.poll_once()
                except ReadError as exc:
                    self._on_failure(str(exc))
                else:
                    if self._failures:
                        log.info("meter %s: readings restored after %d failures", self._s.id, self._failures)
                    self._failures = 0
                    self._emit(MeterRead(self._s.id, self._clock.now(), values))
                await asyncio.sleep(self._next_delay(started))
        finally:
            self._client.close()

    def _next_delay(self, started: float) -> float:
        if self._failures:
            # Slower probing while offline, so a dead device does not eat the bus.
            return min(self.MAX_BACKOFF_S, self._s.poll_interval * (1 << min(self._failures, 6)))
        return max(0.0, self._s.poll_interval - (self._clock.monotonic() - started))

    def _on_failure(self, reason: str) -> None:
        self.errors += 1
        if self._failures == 0:
            log.warning("meter %s: %s; readings marked unavailable", self._s.id, reason)
        self._failures += 1
        self._emit(MeterFailed(self._s.id, self._clock.now(), reason))

    async def poll_once(self) -> dict[str, float | None]:
        """Read every planned block once; ReadError if any block fails or looks wrong."""
        self.polls += 1
        if not self._client.connected:
            try:
                await self._client.connect()
            except (OSError, ModbusException) as exc:
                raise ReadError(f"cannot connect to {self._s.transport_url}: {exc}") from exc
            if not self._client.connected:
                raise ReadError(f"cannot connect to {self._s.transport_url}")
        values: dict[str, float | None] = {}
        for block in self._plan:
            words = await self._read(block)
            for reg in block.registers:
                off = reg.address - block.address
                values[reg.name] = decode(reg, words[off : off + reg.count])
        return values

    async def _read(self, block: ReadBlock) -> list[int]:
        fn = self._client.read_input_registers if block.function == 4 else self._client.read_holding_registers
        try:
            rr = await fn(block.address, count=block.count, device_id=self._s.unit)
        except (TimeoutError, ModbusException, OSError) as exc:
            raise ReadError(f"read {block.function}/{block.address}+{block.count} failed: {exc}") from exc
        if rr.isError():
            raise ReadError(f"device answered exception {getattr(rr, 'exception_code', '?')}")
        regs = list(rr.registers)
        # RTU replies carry no transaction id: a late answer to an earlier request has the wrong
        # length more often than not, and must never be taken for this one.
        if len(regs) != block.count:
            raise ReadError(f"expected {block.count} registers, got {len(regs)}")
        return regs

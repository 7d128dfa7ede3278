"""A SunSpec meter on the bus: discovers its model chain at first contact, then polls the meter block."""

from __future__ import annotations

import logging

from controller.core.clock import Clock
from controller.core.config import MeterSettings
from drivers.bus import Bus
from drivers.device import BusDevice, Emit
from drivers.library import DeviceModel, load_device
from drivers.sunspec import TEMPLATES, Chain, SunSpecError, discover, identity, place
from drivers.transport import RequestFailed

log = logging.getLogger(__name__)

GENERIC = "sunspec"  # [[meters]] model = "sunspec": any meter model 201-204 or 211-214


def is_sunspec(model: str) -> bool:
    """True for the generic name and for the SunSpec templates (sunspec_meter_int, sunspec_meter_float)."""
    return model == GENERIC or (model in set(TEMPLATES.values()) and load_device(model).sunspec is not None)


class SunSpecMeter(BusDevice):
    """Walks the chain before the first poll (and again after being offline); polls the placed block."""

    def __init__(self, settings: MeterSettings, clock: Clock, emit: Emit) -> None:
        # Until discovery the template stands in: its rates and turnaround are what the poll will have.
        wanted = None if settings.model == GENERIC else settings.model
        super().__init__(settings, clock, emit, load_device(wanted or "sunspec_meter_int"))
        self.wanted_template = wanted
        self.chain: Chain | None = None
        self.discoveries = 0

    async def step(self, bus: Bus) -> None:
        """Discover the chain if not known (one poll's worth of requests), else poll as usual."""
        if self.chain is not None or self.in_progress:
            await super().step(bus)
            return
        self.health.requests += 1
        try:
            self.chain, self.model = await self._discover(bus)
        except RequestFailed as exc:
            self.health.request_failed(exc.kind, f"SunSpec discovery: {exc.detail}", self._clock.now())
            self._fail(f"SunSpec discovery: {exc}")
            return
        except SunSpecError as exc:
            self.health.request_failed("bad_reply", f"SunSpec discovery: {exc}", self._clock.now())
            self._fail(f"SunSpec discovery: {exc}")
            return
        self.discoveries += 1
        found = [b.model_id for b in self.chain.blocks]
        log.info(
            "meter %s: SunSpec chain %s at base %d, polling %s",
            self.id,
            found,
            self.chain.base,
            self.model.name,
        )

    async def _discover(self, bus: Bus) -> tuple[Chain, DeviceModel]:
        async def read(address: int, count: int) -> list[int] | None:
            try:
                return await bus.read(
                    self.unit, 3, address, count, timeout_s=self.timeout, turnaround_s=self.turnaround_s
                )
            except RequestFailed as exc:
                if exc.kind == "exception":
                    return None  # nothing mapped there: try the next base address
                raise

        chain = await discover(read)
        names = (self.wanted_template,) if self.wanted_template else tuple(dict.fromkeys(TEMPLATES.values()))
        ids = [m for m, t in TEMPLATES.items() if t in names]
        block = chain.find(*ids)
        if block is None:
            found = [b.model_id for b in chain.blocks]
            raise SunSpecError(f"no SunSpec meter model {ids[0]}-{ids[-1]} in chain {found}")
        model = place(load_device(TEMPLATES[block.model_id]), block)
        try:
            self.identity.update(await identity(read, chain))
        except SunSpecError as exc:
            log.info("meter %s: %s", self.id, exc)  # identity is nice to have, the values are what count
        return chain, model

    def _fail(self, reason: str) -> None:
        super()._fail(reason)
        if self.offline:
            self.chain = None  # it may come back re-flashed or replaced: walk the chain again

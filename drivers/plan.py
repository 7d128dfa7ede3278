"""Read planning: merge a model's registers into as few Modbus requests as its limits allow."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from drivers.library import DeviceModel, Register


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request: function code, start address, register count, and the values it carries."""

    function: int
    address: int
    count: int
    registers: tuple[Register, ...]


def plan_reads(model: DeviceModel, rates: frozenset[str], max_gap: int = 16) -> tuple[ReadBlock, ...]:
    """Coalesce registers of the given rate classes; gaps are read only if the model allows it."""
    blocks: list[ReadBlock] = []
    wanted = {r.name for r in model.registers if r.rate in rates and r.readable}
    # A SunSpec value is useless without its scale factor: read the factor along, whatever its rate.
    wanted |= {r.scale_register for r in model.registers if r.name in wanted and r.scale_register}
    regs = sorted((r for r in model.registers if r.name in wanted), key=lambda r: (r.function, r.address))
    gap_limit = max_gap if model.read_gaps else 0
    current: list[Register] = []
    for reg in regs:
        if current:
            first = current[0]
            end = max(r.address + r.count for r in current)  # bit fields may share a word
            fits = (
                reg.function == first.function
                and reg.address - end <= gap_limit
                and reg.address + reg.count - first.address <= model.max_span
            )
            if not fits:
                blocks.append(_block(current))
                current = []
        current.append(reg)
    if current:
        blocks.append(_block(current))
    return tuple(blocks)


def _block(regs: list[Register]) -> ReadBlock:
    start = regs[0].address
    end = max(r.address + r.count for r in regs)
    return ReadBlock(regs[0].function, start, end - start, tuple(regs))


@cache
def cached_plan(model: DeviceModel, rates: frozenset[str]) -> tuple[ReadBlock, ...]:
    """The plan for a model and rate set, computed once per model, not per poll."""
    return plan_reads(model, rates)

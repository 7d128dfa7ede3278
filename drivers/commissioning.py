"""Commissioning helpers: find responding unit ids, test-read a device and explain implausible values."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from controller.core.plausibility import expected_range, problem
from drivers.bus import Bus
from drivers.codec import decode
from drivers.library import WORD_ORDERS, DeviceModel, Register
from drivers.plan import cached_plan
from drivers.transport import RequestFailed

_SCALES = (10.0, 0.1, 100.0, 0.01, 1000.0, 0.001)


async def probe_unit(bus: Bus, unit: int, timeout_s: float) -> str | None:
    """How a unit id answered a one-register read (None: silent); an exception reply proves presence."""
    try:
        await bus.read(unit, 3, 0, 1, timeout_s=timeout_s)
    except RequestFailed as exc:
        if exc.kind == "exception":
            return f"exception {exc.code}"
        if exc.kind == "connection":
            raise
        return None
    return "registers"


async def scan_units(
    bus: Bus, first: int, last: int, timeout_s: float, progress: Callable[[int, str | None], None]
) -> None:
    """Probe unit ids first..last one by one on the shared bus; progress(unit, answer) after each."""
    for unit in range(first, last + 1):
        progress(unit, await probe_unit(bus, unit, timeout_s))


def _alternatives(reg: Register, words: list[int]) -> list[tuple[str, float]]:
    """Readings of the same words under other word orders and scales that would be plausible."""
    found: list[tuple[str, float]] = []
    if reg.count > 1:
        for order in WORD_ORDERS:
            if order == reg.word_order:
                continue
            value = decode(dataclasses.replace(reg, word_order=order), words)
            if (
                value is not None
                and expected_range(reg.name, reg.unit)
                and not problem(reg.name, reg.unit, value)
            ):
                found.append((f"word order {order}", value))
    value = decode(reg, words)
    if value is not None and not found and expected_range(reg.name, reg.unit):
        for factor in _SCALES:
            if not problem(reg.name, reg.unit, value * factor):
                found.append((f"scale x{factor:g}", value * factor))
                break
    return found


async def test_read(bus: Bus, unit: int, model: DeviceModel, timeout_s: float) -> dict[str, Any]:
    """Read every register of model from unit; decoded values, plausibility problems and hints."""
    rates = frozenset(r.rate for r in model.registers)
    plan = cached_plan(model, rates)
    values: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    suggestions: Counter[str] = Counter()
    checked = implausible = 0
    for block in plan:
        try:
            words = await bus.read(
                unit,
                block.function,
                block.address,
                block.count,
                timeout_s=timeout_s,
                turnaround_s=model.turnaround_ms / 1000.0,
            )
        except RequestFailed as exc:
            where = f"FC{block.function} {block.address}+{block.count}"
            hint = " (wrong model or function code?)" if exc.kind == "exception" else ""
            errors.append(f"{where}: {exc}{hint}")
            if exc.kind == "connection":
                break
            continue
        for reg in block.registers:
            raw = words[reg.address - block.address : reg.address - block.address + reg.count]
            value = decode(reg, raw)
            why = problem(reg.name, reg.unit, value)
            entry: dict[str, Any] = {
                "value": value,
                "unit": reg.unit,
                "raw": [f"{w:04X}" for w in raw],
                "problem": why if value is not None else "not available (sentinel or NaN)",
            }
            if expected_range(reg.name, reg.unit) is not None and value is not None:
                checked += 1
            if why:
                implausible += 1
                alts = _alternatives(reg, raw)
                if alts:
                    label, alt = alts[0]
                    entry["hint"] = f"with {label} it reads {alt:g} {reg.unit}"
                    suggestions[label] += 1
            values[reg.name] = entry
    hints = [
        f"{n} of {checked} range-checked values become plausible with {label}: "
        f"the device probably uses {label}, or is not a {model.name}"
        for label, n in suggestions.most_common()
    ]
    return {
        "unit": unit,
        "model": model.name,
        "ok": not errors and not implausible,
        "requests": len(plan),
        "values": values,
        "hints": hints,
        "errors": errors,
    }

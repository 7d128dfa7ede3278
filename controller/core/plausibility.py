"""Commissioning plausibility: is a decoded meter value physically believable on a European grid?"""

from __future__ import annotations

import math

# Ranges a technician can trust at commissioning (DEVICES.md §5): a value outside them almost
# always means a wrong word order, a wrong scale or the wrong register map.
PHASE_VOLTAGE = (180.0, 260.0)
LINE_VOLTAGE = (311.0, 450.0)
FREQUENCY = (45.0, 65.0)
POWER_FACTOR = (-1.0, 1.0)
# Beyond these magnitudes a float is a misread (word order), not a measurement.
ABSURD_HIGH = 1e12
ABSURD_LOW = 1e-20


def expected_range(name: str, unit: str) -> tuple[float, float] | None:
    """The plausible range for a value by name and unit, None if there is no fixed range."""
    if unit == "V" and name.startswith("voltage"):
        return LINE_VOLTAGE if any(p in name for p in ("l1_l2", "l2_l3", "l3_l1")) else PHASE_VOLTAGE
    if unit == "Hz":
        return FREQUENCY
    if "power_factor" in name:
        return POWER_FACTOR
    return None


def problem(name: str, unit: str, value: float | None) -> str | None:
    """Why a decoded value is implausible, or None if it looks fine (missing is not a problem here)."""
    if value is None:
        return None
    if not math.isfinite(value):
        return "not a finite number"
    if value != 0.0 and (abs(value) > ABSURD_HIGH or abs(value) < ABSURD_LOW):
        return f"absurd magnitude {value:.3g}"
    rng = expected_range(name, unit)
    if rng is not None and not rng[0] <= value <= rng[1]:
        return f"{value:g} {unit} is outside {rng[0]:g}..{rng[1]:g}"
    return None

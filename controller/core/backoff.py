"""Reconnect delays: capped exponential backoff with full jitter (AWS architecture blog style)."""

from __future__ import annotations

from collections.abc import Callable


def backoff_delay(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Delay before retry number `attempt` (0-based): uniform in [base/2, min(cap, base*2^n)]."""
    ceiling = min(cap, base * (1 << min(attempt, 32)))
    # Full jitter spreads a fleet of sites that lost the same broker; the floor keeps a minimum
    # pause so a flapping link cannot spin.
    floor = min(base / 2, ceiling)
    return floor + (ceiling - floor) * rand()

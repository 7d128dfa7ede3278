"""Energy counters you can trust: accept, reject or re-base each new reading (pure decisions)."""

from __future__ import annotations

from dataclasses import dataclass, replace

# A float32 counter loses resolution as it grows (8 Wh steps at 100 MWh): two ulps of
# relative slack keep rounding noise from looking like a backwards jump.
_FLOAT_SLACK = 2.4e-7


@dataclass(frozen=True, slots=True)
class CounterLimits:
    """How a counter may move: its fastest plausible growth, its wrap modulus, its resolution."""

    max_rate: float  # counter units per second (a 2 MW site: 555 Wh/s)
    wrap: float | None = None  # unsigned integer counters roll over here; None for floats
    resolution: float = 0.0  # absolute slack, e.g. one raw step of an integer counter
    confirm: int = 3  # consistent readings needed before a jump is believed (a reset)


@dataclass(frozen=True, slots=True)
class CounterState:
    """What the check remembers between readings; offset makes the reported total continuous."""

    offset: float
    last_raw: float
    last_at: float  # monotonic seconds of the last accepted reading
    pending_first: float | None = None  # first reading of a suspicious run, awaiting confirmation
    pending_first_at: float = 0.0
    pending_last: float = 0.0
    pending_last_at: float = 0.0
    pending_count: int = 0


@dataclass(frozen=True, slots=True)
class CounterVerdict:
    """The decision for one reading: the value to report (None if rejected) and why."""

    state: CounterState
    value: float | None
    outcome: str  # first | ok | rollover | reset | rejected
    reason: str = ""


def _grows_plausibly(old: float, old_at: float, new: float, at: float, limits: CounterLimits) -> bool:
    slack = limits.resolution + abs(old) * _FLOAT_SLACK
    return -slack <= new - old <= limits.max_rate * max(0.0, at - old_at) + slack


def check_counter(state: CounterState | None, raw: float, at: float, limits: CounterLimits) -> CounterVerdict:
    """Judge one counter reading against the last accepted one; never report a backwards total."""
    if state is None:
        return CounterVerdict(CounterState(0.0, raw, at), raw, "first")
    if _grows_plausibly(state.last_raw, state.last_at, raw, at, limits):
        # Inside the resolution a tiny step back is rounding: keep the higher value.
        kept = max(raw, state.last_raw)
        new = CounterState(state.offset, kept, at)
        return CounterVerdict(new, state.offset + kept, "ok")
    if (
        limits.wrap
        and raw < state.last_raw
        and _grows_plausibly(state.last_raw, state.last_at, raw + limits.wrap, at, limits)
    ):
        new = CounterState(state.offset + limits.wrap, raw, at)
        return CounterVerdict(new, new.offset + raw, "rollover", f"rolled over at {limits.wrap:g}")
    delta = raw - state.last_raw
    why = (
        f"went backwards by {-delta:g}"
        if delta < 0
        else f"jumped by {delta:g} in {max(0.0, at - state.last_at):.1f} s (implausible)"
    )
    if raw == 0.0 and state.last_raw > 0.0:
        # Spurious zeros are a known meter habit (evcc #30950); a real reset shows by growing.
        return CounterVerdict(state, None, "rejected", "zero reading ignored")
    if state.pending_first is not None and _grows_plausibly(
        state.pending_last, state.pending_last_at, raw, at, limits
    ):
        count = state.pending_count + 1
        if count >= limits.confirm:
            return _rebase(state, raw, at, limits)
        pending = replace(state, pending_last=raw, pending_last_at=at, pending_count=count)
        return CounterVerdict(pending, None, "rejected", f"{why}; unconfirmed ({count}/{limits.confirm})")
    pending = replace(
        state, pending_first=raw, pending_first_at=at, pending_last=raw, pending_last_at=at, pending_count=1
    )
    return CounterVerdict(pending, None, "rejected", f"{why}; unconfirmed (1/{limits.confirm})")


def _rebase(state: CounterState, raw: float, at: float, limits: CounterLimits) -> CounterVerdict:
    first = state.pending_first if state.pending_first is not None else raw
    total = state.offset + state.last_raw
    since_zero = limits.max_rate * max(0.0, state.pending_first_at - state.last_at) + limits.resolution
    # Restarted from zero (power cycle, "since power-on" counters): what it counted since is real.
    # Restarted elsewhere (meter replaced, register remapped): the jump itself is not energy.
    offset = total if 0.0 <= first <= since_zero else total - first
    new = CounterState(offset, raw, at)
    return CounterVerdict(
        new, offset + raw, "reset", f"counter reset {state.last_raw:g} -> {first:g}; re-based"
    )

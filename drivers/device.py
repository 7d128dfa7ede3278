"""One device on a bus: what to read when, decoding, trustworthy counters, health, core events."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.clock import Clock
from controller.core.config import MeterSettings
from controller.core.counters import CounterLimits, CounterState, check_counter
from controller.core.events import MeterFailed, MeterHealth, MeterRead
from drivers.bus import Bus
from drivers.codec import Value, decode_value, exponent
from drivers.health import DeviceHealth
from drivers.library import DeviceModel, Register, load_device
from drivers.plan import ReadBlock, cached_plan
from drivers.transport import RequestFailed

log = logging.getLogger(__name__)

Emit = Callable[[object], None]
# The fastest an energy counter may plausibly grow: a 2 MW site connection (Wh per second).
MAX_POWER_W = 2_000_000.0
MAX_PROBE_S = 30.0
MIN_PROBE_S = 1.0  # a failing device is re-probed no faster than this (mbmd: >= 1 s)
_RETRYABLE = ("timeout", "crc", "bad_reply")
_UNIT_FACTOR = {"k": 1e-3, "M": 1e-6}


def counter_limits(reg: Register) -> CounterLimits:
    """How a counter register may move, from its type, scale and unit."""
    per_s = MAX_POWER_W / 3600.0 * _UNIT_FACTOR.get(reg.unit[:1], 1.0)
    integer = reg.type[0] == "u"
    wrap = float(2 ** (16 * reg.count)) * reg.scale if integer else None
    return CounterLimits(max_rate=per_s, wrap=wrap, resolution=abs(reg.scale) if reg.type[0] in "us" else 0.0)


@dataclass(slots=True)
class _Poll:
    """A poll in progress: its rate classes, remaining blocks and the words read so far."""

    rates: frozenset[str]
    blocks: list[ReadBlock]
    words: list[tuple[ReadBlock, list[int]]] = field(default_factory=list)
    retried: bool = False


class BusDevice:
    """Schedules, reads and judges one device; emits MeterRead/MeterFailed/MeterHealth."""

    def __init__(
        self, settings: MeterSettings, clock: Clock, emit: Emit, model: DeviceModel | None = None
    ) -> None:
        self.settings = settings
        self.id = settings.id
        self.unit = settings.unit
        self.model = model or load_device(settings.model)
        self.timeout = settings.timeout
        self.turnaround_s = self.model.turnaround_ms / 1000.0
        self.health = DeviceHealth()
        self.identity: dict[str, Value] = {}
        self._clock = clock
        self._emit = emit
        present = {r.rate for r in self.model.registers}
        self._intervals: dict[str, float] = {
            r: (settings.poll_interval if r == "fast" else settings.slow_interval)
            for r in ("fast", "slow")
            if r in present
        }
        self._has_once = "once" in present
        self._once_done = False
        now = clock.monotonic()
        self._next = dict.fromkeys(self._intervals, now)
        self._probe_at = now
        self.backoff_s = 0.0  # current probing period while failing
        self._poll: _Poll | None = None
        self._last: dict[str, tuple[float | None, float]] = {}
        self._counters: dict[str, CounterState] = {}
        self.poll_times: list[float] = []  # monotonic end of each good poll (benchmarks, tests)
        self.keep_poll_times = False
        self.latest: dict[str, Value] = {}  # every value of the last good poll, text included

    # --- scheduling ------------------------------------------------------------------------

    @property
    def in_progress(self) -> bool:
        """True between the first and the last request of a poll."""
        return self._poll is not None

    @property
    def offline(self) -> bool:
        """True while the device is failing in a row (probed slowly)."""
        return self.health.state == "offline"

    def due_at(self) -> float:
        """Monotonic time the next poll is due (a failing device waits out its backoff)."""
        if self._poll is not None:
            return 0.0
        due = min(self._next.values(), default=self._probe_at)
        return max(due, self._probe_at) if self.health.consecutive_failures else due

    def worst_cost_s(self, bus: Bus) -> float:
        """Bus time a failing first request costs: timeout, wire time and the late-reply quiet time."""
        plan = cached_plan(self.model, frozenset(self._intervals))
        count = plan[0].count if plan else 1
        return self.timeout + 2 * bus.wire_s(count) + max(0.1, self.turnaround_s)

    def _start(self, now: float) -> _Poll:
        rates: set[str] = {r for r, t in self._next.items() if t <= now}
        if (
            "fast" in rates
            and "slow" in self._next
            and self._next["slow"] <= now + self._intervals["fast"] / 2
        ):
            rates.add("slow")  # ride along: merged into the same requests instead of a separate one
        if not rates:
            rates = set(self._next)
        if self._has_once and not self._once_done:
            rates.add("once")
        return _Poll(frozenset(rates), list(cached_plan(self.model, frozenset(rates))))

    async def step(self, bus: Bus) -> None:
        """Send the next request of this device's poll (starting one if none runs); never raises."""
        if self._poll is None:
            self._poll = self._start(self._clock.monotonic())
        poll = self._poll
        if not poll.blocks:
            self._finish(poll)
            return
        block = poll.blocks[0]
        self.health.requests += 1
        try:
            words = await bus.read(
                self.unit,
                block.function,
                block.address,
                block.count,
                timeout_s=self.timeout,
                turnaround_s=self.turnaround_s,
            )
        except RequestFailed as exc:
            self.health.request_failed(
                exc.kind, f"{block.function}/{block.address}+{block.count}: {exc.detail}", self._clock.now()
            )
            if exc.kind in _RETRYABLE and not poll.retried and self.health.consecutive_failures == 0:
                # One retry for a healthy device (a noise hit); a failing one backs off instead.
                poll.retried = True
                self.health.retries += 1
                return
            self._fail(str(exc))
            return
        poll.blocks.pop(0)
        poll.words.append((block, words))
        if not poll.blocks:
            self._finish(poll)

    # --- outcomes --------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self._poll = None
        now, at = self._clock.monotonic(), self._clock.now()
        self.health.poll_done(False, at)
        failures = self.health.consecutive_failures
        base = max(min(self._intervals.values(), default=MIN_PROBE_S), MIN_PROBE_S)
        self.backoff_s = min(MAX_PROBE_S, base * (1 << min(failures - 1, 8)))
        self._probe_at = now + self.backoff_s
        if failures == 1:
            log.warning("meter %s: %s; readings marked unavailable", self.id, reason)
        if self.offline:
            self._once_done = False  # it may come back as another device: read its identity again
        self._on_failed(reason, at)

    def _finish(self, poll: _Poll) -> None:
        self._poll = None
        now, at = self._clock.monotonic(), self._clock.now()
        fresh: dict[str, float | None] = {}
        problems: dict[str, str] = {}
        self.latest = {}
        for reg, decoded in decode_poll(poll.words):
            self.latest[reg.name] = decoded
            if reg.rate == "once" or isinstance(decoded, str):
                self.identity[reg.name] = decoded
                continue
            value = decoded
            if value is None:
                problems[reg.name] = "not available (sentinel or NaN)"
            elif reg.counter:
                value = self._judge_counter(reg, value, now, problems)
            fresh[reg.name] = value
            self._last[reg.name] = (value, now)
        if "once" in poll.rates:
            self._once_done = True
        for rate in poll.rates & set(self._next):
            nxt = self._next[rate] + self._intervals[rate]
            self._next[rate] = nxt if nxt > now else now
        if self.health.consecutive_failures:
            log.info(
                "meter %s: readings restored after %d failures", self.id, self.health.consecutive_failures
            )
        self.health.poll_done(True, at, clean=not poll.retried and not problems_rejected(problems))
        if self.keep_poll_times:
            self.poll_times.append(now)
        values, ages = self._with_carried(fresh, now, problems)
        self._on_read(values, problems, ages, at)

    # --- what a finished poll means (a charger driver says it differently) ---------------------------

    def _on_read(
        self, values: dict[str, float | None], problems: dict[str, str], ages: dict[str, float], at: datetime
    ) -> None:
        self._publish(MeterRead(self.id, at, values, problems, ages))
        self._publish_health(at)

    def _on_failed(self, reason: str, at: datetime) -> None:
        self._publish(MeterFailed(self.id, at, reason))
        self._publish_health(at)

    # --- writes (none for a meter; see drivers/charger.py) ---------------------------------------------

    def write_due_at(self) -> float:
        """Monotonic time this device's next write is due (infinity: none pending)."""
        return math.inf

    async def write_step(self, bus: Bus) -> None:
        """Send this device's next due write; never raises."""

    def _judge_counter(self, reg: Register, raw: float, now: float, problems: dict[str, str]) -> float | None:
        verdict = check_counter(self._counters.get(reg.name), raw, now, counter_limits(reg))
        self._counters[reg.name] = verdict.state
        if verdict.outcome == "rejected":
            self.health.rejected_values += 1
            problems[reg.name] = f"rejected: {verdict.reason}"
            log.warning("meter %s: %s %s", self.id, reg.name, verdict.reason)
        elif verdict.outcome in ("reset", "rollover"):
            log.warning("meter %s: %s %s", self.id, reg.name, verdict.reason)
        return verdict.value

    def _with_carried(
        self, fresh: dict[str, float | None], now: float, problems: dict[str, str]
    ) -> tuple[dict[str, float | None], dict[str, float]]:
        """Fresh values plus slow values from earlier polls while younger than 3 of their periods."""
        values = dict(fresh)
        ages: dict[str, float] = {}
        for reg in self.model.registers:
            if reg.rate == "once" or reg.name in fresh or reg.name not in self._last:
                continue
            value, read = self._last[reg.name]
            age = now - read
            if age <= 3 * self._intervals.get(reg.rate, 1.0):
                values[reg.name], ages[reg.name] = value, round(age, 3)
            else:
                values[reg.name], problems[reg.name] = None, f"stale ({age:.0f} s old)"
        return values, ages

    def _publish(self, event: object) -> None:
        try:
            self._emit(event)
        except Exception:  # a broken subscriber must not stop the bus
            log.exception("meter %s: publishing %s failed", self.id, type(event).__name__)

    def _publish_health(self, at: datetime) -> None:
        h = self.health
        self._publish(
            MeterHealth(self.id, at, h.state, h.counts(), h.last_error, h.last_error_at, h.last_good_at)
        )

    def describe(self) -> dict[str, Any]:
        """Device, model, rates, plan and health as JSON-ready data (GET /api/modbus/devices)."""
        fast = cached_plan(self.model, frozenset({"fast"}))
        every = cached_plan(self.model, frozenset(self._intervals) | ({"once"} if self._has_once else set()))
        values = [r for r in self.model.registers]
        return {
            "id": self.id,
            "unit": self.unit,
            "model": self.model.name,
            "intervals": dict(self._intervals),
            "turnaround_ms": self.model.turnaround_ms,
            "requests_per_poll": {"fast": len(fast), "all": len(every)},
            "requests_one_per_value": {
                "fast": sum(1 for r in values if r.rate == "fast"),
                "all": len(values),
            },
            "identity": dict(self.identity),
            **self.health.as_dict(),
        }


def decode_poll(reads: list[tuple[ReadBlock, list[int]]]) -> list[tuple[Register, Value]]:
    """Decode a poll's blocks; SunSpec scale factors apply across blocks (None if not implemented)."""
    sfs: dict[str, int | None] = {}
    for block, words in reads:
        for reg in block.registers:
            if reg.scale_factor:
                off = reg.address - block.address
                sfs[reg.name] = exponent(reg, words[off : off + reg.count])
    out: list[tuple[Register, Value]] = []
    for block, words in reads:
        for reg in block.registers:
            if reg.scale_factor:
                continue
            off = reg.address - block.address
            value = decode_value(reg, words[off : off + reg.count])
            if reg.scale_register is not None and isinstance(value, float):
                sf = sfs.get(reg.scale_register)
                value = None if sf is None else value * 10.0**sf
            out.append((reg, value))
    return out


def problems_rejected(problems: dict[str, str]) -> bool:
    """True if a problem says a value was rejected (a degraded, not a clean, poll)."""
    return any(p.startswith("rejected") for p in problems.values())

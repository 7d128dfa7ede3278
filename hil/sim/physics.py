"""Site physics for the simulators: EV power, per-EVSE and grid energy, three-phase readings."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

NOMINAL_VOLTAGE = 230.0
NOMINAL_FREQUENCY = 50.0
PHASES = 3
# IEC 61851: an AC car cannot draw less than 6 A per phase; below that the EVSE must pause.
MIN_CURRENT_A = 6.0
MIN_POWER_W = MIN_CURRENT_A * NOMINAL_VOLTAGE * PHASES


class SimClock:
    """Simulated seconds since creation, running `speed` times faster than the monotonic clock."""

    def __init__(self, speed: float = 1.0, source: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._source = source
        self._t0 = source()

    def now(self) -> float:
        """Simulated seconds elapsed."""
        return (self._source() - self._t0) * self.speed

    def real_seconds(self, sim_seconds: float) -> float:
        """Wall-clock seconds that `sim_seconds` of simulated time take."""
        return max(0.0, sim_seconds) / self.speed


@dataclass(frozen=True, slots=True)
class EvModel:
    """An electric car as the charger sees it: battery, AC charger limit, charging curve."""

    name: str = "generic 11 kW AC"
    battery_wh: float = 60_000.0
    max_power_w: float = 11_000.0
    taper_soc: float = 0.8  # above this state of charge the car ramps its power down linearly
    arrival_soc: tuple[float, float] = (0.15, 0.6)
    target_soc: tuple[float, float] = (0.8, 1.0)
    linger_s: tuple[float, float] = (300.0, 1800.0)  # plugged in after charging ends (SuspendedEV)
    idle_s: tuple[float, float] = (120.0, 2400.0)  # gap between one car leaving and the next
    power_noise: float = 0.01  # relative jitter of the drawn power

    def power_at(self, soc: float) -> float:
        """Power the car draws at a state of charge, before any EVSE limit (W)."""
        if soc >= 1.0:
            return 0.0
        if soc <= self.taper_soc:
            return self.max_power_w
        # Linear taper to 10 % of max at full; real curves are similar for AC-limited charging.
        frac = (1.0 - soc) / (1.0 - self.taper_soc)
        return self.max_power_w * (0.1 + 0.9 * frac)


@dataclass(slots=True)
class Evse:
    """One EVSE's electrical state: drawn power, its energy register and an optional limit."""

    uid: str
    max_power_w: float = 22_000.0
    power_w: float = 0.0
    energy_wh: float = 0.0
    limit_w: float | None = None  # set by the CSMS (smart charging); None = no limit
    energy_cap_wh: float | None = None  # the car is full here: power drops to 0 at this register

    def available_power(self) -> float:
        """The most this EVSE may deliver now: hardware maximum capped by any CSMS limit."""
        return self.max_power_w if self.limit_w is None else min(self.max_power_w, self.limit_w)


@dataclass(slots=True)
class SiteModel:
    """A site: building base load plus EVSEs behind one grid meter; energy integrates power.

    With a clock, readings and power changes first integrate up to the clock's time, so several
    simulators can share one model without double counting; without one, only step(dt) moves time.
    """

    base_load_w: float = 3_000.0
    clock: SimClock | None = None
    seed: int | None = None
    evses: dict[str, Evse] = field(default_factory=dict)
    grid_energy_wh: float = 0.0
    grid_export_wh: float = 0.0
    t: float = 0.0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        if self.clock is not None:
            self.t = self.clock.now()

    def add_evse(self, uid: str, max_power_w: float = 22_000.0, energy_wh: float = 0.0) -> Evse:
        """Register an EVSE (idempotent: an existing one is returned unchanged)."""
        if uid not in self.evses:
            self.evses[uid] = Evse(uid, max_power_w=max_power_w, energy_wh=energy_wh)
        return self.evses[uid]

    @property
    def grid_power_w(self) -> float:
        """Power through the grid meter: base load plus every EVSE (positive = import)."""
        return self.base_load_w + sum(e.power_w for e in self.evses.values())

    def step(self, dt: float) -> None:
        """Advance simulated time by dt seconds, integrating every energy register."""
        if dt <= 0:
            return
        hours = dt / 3600.0
        delivered = 0.0
        for evse in self.evses.values():
            add = evse.power_w * hours
            cap = evse.energy_cap_wh
            if cap is not None and evse.energy_wh + add >= cap:
                # The battery fills inside this step: deliver exactly up to the cap, then stop.
                add = max(0.0, cap - evse.energy_wh)
                evse.power_w = 0.0
            evse.energy_wh += add
            delivered += add
        net = self.base_load_w * hours + delivered
        if net >= 0:
            self.grid_energy_wh += net
        else:
            self.grid_export_wh += -net
        self.t += dt

    def sync(self) -> None:
        """Integrate up to the clock's current time (no-op without a clock)."""
        if self.clock is not None:
            self.step(self.clock.now() - self.t)

    def set_power(self, uid: str, power_w: float) -> float:
        """Set an EVSE's drawn power after integrating the old power; returns the power applied."""
        self.sync()
        evse = self.evses[uid]
        evse.power_w = max(0.0, min(power_w, evse.available_power()))
        return evse.power_w

    def energy_wh(self, uid: str) -> float:
        """An EVSE's energy register, integrated up to now (Wh)."""
        self.sync()
        return self.evses[uid].energy_wh

    def evse_readings(self, uid: str) -> dict[str, float]:
        """Meter readings (canonical register names) for the meter in front of one EVSE."""
        self.sync()
        evse = self.evses[uid]
        return self._readings(evse.power_w, evse.energy_wh, 0.0)

    def grid_readings(self) -> dict[str, float]:
        """Meter readings for the site's grid meter: base load plus the sum of the EVSEs."""
        self.sync()
        return self._readings(self.grid_power_w, self.grid_energy_wh, self.grid_export_wh)

    def _readings(self, power_w: float, import_wh: float, export_wh: float) -> dict[str, float]:
        out: dict[str, float] = {
            "power": power_w,
            "frequency": NOMINAL_FREQUENCY + self._rng.gauss(0.0, 0.02),
            "energy_import": import_wh,
            "energy_export": export_wh,
        }
        for phase in (1, 2, 3):
            volts = NOMINAL_VOLTAGE + self._rng.gauss(0.0, 0.8)
            phase_power = power_w / PHASES
            out[f"voltage_l{phase}"] = volts
            out[f"power_l{phase}"] = phase_power
            # I = P/V per phase keeps the meter's own P = V·I relation exact despite voltage noise.
            out[f"current_l{phase}"] = phase_power / volts
        return out

    def jitter(self, power_w: float, relative: float) -> float:
        """power_w with Gaussian noise of the given relative size (never negative)."""
        return max(0.0, power_w * (1.0 + self._rng.gauss(0.0, relative)))


def current_to_power(amps: float, phases: int = PHASES) -> float:
    """AC power for a per-phase current at nominal voltage (W)."""
    return amps * NOMINAL_VOLTAGE * phases

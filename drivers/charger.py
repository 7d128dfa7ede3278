"""A charger on a Modbus bus: IEC status, a verified current setpoint, enable, and its watchdog kept alive."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.config import MeterSettings, ModbusChargerSettings
from controller.core.events import ModbusChargerStatus
from drivers.bus import Bus
from drivers.codec import Value, decode_value, encode, iec_state
from drivers.device import BusDevice, Emit
from drivers.library import Charger, DeviceModel, Register, load_device
from drivers.transport import RequestFailed

log = logging.getLogger(__name__)

# A failed keep-alive is tried again this soon (at most), well inside any watchdog's timeout.
KEEPALIVE_RETRY_MAX_S = 1.0
# A caller of set_current waits at most this many request timeouts for the write and its read-back.
SET_CURRENT_TIMEOUTS = 8


def effective_amps(amps: float, min_a: float, max_a: float) -> float:
    """The setpoint a request becomes: below min_a 0 A (pause, IEC 61851 as evcc does), above max_a max_a."""
    if not math.isfinite(amps) or amps < 0:
        raise ValueError(f"current must be a finite number >= 0 A, got {amps}")
    if amps < min_a:
        return 0.0
    return min(amps, max_a)


@dataclass(slots=True)
class _Op:
    """One request of a job: write a value, read it back and compare, or read (a keep-alive)."""

    kind: str  # "write" | "verify" | "read"
    reg: Register
    value: float = 0.0


@dataclass(slots=True)
class _Job:
    """Requests that belong together (enable + setpoint + read-back); done resolves with success."""

    what: str  # "setpoint" | "program" | "keepalive"
    ops: deque[_Op]
    done: asyncio.Future[bool] | None = None
    ok: bool = True
    errors: list[str] = field(default_factory=list)


class ChargerDevice(BusDevice):
    """Polls a charger like a meter, writes its setpoint first, keeps its watchdog alive; emits status."""

    def __init__(
        self,
        settings: ModbusChargerSettings,
        clock: Clock,
        emit: Emit,
        model: DeviceModel | None = None,
    ) -> None:
        model = model or load_device(settings.model)
        if model.charger is None:
            raise ValueError(f"{model.name} is not a charger model")
        unit = settings.unit if settings.unit is not None else model.unit_id
        as_meter = MeterSettings(
            settings.id,
            model.name,
            settings.transport,
            settings.transport_url,
            unit,
            "charger",
            settings.poll_interval,
            settings.timeout,
            max(10.0, settings.poll_interval),
        )
        super().__init__(as_meter, clock, emit, model)
        self.charger_settings = settings
        self.spec: Charger = model.charger
        self.wake: Callable[[], None] = lambda: None  # the bus scheduler's: look at writes now
        self.setpoint: float | None = None  # what siteedge asked for (A after the IEC rules); None: nobody
        self.verified: float | None = (
            None  # the setpoint as written and read back (or written, if write-only)
        )
        self.state: str | None = None
        self.failsafe_read: float | None = None
        self.problems: dict[str, str] = {}
        self.counts = {"writes": 0, "write_failures": 0, "verify_failures": 0, "keepalives": 0}
        self.last_write_error: str | None = None
        self._jobs: deque[_Job] = deque()
        self._programmed = False
        self._keepalive_ok_at: float | None = None  # monotonic time of the last keep-alive that worked
        self._keepalive_at = math.inf  # when the next keep-alive write is due
        self._values: dict[str, float | None] = {}
        self._last_status_at: datetime | None = None

    # --- the watchdog ----------------------------------------------------------------------------

    def watchdog_timeout_s(self) -> float | None:
        """The charger's watchdog timeout in s: 0 = switched off, None = none or not known yet."""
        wd = self.spec.watchdog
        if wd.kind == "none":
            return None
        if wd.timeout_register is not None:
            raw = self.identity.get(wd.timeout_register, self.latest.get(wd.timeout_register))
            if isinstance(raw, float):
                return raw / (1000.0 if wd.timeout_unit == "ms" else 1.0)
        return wd.timeout_s or None

    def keepalive_interval_s(self) -> float | None:
        """How often the watchdog must be fed: at most half its timeout (None: nothing to feed)."""
        wd = self.spec.watchdog
        timeout = self.watchdog_timeout_s()
        if wd.kind == "none" or timeout == 0.0:
            return None
        if wd.kind == "rewrite_setpoint" and self.setpoint is None:
            return None  # nothing written yet: the charger runs on its own safe current
        candidates = [wd.keepalive_s] if wd.keepalive_s > 0 else []
        if timeout:
            candidates.append(timeout * (wd.keepalive_fraction if wd.timeout_register else 0.5))
        return min(candidates) if candidates else None

    def watchdog_ok(self) -> bool | None:
        """True while the last keep-alive is younger than the timeout; None: no watchdog to keep."""
        interval = self.keepalive_interval_s()
        if interval is None or self._keepalive_ok_at is None:
            return None
        limit = self.watchdog_timeout_s() or 2 * interval
        return self._clock.monotonic() - self._keepalive_ok_at <= limit

    def _fed(self, now: float) -> None:
        self._keepalive_ok_at = now
        interval = self.keepalive_interval_s()
        self._keepalive_at = math.inf if interval is None else now + interval

    def _keepalive_ops(self) -> list[_Op]:
        wd = self.spec.watchdog
        model = self.model
        if wd.kind == "rewrite_setpoint" and self.setpoint is not None:
            return [_Op("write", model.register(self.spec.setpoint), self.setpoint)]
        if wd.kind == "life_bit" and wd.register is not None:
            return [_Op("write", model.register(wd.register), float(wd.value))]
        if wd.kind == "write_timeout" and wd.register is not None and wd.timeout_register is not None:
            raw = self.identity.get(wd.timeout_register)
            if isinstance(raw, float) and raw > 0:
                return [_Op("write", model.register(wd.register), raw)]
            return []
        if wd.kind == "read":
            return [_Op("read", model.register(self.spec.status))]
        return []

    # --- setpoints --------------------------------------------------------------------------------

    def _max_a(self) -> float:
        return min(self.spec.max_current_a, self.charger_settings.max_current)

    def _setpoint_ops(self, amps: float) -> list[_Op]:
        ops: list[_Op] = []
        enable = self.spec.enable
        if enable.kind == "register" and enable.register is not None:
            reg = self.model.register(enable.register)
            on = amps > 0
            ops.append(_Op("write", reg, float(enable.on if on else enable.off)))
            if reg.readable:
                ops.append(_Op("verify", reg, float(enable.on if on else enable.off)))
            if not on:
                return ops  # paused by the enable register; the last limit stays for the resume
        reg = self.model.register(self.spec.setpoint)
        ops.append(_Op("write", reg, amps))
        if reg.readable:
            ops.append(_Op("verify", reg, amps))
        return ops

    async def set_current(self, amps: float) -> bool:
        """Ask for amps (below 6 A: pause); True once written and, where readable, read back equal."""
        target = effective_amps(amps, self.spec.min_current_a, self._max_a())
        self.setpoint = target
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # A newer setpoint makes older ones not yet started pointless: they are answered by this one.
        for job in list(self._jobs)[1:]:
            if job.what == "setpoint":
                self._jobs.remove(job)
                if job.done is not None:
                    done.add_done_callback(_forward(job.done))
        self._jobs.append(_Job("setpoint", deque(self._setpoint_ops(target)), done))
        self.wake()
        try:
            async with asyncio.timeout(SET_CURRENT_TIMEOUTS * max(self.timeout, 0.25) + 2.0):
                return await asyncio.shield(done)
        except TimeoutError:
            return False

    # --- writes on the scheduler -------------------------------------------------------------------

    def write_due_at(self) -> float:
        """Now if a job waits, else when the watchdog must next be fed (infinity while offline)."""
        if self._jobs:
            return 0.0
        if not self._programmed or self.offline:
            return math.inf
        return self._keepalive_at

    async def write_step(self, bus: Bus) -> None:
        """Send the next request of the first job (starting a keep-alive if one is due); never raises."""
        if not self._jobs:
            ops = self._keepalive_ops()
            if not ops:
                self._keepalive_at = math.inf
                return
            self._jobs.append(_Job("keepalive", deque(ops)))
        job = self._jobs[0]
        if job.ops:
            op = job.ops.popleft()
            error = await self._run(bus, job, op)
            if error is not None:
                job.ok = False
                job.errors.append(error)
                if op.kind != "verify":
                    job.ops.clear()  # a refused write: what follows it (its read-back) is moot
        if not job.ops:
            self._jobs.popleft()
            self._job_done(job)

    async def _run(self, bus: Bus, job: _Job, op: _Op) -> str | None:
        """One request; None if it worked, else why not."""
        self.health.requests += 1
        try:
            if op.kind == "write":
                self.counts["writes"] += 1
                await bus.write(
                    self.unit,
                    op.reg.write or 16,
                    op.reg.address,
                    encode(op.reg, op.value),
                    timeout_s=self.timeout,
                    turnaround_s=self.turnaround_s,
                )
            else:
                words = await bus.read(
                    self.unit,
                    op.reg.function,
                    op.reg.address,
                    op.reg.count,
                    timeout_s=self.timeout,
                    turnaround_s=self.turnaround_s,
                )
                got = decode_value(op.reg, words)
                if op.kind == "verify" and not _same(op.reg, got, op.value):
                    self.counts["verify_failures"] += 1
                    return f"{op.reg.name}: wrote {op.value:g}, read back {got}"
                if op.reg.name == self.spec.watchdog.failsafe_register and isinstance(got, float):
                    self.failsafe_read = got
        except RequestFailed as exc:
            if op.kind == "write":
                self.counts["write_failures"] += 1
            where = f"{'write' if op.kind == 'write' else 'read'} {op.reg.name}"
            self.health.request_failed(exc.kind, f"{where}: {exc.detail}", self._clock.now())
            return f"{where}: {exc}"
        now = self._clock.monotonic()
        wd = self.spec.watchdog
        if (
            wd.kind == "read"
            or (job.what == "keepalive")
            or (wd.kind == "rewrite_setpoint" and op.reg.name == self.spec.setpoint and op.kind == "write")
        ):
            self._fed(now)
        return None

    def _job_done(self, job: _Job) -> None:
        at = self._clock.now()
        if job.what == "keepalive":
            if job.ok:
                self.counts["keepalives"] += 1
            else:
                interval = self.keepalive_interval_s() or KEEPALIVE_RETRY_MAX_S
                self._keepalive_at = self._clock.monotonic() + min(KEEPALIVE_RETRY_MAX_S, interval / 4)
                log.warning("charger %s: watchdog keep-alive failed: %s", self.id, "; ".join(job.errors))
        elif job.what == "setpoint":
            if job.ok:
                self.verified = self.setpoint
                self.problems.pop("setpoint", None)
            else:
                self.problems["setpoint"] = "; ".join(job.errors)
                log.warning("charger %s: setpoint not applied: %s", self.id, "; ".join(job.errors))
        elif job.what == "program":
            if job.ok:
                self.problems.pop("failsafe", None)
            else:
                self.problems["failsafe"] = "; ".join(job.errors)
        if not job.ok:
            self.last_write_error = "; ".join(job.errors)
        if job.done is not None and not job.done.done():
            job.done.set_result(job.ok)
        self._publish_status(at)

    def _program(self, now: float) -> None:
        """After (re)connecting: the failsafe current where writable, the setpoint again, a keep-alive now."""
        self._programmed = True
        ops: list[_Op] = []
        wd = self.spec.watchdog
        wanted = self.charger_settings.failsafe_current
        if wd.failsafe_register is not None:
            reg = self.model.register(wd.failsafe_register)
            if reg.writable:
                ops += [_Op("write", reg, wanted)] + ([_Op("verify", reg, wanted)] if reg.readable else [])
        if ops:
            self._jobs.append(_Job("program", deque(ops)))
        if self.setpoint is not None:
            # Alfen forgets the limit on a reboot; any charger may have fallen back meanwhile.
            self._jobs.append(_Job("setpoint", deque(self._setpoint_ops(self.setpoint))))
        self._keepalive_at = now

    def _failsafe_problems(self) -> None:
        wd = self.spec.watchdog
        wanted = self.charger_settings.failsafe_current
        if wd.kind == "none":
            self.problems["watchdog"] = (
                "this charger has no known watchdog: if siteedge stops, its limit stays"
            )
        elif self.watchdog_timeout_s() == 0.0:
            self.problems["watchdog"] = "the charger's watchdog is off: if siteedge stops, its limit stays"
        else:
            self.problems.pop("watchdog", None)
        if wd.failsafe_register is None:
            self.problems.setdefault(
                "failsafe", "failsafe current not programmable over Modbus on this model"
            )
            return
        reg = self.model.register(wd.failsafe_register)
        value = self.latest.get(reg.name)  # read in this poll (identity may hold a pre-programming value)
        if isinstance(value, float):
            self.failsafe_read = value
        if not reg.writable and self.failsafe_read is not None and abs(self.failsafe_read - wanted) > 0.05:
            # Alfen: the safe current is set in the ACE Service Installer, not over Modbus.
            self.problems["failsafe"] = (
                f"the charger falls back to {self.failsafe_read:g} A, configured {wanted:g} A: "
                "set it on the charger"
            )

    # --- poll outcomes ------------------------------------------------------------------------------

    def _on_read(
        self, values: dict[str, float | None], problems: dict[str, str], ages: dict[str, float], at: datetime
    ) -> None:
        now = self._clock.monotonic()
        self._values = values
        self.state = iec_state(self.model, {**self.identity, **values, **self.latest})
        if self.spec.watchdog.kind == "read":
            self._fed(now)  # any request keeps this charger's watchdog alive
        if not self._programmed:
            self._program(now)
            self.wake()
        self._failsafe_problems()
        for key in [k for k in self.problems if k.startswith("value ")]:
            del self.problems[key]
        for name, why in problems.items():
            self.problems[f"value {name}"] = why
        self._publish_status(at)

    def _on_failed(self, reason: str, at: datetime) -> None:
        self.state = None
        if self.offline:
            self._programmed = False  # it may have rebooted: program it again when it answers
        self._publish_status(at)

    def _publish_status(self, at: datetime) -> None:
        applied = self._values.get("current_applied") if self.health.consecutive_failures == 0 else None
        if applied is None and "current_applied" not in self.model.names():
            applied = self.verified
        h = self.health
        self._publish(
            ModbusChargerStatus(
                self.id,
                at,
                self.state,
                applied,
                self.setpoint,
                self.watchdog_ok(),
                h.state,
                evse_uid=self.charger_settings.evse_uid,
                failsafe_current=self.failsafe_read,
                values=dict(self._values),
                problems=dict(self.problems),
                counts={**h.counts(), **self.counts},
                last_error=self.last_write_error or h.last_error,
                last_good_at=h.last_good_at,
            )
        )

    def describe_charger(self) -> dict[str, Any]:
        """The charger as JSON-ready data (GET /api/modbus/chargers)."""
        wd = self.spec.watchdog
        return {
            "id": self.id,
            "model": self.model.name,
            "transport": self.settings.transport_url,
            "unit": self.unit,
            "evse_uid": self.charger_settings.evse_uid,
            "state": self.state,
            "setpoint_a": self.setpoint,
            "verified_setpoint_a": self.verified,
            "current_applied_a": self._values.get("current_applied", self.verified),
            "min_current_a": self.spec.min_current_a,
            "max_current_a": self._max_a(),
            "failsafe_current_a": {
                "configured": self.charger_settings.failsafe_current,
                "read": self.failsafe_read,
            },
            "watchdog": {
                "kind": wd.kind,
                "verified": wd.verified,
                "timeout_s": self.watchdog_timeout_s(),
                "keepalive_s": self.keepalive_interval_s(),
                "ok": self.watchdog_ok(),
                "last_keepalive_age_s": None
                if self._keepalive_ok_at is None
                else round(self._clock.monotonic() - self._keepalive_ok_at, 3),
            },
            "values": dict(self._values),
            "problems": dict(self.problems),
            "writes": dict(self.counts),
            "last_write_error": self.last_write_error,
            "health": self.health.as_dict(),
            "checked_at": rfc3339(self._clock.now()),
        }

    def describe(self) -> dict[str, Any]:
        """As a bus device (GET /api/modbus/devices), marked as a charger."""
        return {**super().describe(), "kind": "charger", "state_iec": self.state, "setpoint_a": self.setpoint}


def _same(reg: Register, got: Value, want: float) -> bool:
    """A read-back equals what was written, to the register's resolution."""
    if not isinstance(got, float):
        return False
    step = abs(reg.scale) if reg.type[0] in "us" else 1e-3 * max(1.0, abs(want))
    return abs(got - want) <= step / 2 + 1e-9


def _forward(target: asyncio.Future[bool]) -> Callable[[asyncio.Future[bool]], None]:
    def copy(source: asyncio.Future[bool]) -> None:
        if not target.done():
            target.set_result(source.result() if not source.cancelled() else False)

    return copy

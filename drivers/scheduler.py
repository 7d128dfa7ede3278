"""One scheduler per bus: always sends the most urgent ready request, so no device waits on a dead one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from drivers.bus import Bus
from drivers.device import BusDevice

log = logging.getLogger(__name__)


def pick(
    devices: Sequence[BusDevice], bus: Bus, now: float, deferred_since: dict[str, float]
) -> tuple[BusDevice | None, float]:
    """The device whose request goes next, or None and the time to wake up."""
    ready: list[tuple[int, float, int, BusDevice]] = []
    wake = float("inf")
    for i, dev in enumerate(devices):
        at = max(dev.due_at(), bus.ready_at(dev.unit))
        if at > now:
            wake = min(wake, at)
            continue
        # A poll already under way finishes first (its values belong together), then by due time.
        ready.append((0 if dev.in_progress else 1, dev.due_at(), i, dev))
    ready.sort(key=lambda r: r[:3])
    for _, _, _, dev in ready:
        # Probe a dead device only in a gap that fits its worst case (timeout + quiet time),
        # but never postpone it by more than its own backoff period.
        if (
            dev.offline
            and not dev.in_progress
            and _would_delay_others(dev, devices, bus, now)
            and now - deferred_since.setdefault(dev.id, now) < dev.backoff_s
        ):
            continue
        deferred_since.pop(dev.id, None)
        return dev, now
    if ready:
        wake = min(wake, now + 0.05)  # only deferred probes are ready: look again shortly
    return None, wake


def pick_write(devices: Sequence[BusDevice], bus: Bus, now: float) -> tuple[BusDevice | None, float]:
    """The device whose due write goes next (writes go before reads), or None and when to look again."""
    best: tuple[float, int, BusDevice] | None = None
    wake = float("inf")
    for i, dev in enumerate(devices):
        due = dev.write_due_at()
        if due == float("inf"):
            continue
        at = max(due, bus.ready_at(dev.unit))
        if at > now:
            wake = min(wake, at)
        elif best is None or (due, i) < best[:2]:
            best = (due, i, dev)
    return (best[2], now) if best else (None, wake)


def _would_delay_others(dead: BusDevice, devices: Sequence[BusDevice], bus: Bus, now: float) -> bool:
    horizon = now + dead.worst_cost_s(bus)
    return any(d is not dead and not d.offline and d.due_at() < horizon for d in devices)


class BusScheduler:
    """Runs one bus until cancelled: one request at a time, chosen by urgency."""

    def __init__(self, bus: Bus, devices: Sequence[BusDevice], mono: Callable[[], float]) -> None:
        self.bus = bus
        self.devices = list(devices)
        self._mono = mono
        self._deferred: dict[str, float] = {}
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Look at the devices again now (a write was requested while the scheduler slept)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Poll every device on its schedule until cancelled; closes the bus at the end."""
        try:
            while True:
                # Backstop: transport.within re-raises a cancellation pymodbus swallowed (gh-86296);
                # should anything else swallow one, the bus still stops instead of polling on forever
                # (with the count left raised, every later asyncio.timeout would read as a timeout).
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                now = self._mono()
                self._wakeup.clear()
                # Writes first (setpoints, watchdog keep-alives): they go out under the same gap and
                # turnaround rules, between two requests of a poll if need be.
                writer, write_wake = pick_write(self.devices, self.bus, now)
                if writer is not None:
                    await writer.write_step(self.bus)
                    continue
                dev, wake = pick(self.devices, self.bus, now, self._deferred)
                if dev is None:
                    delay = max(0.0, min(wake, write_wake, now + 1.0) - now)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wakeup.wait()
                    continue
                await dev.step(self.bus)
        finally:
            self.bus.close()

"""Is the system clock synchronized? The port and the pure reading of the kernel's answer.

A box without a battery-backed clock (no RTC) boots at some old time and only learns the real
time from NTP; sessions that ran before that carry wrong timestamps and must be flagged, never
billed as if their times were known. Linux keeps the NTP discipline state in the kernel:
adjtimex(2) returns TIME_ERROR (5) while the clock is unsynchronized, and the status word carries
STA_UNSYNC (0x0040) until a time daemon declares it synchronized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

TIME_ERROR = 5  # adjtimex(2) return value: the clock is not synchronized
STA_UNSYNC = 0x0040  # adjtimex(2) status bit: clock unsynchronized


@dataclass(frozen=True, slots=True)
class ClockState:
    """The system clock's synchronization: True, False, or None when it cannot be known."""

    synchronized: bool | None
    detail: str


class ClockSync(Protocol):
    """Reads whether the system (wall) clock is synchronized to a time source right now."""

    def state(self) -> ClockState:
        """The current synchronization state; cheap enough to call on every session event."""
        ...


def from_adjtimex(result: int, status: int, maxerror_us: int) -> ClockState:
    """Decide from adjtimex(2)'s return value, status word and maximum error (microseconds)."""
    if result < 0:
        return ClockState(None, f"adjtimex failed ({result})")
    unsynced = result == TIME_ERROR or bool(status & STA_UNSYNC)
    why = f"kernel clock state {result}, status 0x{status:04x}, max error {maxerror_us} us"
    return ClockState(not unsynced, why)

"""Modbus RTU line timing: character time, t3.5, frame wire time, a poll cycle's physical minimum."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.core.config import TransportSettings

REQUEST_BYTES = 8  # FC3/FC4 request: id, fc, address x2, count x2, crc x2


def response_bytes(count: int) -> int:
    """Wire size of an FC3/FC4 reply carrying count registers: id, fc, byte count, data, crc."""
    return 5 + 2 * count


@dataclass(frozen=True, slots=True)
class LineTiming:
    """Timing of one serial line (or the line behind an RTU gateway)."""

    baud: int
    bits_per_char: int

    @classmethod
    def of(cls, t: TransportSettings) -> LineTiming:
        """The timing of a transport's serial line (start bit + data + parity + stop bits)."""
        return cls(t.baudrate, 1 + t.bytesize + (0 if t.parity == "N" else 1) + t.stopbits)

    @property
    def char_s(self) -> float:
        """Seconds one character takes on the wire."""
        return self.bits_per_char / self.baud

    @property
    def gap_s(self) -> float:
        """The inter-frame gap t3.5 (Modbus serial line spec §2.5.1.1: fixed 1.75 ms above 19200 Bd)."""
        return 0.00175 if self.baud > 19200 else 3.5 * self.char_s

    def frame_s(self, nbytes: int) -> float:
        """Wire time of a frame of nbytes."""
        return nbytes * self.char_s

    def transaction_s(self, count: int) -> float:
        """Minimum bus time of one read: request, t3.5 (slave detects the end), reply, t3.5."""
        return self.frame_s(REQUEST_BYTES) + self.gap_s + self.frame_s(response_bytes(count)) + self.gap_s


def cycle_minimum_s(
    line: LineTiming, devices: Sequence[tuple[Sequence[int], float]], *, reply_delay_s: float = 0.0
) -> float:
    """Physical minimum of one round reading every device once: devices = (block counts, turnaround_s).

    The bus is busy for the sum of all transactions; a device's own turnaround pauses can only
    overlap other devices' traffic, so the slowest single device is a second lower bound.
    reply_delay_s is how long a slave takes to start answering beyond t3.5 (0 for an ideal slave).
    """
    per = [[line.transaction_s(c) + reply_delay_s for c in counts] for counts, _ in devices]
    bus = sum(sum(p) for p in per)
    own = max(
        (sum(p) + max(0, len(p) - 1) * turn for p, (_, turn) in zip(per, devices, strict=True)),
        default=0.0,
    )
    return max(bus, own)

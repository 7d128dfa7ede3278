"""One Modbus line shared by several devices: one request at a time, gaps kept, stale replies kept out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from controller.core.config import TransportSettings
from controller.core.stats import Histogram
from drivers.timing import REQUEST_BYTES, LineTiming, response_bytes
from drivers.transport import Link, RequestFailed

# After an RTU timeout the device may still answer; wait at least this long (plus the reply's
# wire time) before the next request so a late reply cannot be taken for the next answer.
LATE_REPLY_MIN_S = 0.1
# A TCP connection that has stayed silent for this many requests in a row is reopened.
SILENT_BEFORE_RECONNECT = 3
RECONNECT_MAX_S = 10.0
WRITE_REPLY_BYTES = 8  # FC5/FC6/FC16 echo: id, fc, address x2, value or count x2, crc x2


class Bus:
    """A transport URL's line: serializes requests, keeps t3.5 and per-unit turnaround, reconnects."""

    def __init__(
        self,
        url: str,
        transport: TransportSettings,
        timeout_s: float,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.transport = transport
        self.timeout = timeout_s
        self._mono = mono
        self.link = Link(transport, timeout_s)
        self.line = LineTiming.of(transport) if self.link.rtu_framing else None
        self._lock = asyncio.Lock()
        self._quiet_until = 0.0
        self._unit_ready: dict[int, float] = {}
        self._silent = 0
        self._connect_failures = 0
        self._reconnect_at = 0.0
        self.requests = 0
        self.busy_s = 0.0  # time spent inside requests (for utilization figures)
        self.latency = Histogram()  # answered requests, request sent -> reply decoded (/metrics)

    @property
    def late_replies(self) -> int:
        """Replies that arrived after their request had timed out."""
        return self.link.late_replies

    @property
    def crc_errors(self) -> int:
        """Frames dropped for a bad CRC on this line."""
        return self.link.crc_errors

    def ready_at(self, unit: int) -> float:
        """Monotonic time from which a request to unit may go (line gap and the unit's turnaround)."""
        return max(self._quiet_until, self._unit_ready.get(unit, 0.0))

    def wire_s(self, count: int) -> float:
        """Wire time of a read of count registers (0 on plain TCP)."""
        if self.line is None:
            return 0.0
        return self.line.frame_s(REQUEST_BYTES) + self.line.frame_s(response_bytes(count))

    async def read(
        self,
        unit: int,
        function: int,
        address: int,
        count: int,
        *,
        timeout_s: float,
        turnaround_s: float = 0.0,
    ) -> list[int]:
        """One read, after the line's gap and the unit's turnaround; RequestFailed on any failure."""
        words: list[int] = []

        async def send(limit_s: float) -> None:
            words[:] = await self.link.read(function, address, count, unit, limit_s)

        await self._exchange(unit, self.wire_s(count), response_bytes(count), send, timeout_s, turnaround_s)
        return words

    async def write(
        self,
        unit: int,
        function: int,
        address: int,
        words: list[int],
        *,
        timeout_s: float,
        turnaround_s: float = 0.0,
    ) -> None:
        """One write (FC5/6/16) under the same gap, turnaround and quiet-time rules as a read."""
        request = REQUEST_BYTES if function in (5, 6) else 9 + 2 * len(words)
        wire = 0.0 if self.line is None else self.line.frame_s(request) + self.line.frame_s(WRITE_REPLY_BYTES)

        async def send(limit_s: float) -> None:
            await self.link.write(function, address, words, unit, limit_s)

        await self._exchange(unit, wire, WRITE_REPLY_BYTES, send, timeout_s, turnaround_s)

    async def _exchange(
        self,
        unit: int,
        wire_s: float,
        reply_bytes: int,
        send: Callable[[float], Awaitable[None]],
        timeout_s: float,
        turnaround_s: float,
    ) -> None:
        async with self._lock:
            await self._ensure_connected(timeout_s)
            delay = self.ready_at(unit) - self._mono()
            if delay > 0:
                await asyncio.sleep(delay)
            # At 9600 Bd a 125-register reply alone takes 0.27 s on the wire: the timeout is for the
            # device's silence, so the frames' own wire time is added to it.
            started = self._mono()
            self.requests += 1
            try:
                await send(timeout_s + wire_s)
            except RequestFailed as exc:
                self._after_failure(exc, reply_bytes, turnaround_s)
                raise
            finally:
                self.busy_s += self._mono() - started
            now = self._mono()
            self.latency.observe(now - started)
            self._silent = 0
            self._quiet_until = now + (self.line.gap_s if self.line else 0.0)
            self._unit_ready[unit] = now + (turnaround_s if self.line else 0.0)

    def _after_failure(self, exc: RequestFailed, reply_bytes: int, turnaround_s: float) -> None:
        now = self._mono()
        if self.line is not None:
            if exc.kind in ("timeout", "crc", "bad_reply"):
                # The stale-reply trap (DEVICES.md §4): keep quiet until a late reply has passed.
                late = max(LATE_REPLY_MIN_S, turnaround_s) + self.line.frame_s(reply_bytes)
                self._quiet_until = now + late + self.line.gap_s
            else:
                self._quiet_until = now + self.line.gap_s
        if exc.kind == "timeout":
            self._silent += 1
            if self.line is None and self._silent >= SILENT_BEFORE_RECONNECT:
                # A half-open TCP connection never recovers by itself.
                self.link.close()
                self._silent = 0
        elif exc.kind == "connection":
            self.link.close()

    async def _ensure_connected(self, timeout_s: float) -> None:
        if self.link.connected:
            return
        now = self._mono()
        if now < self._reconnect_at:
            raise RequestFailed(
                "connection", f"{self.url} unreachable; retrying in {self._reconnect_at - now:.1f} s"
            )
        try:
            await self.link.connect(max(timeout_s, 1.0))
        except RequestFailed:
            self._connect_failures += 1
            backoff = min(RECONNECT_MAX_S, 0.25 * (1 << min(self._connect_failures, 6)))
            self._reconnect_at = self._mono() + backoff
            raise
        self._connect_failures = 0
        self._quiet_until = self._mono() + (self.line.gap_s if self.line else 0.0)

    def close(self) -> None:
        """Close the port or socket."""
        self.link.close()

"""Counters and latency histograms for /metrics: OCPP calls both ways, Modbus requests, uplink acks.

Plain in-memory numbers, updated on the hot path: an observation is one bisect and three additions
(the OCPP benchmark measures siteedge's CPU per message against the bare library).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Seconds. OCPP and Modbus answers take milliseconds on a LAN; a charger on a bad link, seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    """A Prometheus-style histogram with fixed upper bounds (cumulated only when exported)."""

    __slots__ = ("_counts", "bounds", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be strictly increasing")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation (in seconds)."""
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> dict[str, Any]:
        """{"buckets": [[le, cumulative count], ..., ["+Inf", count]], "sum", "count"}, JSON-ready."""
        running, buckets = 0, []
        for bound, n in zip((*self.bounds, "+Inf"), self._counts, strict=True):
            running += n
            buckets.append([bound, running])
        return {"buckets": buckets, "sum": self.sum, "count": self.count}


@dataclass(slots=True)
class OcppStats:
    """OCPP traffic of every charger: calls received and sent by action and outcome, with latencies.

    Outcomes: received calls are "result" (answered with a CALLRESULT) or "error" (a CALLERROR);
    sent calls are "result", "error" (the charger's CALLERROR), "timeout", "closed" (the connection
    went first) or "abandoned" (the caller stopped waiting). Actions outside the OCPP vocabulary
    count as "unknown", so a fuzzing charger cannot grow the label set.
    """

    received: Counter[tuple[str, str]] = field(default_factory=Counter)
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    malformed: int = 0
    connections: int = 0  # accepted WebSocket connections since start
    handle_seconds: Histogram = field(default_factory=Histogram)  # CALL in -> reply out
    roundtrip_seconds: Histogram = field(default_factory=Histogram)  # CALL out -> reply in

    def call_received(self, action: str, outcome: str, seconds: float) -> None:
        """A charger's CALL was answered after `seconds`."""
        self.received[(action, outcome)] += 1
        self.handle_seconds.observe(seconds)

    def call_sent(self, action: str, outcome: str, seconds: float | None) -> None:
        """One of our CALLs ended; `seconds` is the round trip when a reply came."""
        self.sent[(action, outcome)] += 1
        if seconds is not None:
            self.roundtrip_seconds.observe(seconds)

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready, for the metrics exporter."""
        return {
            "received": [[a, o, n] for (a, o), n in sorted(self.received.items())],
            "sent": [[a, o, n] for (a, o), n in sorted(self.sent.items())],
            "malformed": self.malformed,
            "connections": self.connections,
            "handle_seconds": self.handle_seconds.snapshot(),
            "roundtrip_seconds": self.roundtrip_seconds.snapshot(),
        }

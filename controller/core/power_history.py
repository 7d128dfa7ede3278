"""Site power history: a bounded ring of 10-second averages for the web UI's last-hour chart."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

STEP_S = 10
SPAN_S = 3600


@dataclass(slots=True)
class _Bucket:
    index: int  # seconds since the epoch // step
    total_kw: float
    count: int


class PowerHistory:
    """Averages of site power per `step_s`-second bucket over the last `span_s` seconds (pure)."""

    def __init__(self, step_s: int = STEP_S, span_s: int = SPAN_S) -> None:
        if step_s <= 0 or span_s < step_s:
            raise ValueError("PowerHistory: need step_s > 0 and span_s >= step_s")
        self.step_s = step_s
        self.span_s = span_s
        # One entry per bucket that had a reading: a gap in the data stays a gap in the chart
        # instead of being drawn as a straight line through a time nobody measured.
        self._ring: deque[_Bucket] = deque(maxlen=span_s // step_s)

    def record(self, at: datetime, kw: float) -> None:
        """Add one reading taken at `at`; non-finite ones and ones older than the last bucket are dropped."""
        if not math.isfinite(kw):
            return
        index = int(at.timestamp() // self.step_s)
        last = self._ring[-1] if self._ring else None
        if last is not None and index < last.index:
            # The clock stepped back (NTP after boot): restart rather than keep a time-travelling chart.
            if last.index - index > self.span_s // self.step_s:
                self._ring.clear()
            else:
                return
        if last is not None and last.index == index:
            last.total_kw += kw
            last.count += 1
            return
        self._ring.append(_Bucket(index, kw, 1))

    def points(self, now: datetime, seconds: float) -> list[tuple[datetime, float]]:
        """(bucket start, average kW) of the buckets within the last `seconds` before `now`, oldest first."""
        first = int((now.timestamp() - min(seconds, self.span_s)) // self.step_s)
        return [
            (datetime.fromtimestamp(b.index * self.step_s, UTC), b.total_kw / b.count)
            for b in self._ring
            if b.index >= first
        ]

"""Injected time: the core never reads the wall clock directly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of UTC wall time and monotonic time."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def rfc3339(ts: datetime) -> str:
    """Format a UTC datetime the OCPI way: RFC 3339 with 'Z', millisecond precision."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: siteedge only handles aware UTC times")
    utc = ts.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

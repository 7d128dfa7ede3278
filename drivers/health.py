"""Per-device Modbus health: counters, last error, last good read, and the ok/degraded/offline state."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.clock import rfc3339

# Consecutive failed polls before a device counts as offline (mbmd uses 3 tries as well).
OFFLINE_AFTER = 3
# A device with any error among its last this-many polls is degraded, not ok.
RECENT_POLLS = 10

ERROR_KINDS = ("timeout", "crc", "exception", "bad_reply", "connection")
_COUNT_KEY = {
    "timeout": "timeouts",
    "crc": "crc_errors",
    "exception": "exceptions",
    "bad_reply": "bad_replies",
    "connection": "connection_errors",
}


@dataclass(slots=True)
class DeviceHealth:
    """Counts and state of one device on a bus; updated by the scheduler, read by API and events."""

    polls: int = 0
    good_polls: int = 0
    failed_polls: int = 0
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0
    bad_replies: int = 0
    connection_errors: int = 0
    late_replies: int = 0
    rejected_values: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_good_at: datetime | None = None
    _recent: deque[bool] = field(default_factory=lambda: deque(maxlen=RECENT_POLLS))

    @property
    def state(self) -> str:
        """unknown (never polled), ok, degraded (recent errors) or offline (failing in a row)."""
        if not self._recent:
            return "unknown"
        if self.consecutive_failures >= OFFLINE_AFTER:
            return "offline"
        return "ok" if all(self._recent) else "degraded"

    def request_failed(self, kind: str, detail: str, at: datetime) -> None:
        """Count one failed request of an ERROR_KINDS kind."""
        setattr(self, _COUNT_KEY[kind], getattr(self, _COUNT_KEY[kind]) + 1)
        self.last_error, self.last_error_at = f"{kind}: {detail}", at

    def poll_done(self, ok: bool, at: datetime, clean: bool = True) -> None:
        """Record a finished poll; clean=False when it needed a retry or rejected a value."""
        self.polls += 1
        if ok:
            self.good_polls += 1
            self.consecutive_failures = 0
            self.last_good_at = at
        else:
            self.failed_polls += 1
            self.consecutive_failures += 1
        self._recent.append(ok and clean)

    def counts(self) -> dict[str, int]:
        """Every counter by name (JSON-ready)."""
        return {
            "polls": self.polls,
            "good_polls": self.good_polls,
            "failed_polls": self.failed_polls,
            "requests": self.requests,
            "retries": self.retries,
            "timeouts": self.timeouts,
            "crc_errors": self.crc_errors,
            "exceptions": self.exceptions,
            "bad_replies": self.bad_replies,
            "connection_errors": self.connection_errors,
            "late_replies": self.late_replies,
            "rejected_values": self.rejected_values,
            "consecutive_failures": self.consecutive_failures,
        }

    def as_dict(self) -> dict[str, Any]:
        """State, counters and last error/good times, JSON-ready."""
        return {
            "state": self.state,
            **self.counts(),
            "last_error": self.last_error,
            "last_error_at": rfc3339(self.last_error_at) if self.last_error_at else None,
            "last_good_at": rfc3339(self.last_good_at) if self.last_good_at else None,
        }

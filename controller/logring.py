"""The newest log records in memory, for the web UI's System page (GET /api/v1/system/logs)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.core.clock import rfc3339

CAPACITY = 2000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One formatted log record; formatted at emit time so later mutation of args cannot change it."""

    seq: int
    time: datetime
    levelno: int
    level: str
    logger: str
    message: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "seq": self.seq,
            "time": rfc3339(self.time),
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
        }


class LogRing(logging.Handler):
    """A logging handler keeping the newest `capacity` records; safe from any thread."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__(level=logging.NOTSET)
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._seq = 0
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record (called by logging with the handler's lock held)."""
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + self._formatter.formatException(record.exc_info)
            self._seq += 1
            self._entries.append(
                LogEntry(
                    self._seq,
                    datetime.fromtimestamp(record.created, UTC),
                    record.levelno,
                    record.levelname,
                    record.name,
                    message,
                )
            )
        except Exception:  # noqa: BLE001 - logging's contract: a handler never raises into the caller
            self.handleError(record)

    def query(
        self, limit: int, offset: int, min_level: int = logging.NOTSET, text: str | None = None
    ) -> list[LogEntry]:
        """Newest first: up to limit records at or above min_level containing text, after offset.

        `text` matches the message or the logger name, case-insensitively.
        """
        self.acquire()  # the lock emit() runs under: no record is half-appended while we copy
        try:
            entries = list(self._entries)
        finally:
            self.release()
        needle = text.casefold() if text else None
        matching = [
            e
            for e in reversed(entries)
            if e.levelno >= min_level
            and (needle is None or needle in e.message.casefold() or needle in e.logger.casefold())
        ]
        return matching[offset : offset + limit]


_lock = threading.Lock()
_ring: LogRing | None = None


def install() -> LogRing:
    """The process's ring, attached to the root logger on first call (idempotent)."""
    global _ring
    with _lock:
        if _ring is None:
            _ring = LogRing()
            logging.getLogger().addHandler(_ring)
        return _ring

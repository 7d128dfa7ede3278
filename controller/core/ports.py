"""Interfaces the core needs from the outside world; adapters implement them, app.py wires them."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from controller.core.envelope import Outgoing


@dataclass(frozen=True, slots=True)
class Stored:
    """An outbox message as stored: numbered, enveloped, ready to publish."""

    row: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    lane: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Backlog counts for health and alarms."""

    pending: int
    bytes: int
    dropped_telemetry: int
    near_limit: bool


class Outbox(Protocol):
    """Durable store-and-forward queue: nothing leaves it before the broker acknowledged it."""

    def put(self, messages: Sequence[Outgoing]) -> Future[None]:
        """Queue messages for the writer; the future resolves once they are committed to disk."""
        ...

    def pending(self, limit: int, exclude: set[int]) -> list[Stored]:
        """Up to `limit` committed messages not in `exclude`, lane first, then insertion order."""
        ...

    def ack(self, rows: Sequence[int]) -> Future[None]:
        """Forget delivered messages (idempotent); resolves once committed."""
        ...

    def stats(self) -> OutboxStats:
        """Current backlog figures."""
        ...

    def close(self) -> None:
        """Flush pending writes and close; later calls fail."""
        ...


class DocumentStore(Protocol):
    """Small human-readable documents (charger registry, users), written atomically."""

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The document stored under key, or None."""
        ...

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        """Insert or replace the document under key; durable when this returns."""
        ...

    def delete(self, table: str, key: str) -> None:
        """Remove the document under key if present; durable when this returns."""
        ...

    def all(self, table: str) -> dict[str, dict[str, Any]]:
        """Every document of a table by key."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...

"""Backend-to-box messages: routed by topic, handled one at a time in arrival order."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 256 * 1024
QUEUE_LIMIT = 10_000

Handler = Callable[[re.Match[str], Any], Awaitable[None]]


class Rejected(Exception):
    """A downlink message was refused; the message is the reason the backend is told."""


@dataclass(frozen=True, slots=True)
class _Route:
    pattern: re.Pattern[str]
    handler: Handler


class Downlink:
    """Routes `{root}/...` messages to handlers; malformed input is rejected, never fatal."""

    def __init__(self, root: str, reject: Callable[[str, str], None]) -> None:
        self._root = root
        self._reject = reject
        self._routes: list[_Route] = []
        self._filters: list[str] = []
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE_LIMIT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.handled = 0
        self.rejected = 0

    def route(self, mqtt_filter: str, pattern: str, handler: Handler) -> None:
        """Subscribe to `{root}/{mqtt_filter}` and send topics matching `pattern` to handler."""
        self._filters.append(f"{self._root}/{mqtt_filter}")
        self._routes.append(_Route(re.compile(pattern), handler))

    @property
    def filters(self) -> list[str]:
        """Absolute MQTT subscriptions, all inside this site's root."""
        return list(self._filters)

    def deliver_threadsafe(self, topic: str, payload: bytes, retained: bool) -> None:
        """Called on paho's thread: hand the message to the loop, in order."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._enqueue, topic, payload)

    def _enqueue(self, topic: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self._refuse(topic, "box is overloaded: downlink queue full; resend later")

    async def run(self) -> None:
        """Handle messages until cancelled (attach() first so nothing arrives unbound)."""
        self.attach()
        while True:
            topic, payload = await self._queue.get()
            await self._handle(topic, payload)

    def attach(self) -> None:
        """Bind to the running loop before the connection starts delivering."""
        self._loop = asyncio.get_running_loop()

    async def _handle(self, topic: str, raw: bytes) -> None:
        rel = topic[len(self._root) + 1 :] if topic.startswith(self._root + "/") else topic
        route, match = next(
            ((r, m) for r in self._routes if (m := r.pattern.fullmatch(rel)) is not None), (None, None)
        )
        if route is None or match is None:
            self._refuse(rel, "unknown topic")
            return
        if len(raw) > MAX_PAYLOAD_BYTES:
            self._refuse(rel, f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
            return
        try:
            payload = json.loads(raw) if raw else None
        except ValueError as exc:
            self._refuse(rel, f"not JSON: {exc}")
            return
        try:
            await route.handler(match, payload)
        except Rejected as exc:
            self._refuse(rel, str(exc))
        except Exception:
            log.exception("downlink: handler for %s failed", rel)
            self._refuse(rel, "internal error while applying; nothing was applied")
        else:
            self.handled += 1

    def _refuse(self, rel: str, reason: str) -> None:
        self.rejected += 1
        log.warning("downlink: rejected %s: %s", rel, reason)
        self._reject(rel, reason)

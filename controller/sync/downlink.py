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
IMMEDIATE_LIMIT = 1_000
PARSE_OFF_LOOP_BYTES = 64 * 1024

Handler = Callable[[re.Match[str], Any], Awaitable[None]]
Done = Callable[[], None]  # acknowledges the message to the broker once it was handled


class Rejected(Exception):
    """A downlink message was refused; the message is the reason the backend is told."""


@dataclass(frozen=True, slots=True)
class _Route:
    pattern: re.Pattern[str]
    handler: Handler
    max_bytes: int
    immediate: bool  # latency-critical and order-free: never waits behind bulk messages


class Downlink:
    """Routes `{root}/...` messages to handlers; malformed input is rejected, never fatal."""

    def __init__(self, root: str, reject: Callable[[str, str], None]) -> None:
        self._root = root
        self._reject = reject
        self._routes: list[_Route] = []
        self._filters: list[str] = []
        self._queue: asyncio.Queue[tuple[str, bytes, Done]] = asyncio.Queue(QUEUE_LIMIT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._immediate: set[asyncio.Task[None]] = set()
        self.handled = 0
        self.rejected = 0

    def route(
        self,
        mqtt_filter: str,
        pattern: str,
        handler: Handler,
        max_bytes: int = MAX_PAYLOAD_BYTES,
        *,
        immediate: bool = False,
    ) -> None:
        """Subscribe to `{root}/{mqtt_filter}` and send topics matching `pattern` to handler.

        Ordered routes are handled one message at a time in arrival order (whitelist deltas must
        be); immediate routes (authorization answers, commands) are handled at once, beside them.
        """
        self._filters.append(f"{self._root}/{mqtt_filter}")
        self._routes.append(_Route(re.compile(pattern), handler, max_bytes, immediate))

    @property
    def filters(self) -> list[str]:
        """Absolute MQTT subscriptions, all inside this site's root."""
        return list(self._filters)

    def deliver_threadsafe(
        self, topic: str, payload: bytes, retained: bool, done: Done = lambda: None
    ) -> None:
        """Called on paho's thread: hand the message to the loop, in order."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._enqueue, topic, payload, done)

    def _enqueue(self, topic: str, payload: bytes, done: Done) -> None:
        route = self._route_of(topic)
        if route is not None and route[0].immediate:
            if len(self._immediate) >= IMMEDIATE_LIMIT:
                self._refuse(
                    self._rel(topic), "box is overloaded: too many requests in progress; resend later"
                )
                done()
                return
            task = asyncio.get_running_loop().create_task(
                self._handle(topic, payload, done), name="downlink-now"
            )
            self._immediate.add(task)
            task.add_done_callback(self._immediate.discard)
            return
        try:
            self._queue.put_nowait((topic, payload, done))
        except asyncio.QueueFull:
            self._refuse(topic, "box is overloaded: downlink queue full; resend later")
            done()

    async def run(self) -> None:
        """Handle messages until cancelled (attach() first so nothing arrives unbound)."""
        self.attach()
        while True:
            topic, payload, done = await self._queue.get()
            await self._handle(topic, payload, done)

    def attach(self) -> None:
        """Bind to the running loop before the connection starts delivering."""
        self._loop = asyncio.get_running_loop()

    def _rel(self, topic: str) -> str:
        return topic[len(self._root) + 1 :] if topic.startswith(self._root + "/") else topic

    def _route_of(self, topic: str) -> tuple[_Route, re.Match[str]] | None:
        rel = self._rel(topic)
        return next(((r, m) for r in self._routes if (m := r.pattern.fullmatch(rel)) is not None), None)

    async def _handle(self, topic: str, raw: bytes, done: Done) -> None:
        try:
            await self._apply(topic, raw)
        finally:
            done()  # applied or refused: either way the broker need not send it again

    async def _apply(self, topic: str, raw: bytes) -> None:
        rel = self._rel(topic)
        found = self._route_of(topic)
        if found is None:
            self._refuse(rel, "unknown topic")
            return
        route, match = found
        if len(raw) > route.max_bytes:
            self._refuse(rel, f"payload larger than {route.max_bytes} bytes")
            return
        try:
            # Big payloads (whitelist chunks) are parsed off the loop so OCPP replies never wait.
            big = len(raw) > PARSE_OFF_LOOP_BYTES
            payload = (await asyncio.to_thread(json.loads, raw) if big else json.loads(raw)) if raw else None
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

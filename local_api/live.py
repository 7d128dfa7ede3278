"""Live updates: a hub the site notifies on change, and the Server-Sent Events stream it feeds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any


class LiveHubFull(RuntimeError):
    """Refused a subscriber: the hub already serves its maximum number of streams."""


class LiveHub:
    """Wakes every open live stream when the site changed; use from the asyncio loop thread only."""

    def __init__(
        self,
        *,
        min_interval: float = 0.25,
        keepalive: float = 15.0,
        max_subscribers: int = 16,
        retry_ms: int = 2000,
    ) -> None:
        if min_interval < 0 or keepalive <= 0 or max_subscribers < 1 or retry_ms < 0:
            raise ValueError(
                "LiveHub: need min_interval >= 0, keepalive > 0, max_subscribers >= 1, retry_ms >= 0"
            )
        self.min_interval = min_interval
        self.keepalive = keepalive
        self.max_subscribers = max_subscribers
        self.retry_ms = retry_ms
        # One Event per stream, not a queue: a slow browser costs one flag, never a backlog,
        # and it always renders the newest state rather than replaying stale ones.
        self._subscribers: set[asyncio.Event] = set()
        self._closed = asyncio.Event()

    @property
    def subscribers(self) -> int:
        """Number of open live streams."""
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        """True once close() was called: open streams end, new ones end after their first snapshot."""
        return self._closed.is_set()

    def notify(self) -> None:
        """Mark the site as changed for every open stream (cheap; call on every change)."""
        for changed in self._subscribers:
            changed.set()

    def close(self) -> None:
        """End every open stream and refuse to keep new ones open (idempotent)."""
        self._closed.set()
        for changed in self._subscribers:
            changed.set()

    async def _sleep_unless_closed(self, seconds: float) -> None:
        if seconds <= 0:
            return
        # asyncio.timeout rather than wait_for, which can swallow a cancellation on 3.11 (gh-86296).
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closed.wait()

    def stream(
        self, snapshot: Callable[[], dict[str, Any]], alive: Callable[[], bool] = lambda: True
    ) -> AsyncIterator[bytes]:
        """The SSE byte stream of snapshots while alive() holds; raises LiveHubFull when full."""
        # Checked here so the caller can answer 503; the subscription itself starts with the
        # first iteration, because a generator that never runs would never unsubscribe.
        # Between the two the bound is soft by the few requests in flight; that is fine.
        if len(self._subscribers) >= self.max_subscribers:
            raise LiveHubFull(f"{self.max_subscribers} live streams already open")
        return self._events(snapshot, alive)

    async def _events(
        self, snapshot: Callable[[], dict[str, Any]], alive: Callable[[], bool]
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        self._subscribers.add(changed)
        try:
            yield _event("health", snapshot(), retry_ms=self.retry_ms)
            last_sent = loop.time()
            while not self.closed:
                try:
                    async with asyncio.timeout(self.keepalive):
                        await changed.wait()
                except TimeoutError:
                    if not alive():
                        break
                    # A comment line keeps proxies and NAT from dropping an idle stream.
                    yield b": keep-alive\n\n"
                    continue
                # Coalesce bursts (a meter poll can change many values at once) to one
                # snapshot per min_interval; the later read still carries the newest state.
                await self._sleep_unless_closed(last_sent + self.min_interval - loop.time())
                if self.closed:
                    break
                # Checked at every wake: a logout or a revoked token wakes the hub, and the
                # stream must not go on showing the site to whoever holds the old connection.
                if not alive():
                    break
                # Clear before reading: a change that lands after the read wakes us again.
                changed.clear()
                yield _event("health", snapshot())
                last_sent = loop.time()
        finally:
            # Runs on normal end, on hub close and on cancellation when the client went away.
            self._subscribers.discard(changed)


def _event(name: str, data: dict[str, Any], retry_ms: int | None = None) -> bytes:
    # json.dumps escapes newlines inside strings, so the payload is always one data: line.
    head = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"{head}event: {name}\ndata: {body}\n\n".encode()

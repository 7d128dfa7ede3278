"""Whitelist sync over MQTT: snapshot chunks and deltas into the token cache, resync on trouble."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from controller.core.envelope import Outgoing, Topics
from controller.core.token_sync import SyncError, TokenCache, parse_chunk, parse_delta
from controller.core.uplink import token_resync_message, token_state_message
from controller.sync.downlink import Downlink, Rejected

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 1024 * 1024


class TokenSync:
    """Applies the backend's whitelist messages; the working list is never half-updated."""

    def __init__(
        self, cache: TokenCache, topics: Topics, send: Callable[[Sequence[Outgoing]], object]
    ) -> None:
        self._cache = cache
        self._topics = topics
        self._send = send
        self.on_change: Callable[[], None] | None = None  # the working list changed

    def register(self, downlink: Downlink) -> None:
        """Route tokens/full/{sync_id}/{chunk} and tokens/delta to this service."""
        # A chunk carries up to 10,000 tokens (about 3.5 MB); everything else is small.
        downlink.route(
            "tokens/full/+/+",
            r"tokens/full/([A-Za-z0-9._\-]{1,64})/([0-9]{1,6})",
            self._on_chunk,
            CHUNK_BYTES,
        )
        downlink.route("tokens/delta", r"tokens/delta", self._on_delta)

    async def announce(self) -> None:
        """Publish the version held, so the backend knows where to continue (or to send a snapshot)."""
        version, count = await asyncio.to_thread(lambda: (self._cache.version(), self._cache.count()))
        self._send([token_state_message(version, count, self._topics)])

    async def _on_chunk(self, match: re.Match[str], payload: Any) -> None:
        sync_id, chunk_no = match.group(1), int(match.group(2))
        try:
            # Validating 10,000 tokens takes a while: off the loop, like the JSON parse before it.
            chunk = await asyncio.to_thread(parse_chunk, sync_id, chunk_no, payload)
            complete = await asyncio.to_thread(self._cache.apply_chunk, chunk)
        except SyncError as exc:
            # A broken snapshot must never replace the working list: drop it and ask again.
            await asyncio.to_thread(self._cache.abandon_snapshot)
            await self._resync(f"snapshot {sync_id} chunk {chunk_no}: {exc}")
            raise Rejected(str(exc)) from exc
        if complete:
            log.info("token whitelist replaced by snapshot %s (version %d)", sync_id, chunk.version)
            await self._changed()

    async def _on_delta(self, match: re.Match[str], payload: Any) -> None:
        try:
            delta = parse_delta(payload)
            await asyncio.to_thread(self._cache.apply_delta, delta)
        except SyncError as exc:
            await self._resync(f"delta: {exc}")
            raise Rejected(str(exc)) from exc
        await self._changed()

    async def _changed(self) -> None:
        await self.announce()
        if self.on_change is not None:
            self.on_change()

    async def _resync(self, reason: str) -> None:
        version = await asyncio.to_thread(self._cache.version)
        log.warning("token whitelist: %s; asking for a full snapshot", reason)
        self._send([token_resync_message(version, reason, self._topics)])

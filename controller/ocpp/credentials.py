"""HTTP Basic passwords (profiles 1 and 2): scrypt hashes in the registry, checked off the loop, cached."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections import deque
from typing import Any

from controller.core.passwords import hash_password, verify_password
from controller.ocpp.context import OcppContext

log = logging.getLogger(__name__)

# At most this many scrypt runs at once (16 MiB and a core each): a reconnect storm queues here
# instead of filling the thread pool and the memory of a small edge box.
MAX_PARALLEL = 2
# Wrong passwords remembered per charger, so one that keeps retrying a stale password costs one
# scrypt run per distinct password rather than one per attempt.
MAX_REFUSED = 4


class _MemoryHashes:
    """Hash records kept in memory only: for a context without a registry (nothing to persist to)."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}

    def password_hash(self, charger_id: str) -> dict[str, Any] | None:
        return self._records.get(charger_id)

    def set_password_hash(self, charger_id: str, record: dict[str, Any]) -> None:
        self._records[charger_id] = record

    def forget_password_hash(self, charger_id: str) -> None:
        self._records.pop(charger_id, None)

    def password_hash_ids(self) -> set[str]:
        return set(self._records)


class Credentials:
    """Checks a charger's Basic password against its stored scrypt hash, never against plaintext.

    The hash is derived from the configured password once (at start, and again only when the
    configuration's password no longer matches it), so siteedge persists no plaintext. Checks run
    in a worker thread; a successful one is remembered in memory as an HMAC of the password under
    a per-process random key, so a reconnecting charger costs a hash, not a scrypt run.
    """

    def __init__(self, ctx: OcppContext) -> None:
        self._ctx = ctx
        self._hashes: Any = ctx.registry if ctx.registry is not None else _MemoryHashes()
        self._key = secrets.token_bytes(32)  # process-local: the cache means nothing outside it
        self._synced: dict[str, asyncio.Task[None]] = {}
        self._accepted: dict[str, tuple[str, bytes]] = {}  # charger -> (stored hash, fingerprint)
        self._refused: dict[str, tuple[str, deque[bytes]]] = {}
        self._slots = asyncio.Semaphore(MAX_PARALLEL)

    async def start(self) -> None:
        """Drop hashes of chargers without a configured password, then derive the missing ones."""
        wanted = [c.id for c in self._ctx.config.chargers if c.password]
        for cp_id in self._hashes.password_hash_ids() - set(wanted):
            self._hashes.forget_password_hash(cp_id)
        for cp_id in wanted:  # one at a time: a charger's own handshake jumps the queue
            try:
                await self._ensure_synced(cp_id)
            except Exception:  # one charger's failure (a full disk) must not leave the others
                log.exception("charger %s: password hash not derived", cp_id)

    async def check(self, charger_id: str, given: str) -> bool:
        """True if given is the charger's password (False if it has none configured)."""
        if self._ctx.password_of(charger_id) is None:
            return False
        try:
            await self._ensure_synced(charger_id)
        except Exception:  # refused rather than raised: the handshake answers 401, the server lives on
            log.exception("charger %s: password hash not available", charger_id)
            return False
        record = self._hashes.password_hash(charger_id)
        if record is None:
            return False
        stored = str(record.get("hash"))
        mark = hmac.new(self._key, given.encode(), hashlib.sha256).digest()
        accepted = self._accepted.get(charger_id)
        if accepted is not None and accepted[0] == stored and hmac.compare_digest(accepted[1], mark):
            return True
        refused = self._refused.get(charger_id)
        if (
            refused is not None
            and refused[0] == stored
            and any(hmac.compare_digest(m, mark) for m in refused[1])
        ):
            return False
        async with self._slots:
            ok = await asyncio.to_thread(verify_password, given, record)
        if ok:
            self._accepted[charger_id] = (stored, mark)
        else:
            if refused is None or refused[0] != stored:
                refused = self._refused[charger_id] = (stored, deque(maxlen=MAX_REFUSED))
            refused[1].append(mark)
        return ok

    async def _ensure_synced(self, charger_id: str) -> None:
        task = self._synced.get(charger_id)
        if task is None:
            task = asyncio.create_task(self._sync(charger_id), name=f"ocpp-password-{charger_id}")
            self._synced[charger_id] = task
        try:
            # Shielded: a handshake given up by its client must not cancel the derivation others await.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._synced.get(charger_id) is task:
                del self._synced[charger_id]  # the next handshake tries again
            raise

    async def _sync(self, charger_id: str) -> None:
        password = self._ctx.password_of(charger_id)
        if password is None:
            return
        record = self._hashes.password_hash(charger_id)
        async with self._slots:
            if record is not None and await asyncio.to_thread(verify_password, password, record):
                return
            fresh = await asyncio.to_thread(hash_password, password)
        # Written on the loop thread, where every other registry write happens.
        self._hashes.set_password_hash(charger_id, fresh)
        log.info("charger %s: password hash %s", charger_id, "derived" if record is None else "renewed")

"""HTTP Basic passwords (profiles 1 and 2): scrypt hashes in the registry, checked off the loop, cached."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections import deque
from typing import Any

from controller.core.charger_credentials import (
    CredentialRefused,
    generate_password,
    is_technician,
    password_problem,
    switched,
    technician_record,
)
from controller.core.clock import rfc3339
from controller.core.passwords import hash_password, verify_password
from controller.core.ports import CommandStatus
from controller.ocpp.commands import CommandService
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

    def security_profile(self, charger_id: str) -> int:
        return 0  # without a registry only configured chargers (and their profiles) exist


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
        # (charger, stored hash) -> fingerprint of the password that matched / recently refused ones.
        self._accepted: dict[tuple[str, str], bytes] = {}
        self._refused: dict[tuple[str, str], deque[bytes]] = {}
        self._slots = asyncio.Semaphore(MAX_PARALLEL)

    async def start(self) -> None:
        """Drop config-derived hashes without a configured password, then derive the missing ones."""
        wanted = [c.id for c in self._ctx.config.chargers if c.password]
        for cp_id in self._hashes.password_hash_ids() - set(wanted):
            if not is_technician(self._hashes.password_hash(cp_id)):  # a technician's stays
                self._hashes.forget_password_hash(cp_id)
        for cp_id in wanted:  # one at a time: a charger's own handshake jumps the queue
            try:
                await self._ensure_synced(cp_id)
            except Exception:  # one charger's failure (a full disk) must not leave the others
                log.exception("charger %s: password hash not derived", cp_id)

    async def check(self, charger_id: str, given: str | None) -> bool:
        """True if given (None: no Basic credentials) is the charger's password, or its old one while
        it switches to a new one; the first connection with the new one ends the switch."""
        if self._ctx.password_of(charger_id) is not None:
            try:
                await self._ensure_synced(charger_id)
            except Exception:  # refused rather than raised: the handshake answers 401, the server lives on
                log.exception("charger %s: password hash not available", charger_id)
                return False
        record = self._hashes.password_hash(charger_id)
        if record is None:
            return False
        switching = bool(record.get("switching"))
        previous = record.get("previous") if switching else None
        if given is None:  # only while switching from no password at all (profile 0)
            return switching and previous is None and not record.get("previous_profile")
        if await self._matches(charger_id, given, record):
            if switching and self._hashes.password_hash(charger_id) is record:
                self._hashes.set_password_hash(charger_id, switched(record))
                log.info(
                    "charger %s: connected with its new password; the old one is refused now", charger_id
                )
            return True
        return previous is not None and await self._matches(charger_id, given, previous)

    def switching(self, charger_id: str) -> bool:
        """True while the charger's old credential is still accepted beside its new password."""
        record = self._hashes.password_hash(charger_id)
        return record is not None and bool(record.get("switching"))

    def forget_checks(self, charger_id: str) -> None:
        """Forget remembered check outcomes of the charger (its stored password changed)."""
        for cache in (self._accepted, self._refused):
            for key in [k for k in cache if k[0] == charger_id]:
                del cache[key]

    async def _matches(self, charger_id: str, given: str, record: dict[str, Any]) -> bool:
        stored = str(record.get("hash"))
        mark = hmac.new(self._key, given.encode(), hashlib.sha256).digest()
        key = (charger_id, stored)
        accepted = self._accepted.get(key)
        if accepted is not None and hmac.compare_digest(accepted, mark):
            return True
        refused = self._refused.get(key)
        if refused is not None and any(hmac.compare_digest(m, mark) for m in refused):
            return False
        async with self._slots:
            ok = await asyncio.to_thread(verify_password, given, record)
        if ok:
            self._accepted[key] = mark
        else:
            self._refused.setdefault(key, deque(maxlen=MAX_REFUSED)).append(mark)
        return ok

    async def ensure_synced(self, charger_id: str) -> None:
        """The configured password's hash is stored (derived once per process when needed)."""
        await self._ensure_synced(charger_id)

    async def derive(self, password: str) -> dict[str, Any]:
        """A fresh hash record of password, derived off the loop within the scrypt budget."""
        async with self._slots:
            return await asyncio.to_thread(hash_password, password)

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
            if is_technician(record):
                # A technician's password wins while the configuration still has the one it replaced.
                replaced = record.get("config") if record is not None else None
                if replaced is not None and await asyncio.to_thread(verify_password, password, replaced):
                    return
                log.warning(
                    "charger %s: configured password changed since a technician set one; "
                    "the configured one applies",
                    charger_id,
                )
            elif record is not None and await asyncio.to_thread(verify_password, password, record):
                return
            fresh = await asyncio.to_thread(hash_password, password)
        # Written on the loop thread, where every other registry write happens.
        self._hashes.set_password_hash(charger_id, fresh)
        log.info("charger %s: password hash %s", charger_id, "derived" if record is None else "renewed")


class CredentialService:
    """Technicians set a charger's Basic password: pushed to a connected charger first, else stored.

    A connected charger gets ChangeConfiguration AuthorizationKey (1.6) or SetVariables
    SecurityCtrlr.BasicAuthPassword (2.0.1); only on Accepted is the new hash stored, and its old
    credential stays valid until it has connected once with the new one. A charger that is not
    connected must present the stored password from its next connection on.
    """

    def __init__(self, credentials: Credentials, commands: CommandService, ctx: OcppContext) -> None:
        self._credentials = credentials
        self._commands = commands
        self._ctx = ctx
        self._locks: dict[str, asyncio.Lock] = {}  # one change per charger at a time

    async def set_password(
        self, charger_id: str, password: str | None, generate: bool, security_profile: int | None = None
    ) -> dict[str, Any]:
        """Set the password (or generate one); JSON-ready outcome. Raises CredentialRefused."""
        # Serialized per charger: a second change must start from the record the first one stored.
        async with self._locks.setdefault(charger_id, asyncio.Lock()):
            return await self._set_password(charger_id, password, generate, security_profile)

    async def _set_password(
        self, charger_id: str, password: str | None, generate: bool, security_profile: int | None
    ) -> dict[str, Any]:
        ctx, reg = self._ctx, self._ctx.registry
        if reg is None or not reg.knows(charger_id):
            raise CredentialRefused(
                "unknown", f"charger {charger_id!r} is neither configured nor ever booted here"
            )
        profile = self._profile(charger_id, security_profile)
        link = ctx.sessions.get(charger_id)
        version = link.ocpp_version if link is not None else reg.ocpp_version(charger_id)
        if generate == (password is not None):
            raise CredentialRefused("invalid", 'give either a password or "generate": true')
        password = generate_password() if password is None else password
        problem = password_problem(password, version)
        if problem is not None:
            raise CredentialRefused("invalid", problem)
        if ctx.password_of(charger_id) is not None:
            # The configured password's hash must be in place before it is replaced (and kept as `config`).
            await self._credentials.ensure_synced(charger_id)
        old = reg.password_hash(charger_id)
        replaced = old.get("config") if old is not None and is_technician(old) else old
        fresh = await self._credentials.derive(password)
        if link is not None:
            await self._push(charger_id, link.ocpp_version, password)
            previous_profile = ctx.security_profile(charger_id)
        now = rfc3339(ctx.clock.now())
        record = technician_record(
            fresh,
            profile,
            now,
            previous=old,
            previous_profile=previous_profile if link is not None else 0,
            switching=link is not None,
            config=replaced,
        )
        reg.set_password_hash(charger_id, record)
        self._credentials.forget_checks(charger_id)
        path = "pushed" if link is not None else "stored"
        log.info(
            "charger %s: password set by a technician (%s, security profile %d)", charger_id, path, profile
        )
        out: dict[str, Any] = {
            "id": charger_id,
            "path": path,
            "security_profile": profile,
            "ocpp_version": version,
            "set_at": now,
        }
        if path == "pushed":
            out["detail"] = (
                "The charger accepted the new password. Its old credential is accepted until it "
                "connects with the new one."
            )
        else:
            out["detail"] = (
                "Enter this password on the charger: siteedge requires it from its next connection."
            )
        if generate or path == "stored":
            out["password"] = password  # shown once; siteedge keeps only its hash
        return out

    def _profile(self, charger_id: str, wanted: int | None) -> int:
        configured = self._ctx.charger(charger_id)
        if configured is not None:
            have = configured.security_profile
            if have == 3:
                raise CredentialRefused(
                    "conflict",
                    f"charger {charger_id} uses security profile 3 (client certificates): no password",
                )
            if have == 0:
                raise CredentialRefused(
                    "conflict",
                    f"charger {charger_id} is configured without a security profile; set security_profile "
                    "1 or 2 in the configuration first",
                )
            if wanted not in (None, have):
                raise CredentialRefused(
                    "conflict",
                    f"charger {charger_id}'s security profile ({have}) is set in the configuration",
                )
            return have
        current = self._ctx.security_profile(charger_id)
        profile = wanted if wanted is not None else max(current, 1)
        if profile == 3:
            raise CredentialRefused("invalid", "security profile 3 uses client certificates, not a password")
        if profile not in (1, 2):
            raise CredentialRefused("invalid", "security_profile is 1 (Basic) or 2 (TLS + Basic)")
        if profile < current:
            raise CredentialRefused(
                "conflict", f"a security profile is never lowered ({current} to {profile})"
            )
        if profile == 2 and not self._ctx.config.ocpp.tls_cert:
            raise CredentialRefused(
                "conflict", "security profile 2 needs the wss:// listener ([ocpp] tls_cert)"
            )
        return profile

    async def _push(self, charger_id: str, version: str, password: str) -> None:
        if version == "1.6":
            params: dict[str, Any] = {"key": "AuthorizationKey", "value": password}
            result = await self._commands.call(charger_id, "ChangeConfiguration", params)
            word = result.ocpp_status
        else:
            data = {
                "attributeValue": password,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
            result = await self._commands.call(charger_id, "SetVariables", {"setVariableData": [data]})
            answers = result.payload.get("setVariableResult") or [{}]
            word = answers[0].get("attributeStatus") if result.status is CommandStatus.ACCEPTED else None
        if result.status is CommandStatus.ACCEPTED and word == "Accepted":
            return
        if result.status is CommandStatus.OFFLINE:
            raise CredentialRefused(
                "conflict", f"charger {charger_id} went offline before answering; nothing changed"
            )
        said = word or result.error or result.status.value
        why = f": {result.detail}" if result.detail else ""
        raise CredentialRefused(
            "upstream", f"charger {charger_id} did not accept the new password ({said}{why}); nothing changed"
        )

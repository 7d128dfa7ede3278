"""Accounts, API tokens, browser sessions, the one-time setup code and the audit log, over a store.

Lives on the asyncio loop thread: the in-memory maps are the truth while running (this process
is the only writer), the store makes them durable. Slow work (scrypt, disk writes) goes to a
worker thread; mutations of the account list are serialised by one asyncio lock, so two admins
demoting each other cannot both succeed and leave the site without one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from controller.core.access import (
    SESSION_TOUCH,
    SETUP_ALPHABET,
    SETUP_GROUP_LEN,
    SETUP_GROUPS,
    AccountStore,
    AuditEntry,
    LoginThrottle,
    Role,
    SessionRecord,
    ThrottleRules,
    TokenRecord,
    UserRecord,
    format_setup_code,
    normalise_setup_code,
    password_problem,
    session_expired,
    token_name_problem,
    username_problem,
)
from controller.core.clock import Clock, rfc3339
from controller.core.passwords import hash_password, verify_password
from local_api.errors import ApiError

log = logging.getLogger(__name__)

TOKEN_PREFIX = "se_"
HASHING_AT_ONCE = 2
MAX_SESSIONS_PER_USER = 20  # browsers and devices of one person; more are oldest-out
T = TypeVar("T")


def digest(secret: str) -> str:
    """SHA-256 hex of a random secret (session id, API token): enough for 256 random bits."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a logged-in user (session) or an API token, with the role in force now."""

    name: str  # the username, or token:<name>
    role: Role
    kind: str  # "session" or "token"
    session_digest: str | None = None
    csrf: str | None = None
    stale: bool = False  # the session's last_seen is due to be written back
    token_digest: str | None = None  # the API token's digest, so its revocation can be noticed

    def as_json(self) -> dict[str, str]:
        """{"username", "role"} as the API shows it."""
        return {"username": self.name, "role": self.role.value}


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: the cookie values to set (the id is never stored in clear)."""

    principal: Principal
    session_id: str
    csrf: str


def _locked(wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        f"too many failed attempts; try again in {math.ceil(seconds / 60)} minute(s)",
        "locked_out",
        headers={"retry-after": str(seconds)},
        extra={"retry_after_s": seconds},
    )


class Security:
    """The web UI's accounts and sessions; use from the asyncio loop thread only."""

    def __init__(
        self,
        store: AccountStore,
        clock: Clock,
        *,
        setup_code_file: Path | None = None,
        throttle: ThrottleRules | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._setup_file = setup_code_file
        self.throttle = LoginThrottle(throttle)
        self._users = {u.username: u for u in store.users()}
        self._tokens = {t.digest: t for t in store.tokens()}
        now = clock.now()
        sessions = store.sessions()
        expired = [s.digest for s in sessions if session_expired(s.created, s.last_seen, now)]
        store.delete_sessions(expired)
        self._sessions = {s.digest: s for s in sessions if s.digest not in expired}
        self._lock = asyncio.Lock()
        self._dummy: dict[str, Any] | None = None  # verified against for unknown usernames
        # scrypt takes 16 MiB and ~0.1 s each: a login flood must not take every worker thread
        # (SQLite reads share the pool) nor that much memory at once.
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)
        self.setup_code: str | None = None
        # Called after sessions or tokens end, so long-lived streams re-check their caller now.
        self.on_revoke: Callable[[], None] | None = None

    async def _scrypt(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a password hash or check in a worker thread, at most HASHING_AT_ONCE at a time."""
        async with self._hashing:
            return await asyncio.to_thread(fn, *args)

    # --- setup -----------------------------------------------------------------------------------

    @property
    def setup_required(self) -> bool:
        """True while no account exists: the setup code creates the first admin."""
        return not self._users

    def prepare_setup(self) -> str | None:
        """Make a fresh one-time setup code (written to the setup file, 0600) if no account exists."""
        if not self.setup_required:
            self._remove_setup_file()
            return None
        raw = "".join(secrets.choice(SETUP_ALPHABET) for _ in range(SETUP_GROUPS * SETUP_GROUP_LEN))
        self.setup_code = format_setup_code(raw)
        if self._setup_file is not None:
            try:
                self._setup_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self._setup_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(self.setup_code + "\n")
                os.chmod(self._setup_file, 0o600)  # an older file may have had other permissions
            except OSError as exc:  # the log line still carries the code
                log.warning("cannot write the setup code to %s: %s", self._setup_file, exc)
        return self.setup_code

    def _remove_setup_file(self) -> None:
        if self._setup_file is not None:
            self._setup_file.unlink(missing_ok=True)

    async def setup(self, code: str, username: str, password: str, client: str) -> NewSession:
        """Create the first admin with the setup code and log it in; only while setup is required."""
        now = self._clock.monotonic()
        key = f"setup@{client}"  # per client: one guesser must not lock the technician out
        if (wait := self.throttle.retry_after(key, client, now)) is not None:
            raise _locked(wait)
        async with self._lock:
            if not self.setup_required or self.setup_code is None:
                raise ApiError(409, "setup is already done; log in instead", "conflict")
            want = normalise_setup_code(self.setup_code).encode()
            if not hmac.compare_digest(normalise_setup_code(code).encode(), want):
                self.throttle.failed(key, client, now)
                why = "wrong setup code (see the siteedge log or setup-code.txt)"
                raise ApiError(403, why, "bad_setup_code")
            await self._put_user(username, password, Role.ADMIN)
            self.setup_code = None
            await asyncio.to_thread(self._remove_setup_file)
        log.warning("web UI: first admin %r created with the setup code", username)
        return await self._open_session(username)

    # --- authentication --------------------------------------------------------------------------

    def from_token(self, token: str) -> Principal | None:
        """The principal of an API token, None if unknown or revoked."""
        found = self._tokens.get(digest(token)) if token.startswith(TOKEN_PREFIX) else None
        return (
            None
            if found is None
            else Principal(f"token:{found.name}", found.role, "token", token_digest=found.digest)
        )

    def _live_session(self, key: str, now: datetime) -> tuple[SessionRecord, UserRecord] | None:
        """The session under a digest and its user; an expired one (or one whose user is gone) ends."""
        found = self._sessions.get(key)
        if found is None:
            return None
        user = self._users.get(found.username)
        if user is None or session_expired(found.created, found.last_seen, now):
            self._sessions.pop(key, None)
            return None
        return found, user

    def from_session(self, session_id: str) -> Principal | None:
        """The principal of a session cookie, None if unknown, expired or its user is gone."""
        key = digest(session_id)
        now = self._clock.now()
        live = self._live_session(key, now)
        if live is None:
            return None
        found, user = live
        stale = now - found.last_seen >= SESSION_TOUCH
        if stale:
            self._sessions[key] = replace(found, last_seen=now)
        return Principal(user.username, user.role, "session", key, found.csrf, stale)

    def still_valid(self, principal: Principal) -> bool:
        """True while the caller's session or API token still exists (for long-lived streams)."""
        if principal.kind == "token":
            return principal.token_digest in self._tokens
        return self._live_session(principal.session_digest or "", self._clock.now()) is not None

    def _revoked(self) -> None:
        if self.on_revoke is not None:
            self.on_revoke()

    async def touch(self, principal: Principal) -> None:
        """Write a session's new last_seen back (from_session marked it stale)."""
        found = self._sessions.get(principal.session_digest or "")
        if found is not None:
            await asyncio.to_thread(self._store.put_session, found)

    async def login(self, username: str, password: str, client: str) -> NewSession:
        """Check a password (throttled per username and per client) and open a session."""
        now = self._clock.monotonic()
        if (wait := self.throttle.retry_after(username, client, now)) is not None:
            raise _locked(wait)
        user = self._users.get(username)
        if user is None and self._dummy is None:
            self._dummy = await self._scrypt(hash_password, secrets.token_hex(16))
        # An unknown name costs a full scrypt too: timing must not tell which usernames exist.
        record = user.password if user is not None else self._dummy
        ok = await self._scrypt(verify_password, password, record or {}) and user is not None
        if not ok:
            self.throttle.failed(username, client, self._clock.monotonic())
            raise ApiError(401, "wrong username or password", "bad_credentials")
        # Another request may have locked the name while this one was hashing.
        if (wait := self.throttle.retry_after(username, client, self._clock.monotonic())) is not None:
            raise _locked(wait)
        self.throttle.succeeded(username)
        return await self._open_session(username)

    async def _open_session(self, username: str) -> NewSession:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock.now()
        # Sessions nobody uses again are forgotten here, so neither memory nor the file grows;
        # beyond MAX_SESSIONS_PER_USER the user's oldest sessions end.
        expired = [d for d, s in self._sessions.items() if session_expired(s.created, s.last_seen, now)]
        mine = sorted((s for s in self._sessions.values() if s.username == username), key=lambda s: s.created)
        expired += [s.digest for s in mine[: max(0, len(mine) - MAX_SESSIONS_PER_USER + 1)]]
        for d in set(expired):
            del self._sessions[d]
        if expired:
            self._revoked()  # their live streams end too
            await asyncio.to_thread(self._store.delete_sessions, sorted(set(expired)))
        user = self._users.get(username)
        if user is None:  # deleted by an admin while the password was being checked
            raise ApiError(401, "wrong username or password", "bad_credentials")
        record = SessionRecord(digest(session_id), username, csrf, now, now)
        self._sessions[record.digest] = record
        await asyncio.to_thread(self._store.put_session, record)
        return NewSession(Principal(username, user.role, "session", record.digest, csrf), session_id, csrf)

    async def logout(self, principal: Principal) -> None:
        """End the caller's session (an API token has none: nothing happens)."""
        if principal.session_digest is not None:
            self._sessions.pop(principal.session_digest, None)
            self._revoked()
            await asyncio.to_thread(self._store.delete_sessions, [principal.session_digest])

    async def _end_sessions_of(self, username: str) -> None:
        gone = [d for d, s in self._sessions.items() if s.username == username]
        for d in gone:
            del self._sessions[d]
        self._revoked()
        await asyncio.to_thread(self._store.delete_sessions, gone)

    async def change_own_password(
        self, principal: Principal, current: str, new: str, client: str
    ) -> NewSession:
        """Change the caller's password: every session of the user ends, a new one is opened."""
        if principal.kind != "session":
            raise ApiError(403, "an API token has no password", "forbidden")
        name = principal.name
        now = self._clock.monotonic()
        if (wait := self.throttle.retry_after(name, client, now)) is not None:
            raise _locked(wait)
        user = self._users.get(name)
        if user is None or not await self._scrypt(verify_password, current, user.password):
            self.throttle.failed(name, client, self._clock.monotonic())
            raise ApiError(401, "the current password is wrong", "bad_credentials")
        async with self._lock:
            await self._put_user(name, new, user.role)
            await self._end_sessions_of(name)
        return await self._open_session(name)

    # --- users -----------------------------------------------------------------------------------

    def users(self) -> list[dict[str, str]]:
        """Every account as {"username", "role", "created"}, sorted by name."""
        return [
            {"username": u.username, "role": u.role.value, "created": rfc3339(u.created)}
            for u in sorted(self._users.values(), key=lambda u: u.username)
        ]

    async def _put_user(self, username: str, password: str | None, role: Role) -> UserRecord:
        """Create or update an account (caller holds the lock); ApiError 422 for bad values."""
        if (why := username_problem(username)) is not None:
            raise ApiError(422, why, "invalid")
        old = self._users.get(username)
        if password is not None:
            if (why := password_problem(password)) is not None:
                raise ApiError(422, why, "invalid")
            record = await self._scrypt(hash_password, password)
        elif old is not None:
            record = old.password
        else:
            raise ApiError(422, "a new account needs a password", "invalid")
        user = UserRecord(username, role, record, old.created if old else self._clock.now())
        await asyncio.to_thread(self._store.put_user, user)
        self._users[username] = user
        return user

    def _last_admin(self, username: str) -> bool:
        admins = [u for u in self._users.values() if u.role is Role.ADMIN]
        return len(admins) == 1 and admins[0].username == username

    async def add_user(self, username: str, password: str, role: Role) -> dict[str, str]:
        """Create an account; 409 if the name is taken."""
        async with self._lock:
            if username in self._users:
                raise ApiError(409, f"user {username!r} exists", "conflict")
            user = await self._put_user(username, password, role)
        return {"username": user.username, "role": user.role.value, "created": rfc3339(user.created)}

    async def update_user(self, username: str, role: Role | None, password: str | None) -> dict[str, str]:
        """Change an account's role and/or password (a new password ends its sessions)."""
        async with self._lock:
            user = self._users.get(username)
            if user is None:
                raise ApiError(404, f"no user {username!r}", "not_found")
            if role is not None and role is not Role.ADMIN and self._last_admin(username):
                raise ApiError(409, "the last admin cannot be demoted; make another admin first", "conflict")
            updated = await self._put_user(username, password, role or user.role)
            if password is not None:
                await self._end_sessions_of(username)
        return {"username": updated.username, "role": updated.role.value, "created": rfc3339(updated.created)}

    async def remove_user(self, username: str) -> None:
        """Delete an account and its sessions; the last admin cannot be removed (409)."""
        async with self._lock:
            if username not in self._users:
                raise ApiError(404, f"no user {username!r}", "not_found")
            if self._last_admin(username):
                raise ApiError(409, "the last admin cannot be removed; make another admin first", "conflict")
            await asyncio.to_thread(self._store.delete_user, username)
            del self._users[username]
            await self._end_sessions_of(username)

    # --- API tokens ------------------------------------------------------------------------------

    def tokens(self) -> list[dict[str, str]]:
        """Every API token as {"id", "name", "role", "created"} (never the secret)."""
        return [
            {"id": t.id, "name": t.name, "role": t.role.value, "created": rfc3339(t.created)}
            for t in sorted(self._tokens.values(), key=lambda t: (t.created, t.id))
        ]

    def issue_token(self, name: str, role: Role | str) -> dict[str, str]:
        """Create an API token: {"id", "name", "role", "token"}; the secret is shown only here."""
        if (why := token_name_problem(name)) is not None:
            raise ApiError(422, why, "invalid")
        if any(t.name == name for t in self._tokens.values()):
            raise ApiError(409, f"an API token named {name!r} exists", "conflict")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(secrets.token_hex(8), name, Role(role), digest(secret), self._clock.now())
        # Written synchronously: rare, small, and callable from setup code outside a request.
        self._store.put_token(record)
        self._tokens[record.digest] = record
        return {"id": record.id, "name": name, "role": record.role.value, "token": secret}

    async def revoke_token(self, token_id: str) -> None:
        """Delete an API token (404 if unknown); requests with it are refused from now on."""
        found = next((t for t in self._tokens.values() if t.id == token_id), None)
        if found is None:
            raise ApiError(404, f"no API token {token_id!r}", "not_found")
        del self._tokens[found.digest]
        self._revoked()
        await asyncio.to_thread(self._store.delete_token, token_id)

    # --- audit -----------------------------------------------------------------------------------

    async def record(
        self, principal: Principal | None, method: str, path: str, status: int, client: str, summary: str
    ) -> None:
        """Append one audit entry (never with secrets: callers pass a summary, not the body)."""
        entry = AuditEntry(
            self._clock.now(),
            principal.name if principal else "-",
            principal.role.value if principal else "-",
            method,
            path[:300],
            status,
            client,
            summary[:300],
        )
        try:
            await asyncio.to_thread(self._store.append_audit, entry)
        except Exception:  # an audit write must not turn a done action into an error answer
            log.exception("cannot write the audit entry for %s %s", method, path)

    async def audit(self, limit: int, offset: int) -> list[dict[str, Any]]:
        """Audit entries newest first, JSON-ready."""
        entries = await asyncio.to_thread(self._store.audit, limit, offset)
        return [e.as_json() for e in entries]

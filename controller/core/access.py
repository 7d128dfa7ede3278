"""Web UI access policy, pure: roles, who may call what, login lockout, session lifetimes, records."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from controller.core.clock import rfc3339


class Role(StrEnum):
    """What an account or API token may do; each role includes the ones below it."""

    VIEWER = "viewer"
    TECHNICIAN = "technician"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 1, Role.TECHNICIAN: 2, Role.ADMIN: 3}


def allows(have: Role, need: Role) -> bool:
    """True if a principal with role `have` may do what needs role `need`."""
    return _RANK[have] >= _RANK[need]


API = "/api/v1"
# Reachable without logging in: the page shell and what the login and first-setup screens call.
_PUBLIC_EXACT = {("GET", "/"), ("HEAD", "/"), ("GET", f"{API}/auth/state"), ("HEAD", f"{API}/auth/state")}
_PUBLIC_POST = {f"{API}/auth/login", f"{API}/auth/setup"}
# Any logged-in principal, whatever the method: leaving and changing one's own password.
_SELF_SERVICE = {f"{API}/auth/logout", f"{API}/auth/password"}
_ADMIN_PREFIXES = (f"{API}/auth/users", f"{API}/auth/api-tokens", f"{API}/audit")
_ADMIN_EXACT = {
    ("PUT", f"{API}/system/config"),
    ("POST", f"{API}/system/restore"),
    ("GET", f"{API}/system/backup"),
    ("HEAD", f"{API}/system/backup"),
    ("POST", f"{API}/system/restart"),
}
READ_METHODS = frozenset({"GET", "HEAD"})


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def required_role(method: str, path: str) -> Role | None:
    """The least role a request needs; None for the public ones (login, setup, the page itself)."""
    method = method.upper()
    # Normalise a trailing slash so "/api/v1/audit/" is not a way around the admin rule.
    norm = path.rstrip("/") or "/"
    if (method, norm) in _PUBLIC_EXACT or (method == "POST" and norm in _PUBLIC_POST):
        return None
    if method in READ_METHODS and _under(norm, "/static"):
        return None
    if any(_under(norm, p) for p in _ADMIN_PREFIXES) or (method, norm) in _ADMIN_EXACT:
        return Role.ADMIN
    if norm in _SELF_SERVICE:
        return Role.VIEWER
    return Role.VIEWER if method in READ_METHODS else Role.TECHNICIAN


def needs_csrf(method: str) -> bool:
    """True for methods that change something (a cookie-authenticated one must prove its origin)."""
    return method.upper() not in READ_METHODS | {"OPTIONS"}


# --- credentials -------------------------------------------------------------------------------

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # scrypt cost does not depend on length, but nobody needs a megabyte
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}")
SETUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a console by a person
SETUP_GROUPS, SETUP_GROUP_LEN = 3, 4


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None if it is acceptable."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password must have at most {MAX_PASSWORD} characters"
    return None


def username_problem(username: str) -> str | None:
    """Why a username is refused, or None."""
    if not _USERNAME.fullmatch(username):
        return "the username must be 1-64 letters, digits or . _ @ - (starting with a letter or digit)"
    return None


def token_name_problem(name: str) -> str | None:
    """Why an API token name is refused, or None."""
    if not _TOKEN_NAME.fullmatch(name):
        return "the token name must be 1-64 letters, digits, spaces or . _ @ : -"
    return None


def format_setup_code(raw: str) -> str:
    """XXXX-XXXX-XXXX from 12 characters of SETUP_ALPHABET."""
    n = SETUP_GROUP_LEN
    return "-".join(raw[i : i + n] for i in range(0, SETUP_GROUPS * n, n))


def normalise_setup_code(typed: str) -> str:
    """What a person typed, upper-cased, without spaces and dashes (compare this to the code's)."""
    return "".join(c for c in typed.upper() if c not in " -")


# --- sessions ------------------------------------------------------------------------------------

SESSION_IDLE = timedelta(hours=12)
SESSION_ABSOLUTE = timedelta(days=7)
# last_seen is written back at most this often: a bounded write rate, idle expiry a little early.
SESSION_TOUCH = timedelta(minutes=5)


def session_expired(created: datetime, last_seen: datetime, now: datetime) -> bool:
    """True once a session was idle for SESSION_IDLE or lives past SESSION_ABSOLUTE."""
    return now - last_seen >= SESSION_IDLE or now - created >= SESSION_ABSOLUTE


# --- login throttling ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    """Failures within `window_s` that lock a username or a client address for `lockout_s`."""

    per_user: int = 5
    per_client: int = 20
    window_s: float = 15 * 60.0
    lockout_s: float = 15 * 60.0
    max_keys: int = 10_000  # forget the oldest keys beyond this: memory stays bounded under a flood


class LoginThrottle:
    """Counts failed logins per username and per client address; times are monotonic seconds."""

    def __init__(self, rules: ThrottleRules | None = None) -> None:
        self.rules = rules or ThrottleRules()
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._locked: dict[str, float] = {}

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str]:
        # Usernames are case-insensitive here: "Admin" must not be a fresh set of 5 guesses.
        return f"user:{username.lower()}", f"client:{client}"

    def retry_after(self, username: str, client: str, now: float) -> float | None:
        """Seconds until a locked username or client may try again, None if not locked."""
        waits = [until - now for key in self._keys(username, client) if (until := self._locked.get(key))]
        live = [w for w in waits if w > 0]
        return max(live) if live else None

    def failed(self, username: str, client: str, now: float) -> None:
        """Record a failed attempt; may lock the username or the client."""
        user_key, client_key = self._keys(username, client)
        for key, limit in ((user_key, self.rules.per_user), (client_key, self.rules.per_client)):
            recent = [t for t in self._failures.pop(key, []) if now - t < self.rules.window_s]
            recent.append(now)
            self._failures[key] = recent
            if len(recent) >= limit:
                self._locked[key] = now + self.rules.lockout_s
                del self._failures[key]
        while len(self._failures) > self.rules.max_keys:
            self._failures.popitem(last=False)
        for key in [k for k, until in self._locked.items() if until <= now]:
            del self._locked[key]

    def succeeded(self, username: str) -> None:
        """Forget a username's failures after a successful login (the client's count stays)."""
        self._failures.pop(self._keys(username, "")[0], None)


# --- records and the store port ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A web UI account: its role and scrypt password record (controller.core.passwords)."""

    username: str
    role: Role
    password: dict[str, Any]
    created: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token: the SHA-256 of its secret (random 256 bits: no slow hash needed), never the secret."""

    id: str
    name: str
    role: Role
    digest: str
    created: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A browser session, stored by the SHA-256 of its id so a copied database opens no session."""

    digest: str
    username: str
    csrf: str
    created: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One request that changed (or tried to change) something."""

    at: datetime
    actor: str
    role: str
    method: str
    path: str
    status: int
    client: str
    summary: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "time": rfc3339(self.at),
            "user": self.actor,
            "role": self.role,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "client": self.client,
            "summary": self.summary,
        }


class AccountStore(Protocol):
    """Durable accounts, API tokens, sessions and the audit log; every method is thread-safe."""

    def users(self) -> list[UserRecord]:
        """Every account."""
        ...

    def put_user(self, user: UserRecord) -> None:
        """Insert or replace an account."""
        ...

    def delete_user(self, username: str) -> None:
        """Remove an account and its sessions."""
        ...

    def tokens(self) -> list[TokenRecord]:
        """Every API token."""
        ...

    def put_token(self, token: TokenRecord) -> None:
        """Insert an API token."""
        ...

    def delete_token(self, token_id: str) -> None:
        """Remove an API token."""
        ...

    def sessions(self) -> list[SessionRecord]:
        """Every stored session (expired ones included; the caller decides)."""
        ...

    def put_session(self, session: SessionRecord) -> None:
        """Insert or replace a session."""
        ...

    def delete_sessions(self, digests: list[str]) -> None:
        """Remove sessions."""
        ...

    def append_audit(self, entry: AuditEntry) -> None:
        """Add an audit entry (the oldest are pruned beyond the store's bound)."""
        ...

    def audit(self, limit: int, offset: int) -> list[AuditEntry]:
        """Audit entries newest first."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...

"""Web UI accounts, API tokens, sessions and the audit log in one SQLite file (accounts.sqlite3)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from datetime import datetime

from controller.core.access import AuditEntry, Role, SessionRecord, TokenRecord, UserRecord
from controller.store.sqlite import ensure_schema, open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    client TEXT NOT NULL,
    summary TEXT NOT NULL
);
PRAGMA user_version = 1;
COMMIT;
"""
AUDIT_KEEP = 100_000  # entries; a flood of refused requests must not fill the SD card
_PRUNE_EVERY = 1000


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class SqliteAccountStore:
    """AccountStore on SQLite (WAL, synchronous=FULL: an acknowledged change survives a power cut)."""

    def __init__(self, path: str | os.PathLike[str], audit_keep: int = AUDIT_KEEP) -> None:
        self._lock = threading.Lock()  # one connection shared by the loop thread and to_thread workers
        self._conn = open_sqlite(path, check_same_thread=False)
        ensure_schema(self._conn, _SCHEMA, SCHEMA_VERSION, "accounts")
        self._audit_keep = audit_keep
        self._since_prune = 0
        # The file holds password hashes and session digests: readable by siteedge only.
        os.chmod(path, 0o600)

    def _write(self, sql: str, args: tuple[object, ...] | list[tuple[object, ...]] = ()) -> None:
        with self._lock:
            if isinstance(args, list):
                self._conn.execute("BEGIN")
                try:
                    self._conn.executemany(sql, args)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            else:
                self._conn.execute(sql, args)

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def users(self) -> list[UserRecord]:
        """Every account."""
        rows = self._read("SELECT username, role, password, created FROM users ORDER BY username")
        return [UserRecord(str(u), Role(str(r)), json.loads(str(p)), _time(str(c))) for u, r, p, c in rows]

    def put_user(self, user: UserRecord) -> None:
        """Insert or replace an account (its sessions stay)."""
        self._write(
            "INSERT INTO users (username, role, password, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET role = excluded.role, password = excluded.password",
            (user.username, user.role.value, json.dumps(user.password), user.created.isoformat()),
        )

    def delete_user(self, username: str) -> None:
        """Remove an account; its sessions go with it (foreign key cascade)."""
        self._write("DELETE FROM users WHERE username = ?", (username,))

    def tokens(self) -> list[TokenRecord]:
        """Every API token."""
        rows = self._read("SELECT id, name, role, digest, created FROM api_tokens ORDER BY created, id")
        return [TokenRecord(str(i), str(n), Role(str(r)), str(d), _time(str(c))) for i, n, r, d, c in rows]

    def put_token(self, token: TokenRecord) -> None:
        """Insert an API token; sqlite3.IntegrityError if its name or digest is taken."""
        self._write(
            "INSERT INTO api_tokens (id, name, role, digest, created) VALUES (?, ?, ?, ?, ?)",
            (token.id, token.name, token.role.value, token.digest, token.created.isoformat()),
        )

    def delete_token(self, token_id: str) -> None:
        """Remove an API token."""
        self._write("DELETE FROM api_tokens WHERE id = ?", (token_id,))

    def sessions(self) -> list[SessionRecord]:
        """Every stored session."""
        rows = self._read("SELECT digest, username, csrf, created, last_seen FROM sessions")
        return [
            SessionRecord(str(d), str(u), str(c), _time(str(cr)), _time(str(ls))) for d, u, c, cr, ls in rows
        ]

    def put_session(self, session: SessionRecord) -> None:
        """Insert or replace a session."""
        self._write(
            "INSERT OR REPLACE INTO sessions (digest, username, csrf, created, last_seen) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                session.digest,
                session.username,
                session.csrf,
                session.created.isoformat(),
                session.last_seen.isoformat(),
            ),
        )

    def delete_sessions(self, digests: list[str]) -> None:
        """Remove sessions."""
        if digests:
            self._write("DELETE FROM sessions WHERE digest = ?", [(d,) for d in digests])

    def append_audit(self, entry: AuditEntry) -> None:
        """Add an audit entry; every _PRUNE_EVERY entries the oldest beyond the bound are deleted."""
        self._write(
            "INSERT INTO audit (at, actor, role, method, path, status, client, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.at.isoformat(),
                entry.actor,
                entry.role,
                entry.method,
                entry.path,
                entry.status,
                entry.client,
                entry.summary,
            ),
        )
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self._since_prune = 0
            self._write("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (self._audit_keep,))

    def audit(self, limit: int, offset: int) -> list[AuditEntry]:
        """Audit entries newest first."""
        rows = self._read(
            "SELECT at, actor, role, method, path, status, client, summary FROM audit "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [
            AuditEntry(_time(str(a)), str(u), str(r), str(m), str(p), int(str(s)), str(c), str(sm))
            for a, u, r, m, p, s, c, sm in rows
        ]

    def close(self) -> None:
        """Release the database (idempotent)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

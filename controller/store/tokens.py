"""The token cache: OCPI Tokens in SQLite, swapped atomically on full sync, versioned deltas."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path

from controller.core.token_sync import SnapshotChunk, SyncError, TokenDelta
from controller.core.tokens import Token, normalize_uid, parse_token
from controller.store.sqlite import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    country_code TEXT NOT NULL, party_id TEXT NOT NULL, uid TEXT NOT NULL,
    uid_norm TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (country_code, party_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_by_uid ON tokens (uid_norm);
CREATE TABLE IF NOT EXISTS staging (
    sync_id TEXT NOT NULL, country_code TEXT NOT NULL, party_id TEXT NOT NULL, uid TEXT NOT NULL,
    uid_norm TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (sync_id, country_code, party_id, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staging_chunks (
    sync_id TEXT NOT NULL, chunk INTEGER NOT NULL, total INTEGER NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (sync_id, chunk)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (uid_norm TEXT PRIMARY KEY, last_used TEXT NOT NULL) WITHOUT ROWID;
"""


def _rows(tokens: Iterable[Token]) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            t.country_code,
            t.party_id,
            t.uid,
            normalize_uid(t.uid),
            json.dumps(dict(t.raw), separators=(",", ":")),
        )
        for t in tokens
    ]


class SqliteTokenCache:
    """Serves lookups from the working list while a new snapshot is staged beside it."""

    def __init__(self, path: str | Path) -> None:
        self._write = open_sqlite(path, check_same_thread=False)
        self._write.executescript(_SCHEMA)
        self._read = open_sqlite(path, check_same_thread=False)
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()

    def close(self) -> None:
        """Close both connections."""
        with self._wlock, self._rlock:
            self._write.close()
            self._read.close()

    # --- reads ----------------------------------------------------------------------------

    def lookup(self, uid: str) -> list[Token]:
        """Every cached token whose uid matches the uid as read (case-insensitive)."""
        with self._rlock:
            rows = self._read.execute(
                "SELECT doc FROM tokens WHERE uid_norm = ?", (normalize_uid(uid),)
            ).fetchall()
        return [parse_token(json.loads(doc)) for (doc,) in rows]

    def version(self) -> int:
        """Version of the working list (0 = never synced)."""
        with self._rlock:
            row = self._read.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        """Number of tokens in the working list."""
        with self._rlock:
            return int(self._read.execute("SELECT count(*) FROM tokens").fetchone()[0])

    def recent_tokens(self, since: str, limit: int) -> list[Token]:
        """Tokens accepted at this site since an RFC 3339 time, most recent first."""
        with self._rlock:
            rows = self._read.execute(
                "SELECT t.doc FROM usage u JOIN tokens t ON t.uid_norm = u.uid_norm"
                " WHERE u.last_used >= ? ORDER BY u.last_used DESC LIMIT ?",
                (since, limit),
            ).fetchall()
        return [parse_token(json.loads(doc)) for (doc,) in rows]

    def partner_tokens(self, partners: list[tuple[str, str]], limit: int) -> list[Token]:
        """ALWAYS tokens of the given (country_code, party_id) eMSPs, up to limit."""
        out: list[Token] = []
        with self._rlock:
            for cc, party in partners:
                rows = self._read.execute(
                    "SELECT doc FROM tokens WHERE country_code = ? AND party_id = ?"
                    " AND json_extract(doc, '$.whitelist') = 'ALWAYS' LIMIT ?",
                    (cc.upper(), party.upper(), limit - len(out)),
                ).fetchall()
                out += [parse_token(json.loads(doc)) for (doc,) in rows]
                if len(out) >= limit:
                    break
        return out

    # --- writes ---------------------------------------------------------------------------

    def touch(self, uid: str, at: str) -> None:
        """Remember that a token was accepted here at an RFC 3339 time (local lists favour it)."""
        with self._wlock:
            self._write.execute("INSERT OR REPLACE INTO usage VALUES (?, ?)", (normalize_uid(uid), at))

    def apply_chunk(self, chunk: SnapshotChunk) -> bool:
        """Stage one snapshot chunk; True when it completed the snapshot and the swap committed.

        A chunk of a newer sync_id abandons any older staged snapshot; the working list keeps
        serving untouched until the last chunk arrives and the swap commits in one transaction.
        """
        with self._wlock:
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("DELETE FROM staging WHERE sync_id <> ?", (chunk.sync_id,))
                c.execute("DELETE FROM staging_chunks WHERE sync_id <> ?", (chunk.sync_id,))
                known = c.execute(
                    "SELECT DISTINCT total, version FROM staging_chunks WHERE sync_id = ?", (chunk.sync_id,)
                ).fetchall()
                if known and known != [(chunk.total, chunk.version)]:
                    raise SyncError(f"snapshot {chunk.sync_id}: total/version changed between chunks")
                c.executemany(
                    "INSERT OR REPLACE INTO staging VALUES (?, ?, ?, ?, ?, ?)",
                    [(chunk.sync_id, *row) for row in _rows(chunk.tokens)],
                )
                c.execute(
                    "INSERT OR REPLACE INTO staging_chunks VALUES (?, ?, ?, ?)",
                    (chunk.sync_id, chunk.chunk, chunk.total, chunk.version),
                )
                have = c.execute(
                    "SELECT count(*) FROM staging_chunks WHERE sync_id = ?", (chunk.sync_id,)
                ).fetchone()[0]
                complete = bool(have == chunk.total)
                if complete:
                    c.execute("DELETE FROM tokens")
                    c.execute(
                        "INSERT INTO tokens SELECT country_code, party_id, uid, uid_norm, doc"
                        " FROM staging WHERE sync_id = ?",
                        (chunk.sync_id,),
                    )
                    c.execute("DELETE FROM staging")
                    c.execute("DELETE FROM staging_chunks")
                    self._set_version(chunk.version)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return complete

    def abandon_snapshot(self) -> None:
        """Drop a half-received snapshot (the working list is untouched)."""
        with self._wlock:
            self._write.execute("BEGIN IMMEDIATE")
            self._write.execute("DELETE FROM staging")
            self._write.execute("DELETE FROM staging_chunks")
            self._write.execute("COMMIT")

    def apply_delta(self, delta: TokenDelta) -> None:
        """Apply a delta in one transaction; SyncError (nothing applied) on a version gap."""
        with self._wlock:
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
                current = int(row[0]) if row else 0
                if delta.from_version != current:
                    raise SyncError(f"version gap: have {current}, delta starts at {delta.from_version}")
                c.executemany("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?)", _rows(delta.upserts))
                c.executemany(
                    "DELETE FROM tokens WHERE country_code = ? AND party_id = ? AND uid = ?", delta.deletes
                )
                self._set_version(delta.to_version)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _set_version(self, version: int) -> None:
        self._write.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(version),))

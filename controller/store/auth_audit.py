"""Authorization decisions in SQLite (data_dir/auth_audit.sqlite3): the audit survives restarts.

Bounded by age (400 days, so a 13-month partner report finds its refusals) and by count
(1,000,000 rows, a few hundred MB at most). synchronous=NORMAL: an audit trail, not a fact the
box acknowledged to anyone; a power cut may lose the last decisions, never corrupt the file.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from controller.core.reports import AuditEntry
from controller.core.tokens import Outcome
from controller.core.uptime import from_us, to_us
from controller.store.appender import appender
from controller.store.sqlite import ensure_schema, open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, uid TEXT NOT NULL, charger_id TEXT NOT NULL,
    evse_uid TEXT, outcome TEXT NOT NULL, reason TEXT NOT NULL, token TEXT,
    country_code TEXT, party_id TEXT
);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (at_us);
PRAGMA user_version = 1;
"""
KEEP_DAYS = 400
MAX_ROWS = 1_000_000
_PRUNE_EVERY = 10_000
_DAY_US = 86_400 * 1_000_000
REFUSED = Outcome.REJECT.value  # what counts as a failed authorization


class SqliteAuthAudit:
    """Implements the core's AuthAuditLog: appends queued to a writer thread, reads on demand."""

    def __init__(self, path: str | Path, keep_days: int = KEEP_DAYS, max_rows: int = MAX_ROWS) -> None:
        self._keep_us = keep_days * _DAY_US
        self._max_rows = max_rows
        self._writer = appender(
            path,
            "auth-audit",
            "NORMAL",
            lambda c: ensure_schema(c, _SCHEMA, SCHEMA_VERSION, "authorization audit"),
        )
        self._conn = open_sqlite(path, synchronous="NORMAL", check_same_thread=False)
        self._lock = threading.Lock()
        self._appends = 0

    def close(self) -> None:
        """Commit queued decisions and close."""
        self._writer.close()
        with self._lock:
            self._conn.close()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until queued decisions are committed."""
        return self._writer.flush(timeout)

    def append(self, entry: AuditEntry) -> None:
        """Record a decision (queued; never blocks the loop)."""
        partner = entry.partner
        row = (
            to_us(entry.at),
            entry.uid,
            entry.charger_id,
            entry.evse_uid,
            entry.outcome,
            entry.reason,
            entry.token,
            partner[0] if partner else None,
            partner[1] if partner else None,
        )
        self._writer.submit(
            lambda c: c.execute(
                "INSERT INTO decisions (at_us, uid, charger_id, evse_uid, outcome, reason, token,"
                " country_code, party_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )
        self._appends += 1
        if self._appends % _PRUNE_EVERY == 0:
            cutoff = row[0] - self._keep_us
            self._writer.submit(lambda c: _prune(c, cutoff, self._max_rows))

    def recent(self, limit: int, offset: int = 0) -> list[AuditEntry]:
        """Newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT at_us, uid, charger_id, evse_uid, outcome, reason, token FROM decisions"
                " ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [AuditEntry(from_us(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def failed_by_partner(self, start: datetime, end: datetime) -> dict[tuple[str, str] | None, int]:
        """Refused decisions in [start, end) per eMSP; None for tokens the site did not know."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT country_code, party_id, count(*) FROM decisions"
                " WHERE outcome = ? AND at_us >= ? AND at_us < ? GROUP BY country_code, party_id",
                (REFUSED, to_us(start), to_us(end)),
            ).fetchall()
        out: dict[tuple[str, str] | None, int] = {}
        for cc, party, n in rows:
            key = (cc, party) if cc is not None and party is not None else None
            out[key] = out.get(key, 0) + int(n)
        return out


def _prune(conn: sqlite3.Connection, cutoff_us: int, max_rows: int) -> None:
    conn.execute("DELETE FROM decisions WHERE at_us < ?", (cutoff_us,))
    conn.execute(
        "DELETE FROM decisions WHERE id <= (SELECT id FROM decisions ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (max_rows,),
    )

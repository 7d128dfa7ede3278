"""Sessions, their meter points, CDRs and tariffs in one SQLite file (WAL, synchronous=FULL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.core.sessions import MeterPoint, SessionRecord, SessionStatus, rfc3339_us
from controller.store.sqlite import open_sqlite

# One file for everything settlement needs, so a CDR and the session it closes commit together.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
    started_at TEXT NOT NULL, header TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (started_at);
CREATE TABLE IF NOT EXISTS points (
    session_id TEXT NOT NULL, n INTEGER NOT NULL, point TEXT NOT NULL,
    PRIMARY KEY (session_id, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cdrs (
    session_id TEXT PRIMARY KEY, cdr_id TEXT NOT NULL UNIQUE, cdr TEXT NOT NULL, sent INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tariffs (tariff_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


class SqliteSessionStore:
    """Implements the core's SessionStore and TariffStore; one lock serialises the connection."""

    def __init__(self, path: str | Path) -> None:
        self._conn = open_sqlite(path, check_same_thread=False)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        # Points already stored per session: the next one's number (a point is never rewritten
        # except the last, which a stop may correct).
        self._counts: dict[str, int] = {}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # --- sessions --------------------------------------------------------------------------

    def _count(self, session_id: str) -> int:
        if session_id not in self._counts:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM points WHERE session_id = ?", (session_id,)
            ).fetchone()
            self._counts[session_id] = int(row[0])
        return self._counts[session_id]

    def save(self, rec: SessionRecord, new_points: Sequence[MeterPoint]) -> None:
        """Store the header and the new points in one transaction."""
        with self._lock:
            n = self._count(rec.session_id)
            # A stop may correct the last point in place: stored points beyond the record's are
            # rewritten by position, so the stored list always equals the record's.
            first = max(0, len(rec.points) - len(new_points))
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO sessions (session_id, key, status, started_at, header)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (session_id) DO UPDATE SET status = excluded.status,"
                    " started_at = excluded.started_at, header = excluded.header",
                    (
                        rec.session_id,
                        rec.key,
                        rec.status.value,
                        rfc3339_us(rec.started_at),
                        _dump(rec.header()),
                    ),
                )
                self._conn.executemany(
                    "INSERT OR REPLACE INTO points (session_id, n, point) VALUES (?, ?, ?)",
                    [
                        (rec.session_id, i, _dump(rec.points[i].to_json()))
                        for i in range(first, len(rec.points))
                    ],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._counts[rec.session_id] = max(n, len(rec.points))

    def _points(self, session_id: str) -> list[MeterPoint]:
        rows = self._conn.execute(
            "SELECT point FROM points WHERE session_id = ? ORDER BY n", (session_id,)
        ).fetchall()
        return [MeterPoint.from_json(json.loads(r[0])) for r in rows]

    def _record(self, header: str, with_points: bool) -> SessionRecord:
        doc = json.loads(header)
        points = self._points(doc["session_id"]) if with_points else []
        return SessionRecord.from_header(doc, points)

    def open_sessions(self) -> list[SessionRecord]:
        """Sessions not final yet, with their points."""
        finals = (SessionStatus.COMPLETED.value, SessionStatus.INVALID.value)
        with self._lock:
            rows = self._conn.execute(
                "SELECT header FROM sessions WHERE status NOT IN (?, ?) ORDER BY started_at", finals
            ).fetchall()
            return [self._record(r[0], True) for r in rows]

    def get(self, session_id: str) -> SessionRecord | None:
        """One session with its points."""
        with self._lock:
            row = self._conn.execute(
                "SELECT header FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            return None if row is None else self._record(row[0], True)

    def listing(self, limit: int, status: str | None) -> list[SessionRecord]:
        """Newest first, without points."""
        with self._lock:
            if status is None:
                rows = self._conn.execute(
                    "SELECT header FROM sessions ORDER BY started_at DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT header FROM sessions WHERE status = ? ORDER BY started_at DESC LIMIT ?",
                    (status, limit),
                ).fetchall()
            return [self._record(r[0], False) for r in rows]

    def started_between(self, start: datetime, end: datetime) -> list[SessionRecord]:
        """Sessions started in [start, end), without points (the index is on the UTC text)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT header FROM sessions WHERE started_at >= ? AND started_at < ? ORDER BY started_at",
                (rfc3339_us(start), rfc3339_us(end)),
            ).fetchall()
            return [self._record(r[0], False) for r in rows]

    # --- CDRs ------------------------------------------------------------------------------

    def put_cdr(self, session_id: str, cdr: dict[str, Any]) -> dict[str, Any]:
        """Store the CDR unless the session has one; the stored one is returned (immutable)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO cdrs (session_id, cdr_id, cdr, sent) VALUES (?, ?, ?, 0)",
                (session_id, cdr["id"], _dump(cdr)),
            )
            row = self._conn.execute("SELECT cdr FROM cdrs WHERE session_id = ?", (session_id,)).fetchone()
            stored: dict[str, Any] = json.loads(row[0])
            return stored

    def unsent_cdrs(self) -> list[tuple[str, dict[str, Any]]]:
        """CDRs stored but not yet committed to the outbox."""
        with self._lock:
            rows = self._conn.execute("SELECT session_id, cdr FROM cdrs WHERE sent = 0").fetchall()
            return [(r[0], json.loads(r[1])) for r in rows]

    def mark_cdr_sent(self, session_id: str) -> None:
        """Never hand this CDR over again."""
        with self._lock:
            self._conn.execute("UPDATE cdrs SET sent = 1 WHERE session_id = ?", (session_id,))

    def cdr(self, session_id: str) -> dict[str, Any] | None:
        """The CDR of a session, if built."""
        with self._lock:
            row = self._conn.execute("SELECT cdr FROM cdrs WHERE session_id = ?", (session_id,)).fetchone()
            return None if row is None else dict(json.loads(row[0]))

    # --- tariffs ---------------------------------------------------------------------------

    def put_tariff(self, tariff_id: str, raw: dict[str, Any]) -> None:
        """Insert or replace a tariff."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO tariffs (tariff_id, doc) VALUES (?, ?)", (tariff_id, _dump(raw))
            )

    def delete_tariff(self, tariff_id: str) -> bool:
        """Remove a tariff; True if it existed."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM tariffs WHERE tariff_id = ?", (tariff_id,))
            return cur.rowcount > 0

    def tariffs(self) -> dict[str, dict[str, Any]]:
        """Every stored tariff by id."""
        with self._lock:
            rows = self._conn.execute("SELECT tariff_id, doc FROM tariffs").fetchall()
            return {r[0]: json.loads(r[1]) for r in rows}

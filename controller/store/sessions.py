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
CREATE TABLE IF NOT EXISTS meter_points (
    session_id TEXT NOT NULL, n INTEGER NOT NULL, point TEXT NOT NULL,
    PRIMARY KEY (session_id, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS corrections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, cdr_id TEXT NOT NULL UNIQUE,
    cdr TEXT NOT NULL, reason TEXT NOT NULL, sent INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS corrections_by_session ON corrections (session_id, seq);
"""
# Both point series of a session: the charger's registers and the bound meter's.
_SERIES = ("points", "meter_points")


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


class SqliteSessionStore:
    """Implements the core's SessionStore and TariffStore; one lock serialises the connection."""

    def __init__(self, path: str | Path) -> None:
        self._conn = open_sqlite(path, check_same_thread=False)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        # Points already stored per (series, session): the next one's number (a point is never
        # rewritten except the last, which a stop may correct).
        self._counts: dict[tuple[str, str], int] = {}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # --- sessions --------------------------------------------------------------------------

    def _count(self, table: str, session_id: str) -> int:
        if (table, session_id) not in self._counts:
            row = self._conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (session_id,)
            ).fetchone()
            self._counts[(table, session_id)] = int(row[0])
        return self._counts[(table, session_id)]

    def _write_points(self, table: str, session_id: str, points: Sequence[MeterPoint], new: int) -> None:
        # A stop may correct the last point in place: stored points beyond the record's are
        # rewritten by position, so the stored list always equals the record's.
        first = max(0, len(points) - new)
        self._conn.executemany(
            f"INSERT OR REPLACE INTO {table} (session_id, n, point) VALUES (?, ?, ?)",
            [(session_id, i, _dump(points[i].to_json())) for i in range(first, len(points))],
        )

    def save(
        self,
        rec: SessionRecord,
        new_points: Sequence[MeterPoint],
        new_meter_points: Sequence[MeterPoint] = (),
    ) -> None:
        """Store the header and the new points of both series in one transaction."""
        with self._lock:
            counts = {t: self._count(t, rec.session_id) for t in _SERIES}
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
                self._write_points("points", rec.session_id, rec.points, len(new_points))
                self._write_points("meter_points", rec.session_id, rec.meter_points, len(new_meter_points))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._counts[("points", rec.session_id)] = max(counts["points"], len(rec.points))
            self._counts[("meter_points", rec.session_id)] = max(
                counts["meter_points"], len(rec.meter_points)
            )

    def _points(self, table: str, session_id: str) -> list[MeterPoint]:
        rows = self._conn.execute(
            f"SELECT point FROM {table} WHERE session_id = ? ORDER BY n", (session_id,)
        ).fetchall()
        return [MeterPoint.from_json(json.loads(r[0])) for r in rows]

    def _record(self, header: str, with_points: bool) -> SessionRecord:
        doc = json.loads(header)
        if not with_points:
            return SessionRecord.from_header(doc, [])
        sid = doc["session_id"]
        return SessionRecord.from_header(doc, self._points("points", sid), self._points("meter_points", sid))

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

    def cdr_sent(self, session_id: str) -> bool:
        """True once the session's first CDR is committed in the outbox."""
        with self._lock:
            row = self._conn.execute("SELECT sent FROM cdrs WHERE session_id = ?", (session_id,)).fetchone()
            return row is not None and bool(row[0])

    def add_correction(
        self, session_id: str, credit: dict[str, Any], cdr: dict[str, Any], reason: str
    ) -> None:
        """Store the credit CDR and its replacement in one transaction, credit first."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO corrections (session_id, cdr_id, cdr, reason, sent) VALUES (?, ?, ?, ?, 0)",
                    [(session_id, c["id"], _dump(c), reason) for c in (credit, cdr)],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def unsent_corrections(self) -> list[tuple[int, dict[str, Any]]]:
        """Correction CDRs not yet in the outbox, in the order stored."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, cdr FROM corrections WHERE sent = 0 ORDER BY seq"
            ).fetchall()
            return [(int(r[0]), json.loads(r[1])) for r in rows]

    def mark_correction_sent(self, seqs: Sequence[int]) -> None:
        """These correction CDRs are in the outbox."""
        with self._lock:
            self._conn.executemany("UPDATE corrections SET sent = 1 WHERE seq = ?", [(s,) for s in seqs])

    def cdrs_of(self, session_id: str) -> list[dict[str, Any]]:
        """The original CDR, then every correction CDR, in the order made."""
        with self._lock:
            first = self._conn.execute("SELECT cdr FROM cdrs WHERE session_id = ?", (session_id,)).fetchone()
            rows = self._conn.execute(
                "SELECT cdr FROM corrections WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
            found = ([first] if first is not None else []) + list(rows)
            return [dict(json.loads(r[0])) for r in found]

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

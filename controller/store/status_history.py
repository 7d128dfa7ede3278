"""Port status history and what uptime reports need, in one SQLite file (data_dir/reports.sqlite3).

Tables: `changes` (every OCPI status transition of every EVSE, append-only, kept 400 days so
13 full months are always there), `ports` (when each port was first seen), `windows` (declared
maintenance and utility outages), `alive` (when siteedge last ran, so a crash shows as UNKNOWN
rather than as the last status), `peaks` (peak power per session) and `published` (reports
already sent up). Times are integer microseconds since the epoch: cheap to compare and to read
back by the hundred thousand.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from controller.core.uptime import PortHistory, Window, from_us, to_us
from controller.store.appender import appender
from controller.store.sqlite import ensure_schema, open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY, evse_uid TEXT NOT NULL, at_us INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT ''
);
-- Covering: a port's changes in a window are one index range scan, already in order.
CREATE INDEX IF NOT EXISTS changes_by_port ON changes (evse_uid, at_us, id, status);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (at_us);
CREATE TABLE IF NOT EXISTS ports (evse_uid TEXT PRIMARY KEY, first_us INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alive (k INTEGER PRIMARY KEY CHECK (k = 1), at_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, evse_uid TEXT, start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL, kind TEXT NOT NULL, note TEXT NOT NULL, created_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peaks (session_id TEXT PRIMARY KEY, peak_w REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS published (
    kind TEXT NOT NULL, period TEXT NOT NULL, at_us INTEGER NOT NULL, PRIMARY KEY (kind, period)
) WITHOUT ROWID;
PRAGMA user_version = 1;
"""
KEEP_DAYS = 400  # > 13 months: a trailing-12 report on the 1st still has its whole window
_PRUNE_EVERY = 5_000  # appends between prunes
_DAY_US = 86_400 * 1_000_000
UNKNOWN = "UNKNOWN"


LINGER_S = 0.5


class SqliteStatusHistory:
    """Status transitions, exclusion windows, session peaks and sent reports; appends never block."""

    def __init__(self, path: str | Path, keep_days: int = KEEP_DAYS) -> None:
        self._keep_us = keep_days * _DAY_US
        self._writer = appender(
            path,
            "status-history",
            "FULL",
            lambda c: ensure_schema(c, _SCHEMA, SCHEMA_VERSION, "status history"),
            # One fsync per status change cost ~1.4 % of a core at 500 chargers (docs/benchmarks.md);
            # gathering 0.5 s loses at most that much history in a power cut, and recover() marks
            # the time siteedge was down as UNKNOWN anyway.
            linger=LINGER_S,
        )
        # Reads and the few synchronous writes (windows) share one lock-serialised connection.
        self._conn = open_sqlite(path, check_same_thread=False)
        self._lock = threading.Lock()
        self._appends = 0
        self._latest_at: dict[str, int] = {}  # newest recorded time per port (appends stay ordered)

    def close(self) -> None:
        """Commit queued appends and close both connections."""
        self._writer.close()
        with self._lock:
            self._conn.close()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until queued appends are committed (tests, shutdown)."""
        return self._writer.flush(timeout)

    # --- appends (from the loop; queued) ---------------------------------------------------------

    def append(self, evse_uid: str, at: datetime, status: str, reason: str = "") -> None:
        """Record a status transition; a time before the port's last one is moved up to it."""
        at_us = max(to_us(at), self._latest_at.get(evse_uid, 0))
        self._latest_at[evse_uid] = at_us
        row = (evse_uid, at_us, status, reason[:200])
        self._writer.submit(lambda c: _insert(c, [row]))
        self._appends += 1
        if self._appends % _PRUNE_EVERY == 0:
            cutoff = at_us - self._keep_us
            self._writer.submit(lambda c: _prune(c, cutoff))

    def mark_alive(self, at: datetime) -> None:
        """siteedge is running at `at` (called every minute)."""
        at_us = to_us(at)
        self._writer.submit(
            lambda c: c.execute("INSERT OR REPLACE INTO alive (k, at_us) VALUES (1, ?)", (at_us,))
        )

    def record_peak(self, session_id: str, peak_w: float) -> None:
        """A session's peak power went up."""
        row = (session_id, float(peak_w))
        self._writer.submit(
            lambda c: c.execute(
                "INSERT INTO peaks (session_id, peak_w) VALUES (?, ?) ON CONFLICT (session_id)"
                " DO UPDATE SET peak_w = max(peak_w, excluded.peak_w)",
                row,
            )
        )

    def load(self, rows: Iterable[tuple[str, int, str, str]]) -> None:
        """Bulk insert (evse_uid, at_us, status, reason) rows at once (benchmarks, imports)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            _insert(self._conn, list(rows))
            self._conn.execute("COMMIT")

    # --- start-up ----------------------------------------------------------------------------

    def recover(self, now: datetime, evse_uids: Sequence[str]) -> int:
        """Mark the time siteedge was not running as UNKNOWN; returns the rows added.

        Every port whose last status is not UNKNOWN becomes UNKNOWN from when siteedge was last
        seen alive (or its last change, if later); a port never seen gets a first UNKNOWN now
        (it is in service from here on). Chargers reconnect and report within seconds.
        """
        now_us = to_us(now)
        with self._lock:
            alive = self._conn.execute("SELECT at_us FROM alive WHERE k = 1").fetchone()
            latest = {}
            for (uid,) in self._conn.execute("SELECT evse_uid FROM ports").fetchall():
                found = self._conn.execute(
                    "SELECT at_us, status FROM changes WHERE evse_uid = ?"
                    " ORDER BY at_us DESC, id DESC LIMIT 1",
                    (uid,),
                ).fetchone()
                if found is not None:
                    latest[uid] = (found[0], found[1])
            rows = []
            for uid in sorted(set(evse_uids) | set(latest)):
                found = latest.get(uid)
                if found is None:
                    rows.append((uid, now_us, UNKNOWN, "siteedge started; no status yet"))
                elif found[1] != UNKNOWN:
                    since = max(found[0], alive[0] if alive else found[0])
                    rows.append((uid, min(since, now_us), UNKNOWN, "siteedge was not running"))
            self._conn.execute("BEGIN IMMEDIATE")
            _insert(self._conn, rows)
            self._conn.execute("INSERT OR REPLACE INTO alive (k, at_us) VALUES (1, ?)", (now_us,))
            _prune(self._conn, now_us - self._keep_us)
            self._conn.execute("COMMIT")
            for uid, (at, _) in latest.items():
                self._latest_at[uid] = at
            for uid, at, _, _ in rows:
                self._latest_at[uid] = max(at, self._latest_at.get(uid, 0))
            return len(rows)

    # --- reads (blocking: call through asyncio.to_thread) ------------------------------------------

    def histories(self, start: datetime, end: datetime) -> dict[str, PortHistory]:
        """Each port's status at `start` and its changes in [start, end); ports first seen later: left out."""
        lo, hi = to_us(start), to_us(end)
        out: dict[str, PortHistory] = {}
        with self._lock:
            ports = self._conn.execute(
                "SELECT evse_uid, first_us FROM ports WHERE first_us < ?", (hi,)
            ).fetchall()
            for uid, first_us in ports:
                # Per port, two index range scans: the status in force at `start`, then the window.
                before = self._conn.execute(
                    "SELECT status FROM changes WHERE evse_uid = ? AND at_us < ? ORDER BY at_us DESC, id DESC"
                    " LIMIT 1",
                    (uid, lo),
                ).fetchone()
                changes = self._conn.execute(
                    "SELECT at_us, status FROM changes WHERE evse_uid = ? AND at_us >= ? AND at_us < ?"
                    " ORDER BY at_us, id",
                    (uid, lo, hi),
                ).fetchall()
                out[uid] = PortHistory(uid, first_us, None if before is None else before[0], changes)
        return out

    def first_seen(self) -> datetime | None:
        """The earliest recorded status of any port (None: no history yet)."""
        with self._lock:
            row = self._conn.execute("SELECT min(first_us) FROM ports").fetchone()
        return None if row is None or row[0] is None else from_us(row[0])

    def transitions(self, evse_uid: str, start: datetime, end: datetime, limit: int) -> list[dict[str, str]]:
        """One port's transitions in [start, end), oldest first (for the API)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT at_us, status, reason FROM changes WHERE evse_uid = ? AND at_us >= ? AND at_us < ?"
                " ORDER BY at_us, id LIMIT ?",
                (evse_uid, to_us(start), to_us(end), limit),
            ).fetchall()
        return [{"at": _iso(at), "status": status, "reason": reason} for at, status, reason in rows]

    def peaks(self, session_ids: Sequence[str]) -> dict[str, float]:
        """Tracked peak power (W) of the given sessions, where known."""
        out: dict[str, float] = {}
        with self._lock:
            for i in range(0, len(session_ids), 500):
                chunk = list(session_ids[i : i + 500])
                marks = ",".join("?" * len(chunk))
                for sid, peak in self._conn.execute(
                    f"SELECT session_id, peak_w FROM peaks WHERE session_id IN ({marks})", chunk
                ):
                    out[sid] = float(peak)
        return out

    # --- exclusion windows -------------------------------------------------------------------------

    def add_window(self, w: Window) -> Window:
        """Store a window; returns it with its id."""
        created = w.created_at or w.start
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO windows (evse_uid, start_us, end_us, kind, note, created_us)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (w.evse_uid, to_us(w.start), to_us(w.end), w.kind, w.note, to_us(created)),
            )
            window_id = cur.lastrowid
        return Window(window_id, w.evse_uid, w.start, w.end, w.kind, w.note, created)

    def windows(self, start: datetime, end: datetime) -> list[Window]:
        """Windows overlapping [start, end), by start time."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, evse_uid, start_us, end_us, kind, note, created_us FROM windows"
                " WHERE end_us > ? AND start_us < ? ORDER BY start_us, id",
                (to_us(start), to_us(end)),
            ).fetchall()
        return [Window(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5], from_us(r[6])) for r in rows]

    def delete_window(self, window_id: int) -> bool:
        """Remove a window; True if it existed."""
        with self._lock:
            return self._conn.execute("DELETE FROM windows WHERE id = ?", (window_id,)).rowcount > 0

    # --- reports sent ----------------------------------------------------------------------------

    def published(self) -> list[tuple[str, str]]:
        """(kind, period) of every report already sent up."""
        with self._lock:
            return [(k, p) for k, p in self._conn.execute("SELECT kind, period FROM published")]

    def mark_published(self, kind: str, period: str, at: datetime) -> None:
        """Remember that a period's report went to the outbox."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO published (kind, period, at_us) VALUES (?, ?, ?)",
                (kind, period, to_us(at)),
            )


def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[str, int, str, str]]) -> None:
    """Append transitions; a port's first one also records when it entered service."""
    conn.executemany("INSERT INTO changes (evse_uid, at_us, status, reason) VALUES (?, ?, ?, ?)", rows)
    conn.executemany(
        "INSERT INTO ports (evse_uid, first_us) VALUES (?, ?)"
        " ON CONFLICT (evse_uid) DO UPDATE SET first_us = min(first_us, excluded.first_us)",
        [(r[0], r[1]) for r in rows],
    )


def _prune(conn: sqlite3.Connection, cutoff_us: int) -> None:
    """Drop changes older than the cutoff but keep each port's last one before it (its state then)."""
    conn.execute(
        "DELETE FROM changes WHERE at_us < ? AND id NOT IN"
        " (SELECT max(id) FROM changes WHERE at_us < ? GROUP BY evse_uid)",
        (cutoff_us, cutoff_us),
    )
    conn.execute("DELETE FROM windows WHERE end_us < ?", (cutoff_us,))
    conn.execute("DELETE FROM published WHERE at_us < ?", (cutoff_us,))


def _iso(us: int) -> str:
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

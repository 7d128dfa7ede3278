"""The per-charger OCPP message log in SQLite: last N frames per charger, written by one thread.

SQLite rather than rotated JSONL: the bound is per charger (a chatty charger must not push a
quiet one's history out), and "newest 50 BootNotifications of CP-7" is one index range scan
instead of a scan through every rotated file.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
from datetime import datetime

from controller.core.msglog import OcppFrame
from controller.store.sqlite import open_sqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    charger_id TEXT NOT NULL,
    at TEXT NOT NULL,
    direction TEXT NOT NULL,
    message_type INTEGER,
    unique_id TEXT,
    action TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS frames_by_charger ON frames (charger_id, id);
"""
_BATCH = 500  # frames per transaction at most
_QUEUE_MAX = 20_000  # beyond this the writer is stuck (SD card stall): drop, do not grow


class SqliteMessageLog:
    """MessageLog on SQLite (WAL, synchronous=NORMAL: diagnostics, not acknowledged facts)."""

    def __init__(self, path: str | os.PathLike[str], keep: int = 1000) -> None:
        self._path = path
        self._keep = keep
        self.dropped = 0
        conn = open_sqlite(path, synchronous="NORMAL", check_same_thread=False)
        conn.executescript(_SCHEMA)
        self._queue: queue.Queue[OcppFrame | None] = queue.Queue(_QUEUE_MAX)
        self._since_prune: dict[str, int] = {}
        self._flush_events: list[threading.Event] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(conn,), name="ocpp-msglog", daemon=True)
        self._thread.start()
        self._closed = False

    def record(self, frame: OcppFrame) -> None:
        """Queue a frame for the writer thread; dropped (and counted) if the writer is stuck."""
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1

    def recent(self, charger_id: str, limit: int, action: str | None = None) -> list[OcppFrame]:
        """The charger's newest frames first, optionally of one action; blocking read."""
        sql = "SELECT charger_id, at, direction, message_type, unique_id, action, payload FROM frames"
        sql += " WHERE charger_id = ?" + (" AND action = ?" if action else "") + " ORDER BY id DESC LIMIT ?"
        args: tuple[object, ...] = (charger_id, action, limit) if action else (charger_id, limit)
        conn = sqlite3.connect(self._path, timeout=5)
        try:
            rows = conn.execute(sql, args).fetchall()
        finally:
            conn.close()
        return [
            OcppFrame(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6]))
            for r in rows
        ]

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every frame queued so far is committed (tests, shutdown)."""
        done = threading.Event()
        self._flush_events.append(done)
        self._queue.put(None)  # a marker: the writer sets the events once it reached it
        done.wait(timeout)

    def close(self) -> None:
        """Commit what is queued and stop the writer; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                frames = [f for f in batch if f is not None]
                if frames:
                    try:
                        self._write(conn, frames)
                    except sqlite3.Error:
                        log.exception("message log: %d frame(s) not written", len(frames))
                if None in batch:
                    while self._flush_events:
                        self._flush_events.pop().set()
                    if self._stopping:
                        return
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, frames: list[OcppFrame]) -> None:
        rows = [
            (
                f.charger_id,
                f.at.isoformat(),
                f.direction,
                f.message_type,
                f.unique_id,
                f.action,
                json.dumps(f.payload, separators=(",", ":"), default=str),
            )
            for f in frames
        ]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO frames (charger_id, at, direction, message_type, unique_id, action, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for f in frames:
            self._since_prune[f.charger_id] = self._since_prune.get(f.charger_id, 0) + 1
        # Prune a charger once it wrote a tenth of its bound again: bounded, and cheap per frame.
        for cp_id, count in list(self._since_prune.items()):
            if count >= max(1, self._keep // 10):
                conn.execute(
                    "DELETE FROM frames WHERE charger_id = ? AND id <= (SELECT id FROM frames"
                    " WHERE charger_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (cp_id, cp_id, self._keep),
                )
                self._since_prune[cp_id] = 0
        conn.execute("COMMIT")

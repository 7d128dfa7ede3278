"""The per-charger OCPP message log in SQLite: last N frames per charger, written by one thread.

SQLite rather than rotated JSONL: the bound is per charger (a chatty charger must not push a
quiet one's history out), and "newest 50 BootNotifications of CP-7" is one index range scan
instead of a scan through every rotated file.

Frames are stored as received or sent (the text, not a re-encoding of the parsed payload) and
written in groups about twice a second: this is diagnostics, not an acknowledged fact, so a
crash may lose the last half second of it. Secrets never reach the file: a frame whose text may
name one (a password, an AuthorizationKey ...) is parsed and redacted on the writer thread first.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from datetime import datetime
from typing import Any

from controller.core.msglog import SECRET_KEYS, OcppFrame, redact
from controller.store.writer import GroupCommitWriter

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
# raw = 1: `payload` is the whole frame text; 0: the JSON of the (redacted) payload alone.
_RAW_COLUMN = "ALTER TABLE frames ADD COLUMN raw INTEGER NOT NULL DEFAULT 0"
_BATCH = 2000  # frames per transaction at most
_LINGER = 0.5  # seconds the writer gathers frames before a commit
_QUEUE_MAX = 20_000  # beyond this the writer is stuck (SD card stall): drop, do not grow
_CALL, _CALLRESULT = 2, 3

# (charger_id, at, direction, message_type, unique_id, action, payload, is_frame_text)
_Row = tuple[str, datetime, str, int | None, str | None, str | None, Any, bool]


def _may_name_secret(text: str) -> bool:
    """Could the parsed frame hold a key or setting name that redaction replaces?"""
    # Redaction compares names without underscores, case-insensitively; a \\u escape could spell
    # one without its letters appearing in the text.
    folded = text.replace("_", "").lower()
    if "location" in folded and "@" in folded:  # an address with user:password@ (URL_KEYS)
        return True
    return "\\u" in folded or any(secret in folded for secret in SECRET_KEYS)


def _payload_of(frame: list[Any], message_type: int | None) -> Any:
    """The payload part of a parsed OCPP-J frame, as OcppFrame.payload holds it."""
    if message_type == _CALL:
        return frame[3]
    if message_type == _CALLRESULT:
        return frame[2]
    return frame[2:]  # CALLERROR: code, description, details


def _setup(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(frames)")}
    if "raw" not in columns:  # a log written before frames were stored as text
        conn.execute(_RAW_COLUMN)


class SqliteMessageLog:
    """MessageLog on SQLite (WAL, synchronous=NORMAL: diagnostics, not acknowledged facts)."""

    def __init__(self, path: str | os.PathLike[str], keep: int = 1000) -> None:
        self._path = path
        self._keep = keep
        self.dropped = 0
        self._since_prune: dict[str, int] = {}  # only the writer thread touches it
        self._writer: GroupCommitWriter[_Row, None] = GroupCommitWriter(
            path,
            name="ocpp-msglog",
            synchronous="NORMAL",
            max_batch=_BATCH,
            setup=_setup,
            write=self._write,
            done=lambda batch, result: None,
            failed=lambda row, exc: log.error("message log: a frame of %s not written: %s", row[0], exc),
            linger=_LINGER,
        )

    def record(self, frame: OcppFrame) -> None:
        """Queue a redacted frame for the writer thread; dropped (and counted) if the writer is stuck."""
        self._queue(
            (
                frame.charger_id,
                frame.at,
                frame.direction,
                frame.message_type,
                frame.unique_id,
                frame.action,
                frame.payload,
                False,
            )
        )

    def record_text(
        self,
        charger_id: str,
        at: datetime,
        direction: str,
        message_type: int,
        unique_id: str,
        action: str | None,
        text: str,
    ) -> None:
        """Queue a well-formed frame's text as it went over the wire; redacted on the way if needed."""
        self._queue((charger_id, at, direction, message_type, unique_id, action, text, True))

    def _queue(self, row: _Row) -> None:
        if self._writer.backlog >= _QUEUE_MAX or not self._writer.submit(row):
            self.dropped += 1

    def recent(self, charger_id: str, limit: int, action: str | None = None) -> list[OcppFrame]:
        """The charger's newest frames first, optionally of one action; blocking read."""
        sql = "SELECT charger_id, at, direction, message_type, unique_id, action, payload, raw FROM frames"
        sql += " WHERE charger_id = ?" + (" AND action = ?" if action else "") + " ORDER BY id DESC LIMIT ?"
        args: tuple[object, ...] = (charger_id, action, limit) if action else (charger_id, limit)
        conn = sqlite3.connect(self._path, timeout=5)
        try:
            rows = conn.execute(sql, args).fetchall()
        finally:
            conn.close()
        out = []
        for cp_id, at, direction, kind, uid, act, payload, raw in rows:
            value = json.loads(payload)
            out.append(
                OcppFrame(
                    cp_id,
                    datetime.fromisoformat(at),
                    direction,
                    kind,
                    uid,
                    act,
                    _payload_of(value, kind) if raw else value,
                )
            )
        return out

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every frame queued so far is committed (tests, shutdown)."""
        self._writer.flush(timeout)

    def close(self) -> None:
        """Commit what is queued and stop the writer; idempotent."""
        self._writer.close()

    # -- writer thread ----------------------------------------------------------------------

    def _write(self, conn: sqlite3.Connection, frames: list[_Row]) -> None:
        conn.executemany(
            "INSERT INTO frames (charger_id, at, direction, message_type, unique_id, action, payload, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self._stored(row) for row in frames],
        )
        counts = self._since_prune
        every = max(1, self._keep // 10)
        for row in frames:
            counts[row[0]] = counts.get(row[0], 0) + 1
        # Prune a charger once it wrote a tenth of its bound again: bounded, and cheap per frame.
        for cp_id in {row[0] for row in frames}:
            if counts[cp_id] >= every:
                conn.execute(
                    "DELETE FROM frames WHERE charger_id = ? AND id <= (SELECT id FROM frames"
                    " WHERE charger_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (cp_id, cp_id, self._keep),
                )
                counts[cp_id] = 0

    @staticmethod
    def _stored(row: _Row) -> tuple[object, ...]:
        cp_id, at, direction, kind, uid, action, payload, is_text = row
        if is_text and not _may_name_secret(payload):
            return (cp_id, at.isoformat(), direction, kind, uid, action, payload, 1)
        if is_text:
            payload = redact(_payload_of(json.loads(payload), kind))
        text = json.dumps(payload, separators=(",", ":"), default=str)
        return (cp_id, at.isoformat(), direction, kind, uid, action, text, 0)

"""One place that decides how siteedge opens SQLite: WAL, full durability, sane waits."""

from __future__ import annotations

import os
import sqlite3
from typing import Literal

Synchronous = Literal["FULL", "NORMAL"]

BUSY_TIMEOUT_MS = 5000
# A WAL is reset, not shrunk, after a checkpoint; cap what stays allocated on the SD card.
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024


def open_sqlite(
    path: str | os.PathLike[str],
    *,
    synchronous: Synchronous = "FULL",
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open a database in WAL mode with synchronous=FULL, busy_timeout and foreign keys on.

    synchronous=FULL because of the durability contract: in WAL mode NORMAL survives a process
    kill but a power cut may roll back the last commits, i.e. facts the box already acknowledged.
    Pass check_same_thread=False only for a connection that one owner serialises (a lock or a
    single writer thread). The connection is in autocommit mode: callers say BEGIN themselves.
    """
    if synchronous not in ("FULL", "NORMAL"):  # it is spliced into a PRAGMA below
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=check_same_thread,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot enable WAL on {path}: journal_mode={mode}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    except BaseException:
        conn.close()
        raise
    return conn


def ensure_schema(conn: sqlite3.Connection, script: str, version: int, what: str) -> None:
    """Create or upgrade a database to `version` with `script`; refuse a newer one than we know."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > version:
        raise RuntimeError(f"{what} schema {found} is newer than this build understands")
    if found < version:
        conn.executescript(script)

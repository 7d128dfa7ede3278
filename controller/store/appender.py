"""Append-only stores' writes as queued closures on the one group-commit writer (store/writer.py)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable

from controller.store.sqlite import Synchronous
from controller.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)

Write = Callable[[sqlite3.Connection], object]  # the return value (a cursor) is ignored
Appender = GroupCommitWriter[Write, None]


def appender(
    path: str | os.PathLike[str],
    name: str,
    synchronous: Synchronous,
    setup: Callable[[sqlite3.Connection], None],
    linger: float = 0.0,
) -> Appender:
    """A writer thread running submitted closures in order, many per transaction; callers never wait.

    Appends come from the event loop (status changes, authorization decisions): a slow SD card
    must delay them, not the loop. A closure that fails is logged and dropped alone. `linger`
    gathers writes for that long per commit (one fsync for many appends).
    """

    def write(conn: sqlite3.Connection, batch: list[Write]) -> None:
        for w in batch:
            w(conn)

    def failed(_: Write, exc: BaseException) -> None:
        log.error("%s: a write was lost: %s", name, exc)

    return GroupCommitWriter(
        path,
        name=name,
        synchronous=synchronous,
        max_batch=500,
        linger=linger,
        setup=setup,
        write=write,
        done=lambda _batch, _result: None,
        failed=failed,
    )

"""One writer thread per append-only SQLite store: callers queue, the thread group-commits."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Write = Callable[[sqlite3.Connection], object]  # the return value (a cursor) is ignored
_BATCH = 500


class Appender:
    """Runs queued writes on its own connection, many per transaction; never blocks a caller.

    Appends come from the event loop (status changes, authorization decisions): a slow SD card
    must delay them, not the loop. A write that fails is logged and dropped with its batch.
    """

    def __init__(self, conn: sqlite3.Connection, name: str, max_queue: int = 100_000) -> None:
        self._conn = conn
        self._queue: queue.Queue[Write | threading.Event | None] = queue.Queue(max_queue)
        self.dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, write: Write) -> None:
        """Queue a write; dropped (and counted) if the writer is stuck that far behind."""
        try:
            self._queue.put_nowait(write)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is committed; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Commit what is queued, stop the thread, close the connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < _BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                writes = [w for w in batch if w is not None and not isinstance(w, threading.Event)]
                if writes:
                    self._commit(writes)
                for item in batch:
                    if isinstance(item, threading.Event):
                        item.set()
                if None in batch:
                    return
        finally:
            self._conn.close()

    def _commit(self, writes: list[Write]) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for write in writes:
                write(self._conn)
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            log.exception("%s: %d write(s) lost", self._thread.name, len(writes))
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

"""One thread that owns a SQLite write connection and commits queued requests in groups."""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from controller.store.sqlite import Synchronous, open_sqlite

R = TypeVar("R")
T = TypeVar("T")


class _Stop:
    """Queue sentinel: everything queued before it is committed, then the thread exits."""


class _Flush:
    """Queue marker: its event is set once everything queued before it is committed."""

    def __init__(self) -> None:
        self.done = threading.Event()


class GroupCommitWriter(Generic[R, T]):
    """Commits whatever requests queued up meanwhile in one transaction, on its own thread.

    Callers `submit` from any thread and never wait for the disk. The thread takes one request,
    optionally lingers (a diagnostics log can wait, an acknowledged fact cannot), takes whatever
    else is queued up to `max_batch`, and runs `write(conn, batch)` inside BEGIN IMMEDIATE ...
    COMMIT; then `done(batch, result)`. A batch that fails is retried one request at a time, so
    one poison request fails alone (`failed(request, exc)`) and its neighbours still commit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        synchronous: Synchronous,
        max_batch: int,
        setup: Callable[[sqlite3.Connection], None],
        write: Callable[[sqlite3.Connection, list[R]], T],
        done: Callable[[list[R], T], None],
        failed: Callable[[R, BaseException], None],
        linger: float = 0.0,
    ) -> None:
        self._path = path
        self._synchronous: Synchronous = synchronous
        self._max_batch = max_batch
        self._setup = setup
        self._write = write
        self._done = done
        self._failed = failed
        self._linger = linger
        self._queue: queue.SimpleQueue[R | _Stop | _Flush] = queue.SimpleQueue()
        self._hurry = threading.Event()  # cuts a linger short (flush, close)
        self._accept_lock = threading.Lock()  # orders submits against close's stop sentinel
        self._closed = False
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=name, daemon=True)
        self._thread.start()
        ready.result()  # schema errors surface here, not in a later request

    @property
    def backlog(self) -> int:
        """Requests queued and not yet taken by the thread (approximate)."""
        return self._queue.qsize()

    def submit(self, request: R) -> bool:
        """Queue a request; False (and nothing queued) once the writer is closed."""
        with self._accept_lock:
            if self._closed:
                return False
            self._queue.put(request)
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is committed; False on timeout or if closed."""
        marker = _Flush()
        with self._accept_lock:
            if self._closed:
                return False
            self._queue.put(marker)
        self._hurry.set()
        return marker.done.wait(timeout)

    def close(self) -> None:
        """Stop accepting, commit everything queued, join the thread; idempotent."""
        with self._accept_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_Stop())
        self._hurry.set()
        self._thread.join()

    # -- the thread -------------------------------------------------------------------------

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = open_sqlite(self._path, synchronous=self._synchronous)
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException as exc:  # noqa: BLE001 - handed to __init__, which re-raises it
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            stop = False
            while not stop:
                batch, markers, stop = self._take()
                if batch:
                    self._apply(conn, batch)
                for marker in markers:
                    marker.done.set()
        finally:
            conn.close()

    def _take(self) -> tuple[list[R], list[_Flush], bool]:
        """Block for one request, linger if asked, then take what is queued, up to max_batch."""
        batch: list[R] = []
        markers: list[_Flush] = []
        item = self._queue.get()
        if self._linger > 0 and not isinstance(item, (_Stop, _Flush)):
            # Sleeping here instead of waking per request is the point: one commit, one wake-up.
            self._hurry.wait(self._linger)
        self._hurry.clear()
        while True:
            if isinstance(item, _Stop):
                return batch, markers, True  # nothing follows the sentinel: close() holds the lock
            if isinstance(item, _Flush):
                markers.append(item)
            else:
                batch.append(item)
                if len(batch) >= self._max_batch:
                    return batch, markers, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, markers, False

    def _apply(self, conn: sqlite3.Connection, batch: list[R]) -> None:
        try:
            result = self._transaction(conn, batch)
        except Exception as exc:  # noqa: BLE001 - every failure goes to `failed`
            if len(batch) > 1:
                for request in batch:
                    self._apply(conn, [request])
            else:
                self._failed(batch[0], exc)
            return
        self._done(batch, result)

    def _transaction(self, conn: sqlite3.Connection, batch: list[R]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = self._write(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

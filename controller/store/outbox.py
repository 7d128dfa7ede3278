"""Durable store-and-forward outbox on SQLite, written by one group-committing thread."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from controller.core.clock import rfc3339
from controller.core.envelope import Lane, Outgoing, uuid7, wrap
from controller.core.ports import OutboxStats, Stored
from controller.store.sqlite import Synchronous, ensure_schema, open_sqlite
from controller.store.writer import GroupCommitWriter

MAX_BATCH = 512  # requests per transaction: bounds one commit's latency and memory
# Seconds the writer gathers requests before a commit: one fsync for a status, its history entry
# and the deletes of delivered rows instead of one each. Small against the 1 s status freshness
# target, and nothing waits on it per charger message (transaction facts are in the journal).
LINGER = 0.02
NEAR_LIMIT = 0.9  # stats().near_limit from this fraction of max_bytes
SCHEMA_VERSION = 1
_IN_CHUNK = 500  # parameters per IN (...): old SQLite builds allow at most 999

_SCHEMA = """
BEGIN IMMEDIATE;
-- AUTOINCREMENT: a row number is never reused, so a late duplicate ack of a deleted row can
-- never delete a newer message that happened to get the same number.
CREATE TABLE IF NOT EXISTS outbox (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    lane INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    coalesce_key TEXT,
    created TEXT NOT NULL
);
-- An index on lane holds (lane, row): pending() and telemetry dropping read it in order.
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox(lane);
CREATE INDEX IF NOT EXISTS outbox_coalesce ON outbox(coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, next_seq INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
COMMIT;
"""


@dataclass(frozen=True, slots=True)
class _Put:
    messages: list[tuple[Outgoing, str, datetime]]  # message, id, enqueue time
    future: Future[None]


@dataclass(frozen=True, slots=True)
class _Ack:
    rows: list[int]
    future: Future[None]


_Request = _Put | _Ack


@dataclass(slots=True)
class _Figures:
    """Backlog figures; the writer mutates a copy per transaction and publishes it on commit."""

    pending: int
    bytes: int
    dropped: int


def _resolve(future: Future[None], exc: BaseException | None = None) -> None:
    """Settle a future the caller may have cancelled meanwhile (the write happened anyway)."""
    try:
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)
    except InvalidStateError:
        pass


def _failed(exc: BaseException) -> Future[None]:
    future: Future[None] = Future()
    future.set_exception(exc)
    return future


def _chunks(rows: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(rows))
    for start in range(0, len(unique), _IN_CHUNK):
        yield unique[start : start + _IN_CHUNK]


def _encode(body: dict[str, Any]) -> bytes:
    # allow_nan=False: a NaN reading must fail its put, not publish invalid JSON.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class SqliteOutbox:
    """Outbox on SQLite WAL: one writer thread group-commits puts and acks, readers run beside."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int,
        *,
        synchronous: Synchronous = "FULL",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._next_seq: dict[str, int] = {}  # committed values; only the writer touches it
        self._figures = _Figures(0, 0, 0)  # replaced, never mutated, once published
        self._writer: GroupCommitWriter[_Request, tuple[_Figures, dict[str, int]]] = GroupCommitWriter(
            path,
            name="outbox-writer",
            synchronous=synchronous,
            max_batch=MAX_BATCH,
            setup=self._load,
            write=self._transaction,
            done=self._committed,
            failed=lambda request, exc: _resolve(request.future, exc),
            linger=LINGER,
        )
        # Readers get their own connection: WAL lets them read committed rows while the
        # writer commits. pending() runs in to_thread workers, hence the lock.
        self._read_lock = threading.Lock()
        try:
            self._read: sqlite3.Connection | None = open_sqlite(path, check_same_thread=False)
        except BaseException:
            self._writer.close()  # do not leave the writer thread behind
            raise

    # -- caller side (asyncio loop or any thread): never blocks on disk ----------------------

    def put(self, messages: Sequence[Outgoing]) -> Future[None]:
        """Queue messages; the future resolves once they are committed (or deliberately dropped)."""
        ts = datetime.now(UTC)
        request = _Put([(m, uuid7(), ts) for m in messages], Future())
        return self._submit(request)

    def ack(self, rows: Sequence[int]) -> Future[None]:
        """Forget delivered rows (idempotent); resolves once the deletion is committed."""
        return self._submit(_Ack(list(rows), Future()))

    def _submit(self, request: _Request) -> Future[None]:
        if not self._writer.submit(request):
            return _failed(RuntimeError("outbox is closed"))
        return request.future

    def pending(self, limit: int, exclude: set[int]) -> list[Stored]:
        """Up to `limit` committed rows not in `exclude`, by lane then insertion order."""
        if limit <= 0:
            return []
        with self._read_lock:
            if self._read is None:
                raise RuntimeError("outbox is closed")
            # Over-fetch by len(exclude): at most that many of the fetched rows are skipped.
            fetched = self._read.execute(
                "SELECT row, topic, payload, qos, retain, lane FROM outbox ORDER BY lane, row LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
        found = [
            Stored(row, topic, bytes(payload), qos, bool(retain), lane)
            for row, topic, payload, qos, retain, lane in fetched
            if row not in exclude
        ]
        return found[:limit]

    def stats(self) -> OutboxStats:
        """Backlog figures as of the last commit."""
        figures = self._figures  # one read of a published, immutable snapshot
        return OutboxStats(
            pending=figures.pending,
            bytes=figures.bytes,
            dropped_telemetry=figures.dropped,
            near_limit=figures.bytes >= NEAR_LIMIT * self._max_bytes,
        )

    def close(self) -> None:
        """Stop accepting, commit everything queued, join the writer, close connections."""
        self._writer.close()
        with self._read_lock:
            if self._read is not None:
                self._read.close()
                self._read = None

    def __enter__(self) -> SqliteOutbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writer thread: owns the write connection -------------------------------------------

    def _load(self, conn: sqlite3.Connection) -> None:
        ensure_schema(conn, _SCHEMA, SCHEMA_VERSION, "outbox")
        pending, size = conn.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        dropped = conn.execute("SELECT value FROM meta WHERE key = 'dropped_telemetry'").fetchone()
        self._figures = _Figures(pending, size, dropped[0] if dropped else 0)

    def _committed(self, batch: list[_Request], result: tuple[_Figures, dict[str, int]]) -> None:
        figures, seqs = result
        self._next_seq.update(seqs)
        self._figures = figures
        for request in batch:
            _resolve(request.future)

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[_Request]
    ) -> tuple[_Figures, dict[str, int]]:
        """Apply a batch inside the writer's open transaction; the figures it leaves behind."""
        figures = replace(self._figures)
        seqs: dict[str, int] = {}  # next seq per stream within this transaction
        for request in batch:
            if isinstance(request, _Put):
                for message, msg_id, ts in request.messages:
                    self._insert(conn, message, msg_id, ts, figures, seqs)
            else:
                self._delete(conn, request.rows, figures)
        conn.executemany(
            "INSERT INTO streams (stream, next_seq) VALUES (?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET next_seq = excluded.next_seq",
            seqs.items(),
        )
        if figures.dropped != self._figures.dropped:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped_telemetry', ?)",
                (figures.dropped,),
            )
        return figures, seqs

    def _seq(self, conn: sqlite3.Connection, stream: str, seqs: dict[str, int]) -> int:
        if stream in seqs:
            return seqs[stream]
        if stream in self._next_seq:
            return self._next_seq[stream]
        found = conn.execute("SELECT next_seq FROM streams WHERE stream = ?", (stream,)).fetchone()
        return int(found[0]) if found else 1

    def _insert(
        self,
        conn: sqlite3.Connection,
        message: Outgoing,
        msg_id: str,
        ts: datetime,
        figures: _Figures,
        seqs: dict[str, int],
    ) -> None:
        seq = self._seq(conn, message.stream, seqs)
        body = wrap(msg_id, seq, ts, message.type, message.data) if message.envelope else message.data
        payload = _encode(body)
        if message.coalesce_key is not None:
            # Fresh beats backlog: an unsent older message with the same key is obsolete.
            stale = conn.execute(
                "SELECT row, length(payload) FROM outbox WHERE coalesce_key = ?",
                (message.coalesce_key,),
            ).fetchall()
            self._remove(conn, stale, figures)
        overflow = figures.bytes + len(payload) - self._max_bytes
        if overflow > 0:
            self._drop_telemetry(conn, overflow, figures)
            if message.lane == Lane.TELEMETRY and figures.bytes + len(payload) > self._max_bytes:
                figures.dropped += 1  # telemetry is droppable, the newest included
                return
        conn.execute(
            "INSERT INTO outbox (id, stream, seq, lane, topic, payload, qos, retain,"
            " coalesce_key, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                msg_id,
                message.stream,
                seq,
                message.lane,
                message.topic,
                payload,
                message.qos,
                int(message.retain),
                message.coalesce_key,
                rfc3339(ts),
            ),
        )
        seqs[message.stream] = seq + 1
        figures.pending += 1
        figures.bytes += len(payload)

    def _drop_telemetry(self, conn: sqlite3.Connection, need: int, figures: _Figures) -> None:
        """Delete the oldest telemetry until `need` bytes are free or none is left."""
        victims: list[tuple[int, int]] = []
        freed = 0
        cursor = conn.execute(
            "SELECT row, length(payload) FROM outbox WHERE lane = ? ORDER BY row",
            (Lane.TELEMETRY,),
        )
        for row, size in cursor:  # stepped lazily: stops reading once enough is found
            victims.append((row, size))
            freed += size
            if freed >= need:
                break
        cursor.close()
        self._remove(conn, victims, figures)
        figures.dropped += len(victims)

    def _remove(self, conn: sqlite3.Connection, victims: list[tuple[int, int]], figures: _Figures) -> None:
        for chunk in _chunks([row for row, _ in victims]):
            conn.execute(f"DELETE FROM outbox WHERE row IN ({','.join('?' * len(chunk))})", chunk)
        figures.pending -= len(victims)
        figures.bytes -= sum(size for _, size in victims)

    def _delete(self, conn: sqlite3.Connection, rows: Sequence[int], figures: _Figures) -> None:
        for chunk in _chunks(rows):
            marks = ",".join("?" * len(chunk))
            # One statement: what it deleted is what the figures lose (unknown rows: nothing).
            sizes = conn.execute(
                f"DELETE FROM outbox WHERE row IN ({marks}) RETURNING length(payload)", chunk
            ).fetchall()
            figures.pending -= len(sizes)
            figures.bytes -= sum(size for (size,) in sizes)

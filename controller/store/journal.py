"""Durable transaction journal on SQLite: one group-committing writer thread decides and commits."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from controller.core.events import MeterSample
from controller.core.transactions import Decision, TransactionFact, TransactionRecord, decide
from controller.store.sqlite import Synchronous, ensure_schema, open_sqlite
from controller.store.writer import GroupCommitWriter

MAX_BATCH = 256  # facts per commit: bounds one commit's latency
SCHEMA_VERSION = 1

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    charger_id TEXT NOT NULL,
    ocpp_version TEXT NOT NULL,
    ocpp_tx_id TEXT NOT NULL,
    ended INTEGER NOT NULL,
    started_at TEXT,
    fingerprint TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_open ON transactions(ended) WHERE ended = 0;
CREATE INDEX IF NOT EXISTS transactions_charger ON transactions(charger_id, id);
CREATE INDEX IF NOT EXISTS transactions_tx_id ON transactions(ocpp_version, ocpp_tx_id);
CREATE UNIQUE INDEX IF NOT EXISTS transactions_fingerprint
    ON transactions(charger_id, fingerprint) WHERE fingerprint IS NOT NULL;
-- Every message as received, with what the journal made of it: the audit trail.
CREATE TABLE IF NOT EXISTS facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT,
    charger_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    seq_no INTEGER,
    offline INTEGER NOT NULL,
    notes TEXT NOT NULL,
    samples TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS facts_key ON facts(key);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
COMMIT;
"""


def _time(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, allow_nan=False)


def record_to_json(rec: TransactionRecord) -> str:
    """A record as stored: JSON, datetimes in ISO 8601."""
    data = asdict(rec)
    for name in ("started_at", "updated_at", "stopped_at", "sampled_at"):
        data[name] = _time(data[name])
    data["missing_seq"] = list(rec.missing_seq)
    return _json(data)


def record_from_json(text: str) -> TransactionRecord:
    """The inverse of record_to_json."""
    data = json.loads(text)
    for name in ("started_at", "updated_at", "stopped_at", "sampled_at"):
        if data[name] is not None:
            data[name] = datetime.fromisoformat(data[name])
    data["missing_seq"] = tuple(data["missing_seq"])
    return TransactionRecord(**data)


_SAMPLE_FIELDS = tuple(f.name for f in fields(MeterSample))


def _sample_json(s: MeterSample) -> dict[str, Any]:
    # Shallow on purpose: asdict() deep-copies every sample of every MeterValues on the writer.
    data = {name: getattr(s, name) for name in _SAMPLE_FIELDS}
    data["at"] = s.at.isoformat()
    return data


@dataclass(frozen=True, slots=True)
class _Request:
    fact: TransactionFact
    future: Future[Decision]


def _settle(future: Future[Decision], result: Decision | None, exc: BaseException | None = None) -> None:
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            assert result is not None
            future.set_result(result)
    except InvalidStateError:
        pass  # the caller gave up waiting; the commit happened anyway


class _View:
    """The journal as `decide` reads it, inside the writer's open transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def by_key(self, key: str) -> TransactionRecord | None:
        row = self._conn.execute("SELECT record FROM transactions WHERE key = ?", (key,)).fetchone()
        return None if row is None else record_from_json(row[0])

    def by_fingerprint(self, charger_id: str, fingerprint: str) -> TransactionRecord | None:
        row = self._conn.execute(
            "SELECT record FROM transactions WHERE charger_id = ? AND fingerprint = ?",
            (charger_id, fingerprint),
        ).fetchone()
        return None if row is None else record_from_json(row[0])

    def next_tx_id(self) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name = 'tx16'").fetchone()
        value = int(row[0]) if row else 1
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES ('tx16', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (value + 1,),
        )
        return value

    def tx_id_used(self, ocpp_tx_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM transactions WHERE ocpp_version = '1.6' AND ocpp_tx_id = ?", (ocpp_tx_id,)
        ).fetchone()
        return row is not None


class SqliteJournal:
    """Transaction journal on SQLite WAL; `record` resolves only after the fact is committed."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: Synchronous = "FULL") -> None:
        self._writer: GroupCommitWriter[_Request, list[Decision]] = GroupCommitWriter(
            path,
            name="journal-writer",
            synchronous=synchronous,
            max_batch=MAX_BATCH,
            setup=lambda conn: ensure_schema(conn, _SCHEMA, SCHEMA_VERSION, "journal"),
            write=self._transaction,
            done=self._committed,
            failed=lambda request, exc: _settle(request.future, None, exc),
        )
        self._read_lock = threading.Lock()
        try:
            self._read: sqlite3.Connection | None = open_sqlite(path, check_same_thread=False)
        except BaseException:
            self._writer.close()
            raise

    # -- caller side ------------------------------------------------------------------------

    def record(self, fact: TransactionFact) -> Future[Decision]:
        """Queue a fact; the future resolves with the decision once it is on disk."""
        request = _Request(fact, Future())
        if not self._writer.submit(request):
            request.future.set_exception(RuntimeError("journal is closed"))
        return request.future

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[TransactionRecord]:
        with self._read_lock:
            if self._read is None:
                raise RuntimeError("journal is closed")
            rows = self._read.execute(sql, args).fetchall()
        return [record_from_json(r[0]) for r in rows]

    def open_transactions(self) -> list[TransactionRecord]:
        """Every transaction not ended, oldest first."""
        return self._rows("SELECT record FROM transactions WHERE ended = 0 ORDER BY id", ())

    def transactions(self, charger_id: str | None = None, limit: int = 100) -> list[TransactionRecord]:
        """Newest first, of one charger or all."""
        if charger_id is None:
            return self._rows("SELECT record FROM transactions ORDER BY id DESC LIMIT ?", (limit,))
        return self._rows(
            "SELECT record FROM transactions WHERE charger_id = ? ORDER BY id DESC LIMIT ?",
            (charger_id, limit),
        )

    def get(self, key: str) -> TransactionRecord | None:
        """One transaction by key."""
        found = self._rows("SELECT record FROM transactions WHERE key = ?", (key,))
        return found[0] if found else None

    def facts(self, key: str) -> list[dict[str, Any]]:
        """The recorded messages of one transaction, in arrival order (diagnostics and tests)."""
        with self._read_lock:
            if self._read is None:
                raise RuntimeError("journal is closed")
            cur = self._read.execute(
                "SELECT kind, outcome, at, received_at, seq_no, offline, notes, samples, raw"
                " FROM facts WHERE key = ? ORDER BY id",
                (key,),
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for name in ("notes", "samples", "raw"):
                item[name] = json.loads(item[name])
            item["offline"] = bool(item["offline"])
            out.append(item)
        return out

    def close(self) -> None:
        """Stop accepting, commit everything queued, join the writer, close connections."""
        self._writer.close()
        with self._read_lock:
            if self._read is not None:
                self._read.close()
                self._read = None

    # -- writer thread ----------------------------------------------------------------------

    @staticmethod
    def _committed(batch: list[_Request], decisions: list[Decision]) -> None:
        for request, decision in zip(batch, decisions, strict=True):
            _settle(request.future, decision)

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Request]) -> list[Decision]:
        """Decide and write a batch inside the writer's open transaction."""
        view = _View(conn)
        decisions = []
        for request in batch:
            decision = decide(view, request.fact)
            self._write(conn, request.fact, decision)
            decisions.append(decision)
        return decisions

    @staticmethod
    def _write(conn: sqlite3.Connection, fact: TransactionFact, decision: Decision) -> None:
        rec = decision.record
        if decision.changed and rec is not None:
            conn.execute(
                "INSERT INTO transactions (key, charger_id, ocpp_version, ocpp_tx_id, ended, started_at,"
                " fingerprint, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET ended = excluded.ended,"
                " started_at = excluded.started_at, record = excluded.record",
                (
                    rec.key,
                    rec.charger_id,
                    rec.ocpp_version,
                    rec.ocpp_tx_id,
                    int(rec.ended),
                    _time(rec.started_at),
                    rec.fingerprint,
                    record_to_json(rec),
                ),
            )
        conn.execute(
            "INSERT INTO facts (key, charger_id, kind, outcome, at, received_at, seq_no, offline, notes,"
            " samples, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.key if rec is not None else None,
                fact.charger_id,
                fact.kind.value,
                decision.outcome.value,
                fact.at.isoformat(),
                fact.received_at.isoformat(),
                fact.seq_no,
                int(fact.offline),
                _json(list(decision.notes)),
                _json([_sample_json(s) for s in fact.samples]),
                _json(dict(fact.raw)),
            ),
        )

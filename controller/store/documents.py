"""Small human-readable documents on TinyDB, one atomic file write per change."""

from __future__ import annotations

import os
import threading
from collections.abc import MutableMapping
from typing import Any

from tinydb import Query, TinyDB
from tinydb.table import Document, Table

from controller.store.atomic import AtomicJSONStorage

KEY_FIELD = "_key"  # reserved: TinyDB ids are integers, our keys are strings stored in the doc


def _strip(doc: Document | dict[str, Any]) -> dict[str, Any]:
    """A plain copy of a stored document without the reserved key field."""
    return {k: v for k, v in doc.items() if k != KEY_FIELD}


class TinyDocumentStore:
    """DocumentStore on TinyDB + AtomicJSONStorage; thread-safe, durable when a write returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.Lock()  # TinyDB does read-modify-write of the whole file
        self._db = TinyDB(path, storage=AtomicJSONStorage)
        self._closed = False

    def _table(self, name: str) -> Table:
        if self._closed:
            raise RuntimeError("document store is closed")
        # No query cache: every call reads the file, so results never alias cached objects.
        return self._db.table(name, cache_size=0)

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The document stored under key, or None."""
        with self._lock:
            found = self._table(table).get(Query()[KEY_FIELD] == key)
        if found is None or isinstance(found, list):
            return None
        return _strip(found)

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        """Insert or replace (not merge) the document under key; durable when this returns."""
        if KEY_FIELD in doc:
            raise ValueError(f"{KEY_FIELD!r} is reserved by the document store")
        stored = {**doc, KEY_FIELD: key}
        with self._lock:
            tbl = self._table(table)
            existing = tbl.get(Query()[KEY_FIELD] == key)
            if isinstance(existing, Document):

                def replace(current: MutableMapping[Any, Any]) -> None:
                    current.clear()
                    current.update(stored)

                # One file write either way: replace in place, or insert.
                tbl.update(replace, doc_ids=[existing.doc_id])
            else:
                tbl.insert(stored)

    def delete(self, table: str, key: str) -> None:
        """Remove the document under key if present; durable when this returns."""
        with self._lock:
            tbl = self._table(table)
            existing = tbl.get(Query()[KEY_FIELD] == key)
            if isinstance(existing, Document):
                tbl.remove(doc_ids=[existing.doc_id])

    def all(self, table: str) -> dict[str, dict[str, Any]]:
        """Every document of a table by key."""
        with self._lock:
            docs = self._table(table).all()
        return {str(d[KEY_FIELD]): _strip(d) for d in docs}

    def close(self) -> None:
        """Release the file; later calls raise RuntimeError."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

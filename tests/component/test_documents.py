"""TinyDocumentStore and AtomicJSONStorage on real files: round trips, reopen, crash leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from controller.store.atomic import AtomicJSONStorage
from controller.store.documents import TinyDocumentStore


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped), like a crashed writer's."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_put_get_delete_all_round_trip_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"
    store = TinyDocumentStore(path)
    store.put("chargers", "CP-1", {"vendor": "ABB", "evses": [1, 2]})
    store.put("chargers", "CP-2", {"vendor": "Alpitronic"})
    store.put("users", "CP-1", {"name": "same key, other table"})
    store.put("chargers", "CP-2", {"model": "HYC300"})  # replaces, does not merge
    store.delete("chargers", "CP-3")  # absent: no error
    store.close()

    store = TinyDocumentStore(path)
    assert store.get("chargers", "CP-1") == {"vendor": "ABB", "evses": [1, 2]}
    assert store.get("chargers", "CP-2") == {"model": "HYC300"}
    assert store.get("chargers", "nope") is None
    assert store.get("no-such-table", "CP-1") is None
    assert store.all("users") == {"CP-1": {"name": "same key, other table"}}
    store.delete("chargers", "CP-1")
    store.delete("chargers", "CP-1")  # idempotent
    store.close()

    store = TinyDocumentStore(path)
    assert store.all("chargers") == {"CP-2": {"model": "HYC300"}}
    assert store.all("empty") == {}
    store.close()


def test_returned_documents_are_copies(tmp_path: Path) -> None:
    store = TinyDocumentStore(tmp_path / "docs.json")
    doc = {"tags": ["a"]}
    store.put("t", "k", doc)
    doc["tags"].append("changed after put")
    got = store.get("t", "k")
    assert got == {"tags": ["a"]}
    assert got is not None
    got["tags"].append("changed after get")
    assert store.get("t", "k") == {"tags": ["a"]}
    store.close()


def test_reserved_key_field_is_rejected(tmp_path: Path) -> None:
    store = TinyDocumentStore(tmp_path / "docs.json")
    with pytest.raises(ValueError):
        store.put("t", "k", {"_key": "x"})
    store.close()


def test_calls_after_close_fail(tmp_path: Path) -> None:
    store = TinyDocumentStore(tmp_path / "docs.json")
    store.close()
    store.close()
    with pytest.raises(RuntimeError):
        store.get("t", "k")


def test_stale_temp_file_from_a_crashed_writer_does_not_break_opening(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"
    store = TinyDocumentStore(path)
    store.put("chargers", "CP-1", {"vendor": "ABB"})
    store.close()
    # What a writer killed between creating its temp file and the rename leaves behind.
    stale = tmp_path / f".docs.json.tmp-{_dead_pid()}"
    stale.write_text('{"chargers":{"1":{"vendor":"Alpi')
    ours = tmp_path / f".docs.json.tmp-{os.getpid()}"  # an earlier process with our pid
    ours.write_text("{")

    store = TinyDocumentStore(path)
    assert store.get("chargers", "CP-1") == {"vendor": "ABB"}
    assert not stale.exists()
    assert not ours.exists()
    store.put("chargers", "CP-2", {"vendor": "Kempower"})
    assert store.all("chargers") == {"CP-1": {"vendor": "ABB"}, "CP-2": {"vendor": "Kempower"}}
    store.close()


def test_temp_file_of_a_live_process_is_left_alone(tmp_path: Path) -> None:
    # Our parent is alive; its temp file may be mid-write and is not ours to delete.
    live = tmp_path / f".docs.json.tmp-{os.getppid()}"
    live.write_text("{")
    AtomicJSONStorage(tmp_path / "docs.json").close()
    assert live.exists()


def test_missing_or_empty_file_reads_as_empty(tmp_path: Path) -> None:
    assert AtomicJSONStorage(tmp_path / "missing.json").read() is None
    assert not (tmp_path / "missing.json").exists()  # reading does not create it
    (tmp_path / "empty.json").write_text("")
    assert AtomicJSONStorage(tmp_path / "empty.json").read() is None


def test_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "sub" / "docs.json", create_dirs=True)
    storage.write({"t": {"1": {"a": 1}}})
    storage.write({"t": {"1": {"a": 2}}})
    assert json.loads((tmp_path / "sub" / "docs.json").read_text()) == {"t": {"1": {"a": 2}}}
    assert storage.read() == {"t": {"1": {"a": 2}}}
    assert os.listdir(tmp_path / "sub") == ["docs.json"]


def test_concurrent_puts_from_threads_are_all_kept(tmp_path: Path) -> None:
    store = TinyDocumentStore(tmp_path / "docs.json")

    def writer(name: str) -> None:
        for i in range(20):
            store.put("t", f"{name}-{i}", {"i": i})

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.all("t")) == 80
    store.close()


def test_rewrite_keeps_the_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"
    storage = AtomicJSONStorage(path)
    storage.write({})
    assert path.stat().st_mode & 0o777 == 0o600  # new files start private
    path.chmod(0o640)
    storage.write({"t": {}})
    assert path.stat().st_mode & 0o777 == 0o640

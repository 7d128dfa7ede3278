"""SIGKILL a writer at random moments; every file must reopen holding the old or the new state.

The writer (crash_writer.py) commits document state n, then outbox message n, then reports
`committed n`. After each kill the test reopens both files and checks: they open; the document
is exactly state N or N+1 where N is the last number the writer reported (never older than an
acknowledged commit, never torn); the outbox holds every acknowledged message, each payload is
JSON and the per-stream seq has no holes (a rolled-back commit must not consume a seq).
"""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.store.documents import TinyDocumentStore
from controller.store.outbox import SqliteOutbox
from tests.component import crash_writer

KILLS = 200
SEED = 20241127
EARLY_KILL_SHARE = 0.1  # some kills land while the writer is still opening/recovering files
MAX_DELAY_S = 0.030
READY_TIMEOUT_S = 20.0

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(crash_writer.__file__).resolve()


@dataclass
class Ledger:
    """What the writers have reported so far, over all runs."""

    reported: int = 0  # highest n seen durable: from `ready n` or `committed n`
    acknowledged: set[int] = field(default_factory=set)  # every `committed n`


def _spawn(directory: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        bufsize=0,
    )


def _wait_ready(proc: subprocess.Popen[bytes]) -> bytes:
    """Read stdout until the `ready` line; give up after READY_TIMEOUT_S so a hang fails."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"ready" not in seen or not seen.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"writer not ready: {seen!r}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"writer died: {seen!r} {proc.stderr and proc.stderr.read()!r}")
            seen += chunk
    return seen


def _kill(proc: subprocess.Popen[bytes], rng: random.Random) -> str:
    """Kill the writer with SIGKILL at a random moment; return everything it reported."""
    head = b""
    if rng.random() < EARLY_KILL_SHARE:
        time.sleep(rng.uniform(0, 0.1))
    else:
        head = _wait_ready(proc)
        time.sleep(rng.uniform(0, MAX_DELAY_S))
    assert proc.poll() is None, "the writer must still be running when it is killed"
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()  # lines already in the pipe survive the writer's death
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    return (head + out).decode()


def _record(output: str, ledger: Ledger) -> None:
    lines = output.splitlines()
    # Only whole lines count; SIGKILL cannot split one write, but be strict about it anyway.
    for line in lines:
        word, _, number = line.partition(" ")
        assert word in ("ready", "committed") and number.isdigit(), repr(line)
        n = int(number)
        ledger.reported = max(ledger.reported, n)
        if word == "committed":
            ledger.acknowledged.add(n)


def _check_documents(directory: Path, ledger: Ledger) -> int:
    docs = TinyDocumentStore(directory / crash_writer.DOCS)
    try:
        current = docs.get("state", "current")
    finally:
        docs.close()
    n = int(current["n"]) if current else 0
    assert current is None or current == crash_writer.state(n), "torn document"
    assert ledger.reported <= n <= ledger.reported + 1, (n, ledger.reported)
    assert not list(directory.glob(f".{crash_writer.DOCS}.tmp-*")), "stale temp file kept"
    return n


def _check_outbox(directory: Path, ledger: Ledger, doc_n: int) -> None:
    path = directory / crash_writer.OUTBOX
    if not path.exists():
        assert not ledger.acknowledged
        return
    with SqliteOutbox(path, max_bytes=1 << 30) as outbox:
        stored = outbox.pending(1_000_000, set())
        stats = outbox.stats()
    assert stats.pending == len(stored)
    assert stats.bytes == sum(len(s.payload) for s in stored)
    sessions = [json.loads(s.payload) for s in stored if s.topic.startswith("crash/sessions/")]
    statuses = [json.loads(s.payload) for s in stored if s.topic == "crash/status"]
    numbers = [p["data"]["n"] for p in sessions]
    assert [p["seq"] for p in sessions] == list(range(1, len(sessions) + 1))
    assert numbers == sorted(set(numbers)), "session messages out of order or duplicated"
    assert ledger.acknowledged <= set(numbers), "an acknowledged message was lost"
    assert not numbers or numbers[-1] <= doc_n, "outbox is ahead of the document it follows"
    # The coalesced status went in the same transaction as each session message.
    assert len(statuses) == (1 if sessions else 0)
    if statuses:
        assert statuses[0]["data"]["n"] == numbers[-1]
        assert statuses[0]["seq"] == len(sessions)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_sigkill_never_loses_acknowledged_state_nor_corrupts_files(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ledger = Ledger()
    kills = 0
    for _ in range(KILLS):
        proc = _spawn(tmp_path)
        try:
            output = _kill(proc, rng)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        kills += 1
        _record(output, ledger)
        doc_n = _check_documents(tmp_path, ledger)
        _check_outbox(tmp_path, ledger, doc_n)
    assert kills == KILLS
    assert ledger.acknowledged, "the writer never got to commit anything: kills came too early"

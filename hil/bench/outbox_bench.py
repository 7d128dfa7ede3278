"""Outbox benchmark: group-committed put throughput (synchronous FULL vs NORMAL) and drain rate.

Run: python -m hil.bench.outbox_bench [--messages N] [--json out.json] [--dir DIR]
The database lives in a temporary directory beside the JSON output unless --dir says otherwise,
so on the box it measures the SD card/eMMC, not a tmpfs /tmp.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import get_args

from controller.core.envelope import Lane, Outgoing
from controller.store.outbox import SqliteOutbox
from controller.store.sqlite import Synchronous

DEFAULT_JSON = Path("hil/bench/results/outbox.json")
DRAIN_WINDOW = 500  # rows fetched and acked per round, like a bounded in-flight window
SEQUENTIAL_PUTS = 200  # put-and-wait one at a time: one commit (and fsync) per message
MAX_BYTES = 1 << 34  # the benchmark measures speed, not the telemetry bound


@dataclass(frozen=True, slots=True)
class Figures:
    """One synchronous mode's results."""

    synchronous: str
    messages: int
    payload_bytes: int
    put_per_s: float  # puts submitted back to back, group-committed by the writer
    sequential_put_per_s: float  # each put awaited before the next: commits per second
    drain_per_s: float  # pending(DRAIN_WINDOW) + ack until empty


def _message(i: int) -> Outgoing:
    """A session update of roughly 350 bytes enveloped, like the MQTT measurements used."""
    data = {
        "id": f"session-{i:08d}",
        "status": "ACTIVE",
        "kwh": 12.345,
        "evse_uid": "DE*ABC*E0001*1",
        "connector_id": "1",
        "last_updated": "2024-11-27T10:00:00.000Z",
        "auth_method": "WHITELIST",
        "pad": "x" * 90,
    }
    return Outgoing(f"siteedge/v1/DE/ABC/LOC1/sessions/{i}", "sessions", "session", data, Lane.SESSION)


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def measure(directory: Path, synchronous: Synchronous, messages: int) -> Figures:
    """Fill a fresh outbox with `messages` puts, then drain it; report the rates."""
    path = directory / f"outbox-{synchronous.lower()}.db"
    with SqliteOutbox(path, MAX_BYTES, synchronous=synchronous) as box:
        start = time.perf_counter()
        for i in range(SEQUENTIAL_PUTS):
            box.put([_message(i)]).result()
        sequential = _rate(SEQUENTIAL_PUTS, time.perf_counter() - start)

        start = time.perf_counter()
        futures: list[Future[None]] = [box.put([_message(i)]) for i in range(messages)]
        for future in futures:
            future.result()
        put = _rate(messages, time.perf_counter() - start)
        payload_bytes = box.stats().bytes // box.stats().pending

        total = box.stats().pending
        start = time.perf_counter()
        while batch := box.pending(DRAIN_WINDOW, set()):
            box.ack([stored.row for stored in batch]).result()
        drain = _rate(total, time.perf_counter() - start)
    for leftover in directory.glob(f"{path.name}*"):
        leftover.unlink()
    return Figures(synchronous, messages, payload_bytes, put, sequential, drain)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark for FULL and NORMAL, print the figures and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--dir", type=Path, default=None, help="where the database files go")
    args = parser.parse_args(argv)

    out: Path = args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    base = args.dir if args.dir is not None else out.parent
    base.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="outbox-bench-", dir=base))
    try:
        results = [measure(directory, mode, args.messages) for mode in get_args(Synchronous)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    report: dict[str, object] = {
        "benchmark": "outbox",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": f"{platform.system()} {platform.machine()}",
        "drain_window": DRAIN_WINDOW,
        "results": [asdict(figures) for figures in results],
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"outbox benchmark: {args.messages} messages, sqlite {sqlite3.sqlite_version}")
    print(f"{'synchronous':<12}{'put/s':>12}{'seq put/s':>12}{'drain/s':>12}{'bytes':>8}")
    for f in results:
        print(
            f"{f.synchronous:<12}{f.put_per_s:>12.0f}{f.sequential_put_per_s:>12.0f}"
            f"{f.drain_per_s:>12.0f}{f.payload_bytes:>8}"
        )
    print(f"written to {out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])

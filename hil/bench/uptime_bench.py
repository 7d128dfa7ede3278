"""Uptime report benchmark: NEVI figures for 50 ports from a year of status history, on disk.

Run: python -m hil.bench.uptime_bench [--ports 50] [--per-day 20] [--runs 5] [--json out.json]
Issue 7's target is < 1 s for the trailing-12-months report. The history is written into a real
SQLite file (the controller's store, WAL, synchronous=FULL) in a scratch directory: about
20 transitions per port per day (charging sessions, a few faults, charger offline spells), plus
two maintenance windows per port and month. Timed: reading the year from the store and computing
every port's monthly and trailing figures (`GET /api/v1/reports/uptime?trailing=12` without HTTP).
"""

from __future__ import annotations

import argparse
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.core.uptime import Window, parse_month, to_us, trailing_months, uptime_report
from controller.store.status_history import SqliteStatusHistory
from hil.bench import write_json

DEFAULT_JSON = Path("hil/bench/results/uptime.json")
TARGET_S = 1.0
LAST_MONTH = "2026-10"


def transitions(
    port: str, start: datetime, days: int, per_day: int, rng: random.Random
) -> Iterator[tuple[str, int, str, str]]:
    """A port's plausible days: sessions (CHARGING, AVAILABLE), now and then a fault or offline spell."""
    t = to_us(start)
    step = 86_400_000_000 // per_day
    for _ in range(days * per_day // 2):
        roll = rng.random()
        down = (
            "OUTOFORDER"
            if roll < 0.02
            else "UNKNOWN"
            if roll < 0.04
            else "INOPERATIVE"
            if roll < 0.05
            else None
        )
        t += rng.randint(step // 2, step * 3 // 2)
        yield (port, t, down or "CHARGING", "bench")
        t += rng.randint(step // 2, step * 3 // 2)
        yield (port, t, "AVAILABLE", "bench")


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Build the history, time the report, print the figures and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ports", type=int, default=50)
    parser.add_argument("--per-day", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    months = trailing_months(parse_month(LAST_MONTH, UTC), 12, UTC)
    start, end = months[0].start, months[-1].end
    days = (end - start).days
    rng = random.Random(7)
    scratch = Path(tempfile.mkdtemp(prefix="siteedge-uptime-", dir="."))
    try:
        store = SqliteStatusHistory(scratch / "reports.sqlite3")
        ports = [f"CP-{i // 2 + 1}-{i % 2 + 1}" for i in range(args.ports)]
        t0 = time.perf_counter()
        rows = 0
        for port in ports:
            batch = list(transitions(port, start - timedelta(days=1), days + 1, args.per_day, rng))
            store.load(batch)
            rows += len(batch)
            for m in months:
                for _ in range(2):
                    at = m.start + timedelta(hours=rng.randint(0, 24 * 27))
                    store.add_window(
                        Window(None, port, at, at + timedelta(hours=4), "maintenance", "bench", at)
                    )
        load_s = time.perf_counter() - t0
        now = end + timedelta(days=1)
        read, compute, total = [], [], []
        report: dict[str, object] = {}
        for run in range(args.runs + 1):  # the first run warms SQLite's page cache
            a = time.perf_counter()
            histories = store.histories(start, end)
            windows = store.windows(start, end)
            b = time.perf_counter()
            report = uptime_report(histories, windows, months, now)
            c = time.perf_counter()
            if run:
                read.append(b - a)
                compute.append(c - b)
                total.append(c - a)
        store.close()
        db_bytes = sum(f.stat().st_size for f in scratch.iterdir())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ports_out = report["ports"]
    assert isinstance(ports_out, list)
    figures = {
        "ports": args.ports,
        "transitions": rows,
        "transitions_per_port_day": round(rows / args.ports / days, 1),
        "months": len(months),
        "windows": args.ports * 2 * len(months),
        "db_mb": round(db_bytes / 1e6, 1),
        "load_s": round(load_s, 2),
        "runs": args.runs,
        "read_s_median": round(statistics.median(read), 3),
        "compute_s_median": round(statistics.median(compute), 3),
        "total_s_min": round(min(total), 3),
        "total_s_median": round(statistics.median(total), 3),
        "total_s_max": round(max(total), 3),
        "target_s": TARGET_S,
        "meets_target_median": statistics.median(total) < TARGET_S,
        "example_trailing_uptime_percent": ports_out[0]["trailing"]["uptime_percent"],
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    write_json(args.json, figures)
    print(
        f"uptime benchmark: {args.ports} ports, {rows:,} transitions over {len(months)} months "
        f"({figures['transitions_per_port_day']}/port/day), {figures['windows']} maintenance windows, "
        f"{figures['db_mb']} MB on disk"
    )
    print(
        f"trailing-12 report: median {figures['total_s_median']} s (read {figures['read_s_median']} s + "
        f"compute {figures['compute_s_median']} s), min {figures['total_s_min']} s, "
        f"max {figures['total_s_max']} s (target < {TARGET_S} s)"
    )
    print(f"written to {args.json}")
    return figures


if __name__ == "__main__":
    main()

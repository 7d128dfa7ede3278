"""Benchmarks: measured figures for the design decisions (outbox, broker, bus)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


def quantiles(values: list[float]) -> dict[str, float | int]:
    """count, p50, p95, p99 and max (3 decimals) of a sample; only the count below two values."""
    if len(values) < 2:
        return {"count": len(values)}
    q = statistics.quantiles(values, n=100)
    return {
        "count": len(values),
        "p50": round(statistics.median(values), 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "max": round(max(values), 3),
    }


def write_json(path: Path, result: Any) -> None:
    """Write a benchmark's result as indented JSON, creating the results directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")

"""Run every benchmark: python -m hil.bench (figures printed, JSON in hil/bench/results/)."""

from __future__ import annotations

import sys

from hil.bench import outbox_bench, status_latency


def main() -> int:
    """Run the benchmarks one after another (an exception fails the run)."""
    print("== outbox", flush=True)
    outbox_bench.main([])
    print("== status latency and outage recovery", flush=True)
    return status_latency.main([])


if __name__ == "__main__":
    sys.exit(main())

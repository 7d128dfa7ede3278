"""Run every benchmark: python -m hil.bench (figures printed, JSON in hil/bench/results/)."""

from __future__ import annotations

import sys

from hil.bench import outbox_bench, status_latency, uplink_drain


def main() -> int:
    """Run the benchmarks one after another (an exception fails the run)."""
    print("== outbox", flush=True)
    outbox_bench.main([])
    print("== status latency and outage recovery", flush=True)
    status_latency.main([])
    print("== uplink backlog drain", flush=True)
    return uplink_drain.main([])


if __name__ == "__main__":
    sys.exit(main())

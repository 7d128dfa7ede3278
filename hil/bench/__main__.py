"""Run every benchmark: python -m hil.bench (figures printed, JSON in hil/bench/results/)."""

from __future__ import annotations

import sys

from hil.bench import (
    modbus_rtu,
    modbus_tcp,
    ocpp_load,
    outbox_bench,
    status_latency,
    tariff_bench,
    uplink_drain,
    uptime_bench,
)


def main() -> int:
    """Run the benchmarks one after another (an exception fails the run)."""
    print("== outbox", flush=True)
    outbox_bench.main([])
    print("== status latency and outage recovery", flush=True)
    status_latency.main([])
    print("== OCPP load: 500 charge points, 1 minute (full: python -m hil.bench.ocpp_load)", flush=True)
    ocpp_load.main(["--minutes", "1"])
    print("== uplink backlog drain", flush=True)
    uplink_drain.main([])
    print("== Modbus RTU bus (9600 Bd, 8 meters; one dead device)", flush=True)
    modbus_rtu.main([])
    print("== tariff engine: 24-hour session, 1-minute samples, 6-element tariff", flush=True)
    tariff_bench.main([])
    print("== uptime report: 50 ports, a year of status history", flush=True)
    uptime_bench.main([])
    print("== Modbus TCP polling (64 meters, CPU)", flush=True)
    return modbus_tcp.main([])


if __name__ == "__main__":
    sys.exit(main())

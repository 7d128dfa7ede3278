"""TCP polling benchmark: 64 Modbus TCP meters polled every second; CPU of the polling process.

python -m hil.bench.modbus_tcp [--meters 64] [--duration 60]
The simulated meters run in a child process, so the figure is siteedge's polling cost alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from controller.core.clock import SystemClock
from controller.core.config import MeterSettings, parse_transport
from controller.core.events import MeterFailed, MeterRead
from drivers.service import ModbusService
from hil.sim.meter import MeterSimulator

RESULTS = Path(__file__).parent / "results" / "modbus_tcp.json"
VALUES = {"voltage_l1": 231.0, "voltage_l2": 229.0, "voltage_l3": 230.0, "frequency": 50.0, "power": 11000.0}


async def serve(count: int) -> None:
    """Child process: serve count SDM630 simulators, print their ports, run until stdin closes."""
    sims = [await MeterSimulator("eastron_sdm630", values=VALUES).start() for _ in range(count)]
    print(json.dumps([s.port for s in sims]), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for s in sims:
        await s.stop()


async def poll(ports: list[int], duration: float) -> dict[str, Any]:
    """Poll every port once a second for duration seconds; CPU share of this process."""
    meters = []
    for i, port in enumerate(ports):
        url = f"tcp://127.0.0.1:{port}"
        meters.append(
            MeterSettings(f"m{i}", "eastron_sdm630", parse_transport(url), url, 1, "grid", 1.0, 0.5, 10.0)
        )
    reads: dict[str, int] = {}
    failures = 0

    def emit(event: object) -> None:
        nonlocal failures
        if isinstance(event, MeterRead):
            reads[event.meter_id] = reads.get(event.meter_id, 0) + 1
        elif isinstance(event, MeterFailed):
            failures += 1

    service = ModbusService(meters, SystemClock(), emit)
    task = asyncio.create_task(service.run())
    await asyncio.sleep(3.0)  # connect and settle before measuring
    before = dict(reads)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(duration)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    polled = {k: reads.get(k, 0) - before.get(k, 0) for k in (m.id for m in meters)}
    requests = sum(s.bus.requests for s in service.buses.values())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    per_meter = list(polled.values())
    return {
        "meters": len(ports),
        "poll_interval_s": 1.0,
        "duration_s": round(wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_percent_of_one_core": round(100.0 * cpu / wall, 2),
        "polls_per_meter_mean": round(statistics.mean(per_meter), 1),
        "polls_per_meter_min": min(per_meter),
        "failed_polls": failures,
        "requests_total": requests,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Start the simulators in a child, poll them here, print and write hil/bench/results/modbus_tcp.json."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meters", type=int, default=64)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds measured (the issue asks 600)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    child = subprocess.Popen(
        [sys.executable, "-m", "hil.bench.modbus_tcp", "--serve", str(args.meters)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        result = asyncio.run(poll(ports, args.duration))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)
    r = result
    print(
        f"{r['meters']} Modbus TCP meters every {r['poll_interval_s']} s for {r['duration_s']} s: "
        f"CPU {r['cpu_percent_of_one_core']} % of one core (target < 10 %), "
        f"{r['polls_per_meter_mean']} polls per meter (min {r['polls_per_meter_min']}), "
        f"{r['failed_polls']} failed, {r['requests_total']} requests, RSS {r['max_rss_mb']} MB",
        flush=True,
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

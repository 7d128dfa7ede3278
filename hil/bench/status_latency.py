"""Status freshness benchmark: StatusNotification in, retained OCPI status out at a real broker.

Run: python -m hil.bench.status_latency [--changes N] [--json out.json]
A real `siteedge run` process, a private mosquitto, a 1.6J simulator and a subscriber in this
process. Measures (1) per-change latency from sending StatusNotification to the subscriber
receiving the retained `{root}/evses/{uid}/status`, and (2) after a broker outage with a backlog
of status changes, how long until the broker is back and every EVSE's current status arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hil.bench import write_json
from hil.broker import Broker, free_port
from hil.sim.chargepoint import ChargePointSimulator
from hil.siteconfig import SimCharger, SiteSpec, render

DEFAULT_JSON = Path("hil/bench/results/status_latency.json")
ROOT = "siteedge/v1/NL/SED/DEMO01"
EVSES = 4
STATES = ("Available", "Preparing", "Charging", "Finishing")
OCPI = {"Available": "AVAILABLE", "Preparing": "CHARGING", "Charging": "CHARGING", "Finishing": "CHARGING"}


class Subscriber:
    """Records the arrival time of every status message, keyed by (evse_uid, status)."""

    def __init__(self, port: int) -> None:
        self.arrivals: dict[tuple[str, str, int], float] = {}
        self.history = 0
        self._cond = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
        self._client.on_message = self._on_message
        # The broker keeps no sessions: subscribe again on every (re)connect.
        self._client.on_connect = lambda c, *_: c.subscribe(f"{ROOT}/#", qos=1)
        self._client.reconnect_delay_set(1, 1)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.perf_counter()
        if msg.topic == f"{ROOT}/events/status":
            with self._cond:
                self.history += 1
            return
        if not msg.topic.startswith(f"{ROOT}/evses/") or not msg.payload:
            return
        data = json.loads(msg.payload)["data"]
        with self._cond:
            self.arrivals[(data["evse_uid"], data["status"], data["ocpp"].get("connectorId", 0))] = now
            self._cond.notify_all()

    def wait(self, key: tuple[str, str, int], timeout: float = 30.0) -> float:
        """Arrival time of key (perf_counter), waiting for it if needed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self.arrivals:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"{key} never arrived; have {sorted(self.arrivals)}")
            return self.arrivals.pop(key)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


async def _latency(
    cp: ChargePointSimulator, sub: Subscriber, changes: int, state: dict[int, str]
) -> list[float]:
    latencies = []
    for i in range(changes):
        connector = i % EVSES + 1
        # Alternate between an AVAILABLE and a CHARGING status so every change is published.
        new = "Charging" if OCPI[state[connector]] == "AVAILABLE" else "Available"
        state[connector] = new
        sent = time.perf_counter()
        await cp.status(connector, new)
        arrived = await asyncio.to_thread(sub.wait, (f"CP-1-{connector}", OCPI[new], connector))
        latencies.append((arrived - sent) * 1000.0)
    return latencies


async def _outage(
    cp: ChargePointSimulator, sub: Subscriber, broker: Broker, backlog: int, state: dict[int, str]
) -> dict[str, float]:
    broker.kill()
    await asyncio.sleep(0.5)
    published = 0  # only changes of the OCPI status are published
    for i in range(backlog):
        connector = i % EVSES + 1
        new = "Charging" if (i // EVSES) % 2 == 0 else "Available"
        published += OCPI[new] != OCPI[state[connector]]
        state[connector] = new
        await cp.status(connector, new)
    history_before = sub.history
    sub.arrivals.clear()
    t0 = time.perf_counter()
    await asyncio.to_thread(broker.start)
    broker_up = time.perf_counter()
    arrivals = [await asyncio.to_thread(sub.wait, (f"CP-1-{c}", OCPI[s], c), 60.0) for c, s in state.items()]
    all_status = max(arrivals)
    deadline = time.monotonic() + 120
    while sub.history - history_before < published and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    history_done = time.perf_counter()
    return {
        "backlog_status_changes": backlog,
        "broker_start_s": broker_up - t0,
        "current_status_of_every_evse_after_broker_up_s": all_status - broker_up,
        "whole_history_after_broker_up_s": history_done - broker_up,
        "history_messages_expected": published,
        "history_messages_received": sub.history - history_before,
    }


async def bench(changes: int, backlog: int) -> dict[str, Any]:
    """Run both measurements against a real controller process; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="siteedge-bench-") as tmp, Broker() as broker:
        spec = SiteSpec(
            data_dir=f"{tmp}/data", mqtt_url=broker.url, ocpp_port=free_port(), api_port=free_port()
        )
        spec.chargers.append(SimCharger("CP-1", evses=EVSES))
        spec.log_level = "WARNING"
        cfg = Path(tmp) / "site.toml"
        cfg.write_text(render(spec))
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
            [sys.executable, "-m", "controller.cli", "run", "--config", str(cfg)]
        )
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(200):
                    try:
                        if (
                            await http.get(f"http://127.0.0.1:{spec.api_port}/api/v1/auth/state")
                        ).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
            sub = Subscriber(broker.port)
            async with ChargePointSimulator(
                "CP-1", f"ws://127.0.0.1:{spec.ocpp_port}/ocpp", connectors=EVSES
            ) as cp:
                await cp.boot()
                for c in range(1, EVSES + 1):
                    await cp.status(c, "Available")
                    await asyncio.to_thread(sub.wait, (f"CP-1-{c}", "AVAILABLE", c))
                state = dict.fromkeys(range(1, EVSES + 1), "Available")
                lat = await _latency(cp, sub, changes, state)
                outage = await _outage(cp, sub, broker, backlog, state)
            sub.close()
        finally:
            proc.terminate()
            proc.wait(20)
    q = statistics.quantiles(lat, n=100)
    return {
        "status_latency_ms": {
            "changes": len(lat),
            "p50": statistics.median(lat),
            "p95": q[94],
            "p99": q[98],
            "max": max(lat),
        },
        "outage_recovery": outage,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: run, print, write JSON."""
    p = argparse.ArgumentParser(prog="python -m hil.bench.status_latency", description=__doc__)
    p.add_argument("--changes", type=int, default=400, help="status changes for the latency figure")
    p.add_argument("--backlog", type=int, default=2000, help="status changes queued during the outage")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args(argv)
    result = asyncio.run(bench(args.changes, args.backlog))
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

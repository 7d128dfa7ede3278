"""Uplink backlog benchmark: durable enqueue rate, drain rate to Mosquitto, status-first after outage.

Run: python -m hil.bench.uplink_drain [--messages N] [--evses E] [--json out.json]
A private mosquitto, the real SqliteOutbox and Uplink, and a paho subscriber that counts what
arrives. Phase 1 fills the outbox with N session-lane messages (as if the uplink had been down for
a long time) plus the latest status of E EVSEs; phase 2 connects and measures how soon every
EVSE's status arrives and how fast the whole backlog drains.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from controller.core.clock import SystemClock
from controller.core.config import validate
from controller.core.envelope import Lane, Outgoing
from controller.store.outbox import SqliteOutbox
from controller.sync.uplink import Uplink
from hil.bench import write_json
from hil.broker import Broker
from hil.siteconfig import SiteSpec, render

DEFAULT_JSON = Path("hil/bench/results/uplink_drain.json")
ROOT = "siteedge/v1/NL/SED/DEMO01"
BATCH = 1000


class Counter:
    """Counts session and status messages as they arrive (paho's thread)."""

    def __init__(self, port: int) -> None:
        self.sessions = 0
        self.statuses: set[str] = set()
        self.first_status_all: float | None = None
        self.evses = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-counter-{time.monotonic_ns()}"
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{ROOT}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            if "/sessions/" in msg.topic:
                self.sessions += 1
            elif msg.topic.endswith("/status") and "/evses/" in msg.topic:
                self.statuses.add(msg.topic)
                if len(self.statuses) == self.evses and self.first_status_all is None:
                    self.first_status_all = time.perf_counter()


def _session(n: int) -> Outgoing:
    data = {"id": f"S{n:09d}", "kwh": 12.3456, "status": "ACTIVE", "pad": "x" * 200}
    return Outgoing(f"{ROOT}/sessions/S{n:09d}", "sessions", "session", data, Lane.SESSION)


def _status(i: int) -> Outgoing:
    data = {"evse_uid": f"E{i}", "status": "CHARGING", "last_updated": "2026-11-27T00:00:00.000Z"}
    return Outgoing(
        f"{ROOT}/evses/E{i}/status",
        f"evse_status/E{i}",
        "evse_status",
        data,
        Lane.STATUS,
        retain=True,
        coalesce_key=f"evse_status/E{i}",
    )


async def bench(messages: int, evses: int) -> dict[str, Any]:
    """Fill, then drain; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="siteedge-drain-", dir=".") as tmp, Broker() as broker:
        config = validate(tomllib.loads(render(SiteSpec(data_dir=tmp, mqtt_url=broker.url))))
        outbox = SqliteOutbox(Path(tmp) / "outbox.sqlite3", 1 << 36)
        t0 = time.perf_counter()
        futures = [
            outbox.put([_session(n) for n in range(i, min(i + BATCH, messages))])
            for i in range(0, messages, BATCH)
        ]
        for f in futures:
            f.result()
        # The status of every EVSE changed many times during the outage; only the latest is kept.
        for _round in range(3):
            outbox.put([_status(i) for i in range(evses)]).result()
        fill_s = time.perf_counter() - t0
        counter = Counter(broker.port)
        counter.evses = evses
        uplink = Uplink(config.mqtt, outbox, SystemClock(), lambda _e: None, "bench")
        t1 = time.perf_counter()
        await uplink.start()
        while outbox.stats().pending:  # noqa: ASYNC110 - the benchmark polls the backlog on purpose
            await asyncio.sleep(0.05)
        drained_s = time.perf_counter() - t1
        while counter.sessions < messages and time.perf_counter() - t1 < drained_s + 30:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        delivered_s = time.perf_counter() - t1
        await uplink.stop()
        outbox.close()
        counter.client.loop_stop()
        status_s = None if counter.first_status_all is None else counter.first_status_all - t1
        return {
            "messages": messages,
            "evses": evses,
            "durable_enqueue_per_s": round(messages / fill_s),
            "drain_per_s": round(messages / drained_s),
            "received_by_subscriber": counter.sessions,
            "delivered_per_s": round(counter.sessions / delivered_s),
            "all_evse_status_after_connect_s": None if status_s is None else round(status_s, 3),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
        }


def main(argv: list[str] | None = None) -> int:
    """CLI: run, print, write JSON."""
    p = argparse.ArgumentParser(prog="python -m hil.bench.uplink_drain", description=__doc__)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--evses", type=int, default=200, help="EVSEs with a status queued (100 chargers x 2)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args(argv)
    result = asyncio.run(bench(args.messages, args.evses))
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

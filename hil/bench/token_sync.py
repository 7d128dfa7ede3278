"""Whitelist benchmark: a million OCPI tokens synced over MQTT while drivers keep being answered.

Run: python -m hil.bench.token_sync [--tokens N] [--chunk 10000] [--json out.json]
A private mosquitto, a real `siteedge run` process and, in this process, the backend (publishing
the snapshot in chunks) and a 1.6J charger on a raw WebSocket sending Authorize all the time.
Measures: time from the first chunk to the box announcing the new version; Authorize latency
during the sync and afterwards with the broker down (decided from the cache); direct cache lookup
latency; the controller's RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from controller.store.tokens import SqliteTokenCache
from hil.bench import quantiles, write_json
from hil.broker import Broker, free_port
from hil.sim.backend import BackendSimulator
from hil.siteconfig import SimCharger, SiteSpec, render

DEFAULT_JSON = Path("hil/bench/results/token_sync.json")
ROOT = "siteedge/v1/NL/SED/DEMO01"


def _token(n: int) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "ABC",
        "uid": f"{n:014X}",
        "type": "RFID",
        "contract_id": f"DE-ABC-C{n:08d}-X",
        "issuer": "ABC Mobility",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2026-11-01T00:00:00Z",
    }


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Driver:
    """A charge point that presents cards over a raw OCPP 1.6J WebSocket and times the answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._ws: Any = None
        self._n = 0

    async def __aenter__(self) -> Driver:
        self._ws = await websockets.connect(self.url, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        await self.call("BootNotification", {"chargePointVendor": "bench", "chargePointModel": "auth"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._n += 1
        msg_id = str(self._n)
        await self._ws.send(json.dumps([2, msg_id, action, payload]))
        while True:
            reply = json.loads(await self._ws.recv())
            if reply[0] == 2:  # a call from the CSMS (e.g. GetConfiguration): refuse politely
                await self._ws.send(json.dumps([4, reply[1], "NotSupported", "bench", {}]))
                continue
            if reply[1] == msg_id:
                return dict(reply[2]) if reply[0] == 3 else {"error": reply[2]}

    async def authorize(self, uid: str) -> str:
        started = time.perf_counter()
        reply = await self.call("Authorize", {"idTag": uid})
        self.latencies.append((time.perf_counter() - started) * 1000)
        return str(reply.get("idTagInfo", {}).get("status"))


async def bench(tokens: int, chunk: int) -> dict[str, Any]:
    """Sync `tokens` while authorizing; returns the figures."""
    with tempfile.TemporaryDirectory(prefix="siteedge-tokens-", dir=".") as tmp, Broker() as broker:
        spec = SiteSpec(
            data_dir=f"{tmp}/data", mqtt_url=broker.url, ocpp_port=free_port(), api_port=free_port()
        )
        spec.chargers.append(SimCharger("CP-1", evses=1))
        spec.log_level, spec.auth_timeout = "WARNING", 0.5
        cfg = Path(tmp) / "site.toml"
        cfg.write_text(render(spec))
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
            [sys.executable, "-m", "controller.cli", "run", "--config", str(cfg)]
        )
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(200):
                    with contextlib.suppress(httpx.HTTPError):
                        if (
                            await http.get(f"http://127.0.0.1:{spec.api_port}/api/v1/auth/state")
                        ).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
            rss_before = _rss_kb(proc.pid)
            backend = BackendSimulator(broker.url, ROOT).start()
            backend.emsp = lambda uid: {"allowed": "ALLOWED"}
            async with Driver(f"ws://127.0.0.1:{spec.ocpp_port}/ocpp/CP-1") as driver:
                # Drivers keep arriving during the sync: one Authorize every 50 ms.
                stop = asyncio.Event()

                async def keep_authorizing() -> None:
                    n = 0
                    while not stop.is_set():
                        await driver.authorize(f"{n % 1000:014X}")
                        n += 1
                        await asyncio.sleep(0.05)

                auth_task = asyncio.create_task(keep_authorizing())
                t0 = time.perf_counter()
                total = (tokens + chunk - 1) // chunk
                for i in range(total):
                    batch = [_token(n) for n in range(i * chunk, min((i + 1) * chunk, tokens))]
                    await asyncio.to_thread(
                        backend.publish,
                        f"tokens/full/bench/{i}",
                        {"total": total, "version": 7, "tokens": batch},
                    )
                published_s = time.perf_counter() - t0
                await backend.wait_for_async(
                    lambda m: m.topic == f"{ROOT}/tokens/state" and m.payload["data"]["version"] == 7,
                    within=600,
                )
                applied_s = time.perf_counter() - t0
                stop.set()
                await auth_task
                during = list(driver.latencies)
                rss_after = _rss_kb(proc.pid)
                backend.stop()
                # Uplink down: every answer must come from the cache, fast.
                broker.kill()
                await asyncio.sleep(1.0)
                driver.latencies.clear()
                statuses = [await driver.authorize(f"{n * 997 % tokens:014X}") for n in range(500)]
                offline = list(driver.latencies)
            cache = SqliteTokenCache(Path(tmp) / "data" / "tokens.sqlite3")
            lookups = []
            for n in range(2000):
                started = time.perf_counter()
                cache.lookup(f"{n * 7919 % tokens:014x}")
                lookups.append((time.perf_counter() - started) * 1000)
            count = cache.count()
            cache.close()
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "tokens": tokens,
        "chunk": chunk,
        "published_s": round(published_s, 2),
        "applied_s": round(applied_s, 2),
        "tokens_in_cache": count,
        "authorize_during_sync_ms": quantiles(during),
        "authorize_uplink_down_ms": quantiles(offline),
        "authorize_uplink_down_accepted": statuses.count("Accepted"),
        "cache_lookup_ms": quantiles(lookups),
        "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: run, print, write JSON."""
    p = argparse.ArgumentParser(prog="python -m hil.bench.token_sync", description=__doc__)
    p.add_argument("--tokens", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args(argv)
    result = asyncio.run(bench(args.tokens, args.chunk))
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

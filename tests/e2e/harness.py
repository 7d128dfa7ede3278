"""E2E harness: the real app under uvicorn on 127.0.0.1 with a SiteView the test mutates."""

from __future__ import annotations

import asyncio
import copy
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from local_api import LiveHub, LocalApiServer, SiteView, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # loopback only; an environment proxy must not intercept it
]
VERSION = "0.1.0-e2e"


def site_health() -> dict[str, Any]:
    """A Site.health()-shaped state sized like a small real site (long OCPI ids on purpose)."""
    return {
        "status": "degraded",
        "time": "2025-11-27T10:00:00.000Z",
        "uplink": {"connected": False, "backlog": 12, "since": None, "detail": "broker unreachable"},
        "chargers": [
            {
                "id": "CP-NORTH-01",
                "configured": True,
                "connected": True,
                "ocpp_version": "2.0.1",
                "vendor": "Alfen",
                "model": "Eve Double Pro-line",
                "firmware": "6.4.0-4210",
                "last_seen": "2025-11-27T09:59:58.000Z",
                "evses": [
                    {
                        "evse_uid": "DE*ACM*E0001*1",
                        "ocpp_evse": 1,
                        "status": "AVAILABLE",
                        "last_updated": "2025-11-27T09:50:00.000Z",
                    },
                    {
                        "evse_uid": "DE*ACM*E0001*2",
                        "ocpp_evse": 2,
                        "status": "RESERVED",
                        "last_updated": "2025-11-27T09:55:00.000Z",
                    },
                ],
            },
            {
                "id": "CP-SOUTH-02",
                "configured": True,
                "connected": False,
                "ocpp_version": "1.6",
                "vendor": "ABB",
                "model": "Terra AC W22-T-RD-M-0",
                "firmware": None,
                "last_seen": "2025-11-27T08:12:00.000Z",
                "evses": [
                    {
                        "evse_uid": "DE*ACM*E0002*1",
                        "ocpp_evse": 1,
                        "status": "OUTOFORDER",
                        "last_updated": "2025-11-27T08:12:00.000Z",
                    },
                    {
                        "evse_uid": "DE*ACM*E0002*2",
                        "ocpp_evse": 2,
                        "status": "UNKNOWN",
                        "last_updated": None,
                    },
                ],
            },
            {
                "id": "cp-unregistered-7f3a",
                "configured": False,
                "connected": True,
                "ocpp_version": "1.6",
                "vendor": None,
                "model": None,
                "firmware": None,
                "last_seen": "2025-11-27T09:59:00.000Z",
                "evses": [],
            },
        ],
        "meters": [
            {
                "id": "grid-main",
                "role": "grid",
                "ok": True,
                "last_reading_age_s": 0.8,
                "values": {"power": 43210.0, "energy_import": 12345678.0},
                "last_error": None,
            },
            {
                "id": "pv-roof",
                "role": "pv",
                "ok": False,
                "last_reading_age_s": 31.5,
                "values": {},
                "last_error": None,
            },
            {
                "id": "cp-south-sub",
                "role": "charger",
                "ok": False,
                "last_reading_age_s": None,
                "values": {},
                "last_error": "modbus timeout (unit 3)",
            },
        ],
    }


class FakeView:
    """A SiteView whose state the test mutates directly."""

    def __init__(self) -> None:
        self.state = site_health()

    def health(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)


@dataclass
class Running:
    """A live server and the pieces a test drives."""

    base_url: str
    port: int
    server: LocalApiServer
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Shut the server down (ends open live streams) and wait for it."""
        if not self.task.done():
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 10)


@asynccontextmanager
async def serve(view: SiteView, hub: LiveHub, port: int = 0) -> AsyncIterator[Running]:
    """Run the app on 127.0.0.1 (a free port unless given) for the block's duration."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Reuse lets a test restart the server on the same port while old connections linger.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(view, hub, VERSION), log_level="warning", lifespan="off")
    server = LocalApiServer(config, hub)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn-e2e")
    run = Running(f"http://127.0.0.1:{port}", port, server, task)
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # surfaces the startup error
                await asyncio.sleep(0.01)
        yield run
    finally:
        await run.stop()
        sock.close()

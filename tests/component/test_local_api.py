"""local_api served by real uvicorn on 127.0.0.1: health JSON, the SSE stream, static files."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from local_api import LiveHub, LocalApiServer, SiteView, create_app
from local_api.app import STATIC_DIR
from local_api.auth import Security
from tests.api import bearer, make_security

VERSION = "9.8.7-test"


def health_fixture() -> dict[str, Any]:
    """A plausible Site.health() result: one charger with two EVSEs, one meter."""
    return {
        "status": "degraded",
        "time": "2025-11-27T10:00:00.000Z",
        "uplink": {"connected": False, "backlog": 3, "since": None, "detail": "connecting"},
        "chargers": [
            {
                "id": "CP-1",
                "configured": True,
                "connected": True,
                "ocpp_version": "2.0.1",
                "vendor": "Acme",
                "model": "Wallbox 22",
                "firmware": "1.2.3",
                "last_seen": "2025-11-27T09:59:58.000Z",
                "evses": [
                    {
                        "evse_uid": "CP-1-1",
                        "ocpp_evse": 1,
                        "status": "AVAILABLE",
                        "last_updated": "2025-11-27T09:59:00.000Z",
                    },
                    {
                        "evse_uid": "CP-1-2",
                        "ocpp_evse": 2,
                        "status": "UNKNOWN",
                        "last_updated": None,
                    },
                ],
            }
        ],
        "meters": [
            {
                "id": "grid",
                "role": "grid",
                "ok": True,
                "last_reading_age_s": 0.4,
                "values": {"power": 12345.0, "energy_import": 987654.0},
                "last_error": None,
            }
        ],
    }


class FakeView:
    """A SiteView whose state the test mutates directly."""

    def __init__(self) -> None:
        self.state = health_fixture()
        self.calls = 0

    def health(self) -> dict[str, Any]:
        self.calls += 1
        return copy.deepcopy(self.state)


@dataclass
class Running:
    """A live server: where it listens and how to stop it."""

    base_url: str
    server: LocalApiServer
    task: asyncio.Task[None]
    hub: LiveHub
    view: FakeView = field(repr=False)
    security: Security = field(repr=False)
    headers: dict[str, str] = field(repr=False)  # a viewer's API token


@asynccontextmanager
async def serve(hub: LiveHub | None = None, security: Security | None = None) -> AsyncIterator[Running]:
    """Run create_app under LocalApiServer on a free 127.0.0.1 port for the block's duration."""
    hub = hub or LiveHub()
    view = FakeView()
    _: SiteView = view  # the fake must satisfy the protocol the app is typed against
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; no race between probe and bind
    port = sock.getsockname()[1]
    data = tempfile.TemporaryDirectory(prefix="siteedge-api-")
    security = security or make_security(Path(data.name))
    app = create_app(view, hub, VERSION, security=security)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = LocalApiServer(config, hub)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn-test")
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # surfaces the startup error
                await asyncio.sleep(0.01)
        viewer = bearer(security, "viewer")
        yield Running(f"http://127.0.0.1:{port}", server, task, hub, view, security, viewer)
    finally:
        if not task.done():
            server.should_exit = True
            await asyncio.wait_for(task, 10)
        sock.close()
        data.cleanup()


def client(run: Running) -> httpx.AsyncClient:
    """A client of the running app with a viewer's API token."""
    # trust_env=False: a proxy from the environment must never see the loopback traffic.
    return httpx.AsyncClient(base_url=run.base_url, timeout=10, trust_env=False, headers=run.headers)


@dataclass
class Sse:
    """One parsed SSE block: an event with data, or a comment."""

    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comment: str | None = None

    def json(self) -> Any:
        assert self.data is not None, self
        return json.loads(self.data)


async def sse_blocks(response: httpx.Response) -> AsyncIterator[Sse]:
    """Parse a text/event-stream body into blocks (just enough of the spec for these tests)."""
    block = Sse()
    seen = False
    async for line in response.aiter_lines():
        if line == "":
            if seen:
                yield block
            block, seen = Sse(), False
            continue
        seen = True
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            block.comment = value
        elif name == "event":
            block.event = value
        elif name == "data":
            block.data = value if block.data is None else f"{block.data}\n{value}"
        elif name == "retry":
            block.retry = int(value)


async def next_block(blocks: AsyncIterator[Sse]) -> Sse:
    """The next block, comment or event, within 5 s."""
    return await asyncio.wait_for(anext(blocks), 5)


async def next_health(blocks: AsyncIterator[Sse]) -> dict[str, Any]:
    """The next `health` event's payload within 5 s, skipping keep-alive comments."""
    async with asyncio.timeout(5):
        async for block in blocks:
            if block.comment is None:
                assert block.event == "health", block
                payload: dict[str, Any] = block.json()
                return payload
    raise AssertionError("stream ended before a health event")


async def test_health_returns_view_plus_version() -> None:
    async with serve() as run, client(run) as http:
        response = await http.get("/api/v1/health")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.json() == {**health_fixture(), "version": VERSION}

        run.view.state["uplink"]["connected"] = True
        assert (await http.get("/api/v1/health")).json()["uplink"]["connected"] is True


async def test_non_finite_meter_values_become_null_not_broken_json() -> None:
    async with (
        serve() as run,
        client(run) as http,
        http.stream("GET", "/api/v1/live") as response,
    ):
        blocks = sse_blocks(response)
        await next_health(blocks)
        run.view.state["meters"][0]["values"] = {"power": float("nan"), "energy_import": float("inf")}
        run.hub.notify()
        # json.loads would accept NaN; the browser's JSON.parse would not, so parse strictly.
        block = await next_block(blocks)
        assert block.data is not None
        strict = json.loads(block.data, parse_constant=pytest.fail)
        assert strict["meters"][0]["values"] == {"power": None, "energy_import": None}
        health = await http.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json()["meters"][0]["values"] == {"power": None, "energy_import": None}


async def test_live_sends_snapshot_then_update_after_notify() -> None:
    async with (
        serve() as run,
        client(run) as http,
        http.stream("GET", "/api/v1/live") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        blocks = sse_blocks(response)

        first = await next_block(blocks)
        assert first.event == "health"
        assert first.retry == 2000  # a quick reconnect after a restart of the box
        assert first.json() == {**health_fixture(), "version": VERSION}

        run.view.state["chargers"][0]["evses"][0]["status"] = "CHARGING"
        run.view.state["uplink"]["connected"] = True
        run.hub.notify()
        update = await next_health(blocks)
        assert update["chargers"][0]["evses"][0]["status"] == "CHARGING"
        assert update["uplink"]["connected"] is True
        assert update["version"] == VERSION


async def test_live_coalesces_a_burst_and_ends_on_the_latest_state() -> None:
    hub = LiveHub(min_interval=0.3)
    async with (
        serve(hub) as run,
        client(run) as http,
        http.stream("GET", "/api/v1/live") as response,
    ):
        blocks = sse_blocks(response)
        await next_health(blocks)
        calls_before = run.view.calls

        # 60 changes within ~0.3 s: each would be a frame for every open browser.
        for backlog in range(60):
            run.view.state["uplink"]["backlog"] = backlog
            hub.notify()
            await asyncio.sleep(0.005)

        received: list[int] = []
        async with asyncio.timeout(5):
            while not received or received[-1] != 59:
                received.append((await next_health(blocks))["uplink"]["backlog"])
        # The burst lasts ~0.3-0.6 s at 0.3 s spacing: a few snapshots, not 60.
        assert len(received) <= 4, received
        assert run.view.calls - calls_before == len(received)  # no snapshot built and dropped


async def test_live_sends_keepalive_comments_when_idle() -> None:
    async with (
        serve(LiveHub(keepalive=0.2)) as run,
        client(run) as http,
        http.stream("GET", "/api/v1/live") as response,
    ):
        blocks = sse_blocks(response)
        await next_health(blocks)
        block = await next_block(blocks)
        assert block.comment == "keep-alive" and block.event is None


async def test_client_disconnect_ends_the_stream_and_unsubscribes() -> None:
    async with serve() as run, client(run) as http:
        async with http.stream("GET", "/api/v1/live") as response:
            await next_health(sse_blocks(response))
            assert run.hub.subscribers == 1
        async with asyncio.timeout(5):
            # Polling: the hub offers no event for "a subscriber left", nor needs one.
            while run.hub.subscribers:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        run.hub.notify()  # nothing left to wake; must not fail


async def test_too_many_streams_get_503() -> None:
    async with (
        serve(LiveHub(max_subscribers=1)) as run,
        client(run) as http,
        http.stream("GET", "/api/v1/live") as first,
    ):
        await next_health(sse_blocks(first))
        second = await http.get("/api/v1/live")
        assert second.status_code == 503 and second.json()["code"] == "unavailable"
        assert second.headers["retry-after"] == "10"
        assert (await http.get("/api/v1/health")).status_code == 200


async def test_page_and_assets_are_served_from_the_box_without_login() -> None:
    async with serve() as run, client(run) as http:
        anonymous = httpx.AsyncClient(base_url=run.base_url, timeout=10, trust_env=False)
        async with anonymous:
            page = await anonymous.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            # Every script and style the shell loads comes from the box, before anyone logs in.
            refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
            assert any(r.endswith(".js") for r in refs) and any(r.endswith(".css") for r in refs), refs
            for ref in refs:
                asset = await anonymous.get(ref)
                assert asset.status_code == 200, ref
                kind = "javascript" if ref.endswith(".js") else "text/css" if ref.endswith(".css") else ""
                assert kind in asset.headers["content-type"], (ref, asset.headers["content-type"])
                assert asset.headers["cache-control"] == "no-cache"

            missing = await anonymous.get("/static/nope.js")
            assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert (await http.get("/docs")).status_code == 404  # Swagger UI would need a CDN


def test_static_assets_reference_nothing_off_the_box() -> None:
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert any(p.suffix == ".js" for p in files)
    for path in files:
        # XML namespace names (SVG) are identifiers, never fetched.
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/", "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


async def test_shutdown_ends_open_streams_promptly() -> None:
    async with serve() as run, client(run) as http:
        async with http.stream("GET", "/api/v1/live") as response:
            blocks = sse_blocks(response)
            await next_health(blocks)

            started = time.monotonic()
            run.server.should_exit = True
            # Plain uvicorn would wait here forever: the stream never finishes by itself.
            await asyncio.wait_for(run.task, 5)
            elapsed = time.monotonic() - started

            # The stream ends as a normal end of body, not a dropped connection.
            with pytest.raises(StopAsyncIteration):
                await next_block(blocks)
        assert elapsed < 3, elapsed
        assert run.hub.closed and run.hub.subscribers == 0
        with pytest.raises(httpx.ConnectError):
            await http.get("/api/v1/health")

"""The FastAPI application: health JSON, the live SSE stream and the technicians' web page."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.core.ports import (
    ChargerAdmin,
    ChargerCommands,
    MessageLog,
    ModbusChargers,
    ModbusControl,
    TransactionJournal,
)
from controller.core.reports import ReportQueries
from controller.core.sessions import SessionQueries
from controller.core.settlement import Settlement
from local_api.auth import AccessControl, Principal, Security, auth_router
from local_api.auth.middleware import PRINCIPAL
from local_api.auth.openapi import document_security
from local_api.errors import install as install_error_handlers
from local_api.errors import problem
from local_api.live import LiveHub, LiveHubFull
from local_api.metrics import render as render_metrics
from local_api.ports import AuthorizationView, SiteView, SystemAdmin
from local_api.routes_chargers import ChargerCredentialAdmin, chargers_router
from local_api.routes_commands import commands_router
from local_api.routes_modbus import modbus_router
from local_api.routes_reports import reports_router
from local_api.routes_sessions import sessions_router
from local_api.routes_settlement import settlement_router
from local_api.routes_site import PowerView, site_router
from local_api.routes_system import system_router
from local_api.routes_tokens import tokens_router

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Everything the page needs comes from the box itself: 'self' only, so a stray CDN reference
# fails loudly in the browser instead of silently breaking the UI on an offline site.
_SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"frame-ancestors 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _Headers:
    """ASGI middleware adding security headers, and no-cache unless a response set its own."""

    # Pure ASGI rather than BaseHTTPMiddleware, which would buffer or break the SSE stream.
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    # Revalidate every time (cheap on the LAN): after an update the browser
                    # must not mix a cached app.js with a new index.html.
                    headers.append((b"cache-control", b"no-cache"))
                headers.extend(_SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def _finite(value: Any) -> Any:
    """The value with every NaN or infinity replaced by None, recursively."""
    # A garbled Modbus float must show as "no value", not break JSON: JSONResponse refuses
    # NaN with a 500, and the browser's JSON.parse rejects the bare NaN json.dumps would write.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def create_app(
    view: SiteView,
    hub: LiveHub,
    version: str,
    *,
    security: Security,
    commands: ChargerCommands | None = None,
    transactions: TransactionJournal | None = None,
    modbus: ModbusControl | None = None,
    modbus_chargers: ModbusChargers | None = None,
    chargers: ChargerAdmin | None = None,
    charger_credentials: ChargerCredentialAdmin | None = None,
    messages: MessageLog | None = None,
    sessions: SessionQueries | None = None,
    settlement: Settlement | None = None,
    authorizations: AuthorizationView | None = None,
    reports: ReportQueries | None = None,
    system: SystemAdmin | None = None,
    power: PowerView | None = None,
    device_models: Sequence[Mapping[str, Any]] | None = None,
    stats: Callable[[], Mapping[str, Any]] | None = None,
) -> FastAPI:
    """Build the local API for one site view; the caller notifies and closes the hub."""
    # No /docs or /redoc: they load Swagger UI from a CDN, which an offline site cannot reach.
    app = FastAPI(
        title="siteedge",
        version=version,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    install_error_handlers(app)
    document_security(app)
    security.on_revoke = hub.notify  # a sign-out wakes open live streams to re-check their caller
    app.include_router(auth_router(security))

    def snapshot() -> dict[str, Any]:
        return {**_finite(view.health()), "version": version}

    # Every endpoint touching the view is async: FastAPI runs plain def endpoints in a thread
    # pool, and the site state belongs to the loop thread.
    @app.get("/api/v1/health")
    async def health() -> Response:
        """The site at a glance plus the software version."""
        return JSONResponse(snapshot(), headers={"cache-control": "no-store"})

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format: uplink, chargers, EVSE status, meters and Modbus counters."""
        return PlainTextResponse(
            render_metrics(snapshot(), stats() if stats is not None else {}),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    @app.get("/api/v1/live")
    async def live(request: Request) -> Response:
        """Server-Sent Events: a `health` snapshot now and after each change, until sign-out."""
        principal: Principal = request.scope[PRINCIPAL]  # AccessControl refused anonymous callers
        try:
            events = hub.stream(snapshot, lambda: security.still_valid(principal))
        except LiveHubFull as exc:
            return problem(503, str(exc), "unavailable", headers={"retry-after": "10"})
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            # no-transform/X-Accel-Buffering: a reverse proxy must pass events through unbuffered.
            headers={"cache-control": "no-store, no-transform", "x-accel-buffering": "no"},
        )

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        """The technicians' web page."""
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    if commands is not None or transactions is not None:
        app.include_router(commands_router(commands, transactions))
    if modbus is not None:
        app.include_router(modbus_router(modbus, modbus_chargers, system))
    if chargers is not None or messages is not None:
        app.include_router(chargers_router(chargers, messages, charger_credentials))
    if sessions is not None:
        app.include_router(sessions_router(sessions, reports))
    if settlement is not None:
        app.include_router(settlement_router(settlement))
    if reports is not None:
        app.include_router(reports_router(reports))
    if authorizations is not None:
        app.include_router(tokens_router(authorizations))
    if system is not None:
        app.include_router(system_router(system))
    if power is not None or device_models is not None:
        app.include_router(site_router(power, device_models))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Added first, so it runs inside _Headers: refusals get the security headers too.
    app.add_middleware(AccessControl, security=security)
    app.add_middleware(_Headers)
    return app

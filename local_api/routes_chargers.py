"""REST for commissioning and diagnostics: the charger registry and per-charger OCPP message log."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from controller.core.ports import ChargerAdmin, MessageLog
from local_api.errors import problem
from local_api.pagination import Page, page_from_top


def chargers_router(admin: ChargerAdmin | None, messages: MessageLog | None) -> APIRouter:
    """Routes under /api/v1/chargers for the parts that are wired (either may be None)."""
    router = APIRouter(prefix="/api/v1/chargers")

    if admin is not None:
        reg = admin

        # Async endpoints: the registry belongs to the loop thread (its writes are small and rare).
        @router.get("/registry")
        async def registry() -> Response:
            """Every charger known by configuration or boot, with its registration state."""
            return JSONResponse(reg.listing())

        @router.get("/pending")
        async def pending() -> Response:
            """Chargers that booted and wait for a technician's approval, with their boot data."""
            return JSONResponse([c for c in reg.listing() if c["waiting_for_approval"]])

        @router.post("/{charger_id}/approve")
        async def approve(charger_id: str) -> Response:
            """Approve a charger: its next BootNotification is Accepted."""
            if not reg.approve(charger_id):
                return problem(404, f"charger {charger_id!r} never booted here")
            return JSONResponse({"id": charger_id, "registration": "approved"})

        @router.post("/{charger_id}/reject")
        async def reject(charger_id: str) -> Response:
            """Reject a charger: its next BootNotification is Rejected (configured ones cannot be)."""
            if not reg.reject(charger_id):
                return problem(404, f"charger {charger_id!r} is unknown or configured")
            return JSONResponse({"id": charger_id, "registration": "rejected"})

    if messages is not None:
        log = messages

        @router.get("/{charger_id}/messages")
        async def charger_messages(charger_id: str, page: Page, action: str | None = None) -> Response:
            """The charger's newest OCPP frames first (secrets redacted), optionally of one action; paged."""
            frames = await asyncio.to_thread(log.recent, charger_id, page.through, action or None)
            body = page_from_top([f.as_json() for f in frames], page)
            return JSONResponse(body, headers={"cache-control": "no-store"})

    return router

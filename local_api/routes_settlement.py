"""Settlement: a session's energy sources, alarms and CDRs, and corrections by credit CDR."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from controller.core.settlement import CorrectionError, Settlement, parse_correction
from local_api.errors import problem

MAX_BODY = 4096  # a correction is a reason and two or three fields


def settlement_router(settlement: Settlement) -> APIRouter:
    """GET /api/v1/sessions/{id}/settlement, GET /api/v1/settlement/alarms, POST .../correct."""
    router = APIRouter()

    @router.get("/api/v1/sessions/{session_id}/settlement")
    async def detail(session_id: str) -> Response:
        """Charger and meter energy, the billed source, alarms (flags), duration and every CDR."""
        found = await settlement.settlement(session_id)
        return problem(404, f"no session {session_id}") if found is None else JSONResponse(found)

    @router.get("/api/v1/settlement/alarms")
    async def alarms(limit: int = 50) -> Response:
        """Recent sessions with settlement alarms (energy mismatch, meter gaps, clock), newest first."""
        return JSONResponse(await settlement.alarms(max(1, min(limit, 500))))

    @router.post("/api/v1/sessions/{session_id}/correct")
    async def correct(session_id: str, request: Request) -> Response:
        """Credit the CDR, issue a corrected one: {reason, energy_wh? or energy_source?, tariff_id?}."""
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return problem(413, f"body larger than {MAX_BODY} bytes")
        try:
            body: Any = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            return problem(422, "body is not JSON")
        try:
            outcome = await settlement.correct(session_id, parse_correction(body))
        except CorrectionError as exc:
            return problem(exc.status, str(exc))
        return JSONResponse(outcome)

    return router

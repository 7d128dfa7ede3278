"""Sessions, partner reports and the price before start, over the core's SessionQueries port."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from controller.core.clock import rfc3339
from controller.core.sessions import SessionQueries, SessionStatus
from controller.core.tariffs import TariffError, parse_datetime

MAX_LIMIT = 1000
_BEGIN = datetime(1970, 1, 1, tzinfo=UTC)
_END = datetime(9999, 1, 1, tzinfo=UTC)


def _problem(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status_code=status)


def sessions_router(queries: SessionQueries) -> APIRouter:
    """GET /api/v1/sessions, /api/v1/sessions/{id}, /api/v1/reports/partners, /api/v1/evses/{uid}/price."""
    router = APIRouter()

    @router.get("/api/v1/sessions")
    async def sessions(limit: int = 100, status: str | None = None) -> Response:
        """OCPI Sessions, newest first; ?status=ACTIVE|COMPLETED|INVALID|PENDING."""
        if status is not None and status not in SessionStatus.__members__:
            return _problem(422, f"status must be one of {', '.join(SessionStatus)}")
        found = await queries.sessions(max(1, min(limit, MAX_LIMIT)), status)
        return JSONResponse(found)

    @router.get("/api/v1/sessions/{session_id}")
    async def session(session_id: str) -> Response:
        """One OCPI Session."""
        found = await queries.session(session_id)
        return _problem(404, f"no session {session_id}") if found is None else JSONResponse(found)

    @router.get("/api/v1/reports/partners")
    async def partner_report(
        start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to")
    ) -> Response:
        """Per eMSP: sessions started in [from, to), kWh, revenue, averages (RFC 3339 bounds)."""
        try:
            lo = _BEGIN if start is None else parse_datetime(start, "from")
            hi = _END if end is None else parse_datetime(end, "to")
        except TariffError as exc:
            return _problem(422, str(exc))
        rows = await queries.partner_report(lo, hi)
        return JSONResponse({"from": rfc3339(lo), "to": rfc3339(hi), "partners": rows})

    @router.get("/api/v1/evses/{evse_uid}/price")
    async def price(evse_uid: str) -> Response:
        """The ad hoc price of an EVSE if a session started now, in words and per component."""
        found = queries.price(evse_uid)
        return _problem(404, f"no EVSE {evse_uid}") if found is None else JSONResponse(found)

    return router

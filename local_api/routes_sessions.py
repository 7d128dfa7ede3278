"""Sessions (list with filters, CSV export, one by id) and the price before start."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from controller.core.reports import ReportQueries
from controller.core.sessions import (
    SessionFilter,
    SessionQueries,
    SessionRecord,
    SessionStatus,
    parse_partner,
)
from controller.core.tariffs import TariffError
from local_api.errors import problem
from local_api.pagination import Page, page_from_top
from local_api.routes_reports import bounds, csv_response

CSV_MAX_ROWS = 100_000
SESSION_COLUMNS = (
    "session_id",
    "status",
    "start",
    "end",
    "charger_id",
    "evse_uid",
    "connector_id",
    "kwh",
    "currency",
    "total_cost_excl_vat",
    "total_cost_incl_vat",
    "auth_method",
    "token_uid",
    "token_type",
    "emsp",
    "stop_reason",
)


def csv_row(rec: SessionRecord) -> dict[str, Any]:
    """A session as one spreadsheet row (from its stored OCPI object)."""
    ocpi = rec.ocpi
    cost = ocpi.get("total_cost") or {}
    return {
        "session_id": rec.session_id,
        "status": rec.status.value,
        "start": ocpi.get("start_date_time"),
        "end": ocpi.get("end_date_time"),
        "charger_id": rec.charger_id,
        "evse_uid": rec.evse_uid,
        "connector_id": rec.connector_id,
        "kwh": ocpi.get("kwh"),
        "currency": rec.currency,
        "total_cost_excl_vat": cost.get("excl_vat"),
        "total_cost_incl_vat": cost.get("incl_vat"),
        "auth_method": rec.auth.method.value,
        "token_uid": rec.token.uid,
        "token_type": rec.token.type,
        "emsp": f"{rec.token.country_code}*{rec.token.party_id}",
        "stop_reason": rec.stop_reason,
    }


def sessions_router(queries: SessionQueries, reports: ReportQueries | None = None) -> APIRouter:
    """GET /api/v1/sessions (filters, pages, CSV), /api/v1/sessions/{id}, /api/v1/evses/{uid}/price."""
    router = APIRouter()

    @router.get("/api/v1/sessions")
    async def sessions(
        paging: Page,
        status: str | None = None,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        evse_uid: str | None = None,
        charger: str | None = None,
        partner: str | None = None,
        format: str = "json",
    ) -> Response:
        """OCPI Sessions newest first; ?status=, ?evse_uid=, ?charger= (all its EVSEs), ?partner=NL-ABC
        (the token's eMSP), ?from=&to= (start), ?format=csv (all rows)."""
        if status is not None and status not in SessionStatus.__members__:
            return problem(422, f"status must be one of {', '.join(SessionStatus)}")
        if format not in ("json", "csv"):
            return problem(422, "format must be json or csv")
        try:
            lo, hi = bounds(start, end)
            emsp = None if partner is None else parse_partner(partner)
        except (TariffError, ValueError) as exc:
            return problem(422, str(exc))
        match = SessionFilter(status, evse_uid, charger, emsp)
        filtered = start is not None or end is not None or format == "csv" or match != SessionFilter(status)
        if reports is not None and filtered:
            records = await reports.sessions(lo, hi, match)
            if format == "csv":
                return csv_response(
                    [csv_row(r) for r in records[:CSV_MAX_ROWS]], SESSION_COLUMNS, "sessions.csv"
                )
            return JSONResponse(page_from_top([r.ocpi for r in records[: paging.through]], paging))
        if filtered:
            return problem(503, "filters and CSV need the report service", "unavailable")
        # Newest first from the store's index; one extra row says whether another page exists.
        found = await queries.sessions(paging.through, status)
        return JSONResponse(page_from_top(found, paging))

    @router.get("/api/v1/sessions/{session_id}")
    async def session(session_id: str) -> Response:
        """One OCPI Session."""
        found = await queries.session(session_id)
        return problem(404, f"no session {session_id}", "not_found") if found is None else JSONResponse(found)

    @router.get("/api/v1/evses/{evse_uid}/price")
    async def price(evse_uid: str) -> Response:
        """The ad hoc price of an EVSE if a session started now, in words and per component."""
        found = queries.price(evse_uid)
        return problem(404, f"no EVSE {evse_uid}", "not_found") if found is None else JSONResponse(found)

    return router

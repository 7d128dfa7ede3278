"""Reports: NEVI uptime and quarterly data, the partner report, status history, maintenance windows.

JSON by default, `?format=csv` for spreadsheets (downloaded as a file). Bad input is a 422 with
{"detail", "code": "invalid"}; an unknown window or port a 404 {"code": "not_found"}.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from controller.core.clock import rfc3339
from controller.core.reports import QUARTERLY_COLUMNS, ReportQueries
from controller.core.tariffs import TariffError, parse_datetime
from controller.core.uptime import PeriodError
from local_api.errors import problem
from local_api.pagination import Page, page_from_top

BEGIN = datetime(1970, 1, 1, tzinfo=UTC)
END = datetime(9999, 1, 1, tzinfo=UTC)
FORMATS = ("json", "csv")
UPTIME_COLUMNS = (
    "evse_uid",
    "evse_id",
    "charger_id",
    "month",
    "period_minutes",
    "outage_minutes",
    "excluded_minutes",
    "uptime_percent",
)
PARTNER_COLUMNS = (
    "country_code",
    "party_id",
    "sessions",
    "completed",
    "kwh",
    "revenue_excl_vat",
    "revenue_incl_vat",
    "average_kwh",
    "average_duration_s",
    "average_revenue_excl_vat",
    "failed_sessions",
    "failed_authorizations",
)
_FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    # A text cell starting like a formula would run in a spreadsheet (ids come from chargers).
    if isinstance(value, str) and value.startswith(_FORMULA_CHARS):
        return "'" + value
    return "" if value is None else value


def csv_response(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], filename: str) -> Response:
    """Rows as a CSV download (UTF-8, header line, Content-Disposition attachment)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def bounds(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """RFC 3339 ?from= and ?to= (open ends allowed); TariffError names the bad one."""
    lo = BEGIN if start is None else parse_datetime(start, "from")
    hi = END if end is None else parse_datetime(end, "to")
    if hi <= lo:
        raise TariffError("to must be after from")
    return lo, hi


def reports_router(reports: ReportQueries) -> APIRouter:
    """Routes under /api/v1/reports and /api/v1/maintenance over the ReportQueries port."""
    router = APIRouter()

    @router.get("/api/v1/reports/uptime")
    async def uptime_report(
        month: str | None = None, trailing: int | None = None, format: str = "json"
    ) -> Response:
        """NEVI uptime per port: ?month=YYYY-MM (with outages), or ?trailing=12[&month=] (last closed)."""
        if format not in FORMATS:
            return problem(422, "format must be json or csv")
        try:
            report = await reports.uptime(month, trailing)
        except PeriodError as exc:
            return problem(422, str(exc))
        if format == "json":
            return JSONResponse(report)
        rows: list[dict[str, Any]] = []
        for p in report["ports"]:
            ident = {k: p.get(k) for k in ("evse_uid", "evse_id", "charger_id")}
            rows.extend({**ident, **m} for m in p["months"])
            if "trailing" in p:
                rows.append({**ident, **p["trailing"], "month": f"trailing {len(report['months'])} months"})
        name = "-".join(dict.fromkeys((report["months"][0], report["months"][-1])))
        return csv_response(rows, UPTIME_COLUMNS, f"uptime-{name}.csv")

    @router.get("/api/v1/reports/quarterly")
    async def quarterly(
        quarter: str = Query(..., description="e.g. 2026-Q3"), format: str = "json"
    ) -> Response:
        """NEVI 23 CFR 680.112 quarterly data: every session, plus uptime and outages per month."""
        if format not in FORMATS:
            return problem(422, "format must be json or csv")
        try:
            report = await reports.quarterly(quarter)
        except PeriodError as exc:
            return problem(422, str(exc))
        if format == "csv":
            return csv_response(report["sessions"], QUARTERLY_COLUMNS, f"sessions-{report['quarter']}.csv")
        return JSONResponse(report)

    @router.get("/api/v1/reports/partners")
    async def partners(
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        format: str = "json",
    ) -> Response:
        """Per eMSP for [from, to): sessions, kWh, revenue, averages, failed sessions and authorizations."""
        if format not in FORMATS:
            return problem(422, "format must be json or csv")
        try:
            lo, hi = bounds(start, end)
        except TariffError as exc:
            return problem(422, str(exc))
        report = await reports.partners(lo, hi)
        if format == "csv":
            return csv_response(report["partners"], PARTNER_COLUMNS, "partners.csv")
        return JSONResponse(report)

    @router.get("/api/v1/reports/status-history/{evse_uid}")
    async def status_history(
        evse_uid: str,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        limit: int = Query(500, ge=1, le=5000),
    ) -> Response:
        """One port's recorded OCPI status transitions in [from, to), oldest first."""
        try:
            lo, hi = bounds(start, end)
        except TariffError as exc:
            return problem(422, str(exc))
        found = await reports.status_history(evse_uid, lo, hi, limit)
        if found is None:
            return problem(404, f"no EVSE {evse_uid}", "not_found")
        return JSONResponse({"evse_uid": evse_uid, "from": rfc3339(lo), "to": rfc3339(hi), "items": found})

    @router.get("/api/v1/maintenance")
    async def windows(
        paging: Page,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
    ) -> Response:
        """Maintenance windows and utility outages overlapping [from, to), oldest first, paginated."""
        try:
            lo, hi = bounds(start, end)
        except TariffError as exc:
            return problem(422, str(exc))
        found = [w.as_json() for w in await reports.windows(lo, hi)]
        return JSONResponse(page_from_top(found, paging))

    @router.post("/api/v1/maintenance", status_code=201)
    async def add_window(request: Request) -> Response:
        """Declare {"evse_uid"|null, "start", "end", "kind": "maintenance"|"utility_outage", "note"}."""
        try:
            body = await request.json()
        except ValueError:
            return problem(422, "body must be JSON")
        try:
            window = await reports.add_window(body)
        except PeriodError as exc:
            return problem(422, str(exc))
        return JSONResponse(window.as_json(), status_code=201)

    @router.delete("/api/v1/maintenance/{window_id}", status_code=204)
    async def delete_window(window_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
        """Remove a window (uptime figures are recomputed from the history on every request)."""
        if not await reports.delete_window(window_id):
            return problem(404, f"no maintenance window {window_id}", "not_found")
        return Response(status_code=204)

    return router

"""Reports: status history and peaks recorded from core events; NEVI and partner reports served and sent up.

Monthly uptime and partner reports and the quarterly session data go to the backend when their
period closes (docs/mqtt-contract.md, "Reports") and whenever the backend asks on
`{root}/reports/request`; the web API reads the same figures (`local_api/routes_reports.py`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, tzinfo
from typing import Any

from controller.core import reports as core
from controller.core import uptime
from controller.core.clock import Clock, rfc3339
from controller.core.envelope import Lane, Outgoing, Topics
from controller.core.events import EvseStatusPublished, TransactionEnded, TransactionUpdated
from controller.core.reports import AuthAuditLog, DueReport, StatusHistory
from controller.core.sessions import (
    SessionFilter,
    SessionRecord,
    SessionStore,
    partner_report,
    session_id_of,
)
from controller.core.uptime import Period, PeriodError, Window
from controller.sync.downlink import Downlink, Rejected

log = logging.getLogger(__name__)

ALIVE_EVERY_S = 60.0
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


class ReportService:
    """Implements the core's ReportQueries for the API and sends reports up over the outbox."""

    def __init__(
        self,
        history: StatusHistory,
        sessions: SessionStore,
        audit: AuthAuditLog,
        *,
        site: Mapping[str, str],
        ports: Callable[[], Mapping[str, tuple[str, str | None]]],
        tz: tzinfo,
        clock: Clock,
        send: Callable[[Sequence[Outgoing]], Future[None]],
        topics: Topics,
    ) -> None:
        self._history = history
        self._sessions = sessions
        self._audit = audit
        self._site = dict(site)
        self._ports = ports  # evse_uid -> (charger_id, evse_id) of every EVSE the site knows
        self._tz = tz
        self._clock = clock
        self._send = send
        self._topics = topics
        self._peaks = core.PeakTracker()
        self._lock = asyncio.Lock()  # one report build at a time: they are heavy on the box
        self.checked = asyncio.Event()  # set once closed periods were looked at after the start

    # --- inputs (bus subscribers on the loop; never block) ------------------------------------

    def handle(self, event: object) -> None:
        """Record status transitions and session peaks."""
        match event:
            case EvseStatusPublished():
                self._history.append(event.evse_uid, event.last_updated, event.status.value, _why(event.ocpp))
            case TransactionUpdated():
                peak = self._peaks.update(event.key, event.at, event.energy_wh, event.power_w)
                if peak is not None:
                    self._history.record_peak(session_id_of(event.key), peak)
            case TransactionEnded():
                peak = self._peaks.update(event.key, event.stopped_at, event.energy_wh, None)
                if peak is not None:
                    self._history.record_peak(session_id_of(event.key), peak)
                self._peaks.forget(event.key)

    def register(self, downlink: Downlink) -> None:
        """Route `{root}/reports/request` to the on-request report builder."""
        downlink.route("reports/request", r"reports/request", self._on_request, max_bytes=4096)

    # --- the task -------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Before chargers connect: the time siteedge was not running becomes UNKNOWN in the history."""
        added = await asyncio.to_thread(self._history.recover, self._clock.now(), sorted(self._ports()))
        if added:
            log.info("status history: %d port(s) marked UNKNOWN for the time siteedge was not running", added)

    async def run(self) -> None:
        """Every minute: note that siteedge is alive, send the reports of closed periods."""
        while True:
            try:
                await self._send_due()
            except Exception:
                log.exception("reports: sending closed periods failed; retrying in a minute")
            self.checked.set()
            await asyncio.sleep(ALIVE_EVERY_S)
            self._history.mark_alive(self._clock.now())

    async def _send_due(self) -> None:
        since = await asyncio.to_thread(self._history.first_seen)
        sent = await asyncio.to_thread(self._history.published)
        for due in core.due_reports(self._clock.now(), self._tz, since, sent):
            await self._publish(due, None)
            await asyncio.to_thread(
                self._history.mark_published, due.kind, due.period.name, self._clock.now()
            )
            log.info("report %s %s sent", due.kind, due.period.name)

    async def _publish(self, due: DueReport, request_id: str | None) -> None:
        """Build a report and wait until the outbox committed it."""
        extra = {"site": self._site, "generated_at": rfc3339(self._clock.now()), "request_id": request_id}
        if request_id is None:
            del extra["request_id"]
        rel = f"reports/{due.kind}/{due.period.name}"
        if due.kind == "uptime":
            data = {**extra, "month": due.period.name, **await self._monthly_uptime(due.period)}
            messages = [self._message(rel, "uptime_report", data)]
        elif due.kind == "partners":
            body = await self.partners(due.period.start, due.period.end)
            messages = [self._message(rel, "partner_report", {**extra, "month": due.period.name, **body})]
        else:
            report = {**extra, **await self._quarterly(due.period)}
            messages = [
                self._message(f"{rel}/{part['part']}", "quarterly_report", part)
                for part in core.quarterly_parts(report)
            ]
        await asyncio.wrap_future(self._send(messages))

    def _message(self, rel: str, type_: str, data: dict[str, Any]) -> Outgoing:
        # Stream = topic: a re-sent report continues its own sequence; reports are never dropped.
        return Outgoing(
            topic=f"{self._topics.root}/{rel}", stream=rel, type=type_, data=data, lane=Lane.SESSION
        )

    async def _on_request(self, match: re.Match[str], payload: Any) -> None:
        if not isinstance(payload, dict):
            raise Rejected("report request: must be a JSON object")
        request_id, kind, period = payload.get("request_id"), payload.get("report"), payload.get("period")
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise Rejected("report request: request_id must be 1-64 of A-Za-z0-9._-")
        if not isinstance(period, str):
            raise Rejected("report request: period must be a string (2026-10 or 2026-Q3)")
        try:
            if kind in ("uptime", "partners"):
                parsed = uptime.parse_month(period, self._tz)
            elif kind == "quarterly":
                parsed = uptime.parse_quarter(period, self._tz)
            else:
                raise Rejected("report request: report must be uptime, partners or quarterly")
        except PeriodError as exc:
            raise Rejected(f"report request: {exc}") from None
        if parsed.start >= self._clock.now():
            raise Rejected(f"report request: {period} has not begun")
        await self._publish(DueReport(kind, parsed), request_id)

    # --- queries (ReportQueries port) ------------------------------------------------------------

    async def uptime(self, month: str | None, trailing: int | None) -> dict[str, Any]:
        """One month with its outages, or the trailing months ending with it (default: last closed)."""
        now = self._clock.now()
        if trailing is None:
            period = uptime.parse_month(month, self._tz) if month else uptime.month_of(now, self._tz)
            return await self._uptime([period], with_outages=True)
        if not 1 <= trailing <= 13:
            raise PeriodError("trailing must be between 1 and 13 months")
        last = uptime.parse_month(month, self._tz) if month else uptime.last_closed_month(now, self._tz)
        return await self._uptime(uptime.trailing_months(last, trailing, self._tz), with_outages=False)

    async def _uptime(self, months: Sequence[Period], *, with_outages: bool) -> dict[str, Any]:
        start, end = months[0].start, months[-1].end
        if start >= self._clock.now():
            raise PeriodError(f"{months[0].name} has not begun")
        async with self._lock:
            histories, windows = await asyncio.gather(
                asyncio.to_thread(self._history.histories, start, end),
                asyncio.to_thread(self._history.windows, start, end),
            )
            report = await asyncio.to_thread(
                uptime.uptime_report, histories, windows, months, self._clock.now(), with_outages=with_outages
            )
        ports = self._ports()
        for p in report["ports"]:
            charger_id, evse_id = ports.get(p["evse_uid"], (None, None))
            p["charger_id"], p["evse_id"] = charger_id, evse_id or p["evse_uid"]
        report["windows"] = [w.as_json() for w in windows]
        return report

    async def _monthly_uptime(self, month: Period) -> dict[str, Any]:
        """The uplink's monthly report: the month with outages, and the trailing 12 months' totals."""
        this = await self._uptime([month], with_outages=True)
        year = await self._uptime(uptime.trailing_months(month, 12, self._tz), with_outages=False)
        trailing = {p["evse_uid"]: p["trailing"] for p in year["ports"]}
        for p in this["ports"]:
            p["trailing_12"] = trailing.get(p["evse_uid"])
        this["trailing_from"] = year["from"]
        return this

    async def quarterly(self, quarter: str) -> dict[str, Any]:
        """NEVI quarterly data of a calendar quarter."""
        return await self._quarterly(uptime.parse_quarter(quarter, self._tz))

    async def _quarterly(self, quarter: Period) -> dict[str, Any]:
        months = uptime.months_of(quarter, self._tz)
        up = await self._uptime(months, with_outages=True)
        records = await asyncio.to_thread(self._sessions.started_between, quarter.start, quarter.end)
        peaks = await asyncio.to_thread(self._history.peaks, [r.session_id for r in records])
        ports = self._ports()
        rows = [
            core.quarterly_row(r, ports.get(r.evse_uid, ("", None))[1], peaks.get(r.session_id))
            for r in records
        ]
        return {
            "quarter": quarter.name,
            "from": rfc3339(quarter.start),
            "to": rfc3339(quarter.end),
            "complete": up["complete"],
            "sessions_total": len(rows),
            "uptime": {"months": up["months"], "ports": up["ports"], "windows": up["windows"]},
            "sessions": rows,
        }

    async def partners(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Per eMSP: sessions, kWh, revenue, averages, failed sessions and refused authorizations."""
        records, failed = await asyncio.gather(
            asyncio.to_thread(self._sessions.started_between, start, end),
            asyncio.to_thread(self._audit.failed_by_partner, start, end),
        )
        body = core.partner_report(partner_report(records, start, end), records, failed)
        return {"from": rfc3339(start), "to": rfc3339(end), **body}

    async def sessions(self, start: datetime, end: datetime, match: SessionFilter) -> list[SessionRecord]:
        """Sessions started in [start, end) matching the filter, newest first."""
        records = await asyncio.to_thread(self._sessions.started_between, start, end)
        return [r for r in reversed(records) if match.matches(r)]

    async def windows(self, start: datetime, end: datetime) -> list[Window]:
        """Exclusion windows overlapping [start, end)."""
        return await asyncio.to_thread(self._history.windows, start, end)

    async def add_window(self, doc: Any) -> Window:
        """Validate (PeriodError says why) and store a window."""
        w = uptime.window_from_json(doc, self._ports().keys(), self._clock.now())
        return await asyncio.to_thread(self._history.add_window, w)

    async def delete_window(self, window_id: int) -> bool:
        """Remove a window."""
        return await asyncio.to_thread(self._history.delete_window, window_id)

    async def status_history(
        self, evse_uid: str, start: datetime, end: datetime, limit: int
    ) -> list[dict[str, str]] | None:
        """One port's transitions in [start, end), oldest first; None for an unknown port."""
        if evse_uid not in self._ports():
            return None
        return await asyncio.to_thread(self._history.transitions, evse_uid, start, end, limit)


def _why(raw: Mapping[str, Any]) -> str:
    """What a technician reads beside a transition: the OCPP status and error, or the site's reason."""
    if raw.get("reason"):
        return str(raw["reason"])  # e.g. "charger offline"
    error = raw.get("errorCode")
    words = [raw.get("status") or raw.get("connectorStatus"), None if error == "NoError" else error]
    return " ".join(str(w) for w in words if w)

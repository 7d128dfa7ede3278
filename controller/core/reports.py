"""Reports over sessions and authorizations: NEVI quarterly data, failures, partner report (pure).

Definitions (also in docs/adr/0005-uptime.md):

- A session is *unsuccessful* when it is INVALID (its token was refused, not billed), when it
  ended by an error stop reason (emergency stop, power loss, reset, fault, ...), or when it
  ended with 0 kWh. Its error code is "AuthorizationInvalid", the OCPP stop reason, or
  "NoEnergyDelivered", in that order of precedence. A running session is neither.
- Peak power is the highest of the charger's reported active power and the average power
  between consecutive meter reports at least 30 s apart, tracked while the session runs; a
  session without a tracked peak (older data) falls back to its charging periods' average power.
- Payment method: what OCPI knows: the token type (RFID card, app, ad hoc payment, other) and the
  authorization method (whitelist, real-time request to the eMSP, remote command).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from controller.core.clock import rfc3339
from controller.core.sessions import SessionFilter, SessionRecord, SessionStatus
from controller.core.uptime import Period, PortHistory, Window, last_closed_month, last_closed_quarter

ERROR_STOP_REASONS = frozenset(
    {
        # OCPP 1.6 Reason and 2.0.1 ReasonEnumType values that mean "something went wrong".
        "EmergencyStop",
        "PowerLoss",
        "HardReset",
        "SoftReset",
        "Reboot",
        "ImmediateReset",
        "GroundFault",
        "OvercurrentFault",
        "PowerQuality",
        "Timeout",
        "DeAuthorized",
    }
)
PEAK_MIN_INTERVAL_S = 30.0  # shorter gaps make register quantisation look like a power spike
PAYMENT_METHODS = {"RFID": "RFID", "APP_USER": "APP", "AD_HOC_USER": "AD_HOC", "OTHER": "OTHER"}
QUARTERLY_PART_SIZE = 500  # sessions per MQTT message: a quarter of a busy site is megabytes


# --- authorization audit ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One authorization decision as a technician reads it later: who, where, what and why."""

    at: datetime
    uid: str
    charger_id: str
    evse_uid: str | None
    outcome: str
    reason: str
    token: str | None  # "CC*PARTY*UID" of the deciding token, if known

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "at": rfc3339(self.at),
            "uid": self.uid,
            "charger_id": self.charger_id,
            "evse_uid": self.evse_uid,
            "outcome": self.outcome,
            "reason": self.reason,
            "token": self.token,
        }

    @property
    def partner(self) -> tuple[str, str] | None:
        """The token's eMSP (country_code, party_id), None for a token the site does not know."""
        if self.token is None:
            return None
        parts = self.token.split("*", 2)
        return (parts[0], parts[1]) if len(parts) == 3 else None


class AuthAuditLog(Protocol):
    """Durable authorization decisions (implemented in store/auth_audit.py)."""

    def append(self, entry: AuditEntry) -> None:
        """Record a decision; must not block the caller (queued to a writer)."""
        ...

    def recent(self, limit: int, offset: int = 0) -> list[AuditEntry]:
        """Newest first; blocking read."""
        ...

    def failed_by_partner(self, start: datetime, end: datetime) -> dict[tuple[str, str] | None, int]:
        """Refused decisions in [start, end) per eMSP (None: unknown tokens); blocking read."""
        ...


# --- sessions ------------------------------------------------------------------------------------


def session_error(rec: SessionRecord) -> str | None:
    """The error code of an unsuccessful session, None for a successful or running one."""
    if rec.status is SessionStatus.INVALID or rec.invalid:
        return "AuthorizationInvalid"
    if rec.status is not SessionStatus.COMPLETED:
        return None
    if rec.stop_reason in ERROR_STOP_REASONS:
        return rec.stop_reason
    if _kwh(rec) <= 0:
        return "NoEnergyDelivered"
    return None


def _kwh(rec: SessionRecord) -> float:
    # Listings load records without points: the stored OCPI object carries the energy.
    return float(rec.ocpi.get("kwh", rec.kwh))


class PeakTracker:
    """Peak power per running transaction from its meter reports (see the module docstring)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[datetime, float]] = {}
        self._peak: dict[str, float] = {}

    def update(self, key: str, at: datetime, energy_wh: float | None, power_w: float | None) -> float | None:
        """Feed one meter report; returns the new peak in W if it went up, else None."""
        candidates = [power_w] if power_w is not None and power_w >= 0 else []
        if energy_wh is not None:
            last = self._last.get(key)
            if last is not None and (at - last[0]).total_seconds() >= PEAK_MIN_INTERVAL_S:
                hours = (at - last[0]).total_seconds() / 3600
                candidates.append(max(0.0, energy_wh - last[1]) / hours)
            if last is None or (at - last[0]).total_seconds() >= PEAK_MIN_INTERVAL_S:
                self._last[key] = (at, energy_wh)
        if not candidates:
            return None
        best = max(candidates)
        if best > self._peak.get(key, 0.0):
            self._peak[key] = best
            return best
        return None

    def forget(self, key: str) -> None:
        """The transaction ended: drop its working state."""
        self._last.pop(key, None)
        self._peak.pop(key, None)


def periods_peak_kw(ocpi: Mapping[str, Any]) -> float | None:
    """Fallback peak: the highest MAX_POWER, else average power (ENERGY / TIME) of any period."""
    best: float | None = None
    for p in ocpi.get("charging_periods") or []:
        dims = {d.get("type"): d.get("volume") for d in p.get("dimensions", [])}
        value = dims.get("MAX_POWER")
        if value is None and dims.get("ENERGY") and dims.get("TIME"):
            value = float(dims["ENERGY"]) / float(dims["TIME"])
        if value is not None and (best is None or float(value) > best):
            best = float(value)
    return best


QUARTERLY_COLUMNS = (
    "session_id",
    "charger_id",
    "evse_uid",
    "evse_id",
    "start",
    "end",
    "status",
    "kwh",
    "peak_kw",
    "successful",
    "error_code",
    "payment_method",
    "auth_method",
    "emsp",
)


def quarterly_row(rec: SessionRecord, evse_id: str | None, peak_w: float | None) -> dict[str, Any]:
    """One session as NEVI 23 CFR 680.112(a) asks for it (station, port, times, kWh, peak, error)."""
    peak_kw = round(peak_w / 1000, 3) if peak_w is not None else periods_peak_kw(rec.ocpi)
    error = session_error(rec)
    return {
        "session_id": rec.session_id,
        "charger_id": rec.charger_id,
        "evse_uid": rec.evse_uid,
        "evse_id": evse_id or rec.evse_uid,
        "start": rfc3339(rec.started_at),
        "end": None if rec.ended_at is None else rfc3339(rec.ended_at),
        "status": rec.status.value,
        "kwh": _kwh(rec),
        "peak_kw": None if peak_kw is None else round(peak_kw, 3),
        "successful": None if not rec.status.final else error is None,
        "error_code": error,
        "payment_method": PAYMENT_METHODS.get(rec.token.type, "OTHER"),
        "auth_method": rec.auth.method.value,
        "emsp": f"{rec.token.country_code}*{rec.token.party_id}",
    }


def quarterly_parts(report: Mapping[str, Any], size: int = QUARTERLY_PART_SIZE) -> list[dict[str, Any]]:
    """A quarterly report cut into MQTT messages: part 0 has the uptime, each at most `size` sessions."""
    sessions = list(report["sessions"])
    chunks = [sessions[i : i + size] for i in range(0, len(sessions), size)] or [[]]
    head = {k: v for k, v in report.items() if k not in ("sessions", "uptime")}
    parts = []
    for i, chunk in enumerate(chunks):
        part = {**head, "part": i, "parts": len(chunks), "sessions": chunk}
        if i == 0:
            part["uptime"] = report["uptime"]
        parts.append(part)
    return parts


# --- partner report ------------------------------------------------------------------------------


def partner_report(
    base: Sequence[Mapping[str, Any]],
    records: Iterable[SessionRecord],
    failed_auths: Mapping[tuple[str, str] | None, int],
) -> dict[str, Any]:
    """The per-eMSP report (`base` from sessions.partner_report) plus failures and averages.

    Adds per partner: failed_authorizations (refused decisions), failed_sessions (see
    session_error) with their error codes, and average revenue per session. Partners with only
    failures get a row of zeros; refusals of unknown tokens are reported apart (no partner).
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for row in base:
        r = dict(row)
        r["average_revenue_excl_vat"] = (
            round(r["revenue_excl_vat"] / r["sessions"], 4) if r.get("sessions") else None
        )
        rows[(r["country_code"], r["party_id"])] = r
    failures: dict[tuple[str, str], dict[str, int]] = {}
    for rec in records:
        code = session_error(rec)
        if code is not None:
            by_code = failures.setdefault((rec.token.country_code, rec.token.party_id), {})
            by_code[code] = by_code.get(code, 0) + 1
    partners = {p for p in failed_auths if p is not None} | set(failures) | set(rows)
    out = []
    for key in sorted(partners):
        r = rows.get(key) or _empty_row(key)
        codes = failures.get(key, {})
        r["failed_sessions"] = sum(codes.values())
        r["failed_session_codes"] = dict(sorted(codes.items()))
        r["failed_authorizations"] = failed_auths.get(key, 0)
        out.append(r)
    return {"partners": out, "unknown_token_failed_authorizations": failed_auths.get(None, 0)}


def _empty_row(key: tuple[str, str]) -> dict[str, Any]:
    return {
        "country_code": key[0],
        "party_id": key[1],
        "sessions": 0,
        "completed": 0,
        "kwh": 0.0,
        "revenue_excl_vat": 0.0,
        "revenue_incl_vat": 0.0,
        "currencies": [],
        "average_kwh": None,
        "average_duration_s": None,
        "average_revenue_excl_vat": None,
    }


# --- when reports close --------------------------------------------------------------------------

UPTIME_GRACE = timedelta(minutes=5)  # statuses are live: a closed month is final almost at once
SESSION_GRACE = timedelta(hours=24)  # sessions started before the close may still be running


@dataclass(frozen=True, slots=True)
class DueReport:
    """A report of a closed period that has not been sent yet."""

    kind: str  # uptime | partners | quarterly
    period: Period


def due_reports(
    now: datetime, tz: tzinfo, history_since: datetime | None, published: Iterable[tuple[str, str]]
) -> list[DueReport]:
    """The reports of the last closed month and quarter that are due and not yet sent.

    Only periods siteedge was running in (its first recorded status is before the period's end):
    a fresh install does not send reports about months it never saw.
    """
    if history_since is None:
        return []
    sent = set(published)
    month, quarter = last_closed_month(now, tz), last_closed_quarter(now, tz)
    candidates = [
        ("uptime", month, UPTIME_GRACE),
        ("partners", month, SESSION_GRACE),
        ("quarterly", quarter, SESSION_GRACE),
    ]
    return [
        DueReport(kind, period)
        for kind, period, grace in candidates
        if history_since < period.end and now >= period.end + grace and (kind, period.name) not in sent
    ]


# --- ports ---------------------------------------------------------------------------------------


class StatusHistory(Protocol):
    """Durable status transitions and uptime inputs (implemented in store/status_history.py)."""

    def append(self, evse_uid: str, at: datetime, status: str, reason: str = "") -> None:
        """Record a transition; queued, never blocks."""
        ...

    def mark_alive(self, at: datetime) -> None:
        """siteedge is running now; queued."""
        ...

    def record_peak(self, session_id: str, peak_w: float) -> None:
        """A session's peak power went up; queued."""
        ...

    def recover(self, now: datetime, evse_uids: Sequence[str]) -> int:
        """At start: the time siteedge was not running becomes UNKNOWN; blocking."""
        ...

    def histories(self, start: datetime, end: datetime) -> dict[str, PortHistory]:
        """Each port's status at start and its changes in [start, end); blocking."""
        ...

    def first_seen(self) -> datetime | None:
        """The earliest recorded status; blocking."""
        ...

    def transitions(self, evse_uid: str, start: datetime, end: datetime, limit: int) -> list[dict[str, str]]:
        """One port's transitions, oldest first; blocking."""
        ...

    def peaks(self, session_ids: Sequence[str]) -> dict[str, float]:
        """Tracked peak power (W) by session id; blocking."""
        ...

    def add_window(self, w: Window) -> Window:
        """Store an exclusion window, returned with its id; blocking."""
        ...

    def windows(self, start: datetime, end: datetime) -> list[Window]:
        """Windows overlapping [start, end); blocking."""
        ...

    def delete_window(self, window_id: int) -> bool:
        """Remove a window; blocking."""
        ...

    def published(self) -> list[tuple[str, str]]:
        """(kind, period) of reports already sent; blocking."""
        ...

    def mark_published(self, kind: str, period: str, at: datetime) -> None:
        """Remember a sent report; blocking."""
        ...


class ReportQueries(Protocol):
    """What the web API asks for reports (async: reads go off the loop). PeriodError on bad input."""

    async def uptime(self, month: str | None, trailing: int | None) -> dict[str, Any]:
        """NEVI uptime of a month (with outages) or of the trailing months ending with it."""
        ...

    async def quarterly(self, quarter: str) -> dict[str, Any]:
        """NEVI quarterly data: sessions started in the quarter, uptime and outages per month."""
        ...

    async def partners(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Per-eMSP figures, failures included, for sessions and decisions in [start, end)."""
        ...

    async def sessions(self, start: datetime, end: datetime, match: SessionFilter) -> list[SessionRecord]:
        """Sessions started in [start, end) matching the filter, newest first."""
        ...

    async def windows(self, start: datetime, end: datetime) -> list[Window]:
        """Exclusion windows overlapping [start, end)."""
        ...

    async def add_window(self, doc: Any) -> Window:
        """Validate and store a window from an API body."""
        ...

    async def delete_window(self, window_id: int) -> bool:
        """Remove a window; False if unknown."""
        ...

    async def status_history(
        self, evse_uid: str, start: datetime, end: datetime, limit: int
    ) -> list[dict[str, str]] | None:
        """One port's transitions; None for an unknown port."""
        ...

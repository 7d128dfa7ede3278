"""Charging-port uptime per NEVI, 23 CFR 680.116(b) (pure; interpretation in docs/adr/0005-uptime.md).

mu = ((P - (T_outage - T_excluded)) / P) * 100, in minutes, per charging port (= OCPI EVSE here:
one connector each). The CFR writes P = 525,600 for a year; a calendar month uses its own
minutes, the trailing twelve months the sum of theirs.

- Outage: the port's OCPI status is OUTOFORDER, INOPERATIVE or UNKNOWN (charger unreachable or
  siteedge not running: nobody can show the port was usable then).
- Excluded: outage minutes that fall inside a declared maintenance window or a reported utility
  outage (for the port or the whole site). Windows never create outage; overlapping ones count once.
- A port is counted from its first recorded status on: before that it was not in service.

Times are integers, microseconds since the Unix epoch (UTC): a year of history for 50 ports is
~365,000 transitions, and the report must stay well under a second on the box.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

OUTAGE_STATUSES = frozenset({"OUTOFORDER", "INOPERATIVE", "UNKNOWN"})
MINUTE_US = 60_000_000
YEAR_MINUTES = 525_600  # the CFR's constant (365 days); a leap year's trailing window has 527,040
WINDOW_KINDS = ("maintenance", "utility_outage")
MAX_WINDOW = timedelta(days=31)  # a longer "maintenance" would hide a real outage: declare it again

Interval = tuple[int, int]  # [start_us, end_us)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")


class PeriodError(ValueError):
    """A period or window given by a user is malformed; the message says why."""


def to_us(ts: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: siteedge only handles aware times")
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """Inverse of to_us (UTC)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


# --- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period [start, end) in UTC, named like "2026-10" or "2026-Q3"."""

    name: str
    start: datetime
    end: datetime


def month_period(year: int, month: int, tz: tzinfo) -> Period:
    """A calendar month in the site's time zone."""
    start = datetime(year, month, 1, tzinfo=tz)
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return Period(f"{year:04d}-{month:02d}", start.astimezone(UTC), nxt.astimezone(UTC))


def parse_month(text: str, tz: tzinfo) -> Period:
    """ "YYYY-MM" as a Period; PeriodError if malformed."""
    m = _MONTH.fullmatch(text.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1970:
        raise PeriodError(f"month must look like 2026-10, not {text!r}")
    return month_period(int(m.group(1)), int(m.group(2)), tz)


def parse_quarter(text: str, tz: tzinfo) -> Period:
    """ "YYYY-Qn" as a Period (calendar quarters); PeriodError if malformed."""
    m = _QUARTER.fullmatch(text.strip().upper())
    if m is None or int(m.group(1)) < 1970:
        raise PeriodError(f"quarter must look like 2026-Q3, not {text!r}")
    year, q = int(m.group(1)), int(m.group(2))
    first, last = month_period(year, 3 * q - 2, tz), month_period(year, 3 * q, tz)
    return Period(f"{year:04d}-Q{q}", first.start, last.end)


def months_of(period: Period, tz: tzinfo) -> list[Period]:
    """The calendar months that make up a period (in order)."""
    local = period.start.astimezone(tz)
    out: list[Period] = []
    year, month = local.year, local.month
    while True:
        p = month_period(year, month, tz)
        if p.start >= period.end:
            return out
        out.append(p)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def month_of(at: datetime, tz: tzinfo) -> Period:
    """The calendar month containing an instant."""
    local = at.astimezone(tz)
    return month_period(local.year, local.month, tz)


def trailing_months(last: Period, count: int, tz: tzinfo) -> list[Period]:
    """`count` calendar months ending with (and including) `last`, oldest first."""
    local = last.start.astimezone(tz)
    index = local.year * 12 + local.month - 1 - (count - 1)
    return [month_period(i // 12, i % 12 + 1, tz) for i in range(index, index + count)]


def last_closed_month(now: datetime, tz: tzinfo) -> Period:
    """The most recent calendar month that has ended."""
    current = month_of(now, tz)
    return month_of(current.start - timedelta(microseconds=1), tz)


def last_closed_quarter(now: datetime, tz: tzinfo) -> Period:
    """The most recent calendar quarter that has ended."""
    local = now.astimezone(tz)
    q = (local.month - 1) // 3  # 0-based index of the current quarter
    year, q = (local.year - 1, 4) if q == 0 else (local.year, q)
    return parse_quarter(f"{year:04d}-Q{q}", tz)


# --- exclusion windows -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A declared maintenance window or a reported utility outage (evse_uid None: the whole site)."""

    id: int | None
    evse_uid: str | None
    start: datetime
    end: datetime
    kind: str
    note: str
    created_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for the API."""
        return {
            "id": self.id,
            "evse_uid": self.evse_uid,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "kind": self.kind,
            "note": self.note,
            "created_at": None if self.created_at is None else _iso(self.created_at),
        }


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise PeriodError(f"{name} must be an RFC 3339 date-time string")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise PeriodError(f"{name} is not an RFC 3339 date-time: {value!r}") from None
    if ts.tzinfo is None:
        raise PeriodError(f"{name} needs a time zone (Z or +hh:mm)")
    return ts.astimezone(UTC)


def window_from_json(doc: Any, known_evses: Iterable[str], now: datetime) -> Window:
    """Validate an API body {"evse_uid"|null, "start", "end", "kind", "note"}; PeriodError says why."""
    if not isinstance(doc, Mapping):
        raise PeriodError("body must be a JSON object")
    unknown = set(doc) - {"evse_uid", "start", "end", "kind", "note"}
    if unknown:
        raise PeriodError(f"unknown field(s): {', '.join(sorted(unknown))}")
    evse_uid = doc.get("evse_uid")
    if evse_uid is not None and (not isinstance(evse_uid, str) or evse_uid not in set(known_evses)):
        raise PeriodError(f"evse_uid {evse_uid!r} is not an EVSE of this site (null = the whole site)")
    start, end = _parse_time(doc.get("start"), "start"), _parse_time(doc.get("end"), "end")
    if end <= start:
        raise PeriodError("end must be after start")
    if end - start > MAX_WINDOW:
        raise PeriodError(f"a window may last at most {MAX_WINDOW.days} days")
    kind = doc.get("kind")
    if kind not in WINDOW_KINDS:
        raise PeriodError(f"kind must be one of {', '.join(WINDOW_KINDS)}")
    note = doc.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        raise PeriodError("note must be a string of at most 500 characters")
    return Window(None, evse_uid, start, end, str(kind), note, now)


# --- interval arithmetic -------------------------------------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of intervals (empty ones dropped)."""
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def clip(intervals: Sequence[Interval], start: int, end: int) -> list[Interval]:
    """The parts of sorted intervals inside [start, end)."""
    return [(max(s, start), min(e, end)) for s, e in intervals if e > start and s < end]


def overlap(a: Sequence[Interval], b: Sequence[Interval]) -> int:
    """Total length shared by two sorted, merged interval lists (two-pointer walk)."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


# --- per port ------------------------------------------------------------------------------------


@dataclass(slots=True)
class PortHistory:
    """A port's statuses for a window: the one in force at its start, then every change in it."""

    evse_uid: str
    first_seen_us: int  # the first status ever recorded: the port is in service from here
    before: str | None  # status in force at the window start (None: first seen inside the window)
    changes: list[tuple[int, str]] = field(default_factory=list)  # (at_us, status), sorted


def outage_intervals(h: PortHistory, start: int, end: int) -> list[Interval]:
    """Merged [start, end) intervals in which the port's status was an outage status."""
    out: list[Interval] = []
    status = h.before
    since = max(start, h.first_seen_us)
    for at, new in h.changes:
        if at >= end:
            break
        at = max(at, start)
        if status in OUTAGE_STATUSES and at > since:
            out.append((since, at))
        status, since = new, max(at, since)
    if status in OUTAGE_STATUSES and end > since:
        out.append((since, end))
    return merge(out)


def nevi_uptime(period_minutes: float, outage_minutes: float, excluded_minutes: float) -> float | None:
    """mu = ((P - (T_outage - T_excluded)) / P) * 100; None for an empty period."""
    if period_minutes <= 0:
        return None
    return (period_minutes - (outage_minutes - excluded_minutes)) / period_minutes * 100


@dataclass(frozen=True, slots=True)
class PortFigures:
    """One port over one period: the NEVI quantities in minutes and the uptime in percent."""

    evse_uid: str
    period_minutes: float
    outage_minutes: float
    excluded_minutes: float
    uptime_percent: float | None
    outages: tuple[tuple[int, int, int], ...] = ()  # (start_us, end_us, excluded_us) in the period

    def as_json(self, with_outages: bool = False) -> dict[str, Any]:
        """JSON-ready form (minutes to 2 decimals, uptime to 4)."""
        out: dict[str, Any] = {
            "evse_uid": self.evse_uid,
            "period_minutes": round(self.period_minutes, 2),
            "outage_minutes": round(self.outage_minutes, 2),
            "excluded_minutes": round(self.excluded_minutes, 2),
            "uptime_percent": None if self.uptime_percent is None else round(self.uptime_percent, 4),
        }
        if with_outages:
            out["outages"] = [
                {
                    "start": _iso_us(s),
                    "end": _iso_us(e),
                    "minutes": round((e - s) / MINUTE_US, 2),
                    "excluded_minutes": round(x / MINUTE_US, 2),
                }
                for s, e, x in self.outages
            ]
        return out


def _iso_us(us: int) -> str:
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def port_figures(h: PortHistory, start: int, end: int, excluded: Sequence[Interval]) -> PortFigures:
    """NEVI figures of one port over [start, end) given its merged exclusion intervals."""
    return figures_of(h.evse_uid, h.first_seen_us, outage_intervals(h, start, end), start, end, excluded)


def figures_of(
    evse_uid: str,
    first_seen_us: int,
    outages: Sequence[Interval],
    start: int,
    end: int,
    excluded: Sequence[Interval],
) -> PortFigures:
    """NEVI figures over [start, end) from outage intervals computed once for a longer window."""
    begin = max(start, first_seen_us)
    if end <= begin:
        return PortFigures(evse_uid, 0.0, 0.0, 0.0, None)
    windows = clip(excluded, begin, end)
    per = tuple((s, e, overlap([(s, e)], windows)) for s, e in clip(outages, begin, end))
    period = (end - begin) / MINUTE_US
    outage = sum(e - s for s, e, _ in per) / MINUTE_US
    excl = sum(x for _, _, x in per) / MINUTE_US
    return PortFigures(evse_uid, period, outage, excl, nevi_uptime(period, outage, excl), per)


def windows_by_port(windows: Iterable[Window], ports: Iterable[str]) -> dict[str, list[Interval]]:
    """Each port's merged exclusion intervals: its own windows plus the site-wide ones."""
    site: list[Interval] = []
    own: dict[str, list[Interval]] = {}
    for w in windows:
        iv = (to_us(w.start), to_us(w.end))
        if w.evse_uid is None:
            site.append(iv)
        else:
            own.setdefault(w.evse_uid, []).append(iv)
    return {p: merge([*site, *own.get(p, [])]) for p in ports}


def total(figures: Sequence[PortFigures], evse_uid: str) -> PortFigures:
    """Sum of one port's figures over consecutive periods (trailing months), uptime recomputed."""
    period = sum(f.period_minutes for f in figures)
    outage = sum(f.outage_minutes for f in figures)
    excl = sum(f.excluded_minutes for f in figures)
    return PortFigures(evse_uid, period, outage, excl, nevi_uptime(period, outage, excl))


def uptime_report(
    histories: Mapping[str, PortHistory],
    windows: Sequence[Window],
    months: Sequence[Period],
    now: datetime,
    *,
    with_outages: bool = False,
) -> dict[str, Any]:
    """Per port: NEVI figures for each month and, over several months, their trailing total.

    A month still running counts up to `now` ("complete": false). Ports are those with history.
    """
    now_us = to_us(now)
    excl = windows_by_port(windows, histories)
    started = [m for m in months if to_us(m.start) < now_us]
    ports = []
    for uid in sorted(histories):
        h = histories[uid]
        # One pass over the port's changes for the whole window; each month clips the result.
        lo = to_us(months[0].start)
        hi = min(to_us(months[-1].end), now_us)
        outages = outage_intervals(h, lo, hi) if hi > lo else []
        per_month = [
            figures_of(uid, h.first_seen_us, outages, to_us(m.start), min(to_us(m.end), now_us), excl[uid])
            for m in started
        ]
        entry: dict[str, Any] = {
            "evse_uid": uid,
            "months": [
                {"month": m.name, **f.as_json(with_outages)} for m, f in zip(started, per_month, strict=True)
            ],
        }
        if len(months) > 1:
            entry["trailing"] = total(per_month, uid).as_json()
        ports.append(entry)
    last = months[-1]
    return {
        "from": _iso(months[0].start),
        "to": _iso(last.end),
        "months": [m.name for m in months],
        "complete": to_us(last.end) <= now_us,
        "formula": "uptime = (P - (T_outage - T_excluded)) / P * 100, minutes (23 CFR 680.116(b))",
        "ports": ports,
    }

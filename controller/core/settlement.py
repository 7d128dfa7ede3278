"""Energy you can defend: the bound meter beside the charger, gaps, clock trust, credit CDRs (pure).

Rules (docs/adr/0004-energy-source.md):

- Source of truth per EVSE: `energy_source` = "meter" or "charger"; unset means the bound Modbus
  meter (role evse:<uid>) when there is one, else the charger. The other register is recorded too,
  so the two can be compared and a correction can switch source.
- The meter's register is recorded at the start, at most every METER_POINT_EVERY while the session
  runs (charging periods at tariff switches need points), and at the stop. A session that cannot
  get a fresh meter reading at its start or stop is billed from the charger, and says so.
- Gaps (a failed poll, a rejected or stale value, a counter that went back) are flags with their
  time span; the energy across a gap is the counter difference, spread evenly by the engine, and
  the CDR remark says a gap was there: never silently interpolated.
- Charger and meter may differ by the larger of energy_tolerance_kwh and energy_tolerance_pct of
  the larger total; beyond that the session gets an energy_mismatch alarm.
- Durations come from the monotonic clock when one controller run saw both the start and the
  stop live; a wall clock that moved against it meanwhile is a clock_step alarm.
- A CDR is never changed: a correction is a credit CDR (same data, `credit`, the original id in
  `credit_reference_id`, negated `total_cost` as OCPI 2.2.1 mod_cdrs "Credit CDRs" says) followed
  by a new CDR with a new id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from controller.core.clock import rfc3339
from controller.core.clocksync import ClockState
from controller.core.config import Config, EvseSettings
from controller.core.sessions import (
    Flag,
    MeterPoint,
    Reading,
    SessionRecord,
    add_point,
    cdr_id_of,
    meter_id_for,
)

METER_POINT_EVERY = timedelta(seconds=60)
# A measured duration may differ from the timestamps' by message latency; more is a clock step.
CLOCK_STEP_SLACK_S = 5.0
ALARMS = ("energy_mismatch", "meter_gap", "energy_source_fallback", "clock_unsynced", "clock_step")


@dataclass(frozen=True, slots=True)
class MeterFeed:
    """What the site knows about a bound meter's energy register right now."""

    meter_id: str
    reading: Reading | None  # the latest accepted energy reading
    fresh: bool  # the latest poll succeeded recently and carried the energy value
    problem: str | None = None  # why not (a failed poll, a rejected or stale value)


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far charger and meter may disagree: the larger of the two bounds."""

    pct: float = 1.0
    kwh: float = 0.1

    def allowed_wh(self, a_wh: float, b_wh: float) -> float:
        """The allowed difference (Wh) for totals a and b."""
        return max(self.kwh * 1000.0, self.pct / 100.0 * max(a_wh, b_wh))


def _evse(config: Config, evse_uid: str) -> EvseSettings | None:
    return next((e for c in config.chargers for e in c.evses if e.evse_uid == evse_uid), None)


def energy_source_for(config: Config, evse_uid: str) -> str:
    """The configured source of truth of an EVSE; unset: "meter" if a meter is bound to it."""
    evse = _evse(config, evse_uid)
    if evse is not None and evse.energy_source is not None:
        return evse.energy_source
    return "meter" if meter_id_for(config, evse_uid) is not None else "charger"


def tolerance_for(config: Config, evse_uid: str) -> Tolerance:
    """The EVSE's configured disagreement bounds (defaults for an adopted EVSE)."""
    evse = _evse(config, evse_uid)
    return Tolerance() if evse is None else Tolerance(evse.energy_tolerance_pct, evse.energy_tolerance_kwh)


def _flag(rec: SessionRecord, flag: Flag) -> Flag | None:
    """Add a flag; returns it (None if one of that kind and detail is already there)."""
    if any(f.kind == flag.kind and f.detail == flag.detail for f in rec.flags):
        return None
    rec.flags.append(flag)
    return flag


def _open_gap(rec: SessionRecord) -> int | None:
    return next((i for i, f in enumerate(rec.flags) if f.kind == "meter_gap" and f.until is None), None)


# --- the session's life ----------------------------------------------------------------------------


def begin(
    rec: SessionRecord, source: str, feed: MeterFeed | None, live: bool, run_id: str, mono: float
) -> list[Flag]:
    """At the start: the meter's start reading, the session's energy source; returns new flags.

    `live` is False when the start is heard late (offline transaction, a restart): then no
    reading taken now belongs to the start, and no monotonic time either.
    """
    new: list[Flag] = []
    if live:
        rec.run_id, rec.mono_start = run_id, mono
    if feed is not None and live and feed.fresh and feed.reading is not None:
        rec.meter_start = rec.meter_last = feed.reading
        rec.meter_points = [MeterPoint(rec.started_at, 0.0)]
    rec.energy_source = source
    if source == "meter" and rec.meter_start is None:
        rec.energy_source = "charger"
        meter = feed.meter_id if feed is not None else "the bound meter"
        why = "the start was reported late" if not live else (feed.problem if feed else None) or "no reading"
        detail = f"meter {meter} has no reading at the start ({why}): charger energy billed"
        if (f := _flag(rec, Flag("energy_source_fallback", rec.started_at, detail))) is not None:
            new.append(f)
    return new


def on_meter(rec: SessionRecord, reading: Reading) -> tuple[list[MeterPoint], list[Flag]]:
    """A fresh meter reading while the session runs: closes a gap, maybe adds a point."""
    if rec.meter_start is None or rec.meter_stop is not None:
        return [], []
    flags: list[Flag] = []
    last = rec.meter_last
    if last is not None and reading.wh < last.wh:
        # The driver re-bases real resets; a reading below the last accepted one is not energy.
        return [], on_meter_problem(
            rec, reading.at, f"register went back from {last.wh:g} to {reading.wh:g} Wh"
        )
    gap = _open_gap(rec)
    if gap is not None:
        rec.flags[gap] = replace(rec.flags[gap], until=reading.at)
    rec.meter_last = reading
    prev = rec.meter_points[-1] if rec.meter_points else None
    if prev is not None and reading.at - prev.at < METER_POINT_EVERY and gap is None:
        return [], flags
    return add_point(rec.meter_points, reading.at, reading.wh - rec.meter_start.wh), flags


def on_meter_problem(rec: SessionRecord, at: datetime, reason: str) -> list[Flag]:
    """The bound meter gave no usable energy value: a gap opens (one per outage)."""
    if rec.meter_start is None or rec.meter_stop is not None or _open_gap(rec) is not None:
        return []
    since = rec.meter_last.at if rec.meter_last is not None else at
    flag = Flag("meter_gap", since, f"meter data gap: {reason}"[:200])
    rec.flags.append(flag)
    return [flag]


def on_clock(rec: SessionRecord, state: ClockState, at: datetime) -> list[Flag]:
    """Flag the session once if the system clock was seen unsynchronized while it ran."""
    if state.synchronized is not False or any(f.kind == "clock_unsynced" for f in rec.flags):
        return []
    flag = Flag("clock_unsynced", at, f"system clock not synchronized ({state.detail})")
    rec.flags.append(flag)
    return [flag]


def finish(
    rec: SessionRecord,
    feed: MeterFeed | None,
    tolerance: Tolerance,
    live: bool,
    run_id: str,
    mono: float,
) -> tuple[list[MeterPoint], list[Flag]]:
    """At the stop (after the charger's end was applied): stop reading, fallbacks, comparison, duration.

    Returns the new meter points and the new flags.
    """
    assert rec.ended_at is not None, "finish after the end was applied"
    end = rec.ended_at
    new_points: list[MeterPoint] = []
    flags: list[Flag] = []
    if rec.meter_start is not None:
        reading = feed.reading if feed is not None and live and feed.fresh else None
        if reading is not None and rec.meter_last is not None and reading.wh < rec.meter_last.wh:
            flags += on_meter_problem(rec, reading.at, "register went back at the stop")
        elif reading is not None:
            rec.meter_last = rec.meter_stop = reading
        gap = _open_gap(rec)
        if gap is not None:
            rec.flags[gap] = replace(rec.flags[gap], until=end)
        if rec.meter_stop is None:
            why = (
                "the stop was reported late" if not live else (feed.problem if feed else None) or "no reading"
            )
            if rec.energy_source == "meter":
                rec.energy_source = "charger"
                meter = feed.meter_id if feed else "the bound meter"
                detail = f"meter {meter} has no reading at the stop ({why}): charger energy billed"
                if (f := _flag(rec, Flag("energy_source_fallback", end, detail))) is not None:
                    flags.append(f)
        else:
            total = rec.meter_stop.wh - rec.meter_start.wh
            last = rec.meter_points[-1]
            if end > last.at:
                new_points += add_point(rec.meter_points, end, total)
            elif total > last.energy_wh:
                rec.meter_points[-1] = replace(last, energy_wh=total)
                new_points.append(rec.meter_points[-1])
            flags += _compare(rec, tolerance, end)
    flags += _duration(rec, live, run_id, mono)
    return new_points, flags


def _compare(rec: SessionRecord, tolerance: Tolerance, at: datetime) -> list[Flag]:
    meter = rec.meter_wh
    if meter is None:
        return []
    charger = rec.charger_wh
    allowed = tolerance.allowed_wh(charger, meter)
    if abs(charger - meter) <= allowed:
        return []
    detail = (
        f"charger {charger / 1000:.3f} kWh and meter {meter / 1000:.3f} kWh differ by "
        f"{abs(charger - meter) / 1000:.3f} kWh (allowed {allowed / 1000:.3f} kWh); "
        f"{rec.energy_source} billed"
    )
    f = _flag(rec, Flag("energy_mismatch", at, detail))
    return [] if f is None else [f]


def _duration(rec: SessionRecord, live: bool, run_id: str, mono: float) -> list[Flag]:
    assert rec.ended_at is not None
    wall = (rec.ended_at - rec.started_at).total_seconds()
    if live and rec.mono_start is not None and rec.run_id == run_id:
        measured = max(0.0, mono - rec.mono_start)
        rec.duration_s, rec.duration_source = round(measured, 3), "monotonic"
        step = wall - measured
        if abs(step) > CLOCK_STEP_SLACK_S + 0.001 * measured:
            detail = f"the wall clock moved {step:+.0f} s against the monotonic clock during the session"
            f = _flag(rec, Flag("clock_step", rec.ended_at, detail))
            return [] if f is None else [f]
        return []
    rec.duration_s, rec.duration_source = max(0.0, wall), "timestamps"
    return []


# --- what the CDR says ----------------------------------------------------------------------------

_SHORT = {
    "energy_mismatch": "charger and meter disagree",
    "meter_gap": "meter data gap",
    "energy_source_fallback": "charger energy billed (meter unavailable)",
    "clock_unsynced": "system clock not synchronized: times unverified",
    "clock_step": "system clock stepped during the session",
}


def remark(rec: SessionRecord) -> str | None:
    """A short CDR remark naming the session's alarms (details stay in the session's flags)."""
    parts: list[str] = []
    for kind in ALARMS:
        found = [f for f in rec.flags if f.kind == kind]
        if not found:
            continue
        if kind == "energy_mismatch":
            parts.append(found[0].detail)
        elif kind == "meter_gap":
            spans = ", ".join(
                f"{rfc3339(f.at)[11:19]}-{rfc3339(f.until)[11:19] if f.until else 'end'}" for f in found[:3]
            )
            parts.append(
                f"meter data gap {spans} UTC (energy there is the counter difference, spread evenly)"
            )
        else:
            parts.append(_SHORT[kind])
    return "; ".join(parts) or None


def alarms_of(rec: SessionRecord) -> list[Flag]:
    """The session's flags that are alarms (all kinds today; the list names the known ones)."""
    return [f for f in rec.flags if f.kind in ALARMS]


# --- corrections ----------------------------------------------------------------------------------


class CorrectionError(ValueError):
    """A correction request that cannot be applied; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Correction:
    """What an operator corrects: the billed energy, the energy source and/or the tariff."""

    reason: str
    energy_wh: float | None = None
    tariff_id: str | None = None
    energy_source: str | None = None


def parse_correction(body: Any) -> Correction:
    """Validate a correction request body; CorrectionError(422) names the bad field."""
    if not isinstance(body, Mapping):
        raise CorrectionError(422, "body must be a JSON object")
    unknown = set(body) - {"reason", "energy_wh", "tariff_id", "energy_source"}
    if unknown:
        raise CorrectionError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 200:
        raise CorrectionError(422, "reason: required, 1-200 characters")
    energy = body.get("energy_wh")
    if energy is not None and (
        isinstance(energy, bool) or not isinstance(energy, int | float) or not 0 <= energy <= 10_000_000
    ):
        raise CorrectionError(422, "energy_wh: a number of Wh between 0 and 10000000")
    tariff_id = body.get("tariff_id")
    if tariff_id is not None and (not isinstance(tariff_id, str) or not 1 <= len(tariff_id) <= 36):
        raise CorrectionError(422, "tariff_id: an OCPI tariff id (1-36 characters)")
    source = body.get("energy_source")
    if source is not None and source not in ("charger", "meter"):
        raise CorrectionError(422, "energy_source: charger or meter")
    if energy is not None and source is not None:
        raise CorrectionError(422, "give energy_wh or energy_source, not both")
    if energy is None and tariff_id is None and source is None:
        raise CorrectionError(422, "nothing to correct: give energy_wh, energy_source and/or tariff_id")
    return Correction(reason.strip(), None if energy is None else float(energy), tariff_id, source)


def corrected_series(rec: SessionRecord, c: Correction) -> list[MeterPoint]:
    """The energy series a corrected CDR bills: another source's, or the billed one scaled to energy_wh."""
    if c.energy_source == "meter":
        if rec.meter_stop is None or len(rec.meter_points) < 2:
            raise CorrectionError(422, "energy_source: this session has no complete meter record")
        return list(rec.meter_points)
    if c.energy_source == "charger":
        return list(rec.points)
    series = list(rec.billed)
    if c.energy_wh is None:
        return series
    total = series[-1].energy_wh if series else 0.0
    if total <= 0.0 or len(series) < 2:
        # Nothing to scale: the corrected energy is spread evenly over the session.
        assert rec.ended_at is not None
        return [MeterPoint(rec.started_at, 0.0), MeterPoint(max(rec.ended_at, rec.started_at), c.energy_wh)]
    factor = Decimal(str(c.energy_wh)) / Decimal(str(total))
    return [replace(p, energy_wh=float(Decimal(str(p.energy_wh)) * factor)) for p in series]


def correction_ids(rec: SessionRecord, current_id: str, n: int) -> tuple[str, str]:
    """(credit CDR id, new CDR id): the credited id with "-C" appended (OCPI allows 39), a new UUIDv5."""
    return f"{current_id}-C", cdr_id_of(f"{rec.key}#correction{n}")


def credit_cdr(original: Mapping[str, Any], credit_id: str, now: datetime) -> dict[str, Any]:
    """The credit CDR of a CDR: all its data, `credit`, the reference, and total_cost negated."""
    total = original["total_cost"]
    negated = {k: (None if v is None else -v if v != 0 else 0.0) for k, v in total.items()}
    return {
        **original,
        "id": credit_id,
        "total_cost": negated,
        "credit": True,
        "credit_reference_id": original["id"],
        "last_updated": rfc3339(now),
    }


def settlement_view(rec: SessionRecord, cdrs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A session's settlement facts for the API: sources, both totals, flags, duration, its CDRs."""
    return {
        "session_id": rec.session_id,
        "evse_uid": rec.evse_uid,
        "status": rec.status.value,
        "energy_source": rec.energy_source,
        "meter_id": rec.meter_id,
        "charger_kwh": round(rec.charger_wh / 1000, 4),
        "meter_kwh": None if rec.meter_wh is None else round(rec.meter_wh / 1000, 4),
        "meter_start": _reading(rec.meter_start),
        "meter_stop": _reading(rec.meter_stop),
        "billed_kwh": rec.kwh,
        "duration_s": rec.duration_s,
        "duration_source": rec.duration_source,
        "alarm": bool(alarms_of(rec)),
        "flags": [f.to_json() for f in rec.flags],
        "cdrs": [
            {
                "id": c["id"],
                "credit": bool(c.get("credit")),
                "credit_reference_id": c.get("credit_reference_id"),
                "total_energy": c["total_energy"],
                "total_cost": c["total_cost"],
                "remark": c.get("remark"),
            }
            for c in cdrs
        ],
    }


def _reading(r: Reading | None) -> dict[str, Any] | None:
    return None if r is None else {"at": rfc3339(r.at), "wh": r.wh}


class Settlement(Protocol):
    """What the web API asks about settlement: per-session facts, alarms, corrections."""

    async def settlement(self, session_id: str) -> dict[str, Any] | None:
        """A session's settlement facts (settlement_view), None if unknown."""
        ...

    async def alarms(self, limit: int) -> list[dict[str, Any]]:
        """Recent sessions with alarms, newest first (settlement_view of each)."""
        ...

    async def correct(self, session_id: str, correction: Correction) -> dict[str, Any]:
        """Credit the session's current CDR and issue a new one; CorrectionError if it cannot."""
        ...

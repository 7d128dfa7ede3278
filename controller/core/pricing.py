"""The OCPI 2.2.1 cost engine: a tariff and a session's metered intervals in, cost and ChargingPeriods out.

Pure: the Location's time zone comes in as a `tzinfo` (the caller loads the zone), nothing here
reads a clock or a file. Money and volumes are `Decimal`, exact until the result, which is
rounded to OCPI's 4 decimals with ROUND_HALF_UP.

Rules (STANDARDS.md 1.6) and the interpretations chosen where OCPI 2.2.1 is ambiguous or
contradicts itself (also in docs/adr/0003-tariff-engine.md):

1. Per dimension and instant, the first element in list order whose restrictions all hold and
   that has a component of that dimension applies; none: that dimension is free at that instant.
2. Intervals are split exactly where an element may switch: local time-of-day boundaries (and
   local midnight when dates or weekdays matter), UTC-offset changes, min/max_duration
   thresholds and min/max_kwh thresholds. Energy is spread linearly over an interval's time.
   Power and current are constant per interval (as metered); a switch on them happens at interval
   boundaries. A restriction is evaluated at the start of each split piece.
3. Time-of-day: start inclusive, end exclusive; end before start wraps past midnight; end 00:00
   means the end of the day; start equal to end is the whole day; only a start means until
   midnight, only an end means from midnight. Each restriction is evaluated on its own at the
   instant: a 22:00-06:00 window with day_of_week FRIDAY covers Friday 00:00-06:00 and
   22:00-24:00, not Saturday morning (OCPI ANDs restrictions; it has no "day the window began").
   Dates and weekdays are the local date of the instant.
4. min/max_kwh compare the session's energy so far; min/max_duration the time since the session
   started (first non-reservation interval; reservation intervals count from the first
   reservation interval). Minimums are inclusive, maximums exclusive (OCPI says so for
   kWh, duration, power and current).
5. Power: the interval's `power_kw`, else its average power (energy / time) while charging, else 0
   while parking or reserved. Current: `current_a`, else 0 while parking or reserved; unknown
   while charging, and an element with a current restriction then does not match (the engine
   does not guess a voltage).
6. FLAT once per session: from the first element with a FLAT component that matches at the
   session's start. A reservation has its own FLAT (the reservation fee), from the first matching
   reservation element at the reservation's start; both are charged (OCPI example 16).
7. Reservation elements (`reservation` set) match only RESERVATION intervals, other elements
   only charging and parking intervals. RESERVATION_EXPIRES elements match only when the caller
   says the reservation expired, and are then preferred over RESERVATION elements (OCPI note).
   Reservation TIME goes to RESERVATION_TIME and `total_reservation_cost`.
8. step_size rounds up session totals, never per period: ENERGY once (1 Wh unit), TIME and
   PARKING_TIME once combined (1 s unit), reservation time once on its own. Only volume that a
   component priced counts (time in a free stretch does not, OCPI's "switching to Free-of-Charge"
   example); the step is the last component (in time) that priced volume, and the extra volume is
   priced at that component. step_size 0 means no rounding. Note: OCPI's "Complex Tariff" and
   mod_cdrs parking examples round TIME and PARKING_TIME separately and give other figures; the
   mod_cdrs rule text and the step_size examples say "combined", which is what STANDARDS.md 1.6
   prescribes and what this engine does.
9. VAT: incl = excl x (1 + vat/100) per component. A total including VAT exists only if every
   component that produced a non-zero cost has a `vat`; a zero cost needs no VAT (OCPI's free
   tariff has none). Otherwise `incl_vat` is None, never a guess.
10. min_price/max_price clamp `total_cost` only, excl and incl separately (each bound only when
    given and the figure is known); per-dimension costs stay as computed, so they may not add up
    to a clamped total. No intervals: zero, no FLAT, no clamp (the session has not started).
11. Rounding: each reported figure is rounded on its own from exact values; `total_cost` is the
    rounded exact sum, so it can differ from the sum of rounded parts by 0.0001.
12. The tariff is applied as given: its start/end_date_time validity is the caller's choice of
    tariff at session start (OCPI: the tariff valid at the start applies); see `Tariff.is_active`.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from controller.core.tariffs import (
    WEEKDAY,
    Dimension,
    Price,
    PriceComponent,
    ReservationRestriction,
    Restrictions,
    Tariff,
    TariffElement,
)


class PricingError(ValueError):
    """The session's intervals cannot be priced; the message says which interval and why."""


class Activity(StrEnum):
    """What an interval was: charging, parking (connected, idle) or reserved before the session."""

    CHARGING = "CHARGING"
    PARKING = "PARKING"
    RESERVATION = "RESERVATION"


@dataclass(frozen=True, slots=True)
class MeterInterval:
    """One metered interval of a session: aware start/end, energy (Wh) delivered within it."""

    start: datetime
    end: datetime
    energy_wh: Decimal | int = 0
    activity: Activity = Activity.CHARGING
    power_kw: Decimal | None = None  # as metered; None: derived from energy while charging
    current_a: Decimal | None = None  # summed over phases; None: unknown while charging


@dataclass(frozen=True, slots=True)
class CdrDimension:
    """OCPI CdrDimension: a type (ENERGY, TIME, ...) and its volume in the OCPI unit."""

    type: str
    volume: Decimal


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    """OCPI ChargingPeriod: begins when the applicable tariff elements (or the activity) change."""

    start_date_time: datetime
    dimensions: tuple[CdrDimension, ...]
    tariff_id: str | None

    def to_ocpi(self) -> dict[str, Any]:
        """The JSON form of the OCPI ChargingPeriod class."""
        out: dict[str, Any] = {
            "start_date_time": self.start_date_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dimensions": [{"type": d.type, "volume": float(d.volume)} for d in self.dimensions],
        }
        if self.tariff_id is not None:
            out["tariff_id"] = self.tariff_id
        return out


@dataclass(frozen=True, slots=True)
class Cost:
    """A priced session: CDR totals (money as Price, energy in kWh, times in hours) and periods."""

    currency: str
    total_cost: Price
    total_fixed_cost: Price
    total_energy_cost: Price
    total_time_cost: Price
    total_parking_cost: Price
    total_reservation_cost: Price
    total_energy: Decimal  # kWh measured
    total_time: Decimal  # h charging + parking (OCPI total_time)
    total_charging_time: Decimal  # h charging
    total_parking_time: Decimal  # h parking
    total_reservation_time: Decimal  # h reserved
    billed_energy: Decimal  # kWh priced, after step_size
    billed_time: Decimal  # h of TIME priced, after step_size
    billed_parking_time: Decimal  # h of PARKING_TIME priced, after step_size
    charging_periods: tuple[ChargingPeriod, ...]
    clamped_by: str | None  # "min_price" or "max_price" if total_cost was clamped

    def to_ocpi(self) -> dict[str, Any]:
        """The cost fields of an OCPI CDR (and Session: total_cost, charging_periods)."""
        return {
            "currency": self.currency,
            "total_cost": self.total_cost.to_ocpi(),
            "total_fixed_cost": self.total_fixed_cost.to_ocpi(),
            "total_energy": float(self.total_energy),
            "total_energy_cost": self.total_energy_cost.to_ocpi(),
            "total_time": float(self.total_time),
            "total_time_cost": self.total_time_cost.to_ocpi(),
            "total_parking_time": float(self.total_parking_time),
            "total_parking_cost": self.total_parking_cost.to_ocpi(),
            "total_reservation_cost": self.total_reservation_cost.to_ocpi(),
            "charging_periods": [p.to_ocpi() for p in self.charging_periods],
        }


# --- units and rounding ------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_US = timedelta(microseconds=1)
_SECOND = 1_000_000
_HOUR = 3600 * _SECOND
_DAY = 24 * _HOUR
_D_HOUR = Decimal(_HOUR)
_D_KWH = Decimal(1000)
_D_100 = Decimal(100)
_ZERO = Decimal(0)
_FOUR = Decimal("0.0001")
_NANO = Decimal("1e-9")
_OFFSET_SAMPLE = _HOUR  # UTC offsets never change twice within an hour in any real zone
_NEVER = 1 << 62


def round4(value: Decimal) -> Decimal:
    """OCPI numbers carry 4 decimals: ROUND_HALF_UP."""
    return value.quantize(_FOUR, rounding=ROUND_HALF_UP)


def _us(dt: datetime, what: str) -> int:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise PricingError(f"{what}: must be timezone-aware")
    return (dt - _EPOCH) // _US


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _offset(tz: tzinfo, us: int) -> int:
    off = _at(us).astimezone(tz).utcoffset()
    if off is None:
        raise PricingError("tz: the time zone gives no UTC offset")
    return off // _US


# --- restrictions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """Everything a restriction looks at, for one instant."""

    tod: int  # µs after local midnight
    day: date  # local date
    weekday: int
    duration: int  # µs since the (reservation or session) start
    wh: Decimal  # session energy so far
    power: Decimal
    current: Decimal | None


def _in_window(r: Restrictions, tod: int) -> bool:
    start = 0 if r.start_time is None else r.start_time * _SECOND
    end = _DAY if r.end_time is None or r.end_time == 0 else r.end_time * _SECOND
    if start < end:
        return start <= tod < end
    if start > end:  # wraps past midnight
        return tod >= start or tod < end
    return True  # start == end: the whole day


def _matches(r: Restrictions, c: _Context) -> bool:
    """True if every restriction that is set holds at the context's instant."""
    if (r.start_time is not None or r.end_time is not None) and not _in_window(r, c.tod):
        return False
    if r.start_date is not None and c.day < r.start_date:
        return False
    if r.end_date is not None and c.day >= r.end_date:
        return False
    if r.day_of_week and not any(WEEKDAY[d] == c.weekday for d in r.day_of_week):
        return False
    if r.min_kwh is not None and c.wh < r.min_kwh * _D_KWH:
        return False
    if r.max_kwh is not None and c.wh >= r.max_kwh * _D_KWH:
        return False
    if r.min_duration is not None and c.duration < r.min_duration * _SECOND:
        return False
    if r.max_duration is not None and c.duration >= r.max_duration * _SECOND:
        return False
    if r.min_power is not None and c.power < r.min_power:
        return False
    if r.max_power is not None and c.power >= r.max_power:
        return False
    if r.min_current is not None or r.max_current is not None:
        if c.current is None:
            return False
        if r.min_current is not None and c.current < r.min_current:
            return False
        if r.max_current is not None and c.current >= r.max_current:
            return False
    return True


_Ref = tuple[int, PriceComponent]  # (element index, component)


def _ordered(tariff: Tariff, activity: Activity, expired: bool) -> list[tuple[int, TariffElement]]:
    """The elements that may apply to an activity, in the order they are tried."""
    elements = list(enumerate(tariff.elements))
    if activity is not Activity.RESERVATION:
        return [(i, e) for i, e in elements if e.restrictions.reservation is None]
    reserved = [
        (i, e) for i, e in elements if e.restrictions.reservation is ReservationRestriction.RESERVATION
    ]
    if not expired:
        return reserved
    expires = [
        (i, e)
        for i, e in elements
        if e.restrictions.reservation is ReservationRestriction.RESERVATION_EXPIRES
    ]
    return expires + reserved  # OCPI: an expired reservation is priced by RESERVATION_EXPIRES first


def _first(candidates: list[tuple[int, TariffElement]], dim: Dimension, ctx: _Context) -> _Ref | None:
    for i, element in candidates:
        component = element.component(dim)
        if component is not None and _matches(element.restrictions, ctx):
            return (i, component)
    return None


# --- the engine --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Period:
    start: int
    activity: Activity
    energy_ref: _Ref | None
    time_ref: _Ref | None
    wh: Decimal
    us: int
    power_min: Decimal | None = None
    power_max: Decimal | None = None
    current_min: Decimal | None = None
    current_max: Decimal | None = None


class _Plan:
    """The tariff prepared for one session: thresholds and the split instants on its timeline."""

    def __init__(self, tariff: Tariff, tz: tzinfo, expired: bool) -> None:
        rs = [e.restrictions for e in tariff.elements]
        self.tariff = tariff
        self.tz = tz
        self.local = any(r.has_time_of_day or r.has_calendar for r in rs)
        tods = {t * _SECOND for r in rs for t in (r.start_time, r.end_time) if t is not None}
        if self.local:
            tods.add(0)  # dates and weekdays change at midnight; a window's open side ends there too
        self.tods = sorted(tods)
        self.kwh = sorted({k * _D_KWH for r in rs for k in (r.min_kwh, r.max_kwh) if k is not None})
        self.durations = sorted(
            {d * _SECOND for r in rs for d in (r.min_duration, r.max_duration) if d is not None}
        )
        self.powers = sorted({p for r in rs for p in (r.min_power, r.max_power) if p is not None})
        self.currents = sorted({c for r in rs for c in (r.min_current, r.max_current) if c is not None})
        self.candidates = {a: _ordered(tariff, a, expired) for a in Activity}

    def offsets(self, t0: int, t1: int) -> list[tuple[int, int]]:
        """(from µs, UTC offset µs) pieces covering [t0, t1]; transitions found to the microsecond."""
        pieces = [(t0, _offset(self.tz, t0))]
        a = t0
        while a < t1:
            b = min(a + _OFFSET_SAMPLE, t1)
            ob = _offset(self.tz, b)
            if ob != pieces[-1][1]:
                lo, hi = a, b  # offset(lo) is the old one, offset(hi) the new one
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if _offset(self.tz, mid) == pieces[-1][1]:
                        lo = mid
                    else:
                        hi = mid
                pieces.append((hi, ob))
            a = b
        return pieces

    def splits(self, t0: int, t1: int, starts: Sequence[int]) -> tuple[list[int], list[tuple[int, int]]]:
        """Sorted instants in (t0, t1) where an element may switch, and the offset pieces."""
        cuts: set[int] = set()
        pieces = self.offsets(t0, t1) if self.local else [(t0, 0)]
        if self.local:
            ends = [p[0] for p in pieces[1:]] + [t1]
            for (ps, off), pe in zip(pieces, ends, strict=True):
                cuts.add(ps)
                for day in range((ps + off) // _DAY, (pe + off) // _DAY + 1):
                    for tod in self.tods:
                        u = day * _DAY + tod - off
                        if ps <= u < pe:
                            cuts.add(u)
        for base in starts:
            cuts.update(base + d for d in self.durations)
        return sorted(u for u in cuts if t0 < u < t1), pieces

    def context_at(self, pieces: list[tuple[int, int]], us: int) -> tuple[int, date, int]:
        """(µs after local midnight, local date, weekday) at an instant."""
        if not self.local:
            return 0, _EPOCH_DATE, 0
        off = pieces[bisect_right(pieces, (us, _NEVER)) - 1][1]
        local = us + off
        days = local // _DAY
        return local % _DAY, _EPOCH_DATE + timedelta(days=days), (days + 3) % 7  # 1970-01-01: Thursday


def compute_cost(
    tariff: Tariff,
    tz: tzinfo,
    intervals: Sequence[MeterInterval],
    *,
    reservation_expired: bool = False,
    max_period: timedelta | None = None,
) -> Cost:
    """Price a session under an OCPI tariff; `tz` is the Location's zone, intervals in time order.

    `max_period`, if given, also starts a new ChargingPeriod at the first interval boundary at or
    after that long into the current period (issue 7: at least every 15 minutes of charging).
    """
    plan = _Plan(tariff, tz, reservation_expired)
    if not intervals:
        return _empty(tariff)
    spans: list[tuple[int, int]] = []
    previous_end = -_NEVER
    previous_end_dt: datetime | None = None
    for n, iv in enumerate(intervals):
        # Meter intervals are usually contiguous: reuse the previous end's conversion (a third of
        # the time of a 1,440-interval costing went to datetime arithmetic).
        if previous_end_dt is not None and iv.start == previous_end_dt and iv.start.tzinfo is not None:
            s = previous_end
        else:
            s = _us(iv.start, f"intervals[{n}].start")
        e = _us(iv.end, f"intervals[{n}].end")
        previous_end_dt = iv.end
        if e <= s:
            raise PricingError(f"intervals[{n}]: end must be after start")
        if s < previous_end:
            raise PricingError(f"intervals[{n}]: starts before the previous interval ends")
        if iv.energy_wh < 0:
            raise PricingError(f"intervals[{n}].energy_wh: must not be negative")
        if iv.activity is Activity.RESERVATION and iv.energy_wh:
            raise PricingError(f"intervals[{n}].energy_wh: a reservation delivers no energy")
        spans.append((s, e))
        previous_end = e
    t0, t1 = spans[0][0], spans[-1][1]
    session_start = next(
        (s for (s, _), iv in zip(spans, intervals, strict=True) if iv.activity is not Activity.RESERVATION),
        None,
    )
    reservation_start = next(
        (s for (s, _), iv in zip(spans, intervals, strict=True) if iv.activity is Activity.RESERVATION), None
    )
    starts = [b for b in (session_start, reservation_start) if b is not None]
    cuts, pieces = plan.splits(t0, t1, starts)
    # The local context of each stretch between cuts, computed once: stretch k starts at cuts[k-1].
    local = [plan.context_at(pieces, u) for u in [t0, *cuts]]
    n_cuts = len(cuts)
    max_us = None if max_period is None else max_period // _US

    cache: dict[tuple[Any, ...], tuple[_Ref | None, _Ref | None]] = {}
    periods: list[_Period] = []
    period: _Period | None = None
    flats: dict[str, _Ref | None] = {"session": None, "reservation": None}
    flat_at = {
        u: name
        for u, name in ((session_start, "session"), (reservation_start, "reservation"))
        if u is not None
    }
    wh_so_far = _ZERO
    k = 0  # index of the stretch the current piece starts in
    kwh, durations, powers, currents = plan.kwh, plan.durations, plan.powers, plan.currents

    for iv, (s, e) in zip(intervals, spans, strict=True):
        activity = iv.activity
        energy = iv.energy_wh if isinstance(iv.energy_wh, Decimal) else Decimal(iv.energy_wh)
        length = e - s
        if iv.power_kw is not None:
            power = iv.power_kw
        elif activity is Activity.CHARGING and powers:
            power = energy * _D_HOUR / length / _D_KWH
        else:
            power = _ZERO
        current = (
            iv.current_a if iv.current_a is not None else (None if activity is Activity.CHARGING else _ZERO)
        )
        p_seg = bisect_right(powers, power) if powers else 0
        c_seg = -1 if current is None else (bisect_right(currents, current) if currents else 0)
        base = reservation_start if activity is Activity.RESERVATION else session_start
        assert base is not None
        cur, used = s, _ZERO  # position in the interval and the energy already assigned
        while cur < e:
            while k < n_cuts and cuts[k] <= cur:
                k += 1
            cut = cuts[k] if k < n_cuts and cuts[k] < e else e
            piece_wh: Decimal | None = None
            if kwh and energy:
                nxt = bisect_right(kwh, wh_so_far)
                if nxt < len(kwh):
                    need = kwh[nxt] - wh_so_far  # energy until the next kWh threshold; its instant to the µs
                    at = s + int(((used + need) * length / energy).to_integral_value(ROUND_HALF_EVEN))
                    if at < cut:
                        cut, piece_wh = max(at, cur + 1), need
            if piece_wh is None:
                piece_wh = energy - used if cut == e else max(energy * (cut - s) / length - used, _ZERO)
            tod, day, weekday = local[k]
            d_seg = bisect_right(durations, cur - base) if durations else 0
            w_seg = bisect_right(kwh, wh_so_far) if kwh else 0
            key = (activity, k if plan.local else 0, d_seg, w_seg, p_seg, c_seg)
            refs = cache.get(key)
            if refs is None:
                ctx = _Context(tod, day, weekday, cur - base, wh_so_far, power, current)
                candidates = plan.candidates[activity]
                time_dim = Dimension.PARKING_TIME if activity is Activity.PARKING else Dimension.TIME
                energy_ref = (
                    None if activity is Activity.RESERVATION else _first(candidates, Dimension.ENERGY, ctx)
                )
                refs = (energy_ref, _first(candidates, time_dim, ctx))
                cache[key] = refs
            if cur == s and s in flat_at:
                # FLAT is decided once, at the first instant of the session (or reservation).
                ctx = _Context(tod, day, weekday, 0, wh_so_far, power, current)
                flats[flat_at[s]] = _first(plan.candidates[activity], Dimension.FLAT, ctx)
            energy_ref, time_ref = refs
            if (
                period is None
                or period.activity is not activity
                or period.energy_ref != energy_ref
                or period.time_ref != time_ref
                or (max_us is not None and cur == s and cur - period.start >= max_us)
            ):
                period = _Period(cur, activity, energy_ref, time_ref, _ZERO, 0)
                periods.append(period)
            period.wh += piece_wh
            period.us += cut - cur
            if iv.power_kw is not None:
                period.power_min = power if period.power_min is None else min(period.power_min, power)
                period.power_max = power if period.power_max is None else max(period.power_max, power)
            if iv.current_a is not None:
                c = iv.current_a
                period.current_min = c if period.current_min is None else min(period.current_min, c)
                period.current_max = c if period.current_max is None else max(period.current_max, c)
            wh_so_far += piece_wh
            used += piece_wh
            cur = cut
    return _settle(tariff, periods, flats["session"], flats["reservation"])


class _Sums:
    """Priced volume per component, with the step_size rounding of a group applied at the end."""

    def __init__(self) -> None:
        self.volume: dict[_Ref, Decimal | int] = {}
        self.last: _Ref | None = None
        self.total: Decimal | int = 0

    def add(self, ref: _Ref | None, volume: Decimal | int) -> None:
        if ref is None or not volume:
            return
        self.volume[ref] = self.volume.get(ref, 0) + volume
        self.total += volume
        self.last = ref

    def round_up(self, unit: int) -> None:
        """Round the group's total up to the last component's step; the extra goes to that component."""
        if self.last is None or self.last[1].step_size == 0:
            return
        step = Decimal(self.last[1].step_size * unit)
        # Linear interpolation divides; a total of 6000 Wh may come out as 6000.000...01 and must
        # not be billed as 6001. Nano-Wh (and whole µs) is far below any meter's resolution.
        total = Decimal(self.total).quantize(_NANO, rounding=ROUND_HALF_EVEN)
        extra = (total / step).to_integral_value(ROUND_CEILING) * step - total
        if extra:
            self.volume[self.last] = self.volume[self.last] + extra


def _cost(items: list[tuple[PriceComponent, Decimal]]) -> tuple[Decimal, Decimal | None]:
    """(excl, incl or None) of components priced at the given quantities (in their OCPI unit)."""
    excl, incl = _ZERO, _ZERO
    known = True
    for component, quantity in items:
        amount = component.price * quantity
        excl += amount
        if component.vat is not None:
            incl += amount * (1 + component.vat / _D_100)
        elif amount:
            known = False
        else:
            pass  # a zero amount is zero with any VAT
    return excl, incl if known else None


def _price(excl: Decimal, incl: Decimal | None) -> Price:
    return Price(round4(excl), None if incl is None else round4(incl))


def _settle(tariff: Tariff, periods: list[_Period], flat: _Ref | None, reservation_flat: _Ref | None) -> Cost:
    energy, time, reserved = _Sums(), _Sums(), _Sums()
    total_wh, charging_us, parking_us, reserved_us = _ZERO, 0, 0, 0
    for p in periods:
        total_wh += p.wh
        if p.activity is Activity.RESERVATION:
            reserved_us += p.us
            reserved.add(p.time_ref, p.us)
            continue
        energy.add(p.energy_ref, p.wh)
        time.add(p.time_ref, p.us)
        if p.activity is Activity.CHARGING:
            charging_us += p.us
        else:
            parking_us += p.us
    energy.round_up(1)
    time.round_up(_SECOND)
    reserved.round_up(_SECOND)

    def hours(sums: _Sums, dim: Dimension) -> list[tuple[PriceComponent, Decimal]]:
        return [(ref[1], Decimal(v) / _D_HOUR) for ref, v in sums.volume.items() if ref[1].type is dim]

    energy_items = [(ref[1], Decimal(v) / _D_KWH) for ref, v in energy.volume.items()]
    time_items = hours(time, Dimension.TIME)
    parking_items = hours(time, Dimension.PARKING_TIME)
    reservation_items = hours(reserved, Dimension.TIME)
    flat_items = [(f[1], Decimal(1)) for f in (flat,) if f is not None]
    reservation_items += [(f[1], Decimal(1)) for f in (reservation_flat,) if f is not None]
    parts = [_cost(x) for x in (flat_items, energy_items, time_items, parking_items, reservation_items)]
    excl = sum((p[0] for p in parts), _ZERO)
    incl: Decimal | None = None
    if all(p[1] is not None for p in parts):
        incl = sum((p[1] for p in parts if p[1] is not None), _ZERO)
    excl, incl, clamped = _clamp(tariff, excl, incl)
    return Cost(
        currency=tariff.currency,
        total_cost=_price(excl, incl),
        total_fixed_cost=_price(*parts[0]),
        total_energy_cost=_price(*parts[1]),
        total_time_cost=_price(*parts[2]),
        total_parking_cost=_price(*parts[3]),
        total_reservation_cost=_price(*parts[4]),
        total_energy=round4(total_wh / _D_KWH),
        total_time=round4(Decimal(charging_us + parking_us) / _D_HOUR),
        total_charging_time=round4(Decimal(charging_us) / _D_HOUR),
        total_parking_time=round4(Decimal(parking_us) / _D_HOUR),
        total_reservation_time=round4(Decimal(reserved_us) / _D_HOUR),
        billed_energy=round4(sum((q for _, q in energy_items), _ZERO)),
        billed_time=round4(sum((q for _, q in time_items), _ZERO)),
        billed_parking_time=round4(sum((q for _, q in parking_items), _ZERO)),
        charging_periods=tuple(_period(tariff.id, p) for p in periods),
        clamped_by=clamped,
    )


def _clamp(tariff: Tariff, excl: Decimal, incl: Decimal | None) -> tuple[Decimal, Decimal | None, str | None]:
    clamped = None
    low, high = tariff.min_price, tariff.max_price
    if low is not None:
        if excl < low.excl_vat:
            excl, clamped = low.excl_vat, "min_price"
        if incl is not None and low.incl_vat is not None and incl < low.incl_vat:
            incl, clamped = low.incl_vat, "min_price"
    if high is not None:
        if excl > high.excl_vat:
            excl, clamped = high.excl_vat, "max_price"
        if incl is not None and high.incl_vat is not None and incl > high.incl_vat:
            incl, clamped = high.incl_vat, "max_price"
    return excl, incl, clamped


_TIME_DIMENSION = {
    Activity.CHARGING: "TIME",
    Activity.PARKING: "PARKING_TIME",
    Activity.RESERVATION: "RESERVATION_TIME",
}


def _period(tariff_id: str, p: _Period) -> ChargingPeriod:
    dims: list[CdrDimension] = []
    if p.activity is not Activity.RESERVATION and (p.wh or p.activity is Activity.CHARGING):
        dims.append(CdrDimension("ENERGY", round4(p.wh / _D_KWH)))
    dims.append(CdrDimension(_TIME_DIMENSION[p.activity], round4(Decimal(p.us) / _D_HOUR)))
    for name, value in (
        ("MAX_POWER", p.power_max),
        ("MIN_POWER", p.power_min),
        ("MAX_CURRENT", p.current_max),
        ("MIN_CURRENT", p.current_min),
    ):
        if value is not None:
            dims.append(CdrDimension(name, round4(value)))
    return ChargingPeriod(_at(p.start), tuple(dims), tariff_id)


def _empty(tariff: Tariff) -> Cost:
    zero = Price(round4(_ZERO), round4(_ZERO))
    z = round4(_ZERO)
    return Cost(tariff.currency, zero, zero, zero, zero, zero, zero, z, z, z, z, z, z, z, z, (), None)


# --- price before start (issue 7 item 7) ---------------------------------------------------------

_UNIT = {Dimension.ENERGY: "/kWh", Dimension.TIME: "/h", Dimension.PARKING_TIME: "/h", Dimension.FLAT: ""}
_LABEL = {
    Dimension.ENERGY: "",
    Dimension.TIME: "charging ",
    Dimension.PARKING_TIME: "parking ",
    Dimension.FLAT: "",
}
_CENT = Decimal("0.01")


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _hours(seconds: int) -> str:
    h = Decimal(seconds) / 3600
    return f"{h.normalize():f} h" if seconds % 60 == 0 and seconds >= 3600 else f"{seconds // 60} min"


def _conditions(r: Restrictions) -> list[str]:
    """The restrictions that decide during a session, in words (time of day is decided by `at`)."""
    words = []
    if r.min_duration:
        words.append(f"after {_hours(r.min_duration)}")
    if r.max_duration is not None:
        words.append(f"for the first {_hours(r.max_duration)}")
    if r.min_kwh:
        words.append(f"after {r.min_kwh.normalize():f} kWh")
    if r.max_kwh is not None:
        words.append(f"for the first {r.max_kwh.normalize():f} kWh")
    if r.min_power is not None:
        words.append(f"at {r.min_power.normalize():f} kW or more")
    if r.max_power is not None:
        words.append(f"below {r.max_power.normalize():f} kW")
    if r.min_current is not None:
        words.append(f"at {r.min_current.normalize():f} A or more")
    if r.max_current is not None:
        words.append(f"below {r.max_current.normalize():f} A")
    return words


def _line(tariff: Tariff, c: PriceComponent, conditions: list[str]) -> dict[str, Any]:
    incl = None if c.vat is None else round4(c.price * (1 + c.vat / _D_100))
    shown = incl if incl is not None else c.price
    vat_words = "incl. VAT" if incl is not None else "excl. VAT"
    if c.type is Dimension.FLAT:
        text = f"{_money(shown)} {tariff.currency} start fee ({vat_words})"
    else:
        text = f"{_LABEL[c.type]}{_money(shown)} {tariff.currency}{_UNIT[c.type]} {vat_words}"
    if conditions:
        text += " " + ", ".join(conditions)
    line: dict[str, Any] = {
        "type": c.type.value,
        "price_excl_vat": str(c.price),
        "price_incl_vat": None if incl is None else str(incl),
        "vat": None if c.vat is None else str(c.vat),
        "step_size": c.step_size,
        "conditions": conditions,
        "text": text,
    }
    return line


def price_before_start(tariff: Tariff, tz: tzinfo, at: datetime) -> dict[str, Any]:
    """The ad hoc price of a session starting at `at`, per dimension, in driver-readable words.

    Time of day, dates and weekdays are decided at `at`; restrictions that only a running session
    decides (duration, kWh, power, current) become conditions ("after 1 h", "below 16 kW").
    Per dimension the lines are the elements that may apply, in order, up to the first one without
    such conditions (nothing after it can apply). `valid_until` is the next local time-of-day or
    date boundary, after which the answer may change.
    """
    now = _us(at, "at")
    plan = _Plan(tariff, tz, expired=False)
    pieces = plan.offsets(now, now) if plan.local else [(now, 0)]
    tod, day, weekday = plan.context_at(pieces, now)
    lines: list[dict[str, Any]] = []
    for dim in (Dimension.FLAT, Dimension.ENERGY, Dimension.TIME, Dimension.PARKING_TIME):
        for _, element in plan.candidates[Activity.CHARGING]:
            c = element.component(dim)
            r = element.restrictions
            if c is None:
                continue
            # Only the local-time restrictions are decided now; the rest are the line's conditions.
            ctx = _Context(tod, day, weekday, 0, _ZERO, _ZERO, _ZERO)
            timeless = Restrictions(
                start_time=r.start_time,
                end_time=r.end_time,
                start_date=r.start_date,
                end_date=r.end_date,
                day_of_week=r.day_of_week,
            )
            if not _matches(timeless, ctx):
                continue
            conditions = [] if dim is Dimension.FLAT else _conditions(r)
            lines.append(_line(tariff, c, conditions))
            if not conditions:
                break
    valid_until = None
    if plan.local:
        day_start = now - tod
        later = [day_start + t for t in plan.tods if day_start + t > now] or [day_start + _DAY]
        # The offset may differ at that instant (DST); local boundaries are found again from there.
        valid_until = _at(min(later) - (_offset(tz, min(later)) - pieces[0][1]))
    text = ", ".join(line["text"] for line in lines) if lines else "free of charge"
    if all(Decimal(line["price_excl_vat"]) == 0 for line in lines):
        text = "free of charge"
    for word, bound in (("minimum", tariff.min_price), ("maximum", tariff.max_price)):
        if bound is not None:
            shown, vat = (
                (bound.incl_vat, "incl.") if bound.incl_vat is not None else (bound.excl_vat, "excl.")
            )
            text += f", {word} {_money(shown)} {tariff.currency} per session ({vat} VAT)"
    return {
        "tariff_id": tariff.id,
        "currency": tariff.currency,
        "active": tariff.is_active(at),
        "components": lines,
        "min_price": None if tariff.min_price is None else tariff.min_price.to_ocpi(),
        "max_price": None if tariff.max_price is None else tariff.max_price.to_ocpi(),
        "valid_until": None if valid_until is None else valid_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "text": text,
    }


# --- price display on chargers ---------------------------------------------------------------------

DISPLAY_MAX = 512  # OCPP 2.0.1 MessageContentType.content and a sane bound for vendor DataTransfer
DISPLAY_MESSAGE_ID_BASE = 9100  # SetDisplayMessage id = base + EVSE number: re-sending replaces it


@dataclass(frozen=True, slots=True)
class DisplayTarget:
    """How a charger shows a price: "ocpp201" (SetDisplayMessage) or a vendor's DataTransfer."""

    kind: str  # ocpp201 | datatransfer
    vendor_id: str | None = None
    message_id: str | None = None


def display_target(setting: str, ocpp_version: str | None) -> DisplayTarget | None:
    """The charger's configured price_display for its protocol; None: it shows no price."""
    if setting == "ocpp201" and ocpp_version == "2.0.1":
        return DisplayTarget("ocpp201")
    if setting.startswith("datatransfer:") and ocpp_version == "1.6":
        _, vendor, message = setting.split(":", 2)
        return DisplayTarget("datatransfer", vendor, message)
    return None  # "none", or a setting the charger's protocol cannot carry


def display_text(price: dict[str, Any], ocpp_evse: int, evses_on_charger: int) -> str | None:
    """What the charger shows for one EVSE's ad hoc price (price_before_start); None: no tariff."""
    if price.get("tariff_id") is None:
        return None
    prefix = f"EVSE {ocpp_evse}: " if evses_on_charger > 1 else ""
    text = f"{prefix}{price['text']}"
    return text if len(text) <= DISPLAY_MAX else text[: DISPLAY_MAX - 1] + "…"


def display_request(
    target: DisplayTarget, price: dict[str, Any], text: str, ocpp_evse: int, evses_on_charger: int
) -> tuple[str, dict[str, Any]]:
    """(OCPP action, params in wire camelCase) that shows `text` for an EVSE on the charger."""
    if target.kind == "ocpp201":
        message: dict[str, Any] = {
            "id": DISPLAY_MESSAGE_ID_BASE + ocpp_evse,
            "priority": "NormalCycle",
            "message": {"format": "UTF8", "content": text},
        }
        if evses_on_charger > 1:
            # Assumption (docs/price-display.md): a per-EVSE display is addressed as component
            # "Display" of that EVSE; a charger with one display shows the prefixed text anyway.
            message["display"] = {"name": "Display", "evse": {"id": ocpp_evse}}
        return "SetDisplayMessage", {"message": message}
    data = {
        "connectorId": ocpp_evse,
        "tariffId": price.get("tariff_id"),
        "currency": price.get("currency"),
        "text": text,
        "components": [
            {k: c[k] for k in ("type", "price_excl_vat", "price_incl_vat", "step_size")}
            for c in price.get("components", [])
        ],
    }
    wire = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return "DataTransfer", {"vendorId": target.vendor_id, "messageId": target.message_id, "data": wire}

"""Properties of the cost engine: monotone cost, split invariance, switches, midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.pricing import Activity, Cost, MeterInterval, compute_cost
from controller.core.tariffs import Tariff, parse_tariff

AMS = ZoneInfo("Europe/Amsterdam")
D = Decimal
BASE = datetime(2024, 6, 3, 6, 0, tzinfo=UTC)  # a Monday, 08:00 in Amsterdam

DIMENSIONS = ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def make_tariff(elements: list[dict[str, Any]], **extra: Any) -> Tariff:
    return parse_tariff(
        {
            "country_code": "NL",
            "party_id": "TNM",
            "id": "P",
            "currency": "EUR",
            "elements": elements,
            "last_updated": "2024-01-01T00:00:00Z",
            **extra,
        }
    )


hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
price = st.integers(0, 300).map(lambda c: c / 100)


@st.composite
def restrictions(draw: st.DrawFn, *, energy_based: bool) -> dict[str, Any]:
    r: dict[str, Any] = {}
    if draw(st.booleans()):
        r["start_time"] = draw(hhmm)
    if draw(st.booleans()):
        r["end_time"] = draw(hhmm)
    if draw(st.booleans()):
        r["day_of_week"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        low = draw(st.integers(0, 6)) * 1800
        r["min_duration"] = low
        if draw(st.booleans()):
            r["max_duration"] = low + draw(st.integers(1, 6)) * 1800
    if energy_based and draw(st.booleans()):
        r["min_kwh"] = draw(st.integers(0, 20))
        if draw(st.booleans()):
            r["max_kwh"] = r["min_kwh"] + draw(st.integers(1, 20))
    if energy_based and draw(st.booleans()):
        r["max_power"] = draw(st.sampled_from([7, 11, 22, 50]))
    return r


@st.composite
def tariffs(draw: st.DrawFn, *, energy_based: bool = True, unit_steps: bool = False) -> Tariff:
    """Random tariffs; `energy_based` allows kWh/power restrictions, `unit_steps` forces step_size 1."""
    elements = []
    for _ in range(draw(st.integers(1, 6))):
        dims = draw(st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=4, unique=True))
        components = [
            {
                "type": d,
                "price": draw(price),
                "vat": draw(st.sampled_from([None, 0, 9, 21])),
                "step_size": 1 if unit_steps else draw(st.sampled_from([1, 60, 300, 900, 500])),
            }
            for d in dims
        ]
        elements.append(
            {
                "price_components": [{k: v for k, v in c.items() if v is not None} for c in components],
                "restrictions": draw(restrictions(energy_based=energy_based)),
            }
        )
    return make_tariff(elements)


@st.composite
def sessions(draw: st.DrawFn) -> list[MeterInterval]:
    """Whole-minute intervals with whole-Wh energy: charging first, maybe parking after."""
    start = BASE + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    out = []
    for _ in range(draw(st.integers(1, 8))):
        minutes = draw(st.integers(1, 180))
        wh = draw(st.integers(0, minutes * 370))  # up to 22 kW
        out.append(MeterInterval(start, start + timedelta(minutes=minutes), D(wh)))
        start += timedelta(minutes=minutes)
    for _ in range(draw(st.integers(0, 2))):
        minutes = draw(st.integers(1, 120))
        out.append(MeterInterval(start, start + timedelta(minutes=minutes), D(0), Activity.PARKING))
        start += timedelta(minutes=minutes)
    return out


def total(cost: Cost) -> tuple[Decimal, Decimal | None]:
    return cost.total_cost.excl_vat, cost.total_cost.incl_vat


# --- monotone ------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(tariffs(energy_based=False, unit_steps=True), sessions(), st.data())
def test_cost_never_decreases_as_energy_grows(
    tariff: Tariff, session: list[MeterInterval], data: Any
) -> None:
    """With step_size 1 and restrictions that do not depend on energy or power (see below)."""
    i = data.draw(st.integers(0, len(session) - 1))
    extra = D(data.draw(st.integers(1, 5000)))
    grown = list(session)
    iv = grown[i]
    grown[i] = MeterInterval(iv.start, iv.end, D(iv.energy_wh) + extra, iv.activity)
    before, after = compute_cost(tariff, AMS, session), compute_cost(tariff, AMS, grown)
    assert after.total_cost.excl_vat >= before.total_cost.excl_vat
    if before.total_cost.incl_vat is not None and after.total_cost.incl_vat is not None:
        assert after.total_cost.incl_vat >= before.total_cost.incl_vat


@settings(max_examples=150, deadline=None)
@given(tariffs(energy_based=False, unit_steps=True), sessions(), st.integers(1, 600), st.booleans())
def test_cost_never_decreases_as_time_grows(
    tariff: Tariff, session: list[MeterInterval], minutes: int, parking: bool
) -> None:
    end = session[-1].end
    more = MeterInterval(
        end, end + timedelta(minutes=minutes), D(0), Activity.PARKING if parking else Activity.CHARGING
    )
    before, after = compute_cost(tariff, AMS, session), compute_cost(tariff, AMS, [*session, more])
    assert after.total_cost.excl_vat >= before.total_cost.excl_vat
    if before.total_cost.incl_vat is not None and after.total_cost.incl_vat is not None:
        assert after.total_cost.incl_vat >= before.total_cost.incl_vat


def test_step_size_can_make_cost_decrease_as_time_grows() -> None:
    """Why the monotone properties use step_size 1: OCPI's step rule is not monotone by itself.

    TIME 1.00/h billed per hour, PARKING_TIME 1.00/h billed per second. 10 min charging bills
    1 h = 1.00; one more minute of parking makes parking's step the last one: 11 min = 0.1833.
    """
    t = make_tariff(
        [
            {
                "price_components": [
                    {"type": "TIME", "price": 1.0, "step_size": 3600},
                    {"type": "PARKING_TIME", "price": 1.0, "step_size": 1},
                ]
            }
        ]
    )
    charging = [MeterInterval(BASE, BASE + timedelta(minutes=10), D(1000))]
    parked = [*charging, MeterInterval(charging[0].end, BASE + timedelta(minutes=11), D(0), Activity.PARKING)]
    assert total(compute_cost(t, AMS, charging))[0] == D("1.00")
    assert total(compute_cost(t, AMS, parked))[0] == D("0.1833")


# --- split invariance ----------------------------------------------------------------------------


def split(session: list[MeterInterval], cuts: list[float]) -> list[MeterInterval]:
    """Each interval cut at fractions of its length (whole seconds), energy shared linearly."""
    out = []
    for iv in session:
        seconds = int((iv.end - iv.start).total_seconds())
        points = sorted({int(seconds * c) for c in cuts} - {0, seconds})
        start, energy_left = iv.start, D(iv.energy_wh)
        for p in points:
            end = iv.start + timedelta(seconds=p)
            share = D(iv.energy_wh) * D(int((end - start).total_seconds())) / D(seconds)
            out.append(MeterInterval(start, end, share, iv.activity, iv.power_kw, iv.current_a))
            start, energy_left = end, energy_left - share
        out.append(MeterInterval(start, iv.end, energy_left, iv.activity, iv.power_kw, iv.current_a))
    return out


@settings(max_examples=200, deadline=None)
@given(tariffs(), sessions(), st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4))
def test_splitting_intervals_does_not_change_the_cost(
    tariff: Tariff, session: list[MeterInterval], cuts: list[float]
) -> None:
    whole, fine = compute_cost(tariff, AMS, session), compute_cost(tariff, AMS, split(session, cuts))
    assert total(fine) == total(whole)
    assert fine.total_energy == whole.total_energy and fine.total_time == whole.total_time
    assert [p.start_date_time for p in fine.charging_periods] == [
        p.start_date_time for p in whole.charging_periods
    ]


# --- switches, midnight, DST ---------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 23), st.sampled_from([0, 15, 30, 45]), st.integers(1, 300), st.integers(1, 300))
def test_a_time_of_day_boundary_starts_a_new_charging_period(
    hour: int, minute: int, before: int, after: int
) -> None:
    boundary = f"{hour:02d}:{minute:02d}"
    t = make_tariff(
        [
            {
                "price_components": [{"type": "ENERGY", "price": 0.40, "step_size": 1}],
                "restrictions": {"start_time": boundary},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}]},
        ]
    )
    switch = datetime(2024, 6, 4, hour, minute, tzinfo=AMS)  # a summer day: no DST change
    start, end = switch - timedelta(minutes=before), switch + timedelta(minutes=after)
    # One interval across the switch: the engine must split it exactly at the boundary.
    cost = compute_cost(t, AMS, [MeterInterval(start, end, D(60) * (before + after))])
    assert switch in [p.start_date_time for p in cost.charging_periods]
    # Oracle, minute by minute (60 Wh each): 0.40/kWh from the boundary to midnight, else 0.20.
    expected = D(0)
    for m in range(before + after):
        local = (start + timedelta(minutes=m)).astimezone(AMS)
        expected += (D("0.40") if (local.hour, local.minute) >= (hour, minute) else D("0.20")) * D("0.06")
    assert cost.total_cost.excl_vat == expected.quantize(D("0.0001"))


NIGHT = make_tariff(
    [
        {
            "price_components": [{"type": "TIME", "price": 1.20, "step_size": 1}],
            "restrictions": {"start_time": "22:00", "end_time": "06:00"},
        },
        {"price_components": [{"type": "TIME", "price": 3.00, "step_size": 1}]},
    ]
)


def oracle_night(start: datetime, minutes: int, tz: ZoneInfo) -> Decimal:
    """Minute by minute: 1.20/h when the local hour is in 22..05, else 3.00/h."""
    cost = D(0)
    for m in range(minutes):
        hour = (start + timedelta(minutes=m)).astimezone(tz).hour
        cost += (D("1.20") if hour >= 22 or hour < 6 else D("3.00")) / 60
    return cost.quantize(D("0.0001"))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3 * 24 * 60), st.integers(1, 36 * 60))
def test_midnight_wrap(offset: int, minutes: int) -> None:
    start = BASE + timedelta(minutes=offset)
    session = [MeterInterval(start, start + timedelta(minutes=minutes), D(1000))]
    assert compute_cost(NIGHT, AMS, session).total_cost.excl_vat == oracle_night(start, minutes, AMS)


SPRING = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 02:00 CET -> 03:00 CEST
AUTUMN = datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 03:00 CEST -> 02:00 CET


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([SPRING, AUTUMN]),
    st.integers(-12 * 60, 12 * 60),
    st.integers(1, 24 * 60),
    st.integers(1, 4),
)
def test_dst_change_day_in_amsterdam(transition: datetime, offset: int, minutes: int, pieces: int) -> None:
    start = transition + timedelta(minutes=offset)
    step = timedelta(minutes=minutes) / pieces
    session = [MeterInterval(start + step * i, start + step * (i + 1), D(100)) for i in range(pieces)]
    assert compute_cost(NIGHT, AMS, session).total_cost.excl_vat == oracle_night(start, minutes, AMS)


def test_dst_hours_are_real_hours() -> None:
    """00:00-06:00 local is 5 real hours on the spring day, 7 on the autumn day."""
    t = make_tariff(
        [
            {
                "price_components": [{"type": "TIME", "price": 1.00, "step_size": 1}],
                "restrictions": {"end_time": "04:00"},
            },
            {"price_components": [{"type": "TIME", "price": 10.00, "step_size": 1}]},
        ]
    )
    spring = datetime(2024, 3, 31, tzinfo=AMS), datetime(2024, 3, 31, 6, tzinfo=AMS)
    autumn = datetime(2024, 10, 27, tzinfo=AMS), datetime(2024, 10, 27, 6, tzinfo=AMS)
    s = compute_cost(t, AMS, [MeterInterval(*spring, D(0))])
    a = compute_cost(t, AMS, [MeterInterval(*autumn, D(0))])
    # spring: 00:00-04:00 local is 3 real hours at 1.00, 04:00-06:00 two at 10.00 = 23.00
    assert s.total_time == D("5") and s.total_cost.excl_vat == D("23.00")
    # autumn: 00:00-04:00 local is 5 real hours at 1.00, then two at 10.00 = 25.00
    assert a.total_time == D("7") and a.total_cost.excl_vat == D("25.00")
    assert [p.start_date_time.astimezone(AMS).hour for p in s.charging_periods] == [0, 4]

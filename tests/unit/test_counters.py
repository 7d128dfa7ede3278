"""Energy counter decisions: monotonic, implausible jumps rejected, resets and rollover re-based."""

from __future__ import annotations

from controller.core.counters import CounterLimits, CounterState, CounterVerdict, check_counter

LIMITS = CounterLimits(max_rate=100.0)  # 100 Wh/s = 360 kW


def feed(readings: list[tuple[float, float]], limits: CounterLimits = LIMITS) -> list[CounterVerdict]:
    state: CounterState | None = None
    out = []
    for at, raw in readings:
        verdict = check_counter(state, raw, at, limits)
        state = verdict.state
        out.append(verdict)
    return out


def test_first_and_growing_readings_are_accepted() -> None:
    v = feed([(0, 1000.0), (1, 1050.0), (2, 1100.0)])
    assert [x.outcome for x in v] == ["first", "ok", "ok"]
    assert [x.value for x in v] == [1000.0, 1050.0, 1100.0]


def test_backwards_jump_is_rejected_and_the_next_good_reading_accepted() -> None:
    v = feed([(0, 1000.0), (1, 900.0), (2, 1010.0)])
    assert v[1].value is None and v[1].outcome == "rejected"
    assert "backwards by 100" in v[1].reason
    assert v[2].outcome == "ok" and v[2].value == 1010.0


def test_implausible_jump_is_rejected() -> None:
    v = feed([(0, 1000.0), (1, 1000.0 + 65536.0), (2, 1020.0)])
    assert v[1].outcome == "rejected" and "implausible" in v[1].reason
    assert v[2].value == 1020.0


def test_float_rounding_backwards_is_not_a_jump_and_never_lowers_the_total() -> None:
    v = feed([(0, 100_000_000.0), (1, 99_999_992.0)])  # one float32 step at 100 MWh
    assert v[1].outcome == "ok" and v[1].value == 100_000_000.0


def test_a_spurious_zero_is_ignored() -> None:
    v = feed([(0, 5000.0), (1, 0.0), (2, 0.0), (3, 0.0), (4, 5010.0)])
    assert [x.outcome for x in v[1:4]] == ["rejected"] * 3
    assert v[4].value == 5010.0


def test_reset_to_zero_is_confirmed_then_rebased_counting_energy_since_the_reset() -> None:
    v = feed([(0, 5000.0), (10, 5.0), (11, 20.0), (12, 40.0), (13, 60.0)])
    assert [x.outcome for x in v[1:3]] == ["rejected", "rejected"]
    assert v[3].outcome == "reset" and v[3].value == 5040.0  # 5000 before + 40 counted since
    assert v[4].outcome == "ok" and v[4].value == 5060.0


def test_replaced_meter_with_another_reading_rebases_without_counting_the_jump() -> None:
    v = feed([(0, 5000.0), (1, 800_000.0), (2, 800_010.0), (3, 800_020.0), (4, 800_030.0)])
    assert v[3].outcome == "reset" and v[3].value == 5020.0
    assert v[4].value == 5030.0


def test_unsigned_rollover_is_rebased_at_once() -> None:
    limits = CounterLimits(max_rate=100.0, wrap=65536.0, resolution=1.0)
    v = feed([(0, 65500.0), (1, 20.0), (2, 40.0)], limits)
    assert v[1].outcome == "rollover" and v[1].value == 65556.0
    assert v[2].value == 65576.0


def test_values_reported_never_decrease() -> None:
    readings = [(float(i), x) for i, x in enumerate([10, 12, 11, 0, 15, 3, 4, 5, 6, 7, 9e9, 8])]
    values = [v.value for v in feed(readings) if v.value is not None]
    assert values == sorted(values)

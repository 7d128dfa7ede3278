"""Tariff engine benchmark: cost of a 24-hour session with 1-minute samples under a 6-element tariff.

Run: python -m hil.bench.tariff_bench [--runs N] [--json out.json]
Issue 7's target is < 5 ms per costing. The session crosses the spring DST change in Amsterdam,
charges for 10 h with metered power and parks for the rest; the tariff has a start fee, a
weekday day rate, a night rate across midnight, a power tier, parking after 4 h and a fallback,
so every kind of split (time of day, midnight, DST, duration, power) is exercised.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.core.pricing import Activity, MeterInterval, compute_cost
from controller.core.tariffs import Tariff, parse_tariff
from hil.bench import write_json

DEFAULT_JSON = Path("hil/bench/results/tariff.json")
TARGET_MS = 5.0
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def six_element_tariff() -> Tariff:
    """A realistic 6-element tariff touching every kind of restriction the session can trip."""
    vat = 21.0
    return parse_tariff(
        {
            "country_code": "NL",
            "party_id": "SED",
            "id": "bench-6",
            "currency": "EUR",
            "last_updated": "2024-01-01T00:00:00Z",
            "elements": [
                {"price_components": [{"type": "FLAT", "price": 0.50, "vat": vat, "step_size": 1}]},
                {
                    "price_components": [
                        {"type": "ENERGY", "price": 0.35, "vat": vat, "step_size": 1},
                        {"type": "TIME", "price": 1.00, "vat": vat, "step_size": 60},
                    ],
                    "restrictions": {"start_time": "07:00", "end_time": "23:00", "day_of_week": WEEKDAYS},
                },
                {
                    "price_components": [{"type": "ENERGY", "price": 0.22, "vat": vat, "step_size": 1}],
                    "restrictions": {"start_time": "23:00", "end_time": "07:00"},
                },
                {
                    "price_components": [{"type": "ENERGY", "price": 0.45, "vat": vat, "step_size": 1}],
                    "restrictions": {"min_power": 22},
                },
                {
                    "price_components": [
                        {"type": "PARKING_TIME", "price": 2.00, "vat": vat, "step_size": 300}
                    ],
                    "restrictions": {"min_duration": 14400},
                },
                {
                    "price_components": [
                        {"type": "ENERGY", "price": 0.30, "vat": vat, "step_size": 1},
                        {"type": "TIME", "price": 0.50, "vat": vat, "step_size": 60},
                    ]
                },
            ],
        }
    )


def day_session(start: datetime) -> list[MeterInterval]:
    """1,440 one-minute intervals: 10 h charging at 7.4-30 kW (metered power), then parking."""
    out = []
    for i in range(1440):
        a = start + timedelta(minutes=i)
        if i < 600:
            kw = Decimal(30) if 120 <= i < 180 else Decimal("7.4") + Decimal(i % 7)
            out.append(
                MeterInterval(a, a + timedelta(minutes=1), kw * 1000 / 60, Activity.CHARGING, power_kw=kw)
            )
        else:
            out.append(MeterInterval(a, a + timedelta(minutes=1), Decimal(0), Activity.PARKING))
    return out


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Time compute_cost on the 24-hour session, print the figures and write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    tz = ZoneInfo("Europe/Amsterdam")
    tariff = six_element_tariff()
    session = day_session(datetime(2024, 3, 30, 11, 0, tzinfo=UTC))  # Sat 12:00 CET, across the DST change
    for _ in range(10):  # warm-up: imports, zoneinfo cache, Decimal contexts
        cost = compute_cost(tariff, tz, session)
    samples = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        cost = compute_cost(tariff, tz, session)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    figures = {
        "intervals": len(session),
        "elements": len(tariff.elements),
        "runs": args.runs,
        "ms_min": round(samples[0], 3),
        "ms_median": round(statistics.median(samples), 3),
        "ms_p95": round(samples[int(0.95 * (len(samples) - 1))], 3),
        "ms_max": round(samples[-1], 3),
        "target_ms": TARGET_MS,
        "meets_target_median": statistics.median(samples) < TARGET_MS,
        "charging_periods": len(cost.charging_periods),
        "total_cost": cost.total_cost.to_ocpi(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    write_json(args.json, figures)
    print(f"tariff benchmark: {len(session)} one-minute intervals, {len(tariff.elements)}-element tariff")
    print(
        f"compute_cost: min {figures['ms_min']} ms, median {figures['ms_median']} ms, "
        f"p95 {figures['ms_p95']} ms, max {figures['ms_max']} ms (target < {TARGET_MS} ms)"
    )
    print(f"periods {figures['charging_periods']}, total {figures['total_cost']}")
    print(f"written to {args.json}")
    return figures


if __name__ == "__main__":
    main()

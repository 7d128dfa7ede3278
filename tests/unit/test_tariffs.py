"""OCPI 2.2.1 Tariff parsing: what is accepted, what is refused (and the field named), price before start."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controller.core.pricing import price_before_start
from controller.core.tariffs import (
    DayOfWeek,
    Dimension,
    ReservationRestriction,
    TariffError,
    TariffType,
    parse_tariff,
)

AMS = ZoneInfo("Europe/Amsterdam")

# OCPI 2.2.1 examples/tariff_4_complex.json (abridged: FLAT, one TIME, one PARKING_TIME element)
COMPLEX: dict[str, Any] = {
    "country_code": "DE",
    "party_id": "ALL",
    "id": "14",
    "currency": "EUR",
    "type": "REGULAR",
    "tariff_alt_url": "https://company.com/tariffs/14",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 2.50, "vat": 15.0, "step_size": 1}]},
        {
            "price_components": [{"type": "TIME", "price": 1.00, "vat": 20.0, "step_size": 900}],
            "restrictions": {"max_current": 32.00},
        },
        {
            "price_components": [{"type": "PARKING_TIME", "price": 5.00, "vat": 10.0, "step_size": 300}],
            "restrictions": {
                "start_time": "09:00",
                "end_time": "18:00",
                "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
            },
        },
    ],
    "last_updated": "2015-06-29T20:39:09Z",
}


def test_parses_the_complex_example() -> None:
    t = parse_tariff(COMPLEX)
    assert (t.country_code, t.party_id, t.id, t.currency, t.type) == (
        "DE",
        "ALL",
        "14",
        "EUR",
        TariffType.REGULAR,
    )
    flat, time, parking = t.elements
    assert flat.price_components[0].price == Decimal("2.5") and flat.price_components[0].vat == Decimal(
        "15.0"
    )
    assert time.restrictions.max_current == Decimal("32.0")
    assert time.component(Dimension.TIME) is not None and time.component(Dimension.ENERGY) is None
    assert parking.restrictions.start_time == 9 * 3600 and parking.restrictions.end_time == 18 * 3600
    assert DayOfWeek.SATURDAY not in parking.restrictions.day_of_week
    assert t.last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    assert t.raw == COMPLEX  # kept for forwarding exactly as received


def test_decimals_keep_the_written_value() -> None:
    obj = copy.deepcopy(COMPLEX)
    obj["elements"][0]["price_components"][0]["price"] = 0.35
    assert parse_tariff(obj).elements[0].price_components[0].price == Decimal("0.35")


def test_absent_vat_is_not_zero_vat() -> None:
    obj = copy.deepcopy(COMPLEX)
    del obj["elements"][0]["price_components"][0]["vat"]
    obj["elements"][1]["price_components"][0]["vat"] = 0
    t = parse_tariff(obj)
    assert t.elements[0].price_components[0].vat is None
    assert t.elements[1].price_components[0].vat == Decimal(0)


def test_optional_fields() -> None:
    obj = copy.deepcopy(COMPLEX)
    obj.update(
        min_price={"excl_vat": 0.5, "incl_vat": 0.55},
        max_price={"excl_vat": 10},
        start_date_time="2019-01-01T00:00:00Z",
        end_date_time="2019-06-30T23:59:59.123456789+02:00",
        tariff_alt_text=[{"language": "en", "text": "2.50 EUR start"}],
    )
    obj["elements"][1]["restrictions"] = {
        "start_date": "2019-01-01",
        "end_date": "2019-07-01",
        "min_kwh": 0,
        "max_kwh": 50,
        "min_power": 3.7,
        "max_power": 22,
        "min_duration": 0,
        "max_duration": 3600,
        "reservation": None,
    }
    t = parse_tariff(obj)
    assert t.min_price is not None and t.min_price.incl_vat == Decimal("0.55")
    assert t.max_price is not None and t.max_price.incl_vat is None
    assert t.end_date_time == datetime(2019, 6, 30, 21, 59, 59, 123456, tzinfo=UTC)
    assert t.is_active(datetime(2019, 3, 1, tzinfo=UTC)) and not t.is_active(
        datetime(2018, 12, 31, tzinfo=UTC)
    )
    assert t.elements[1].restrictions.max_duration == 3600


def test_reservation_element() -> None:
    obj = copy.deepcopy(COMPLEX)
    obj["elements"][1]["restrictions"] = {"reservation": "RESERVATION_EXPIRES"}
    assert (
        parse_tariff(obj).elements[1].restrictions.reservation is ReservationRestriction.RESERVATION_EXPIRES
    )


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of COMPLEX with the value at a dotted path (list indices as numbers) replaced or removed."""
    obj = copy.deepcopy(COMPLEX)
    *parents, last = path.split(".")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return obj


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("country_code", DELETE, "country_code: required"),
        ("party_id", "ABCD", "party_id: longer than 3"),
        ("id", "x" * 37, "id: longer than 36"),
        ("id", 14, "id: must be a string"),
        ("currency", "eur", "currency: must be an ISO 4217"),
        ("currency", "EURO", "currency: must be an ISO 4217"),
        ("currency", DELETE, "currency: required"),
        ("type", "CHEAP", "type: must be one of"),
        ("elements", [], "elements: must be a non-empty list"),
        ("last_updated", "yesterday", "last_updated: not an RFC 3339"),
        ("last_updated", DELETE, "last_updated: required"),
        ("start_date_time", "2019-13-01T00:00:00Z", "start_date_time: not a valid date-time"),
        ("end_date_time", "2015-01-01T00:00:00Z", None),  # set below with a start after it
        ("min_price", {"incl_vat": 1}, "min_price.excl_vat: required"),
        ("max_price", {"excl_vat": -1}, "max_price.excl_vat: must not be negative"),
        ("tariff_alt_text", [{"language": "eng", "text": "x"}], "tariff_alt_text[0].language"),
        ("elements.0.price_components", [], "elements[0].price_components: must be a non-empty list"),
        ("elements.0.price_components.0.type", "KWH", "elements[0].price_components[0].type: must be one of"),
        (
            "elements.0.price_components.0.price",
            -0.1,
            "elements[0].price_components[0].price: must not be negative",
        ),
        (
            "elements.0.price_components.0.price",
            "2.50",
            "elements[0].price_components[0].price: must be a number",
        ),
        (
            "elements.0.price_components.0.price",
            True,
            "elements[0].price_components[0].price: must be a number",
        ),
        (
            "elements.0.price_components.0.vat",
            -5,
            "elements[0].price_components[0].vat: must not be negative",
        ),
        (
            "elements.0.price_components.0.step_size",
            1.5,
            "elements[0].price_components[0].step_size: must be an int",
        ),
        (
            "elements.0.price_components.0.step_size",
            -1,
            "elements[0].price_components[0].step_size: must not be neg",
        ),
        (
            "elements.0.price_components.0.step_size",
            DELETE,
            "elements[0].price_components[0].step_size: required",
        ),
        ("elements.2.restrictions.start_time", "9:00", "elements[2].restrictions.start_time: must be HH:MM"),
        ("elements.2.restrictions.end_time", "24:00", "elements[2].restrictions.end_time: must be HH:MM"),
        (
            "elements.2.restrictions.day_of_week",
            ["MONDAY", "Funday"],
            "elements[2].restrictions.day_of_week[1]",
        ),
        (
            "elements.2.restrictions.day_of_week",
            "MONDAY",
            "elements[2].restrictions.day_of_week: must be a list",
        ),
        (
            "elements.2.restrictions.start_date",
            "2019-02-30",
            "elements[2].restrictions.start_date: not a calendar",
        ),
        (
            "elements.2.restrictions.end_date",
            "01-07-2019",
            "elements[2].restrictions.end_date: must be YYYY-MM-DD",
        ),
        ("elements.1.restrictions.min_kwh", -1, "elements[1].restrictions.min_kwh: must not be negative"),
        ("elements.1.restrictions.min_current", 40, "elements[1].restrictions.min_current: greater than max"),
        (
            "elements.1.restrictions.max_duration",
            1.5,
            "elements[1].restrictions.max_duration: must be an integer",
        ),
        (
            "elements.1.restrictions.reservation",
            "YES",
            "elements[1].restrictions.reservation: must be one of",
        ),
        ("elements.1.restrictions", "none", "elements[1].restrictions: must be an object"),
    ],
)
def test_rejections_name_the_field(path: str, value: Any, field: str | None) -> None:
    obj = mutate(path, value)
    if field is None:
        obj["start_date_time"] = "2016-01-01T00:00:00Z"
        field = "end_date_time: must be after start_date_time"
    with pytest.raises(TariffError) as info:
        parse_tariff(obj)
    assert str(info.value).startswith(field), str(info.value)


def test_reservation_element_allows_only_flat_and_time() -> None:
    obj = mutate("elements.2.restrictions", {"reservation": "RESERVATION"})
    with pytest.raises(TariffError, match=r"^elements\[2\]\.price_components\[0\]\.type: a reservation"):
        parse_tariff(obj)


def test_start_date_must_precede_end_date() -> None:
    obj = mutate("elements.2.restrictions", {"start_date": "2019-07-01", "end_date": "2019-07-01"})
    with pytest.raises(TariffError, match=r"^elements\[2\]\.restrictions\.end_date: must be after"):
        parse_tariff(obj)


def test_not_an_object() -> None:
    with pytest.raises(TariffError, match=r"^tariff: must be an object"):
        parse_tariff([COMPLEX])


# --- price before start --------------------------------------------------------------------------


PARKING_START: dict[str, Any] = {
    "country_code": "DE",
    "party_id": "ALL",
    "id": "18",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1},
                {"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1},
                {"type": "PARKING_TIME", "price": 2.00, "vat": 20.0, "step_size": 900},
            ]
        }
    ],
    "last_updated": "2018-12-17T11:44:10Z",
}


def test_price_before_start_simple() -> None:
    out = price_before_start(parse_tariff(PARKING_START), AMS, datetime(2024, 6, 3, 10, tzinfo=UTC))
    assert out["text"] == (
        "0.60 EUR start fee (incl. VAT), 0.28 EUR/kWh incl. VAT, parking 2.40 EUR/h incl. VAT"
    )
    assert [c["type"] for c in out["components"]] == ["FLAT", "ENERGY", "PARKING_TIME"]
    assert out["components"][1]["price_incl_vat"] == "0.2750" and out["valid_until"] is None


def test_price_before_start_depends_on_time_of_day_and_lists_conditions() -> None:
    t = parse_tariff(
        {
            **PARKING_START,
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}],
                    "restrictions": {"start_time": "22:00", "end_time": "06:00"},
                },
                {
                    "price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}],
                    "restrictions": {"max_power": 16},
                },
                {"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}]},
                {
                    "price_components": [{"type": "PARKING_TIME", "price": 2.00, "step_size": 60}],
                    "restrictions": {"min_duration": 3600},
                },
            ],
        }
    )
    night = price_before_start(t, AMS, datetime(2024, 6, 3, 23, tzinfo=AMS))
    assert night["text"] == "0.20 EUR/kWh excl. VAT, parking 2.00 EUR/h excl. VAT after 1 h"
    assert night["valid_until"] == "2024-06-03T22:00:00Z"  # local midnight, a boundary it may change at
    day = price_before_start(t, AMS, datetime(2024, 6, 3, 12, tzinfo=AMS))
    assert day["text"] == (
        "0.30 EUR/kWh excl. VAT below 16 kW, 0.50 EUR/kWh excl. VAT, parking 2.00 EUR/h excl. VAT after 1 h"
    )


def test_price_before_start_free_and_min_price() -> None:
    free = {
        **PARKING_START,
        "elements": [{"price_components": [{"type": "FLAT", "price": 0, "step_size": 0}]}],
    }
    assert (
        price_before_start(parse_tariff(free), AMS, datetime(2024, 6, 3, tzinfo=UTC))["text"]
        == "free of charge"
    )
    minimum = {**PARKING_START, "min_price": {"excl_vat": 0.5, "incl_vat": 0.55}}
    text = price_before_start(parse_tariff(minimum), AMS, datetime(2024, 6, 3, tzinfo=UTC))["text"]
    assert text.endswith(", minimum 0.55 EUR per session (incl. VAT)")

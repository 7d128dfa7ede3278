"""OCPI 2.2.1 Tariffs: the model and parse_tariff, which names the field of every rejection.

Numbers become `decimal.Decimal` through their decimal text (0.35 stays 0.35, not a binary
approximation). Times of day are kept as seconds since local midnight, dates as `datetime.date`;
both are in the Location's time zone, which the pricing engine receives from its caller.
The cost engine is `controller.core.pricing`; the interpretations it makes are listed there and
in docs/adr/0003-tariff-engine.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class TariffError(ValueError):
    """A tariff object is malformed; the message is "field: reason" with the full field path."""


class Dimension(StrEnum):
    """OCPI TariffDimensionType: what a PriceComponent charges for."""

    ENERGY = "ENERGY"  # per kWh; step_size unit 1 Wh
    FLAT = "FLAT"  # once per session; no step unit
    PARKING_TIME = "PARKING_TIME"  # per hour connected but not charging; step unit 1 s
    TIME = "TIME"  # per hour charging (or reserved, with a reservation restriction); step unit 1 s


class TariffType(StrEnum):
    """OCPI TariffType: which sessions a tariff is meant for (absent: all)."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class DayOfWeek(StrEnum):
    """OCPI DayOfWeek; WEEKDAY maps it to `date.weekday()`."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


WEEKDAY = {d: i for i, d in enumerate(DayOfWeek)}  # DayOfWeek -> date.weekday()


class ReservationRestriction(StrEnum):
    """OCPI ReservationRestrictionType: the element prices a reservation (or an expired one)."""

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


@dataclass(frozen=True, slots=True)
class Price:
    """OCPI Price: `incl_vat` is None when it is not known (never silently equal to excl)."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None

    def to_ocpi(self) -> dict[str, float]:
        """The JSON form, numbers with at most 4 decimals."""
        out = {"excl_vat": float(self.excl_vat)}
        if self.incl_vat is not None:
            out["incl_vat"] = float(self.incl_vat)
        return out


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """One price of a TariffElement; `vat` None means no VAT is known (not the same as 0 %)."""

    type: Dimension
    price: Decimal
    vat: Decimal | None
    step_size: int


@dataclass(frozen=True, slots=True)
class Restrictions:
    """OCPI TariffRestrictions; all set ones must hold. Times are seconds after local midnight."""

    start_time: int | None = None
    end_time: int | None = None
    start_date: date | None = None  # inclusive, local
    end_date: date | None = None  # exclusive, local
    min_kwh: Decimal | None = None  # inclusive
    max_kwh: Decimal | None = None  # exclusive
    min_current: Decimal | None = None  # inclusive, A summed over phases
    max_current: Decimal | None = None  # exclusive
    min_power: Decimal | None = None  # inclusive, kW
    max_power: Decimal | None = None  # exclusive
    min_duration: int | None = None  # inclusive, s
    max_duration: int | None = None  # exclusive, s
    day_of_week: frozenset[DayOfWeek] = frozenset()
    reservation: ReservationRestriction | None = None

    @property
    def has_time_of_day(self) -> bool:
        """True if the element depends on the local time of day."""
        return self.start_time is not None or self.end_time is not None

    @property
    def has_calendar(self) -> bool:
        """True if the element depends on the local date or weekday."""
        return self.start_date is not None or self.end_date is not None or bool(self.day_of_week)


NO_RESTRICTIONS = Restrictions()


@dataclass(frozen=True, slots=True)
class TariffElement:
    """OCPI TariffElement: price components that apply while the restrictions hold."""

    price_components: tuple[PriceComponent, ...]
    restrictions: Restrictions = NO_RESTRICTIONS

    def component(self, dimension: Dimension) -> PriceComponent | None:
        """The element's (first) component of a dimension, if any."""
        for c in self.price_components:
            if c.type is dimension:
                return c
        return None


@dataclass(frozen=True, slots=True)
class Tariff:
    """One OCPI Tariff as the engine uses it; `raw` is the object exactly as received, to forward."""

    country_code: str
    party_id: str
    id: str
    currency: str
    type: TariffType | None
    elements: tuple[TariffElement, ...]
    min_price: Price | None
    max_price: Price | None
    start_date_time: datetime | None
    end_date_time: datetime | None
    last_updated: datetime
    raw: Mapping[str, Any]

    def is_active(self, at: datetime) -> bool:
        """True if `at` (aware) lies in [start_date_time, end_date_time)."""
        if self.start_date_time is not None and at < self.start_date_time:
            return False
        return self.end_date_time is None or at < self.end_date_time


# --- parsing ---------------------------------------------------------------------------------

_TIME = re.compile(r"([0-1][0-9]|2[0-3]):([0-5][0-9])")
_DATE = re.compile(r"([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_RESERVATION_DIMENSIONS = frozenset({Dimension.FLAT, Dimension.TIME})


def _required(obj: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in obj or obj[name] is None:
        raise TariffError(f"{path}{name}: required field is missing")
    return obj[name]


def _string(obj: Mapping[str, Any], name: str, path: str, max_len: int) -> str:
    value = _required(obj, name, path)
    if not isinstance(value, str):
        raise TariffError(f"{path}{name}: must be a string")
    if not value.strip():
        raise TariffError(f"{path}{name}: must not be empty")
    if len(value) > max_len:
        raise TariffError(f"{path}{name}: longer than {max_len} characters")
    return value


def _number(value: Any, field: str) -> Decimal:
    # bool is an int in Python but never a number in JSON; floats go through their shortest repr
    # so that 0.35 is Decimal("0.35"), which is what the sender wrote.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TariffError(f"{field}: must be a number")
    number = (
        value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    )
    if not number.is_finite():
        raise TariffError(f"{field}: must be a finite number")
    if number < 0:
        raise TariffError(f"{field}: must not be negative, got {value}")
    return number


def _optional_number(obj: Mapping[str, Any], name: str, path: str) -> Decimal | None:
    value = obj.get(name)
    return None if value is None else _number(value, f"{path}{name}")


def _optional_int(obj: Mapping[str, Any], name: str, path: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TariffError(f"{path}{name}: must be an integer")
    if value < 0:
        raise TariffError(f"{path}{name}: must not be negative, got {value}")
    return value


def parse_datetime(value: Any, field: str) -> datetime:
    """An OCPI DateTime as an aware UTC datetime; a missing zone designator means UTC."""
    if not isinstance(value, str):
        raise TariffError(f"{field}: must be an RFC 3339 date-time string")
    m = _DATETIME.fullmatch(value)
    if not m:
        raise TariffError(f"{field}: not an RFC 3339 date-time: {value!r}")
    day, clock, fraction, zone = m.groups()
    # Python keeps microseconds; more digits than that are truncated, not rounded up into a second.
    text = f"{day}T{clock}" + (f".{fraction[:6].ljust(6, '0')}" if fraction else "")
    text += "+00:00" if zone is None or zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise TariffError(f"{field}: not a valid date-time: {value!r}") from exc


def _time_of_day(obj: Mapping[str, Any], name: str, path: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    m = _TIME.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise TariffError(f"{path}{name}: must be HH:MM (24 h, leading zeros), got {value!r}")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


def _date(obj: Mapping[str, Any], name: str, path: str) -> date | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise TariffError(f"{path}{name}: must be YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise TariffError(f"{path}{name}: not a calendar date: {value!r}") from exc


def _price(obj: Mapping[str, Any], name: str) -> Price | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TariffError(f"{name}: must be an object")
    excl = _number(_required(value, "excl_vat", f"{name}."), f"{name}.excl_vat")
    incl = value.get("incl_vat")
    return Price(excl, None if incl is None else _number(incl, f"{name}.incl_vat"))


def _check_range(low: Decimal | int | None, high: Decimal | int | None, name: str, path: str) -> None:
    # A minimum above its maximum can never match: almost certainly a typo, so refuse the tariff.
    if low is not None and high is not None and low > high:
        raise TariffError(f"{path}min_{name}: greater than max_{name}")


def _restrictions(value: Any, path: str) -> Restrictions:
    if value is None:
        return NO_RESTRICTIONS
    if not isinstance(value, Mapping):
        raise TariffError(f"{path[:-1]}: must be an object")
    days_raw = value.get("day_of_week")
    days: set[DayOfWeek] = set()
    if days_raw is not None:
        if not isinstance(days_raw, Sequence) or isinstance(days_raw, str):
            raise TariffError(f"{path}day_of_week: must be a list")
        for i, day in enumerate(days_raw):
            if day not in DayOfWeek.__members__:
                raise TariffError(
                    f"{path}day_of_week[{i}]: must be one of {', '.join(DayOfWeek)}, got {day!r}"
                )
            days.add(DayOfWeek(day))
    reservation = value.get("reservation")
    if reservation is not None and reservation not in ReservationRestriction.__members__:
        raise TariffError(
            f"{path}reservation: must be one of {', '.join(ReservationRestriction)}, got {reservation!r}"
        )
    r = Restrictions(
        start_time=_time_of_day(value, "start_time", path),
        end_time=_time_of_day(value, "end_time", path),
        start_date=_date(value, "start_date", path),
        end_date=_date(value, "end_date", path),
        min_kwh=_optional_number(value, "min_kwh", path),
        max_kwh=_optional_number(value, "max_kwh", path),
        min_current=_optional_number(value, "min_current", path),
        max_current=_optional_number(value, "max_current", path),
        min_power=_optional_number(value, "min_power", path),
        max_power=_optional_number(value, "max_power", path),
        min_duration=_optional_int(value, "min_duration", path),
        max_duration=_optional_int(value, "max_duration", path),
        day_of_week=frozenset(days),
        reservation=None if reservation is None else ReservationRestriction(reservation),
    )
    if r.start_date is not None and r.end_date is not None and r.start_date >= r.end_date:
        raise TariffError(f"{path}end_date: must be after start_date (end_date is exclusive)")
    for name in ("kwh", "current", "power", "duration"):
        _check_range(getattr(r, f"min_{name}"), getattr(r, f"max_{name}"), name, path)
    return r


def _component(value: Any, path: str) -> PriceComponent:
    if not isinstance(value, Mapping):
        raise TariffError(f"{path[:-1]}: must be an object")
    type_ = _required(value, "type", path)
    if type_ not in Dimension.__members__:
        raise TariffError(f"{path}type: must be one of {', '.join(Dimension)}, got {type_!r}")
    step = _required(value, "step_size", path)
    if isinstance(step, bool) or not isinstance(step, int):
        raise TariffError(f"{path}step_size: must be an integer")
    if step < 0:
        raise TariffError(f"{path}step_size: must not be negative, got {step}")
    return PriceComponent(
        type=Dimension(type_),
        price=_number(_required(value, "price", path), f"{path}price"),
        vat=_optional_number(value, "vat", path),
        step_size=step,
    )


def _element(value: Any, path: str) -> TariffElement:
    if not isinstance(value, Mapping):
        raise TariffError(f"{path[:-1]}: must be an object")
    raw = _required(value, "price_components", path)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise TariffError(f"{path}price_components: must be a non-empty list")
    components = tuple(_component(c, f"{path}price_components[{i}].") for i, c in enumerate(raw))
    restrictions = _restrictions(value.get("restrictions"), f"{path}restrictions.")
    if restrictions.reservation is not None:
        for i, c in enumerate(components):
            # OCPI: a reservation element can only have FLAT and TIME (the reserved duration).
            if c.type not in _RESERVATION_DIMENSIONS:
                raise TariffError(
                    f"{path}price_components[{i}].type: a reservation element allows only FLAT and TIME"
                )
    return TariffElement(components, restrictions)


def parse_tariff(obj: Any) -> Tariff:
    """Validate one OCPI 2.2.1 Tariff object; TariffError says which field is wrong and why."""
    if not isinstance(obj, Mapping):
        raise TariffError("tariff: must be an object")
    cc = _string(obj, "country_code", "", 2)
    party = _string(obj, "party_id", "", 3)
    tariff_id = _string(obj, "id", "", 36)
    currency = _required(obj, "currency", "")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise TariffError(f"currency: must be an ISO 4217 code of 3 capital letters, got {currency!r}")
    type_ = obj.get("type")
    if type_ is not None and type_ not in TariffType.__members__:
        raise TariffError(f"type: must be one of {', '.join(TariffType)}, got {type_!r}")
    raw_elements = _required(obj, "elements", "")
    if not isinstance(raw_elements, Sequence) or isinstance(raw_elements, str) or not raw_elements:
        raise TariffError("elements: must be a non-empty list")
    elements = tuple(_element(e, f"elements[{i}].") for i, e in enumerate(raw_elements))
    alt_text = obj.get("tariff_alt_text")
    if alt_text is not None:
        if not isinstance(alt_text, Sequence) or isinstance(alt_text, str):
            raise TariffError("tariff_alt_text: must be a list of DisplayText")
        for i, t in enumerate(alt_text):
            if (
                not isinstance(t, Mapping)
                or not isinstance(t.get("language"), str)
                or len(t["language"]) != 2
            ):
                raise TariffError(f"tariff_alt_text[{i}].language: must be a 2-letter ISO 639-1 code")
            if not isinstance(t.get("text"), str) or len(t["text"]) > 512:
                raise TariffError(f"tariff_alt_text[{i}].text: must be a string of at most 512 characters")
    min_price, max_price = _price(obj, "min_price"), _price(obj, "max_price")
    if min_price is not None and max_price is not None and min_price.excl_vat > max_price.excl_vat:
        raise TariffError("min_price.excl_vat: greater than max_price.excl_vat")
    start = obj.get("start_date_time")
    end = obj.get("end_date_time")
    start_dt = None if start is None else parse_datetime(start, "start_date_time")
    end_dt = None if end is None else parse_datetime(end, "end_date_time")
    if start_dt is not None and end_dt is not None and end_dt <= start_dt:
        raise TariffError("end_date_time: must be after start_date_time")
    return Tariff(
        country_code=cc.upper(),
        party_id=party.upper(),
        id=tariff_id,
        currency=currency,
        type=None if type_ is None else TariffType(type_),
        elements=elements,
        min_price=min_price,
        max_price=max_price,
        start_date_time=start_dt,
        end_date_time=end_dt,
        last_updated=parse_datetime(_required(obj, "last_updated", ""), "last_updated"),
        raw=dict(obj),
    )

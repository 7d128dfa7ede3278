"""OCPI Sessions and CDRs from transaction events: states, ids, periods, cost, schemas (pure)."""

from __future__ import annotations

import base64
import json
import tomllib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jsonschema import Draft7Validator

from controller.core import sessions as core
from controller.core.config import Config, validate
from controller.core.events import MeterSample, TransactionEnded, TransactionUpdated
from controller.core.pricing import compute_cost
from controller.core.sessions import (
    AuthMethod,
    Authorization,
    CdrToken,
    SessionContext,
    SessionRecord,
    SessionStatus,
)
from controller.core.tariffs import parse_tariff
from hil.siteconfig import SimCharger, SiteSpec, render

OCPI = Path(__file__).parents[2].parent / "shared" / "ocpi-schemas" / "2.2.1"
DOCS = Path(__file__).parents[2] / "docs" / "schemas"
TZ = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = "CP-WITH-A-RATHER-LONG-IDENTITY-0001/CP-WITH-A-RATHER-LONG-IDENTITY-0001-7-0a1b2c3d"

TARIFF = {
    "country_code": "NL",
    "party_id": "SED",
    "id": "DAY-NIGHT",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.40, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "07:00", "end_time": "23:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}]},
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 0}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def validator(name: str) -> Draft7Validator:
    schema = json.loads((OCPI / f"ocpi.2_2_1.{name}.json").read_text())
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def config() -> Config:
    spec = SiteSpec(data_dir="/tmp/x", mqtt_url="mqtt://127.0.0.1:1883", chargers=[SimCharger("CP-1")])
    return validate(tomllib.loads(render(spec)))


def opened(tariff: dict[str, Any] | None = TARIFF, start: datetime = T0) -> SessionRecord:
    ctx = SessionContext(
        evse_uid="CP-1-1",
        token=CdrToken("DE", "ABC", "04A2", "RFID", "DE-ABC-C12345"),
        auth=Authorization(AuthMethod.WHITELIST),
        tariff=tariff,
        currency="EUR",
        meter_id=None,
        now=start,
    )
    return core.open_session(KEY, "CP-1", start, ctx)


def update(at: datetime, wh: float, samples: tuple[MeterSample, ...] = ()) -> TransactionUpdated:
    return TransactionUpdated(KEY, "CP-1", "2.0.1", 1, 1, "tx", "04A2", T0, at, wh, 11000.0, None, samples)


def end(at: datetime, wh: float, samples: tuple[MeterSample, ...] = ()) -> TransactionEnded:
    return TransactionEnded(
        KEY, "CP-1", "2.0.1", 1, 1, "tx", "04A2", T0, at, 1000.0, 1000.0 + wh, wh, "Local", samples
    )


def test_ids_are_short_stable_and_distinct() -> None:
    assert len(KEY) > 36
    sid = core.session_id_of(KEY)
    assert len(sid) == 36 and sid == core.session_id_of(KEY)
    assert core.cdr_id_of(KEY) != sid and len(core.cdr_id_of(KEY)) == 36
    assert core.session_id_of(KEY + "x") != sid


def test_pending_active_completed_and_invalid() -> None:
    rec = opened()
    assert rec.header()["status"] == "PENDING"
    core.apply_update(rec, update(T0 + timedelta(minutes=1), 100.0), T0)
    assert rec.status is SessionStatus.ACTIVE
    core.apply_end(rec, end(T0 + timedelta(minutes=2), 250.0), T0)
    assert rec.header()["status"] == "COMPLETED" and rec.kwh == 0.25
    assert core.apply_update(rec, update(T0 + timedelta(minutes=3), 900.0), T0) == []  # final stays final
    other = opened()
    core.invalidate(other, T0)
    core.apply_end(other, end(T0 + timedelta(minutes=2), 250.0), T0)
    assert other.status is SessionStatus.INVALID


def test_a_new_period_at_least_every_15_minutes_even_with_sparse_samples() -> None:
    rec = opened()
    # One sample after 50 minutes, then the stop after 70: two long intervals.
    core.apply_update(rec, update(T0 + timedelta(minutes=50), 5000.0), T0)
    core.apply_end(rec, end(T0 + timedelta(minutes=70), 7000.0), T0)
    cost = core.price(parse_tariff(TARIFF), "EUR", TZ, rec.points)
    starts = [p.start_date_time for p in cost.charging_periods]
    assert starts == [T0 + timedelta(minutes=m) for m in (0, 15, 30, 45, 60)]
    # Splitting never changes the money: the engine alone on the raw intervals gives the same.
    plain = compute_cost(parse_tariff(TARIFF), TZ, core.intervals(rec.points))
    assert cost.total_cost == plain.total_cost and cost.total_energy == plain.total_energy == Decimal("7")


def test_periods_switch_with_the_tariff_and_cost_matches_a_hand_calculation() -> None:
    start = datetime(2026, 3, 2, 21, 50, tzinfo=UTC)  # 22:50 in Amsterdam (CET): day price until 23:00
    rec = opened(start=start)
    for minute, wh in ((5, 1000.0), (10, 2000.0), (20, 4000.0), (30, 6000.0)):
        core.apply_update(rec, update(start + timedelta(minutes=minute), wh), start)
    core.apply_end(rec, end(start + timedelta(minutes=30), 6000.0), start)
    cost = core.price(parse_tariff(TARIFF), "EUR", TZ, rec.points)
    starts = [p.start_date_time for p in cost.charging_periods]
    assert starts == [start, start + timedelta(minutes=10), start + timedelta(minutes=25)]
    assert [p.tariff_id for p in cost.charging_periods] == ["DAY-NIGHT"] * 3
    # 2 kWh at the day price, 4 kWh at night, plus the start fee; VAT 21 %.
    excl = Decimal("2") * Decimal("0.40") + Decimal("4") * Decimal("0.25") + Decimal("0.50")
    assert cost.total_cost.excl_vat == excl == Decimal("2.30")
    assert cost.total_cost.incl_vat == (excl * Decimal("1.21")).quantize(Decimal("0.0001"))


def test_session_and_cdr_validate_against_ocpi_and_carry_signed_data() -> None:
    cfg = config()
    rec = opened()
    ocmf = 'OCMF|{"FV":"1.0","RD":[{"TM":"2026-03-02T09:00:00,000+0000 S","RV":1.0}]}|{"SD":"3045"}'
    begin = MeterSample(
        T0,
        "Energy.Active.Import.Register",
        None,
        "Wh",
        context="Transaction.Begin",
        signed={"format": "SignedData", "value": ocmf},
    )
    signed201 = {
        "signed_meter_data": "T0NNRnx7fQ==",
        "signing_method": "ECDSA",
        "encoding_method": "OCMF",
        "public_key": "MFkwEwYH",
    }
    stop = MeterSample(
        T0, "Energy.Active.Import.Register", 1.0, "kWh", context="Transaction.End", signed=signed201
    )
    core.apply_update(rec, update(T0 + timedelta(minutes=10), 1000.0, (begin,)), T0)
    core.apply_end(rec, end(T0 + timedelta(minutes=20), 2000.0, (stop,)), T0)
    cost = core.price(parse_tariff(TARIFF), "EUR", TZ, rec.points)
    session = core.session_object(rec, cost, "NL", "SED", "DEMO01")
    assert list(validator("session").iter_errors(session)) == []
    assert session["status"] == "COMPLETED" and session["kwh"] == 2.0
    cdr = core.cdr_object(rec, cost, "NL", "SED", core.cdr_location(cfg, "CP-1-1", "1"), T0)
    assert list(validator("cdr").iter_errors(cdr)) == []
    assert cdr["total_energy"] == 2.0 and cdr["tariffs"] == [TARIFF] and cdr["session_id"] == rec.session_id
    assert cdr["cdr_location"]["evse_id"] == "NL*SED*ECP1*1"
    values = cdr["signed_data"]["signed_values"]
    # Same encoding (OCMF) for both: the 1.6 text byte for byte in base64, the 2.0.1 blob as sent.
    assert base64.b64decode(values[0]["signed_data"]).decode() == ocmf and values[0]["nature"] == "Start"
    assert values[1] == {"nature": "End", "plain_data": "1 kWh", "signed_data": "T0NNRnx7fQ=="}


def test_without_a_tariff_the_cdr_costs_nothing_and_the_session_leaves_cost_out() -> None:
    rec = opened(tariff=None)
    core.apply_end(rec, end(T0 + timedelta(minutes=20), 2000.0), T0)
    cost = core.price(None, "EUR", TZ, rec.points)
    session = core.session_object(rec, cost, "NL", "SED", "DEMO01")
    assert "total_cost" not in session
    cdr = core.cdr_object(rec, cost, "NL", "SED", core.cdr_location(config(), "CP-1-1", "1"), T0)
    assert cdr["total_cost"] == {"excl_vat": 0.0, "incl_vat": 0.0} and "tariffs" not in cdr
    assert all("tariff_id" not in p for p in cdr["charging_periods"])
    assert list(validator("cdr").iter_errors(cdr)) == []


def test_unknown_token_is_the_sites_own_other_token() -> None:
    assert core.cdr_token_of(None, "ABCD", "NL", "SED") == CdrToken("NL", "SED", "ABCD", "OTHER", "ABCD")


def test_auth_method() -> None:
    assert core.auth_method_of(True, True) is AuthMethod.COMMAND
    assert core.auth_method_of(False, True) is AuthMethod.AUTH_REQUEST
    assert core.auth_method_of(False, False) is AuthMethod.WHITELIST


def test_rate_limit() -> None:
    assert core.due(None, 5.0, 30.0, False)
    assert not core.due(0.0, 29.9, 30.0, False)
    assert core.due(0.0, 29.9, 30.0, True) and core.due(0.0, 30.0, 30.0, False)


def test_record_round_trips_through_its_stored_form() -> None:
    rec = opened()
    core.apply_update(rec, update(T0 + timedelta(minutes=1), 100.0), T0)
    back = SessionRecord.from_header(json.loads(json.dumps(rec.header())), rec.points)
    assert back == rec


def test_partner_report() -> None:
    a, b = opened(), opened()
    b.token = CdrToken("FR", "XYZ", "1", "RFID", "C1")
    for rec, wh in ((a, 3000.0), (b, 1000.0)):
        core.apply_end(rec, end(T0 + timedelta(minutes=30), wh), T0)
        rec.ocpi = core.session_object(
            rec, core.price(parse_tariff(TARIFF), "EUR", TZ, rec.points), "NL", "SED", "DEMO01"
        )
    rows = core.partner_report([a, b], T0, T0 + timedelta(days=1))
    assert [(r["country_code"], r["sessions"], r["kwh"]) for r in rows] == [("DE", 1, 3.0), ("FR", 1, 1.0)]
    assert rows[0]["revenue_excl_vat"] == 1.7 and rows[0]["average_duration_s"] == 1800.0
    assert core.partner_report([a, b], T0 + timedelta(days=1), T0 + timedelta(days=2)) == []


def test_docs_schemas_are_the_ocpi_ones() -> None:
    for name in ("session", "cdr"):
        ours = json.loads((DOCS / f"{name}.json").read_text())
        theirs = json.loads((OCPI / f"ocpi.2_2_1.{name}.json").read_text())
        assert ours["definitions"] == theirs["definitions"] and ours["$ref"] == theirs["$ref"]

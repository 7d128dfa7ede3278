"""Settlement rules (pure): energy source, meter record, gaps, alarms, clock trust, credit CDRs, display."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.core import sessions as core
from controller.core import settlement
from controller.core.clocksync import STA_UNSYNC, TIME_ERROR, ClockState, from_adjtimex
from controller.core.config import Config, ConfigError, validate
from controller.core.events import TransactionEnded, TransactionUpdated
from controller.core.pricing import DisplayTarget, display_request, display_target, display_text
from controller.core.sessions import (
    AuthMethod,
    Authorization,
    CdrToken,
    Reading,
    SessionContext,
    SessionRecord,
)
from controller.core.settlement import Correction, CorrectionError, MeterFeed, Tolerance
from controller.system.clocksync import LinuxClockSync
from hil.siteconfig import SimCharger, SimMeter, SiteSpec, render

T0 = datetime(2026, 6, 1, 11, 50, tzinfo=UTC)
KEY = "CP-1/42"


def toml(extra_evse: str = "", meters: bool = True, extra_charger: str = "") -> dict[str, Any]:
    spec = SiteSpec(
        data_dir="/tmp/x", mqtt_url="mqtt://127.0.0.1:1883", chargers=[SimCharger("CP-1", evses=2)]
    )
    if meters:
        spec.meters = [SimMeter("m1", 1502, "evse:CP-1-1")]
    text = render(spec)
    text = text.replace("max_electric_power = 22000\n", f"max_electric_power = 22000\n{extra_evse}", 1)
    text = text.replace('id = "CP-1"\n', f'id = "CP-1"\n{extra_charger}', 1)
    return tomllib.loads(text)


def problems(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        validate(doc)
    return {p.key: p.reason for p in err.value.problems}


def test_energy_source_defaults_to_the_bound_meter_and_bad_settings_name_key_and_reason() -> None:
    config = validate(toml())
    assert settlement.energy_source_for(config, "CP-1-1") == "meter"  # a meter is bound to it
    assert settlement.energy_source_for(config, "CP-1-2") == "charger"  # none bound
    assert settlement.tolerance_for(config, "CP-1-1") == Tolerance(1.0, 0.1)
    explicit = validate(
        toml('energy_source = "charger"\nenergy_tolerance_pct = 2\nenergy_tolerance_kwh = 0.5\n')
    )
    assert settlement.energy_source_for(explicit, "CP-1-1") == "charger"
    assert settlement.tolerance_for(explicit, "CP-1-1") == Tolerance(2.0, 0.5)
    # An EVSE meter's energy register is read every poll unless told otherwise (it bills).
    assert config.meters[0].slow_interval == config.meters[0].poll_interval

    assert (
        "must be one of charger, meter"
        in problems(toml('energy_source = "grid"\n'))["chargers[0].evses[0].energy_source"]
    )
    assert (
        "no [[meters]] entry has role evse:CP-1-1"
        in problems(toml('energy_source = "meter"\n', meters=False))["chargers[0].evses[0].energy_source"]
    )
    assert (
        "between 0 and 100"
        in problems(toml("energy_tolerance_pct = -1\n"))["chargers[0].evses[0].energy_tolerance_pct"]
    )
    assert (
        "must be a number"
        in problems(toml('energy_tolerance_kwh = "a lot"\n'))["chargers[0].evses[0].energy_tolerance_kwh"]
    )
    bad = problems(toml(extra_charger='price_display = "datatransfer:only-vendor"\n'))
    assert "datatransfer:<vendorId>:<messageId>" in bad["chargers[0].price_display"]
    good = validate(toml(extra_charger='price_display = "datatransfer:com.alfen:DisplayPrice"\n'))
    assert good.chargers[0].price_display == "datatransfer:com.alfen:DisplayPrice"


def test_tolerance_is_the_larger_of_the_absolute_and_relative_bound() -> None:
    t = Tolerance(pct=1.0, kwh=0.1)
    assert t.allowed_wh(5000, 4990) == 100.0  # 1 % of 5 kWh is 50 Wh: the 0.1 kWh floor wins
    assert t.allowed_wh(50_000, 49_000) == 500.0  # 1 % of 50 kWh


def whitelist_context() -> SessionContext:
    """A session at CP-1-1 from T0: a whitelisted RFID token, no tariff, EUR, bound meter m1."""
    return SessionContext(
        "CP-1-1",
        CdrToken("NL", "SED", "T", "OTHER", "T"),
        Authorization(AuthMethod.WHITELIST),
        None,
        "EUR",
        "m1",
        T0,
    )


def opened(config: Config, feed: MeterFeed | None, live: bool = True) -> SessionRecord:
    rec = core.open_session(KEY, "CP-1", T0, whitelist_context())
    settlement.begin(rec, settlement.energy_source_for(config, "CP-1-1"), feed, live, "run", 100.0)
    return rec


def feed(at: datetime, wh: float, fresh: bool = True, problem: str | None = None) -> MeterFeed:
    return MeterFeed("m1", Reading(at, wh), fresh, problem)


def end(rec: SessionRecord, at: datetime, charger_wh: float) -> None:
    ev = TransactionEnded(KEY, "CP-1", "1.6", 1, 1, "42", "T", T0, at, 0.0, charger_wh, charger_wh, "Local")
    core.apply_end(rec, ev, at)


def update(rec: SessionRecord, at: datetime, charger_wh: float) -> None:
    core.apply_update(
        rec, TransactionUpdated(KEY, "CP-1", "1.6", 1, 1, "42", "T", T0, at, charger_wh, None, None), at
    )


def test_the_meter_bills_from_its_start_to_its_stop_reading_and_agreeing_totals_raise_nothing() -> None:
    config = validate(toml())
    rec = opened(config, feed(T0, 1_000_000.0))
    assert rec.energy_source == "meter" and rec.meter_start == Reading(T0, 1_000_000.0)
    # Readings become points at most once a minute; each one is the latest register.
    assert settlement.on_meter(rec, Reading(T0 + timedelta(seconds=30), 1_000_100.0)) == ([], [])
    points, flags = settlement.on_meter(rec, Reading(T0 + timedelta(minutes=15), 1_003_000.0))
    assert [p.energy_wh for p in points] == [3000.0] and flags == []
    update(rec, T0 + timedelta(minutes=15), 3020.0)
    stop = T0 + timedelta(minutes=30)
    end(rec, stop, 5540.0)
    new, flags = settlement.finish(rec, feed(stop, 1_005_500.0), Tolerance(), True, "run", 100.0 + 1800.0)
    assert flags == [] and [p.energy_wh for p in new] == [5500.0]
    assert rec.kwh == 5.5 and rec.charger_wh == 5540.0 and rec.meter_wh == 5500.0
    assert (rec.duration_s, rec.duration_source) == (1800.0, "monotonic")
    assert settlement.remark(rec) is None


def test_disagreement_beyond_tolerance_is_an_alarm_named_in_the_remark() -> None:
    rec = opened(validate(toml()), feed(T0, 1_000_000.0))
    stop = T0 + timedelta(minutes=20)
    end(rec, stop, 5000.0)
    _, flags = settlement.finish(rec, feed(stop, 1_004_000.0), Tolerance(), True, "run", 1300.0)
    assert [f.kind for f in flags] == ["energy_mismatch"] and settlement.alarms_of(rec) == flags
    assert "charger 5.000 kWh and meter 4.000 kWh differ by 1.000 kWh (allowed 0.100 kWh); meter billed" in (
        settlement.remark(rec) or ""
    )


def test_gaps_are_flagged_with_their_span_and_a_backwards_register_is_never_used() -> None:
    rec = opened(validate(toml()), feed(T0, 1_000_000.0))
    t1 = T0 + timedelta(minutes=10)
    settlement.on_meter(rec, Reading(t1, 1_002_000.0))
    (gap,) = settlement.on_meter_problem(rec, t1 + timedelta(seconds=5), "poll failed: timeout")
    assert gap.at == t1 and gap.until is None
    assert settlement.on_meter_problem(rec, t1 + timedelta(seconds=9), "again") == []  # one per outage
    # A register below the last accepted one is a problem, not energy (still inside the open gap).
    assert settlement.on_meter(rec, Reading(t1 + timedelta(minutes=1), 1_001_000.0)) == ([], [])
    t2 = t1 + timedelta(minutes=5)
    settlement.on_meter(rec, Reading(t2, 1_003_000.0))
    assert rec.flags[0].until == t2 and rec.meter_last == Reading(t2, 1_003_000.0)
    assert "meter data gap 12:00:00-12:05:00 UTC" in (settlement.remark(rec) or "")


def test_no_meter_reading_at_start_or_stop_falls_back_to_the_charger_and_says_so() -> None:
    config = validate(toml())
    late = opened(config, feed(T0, 1_000_000.0), live=False)  # heard after a restart
    assert late.energy_source == "charger" and late.meter_start is None
    assert "the start was reported late" in late.flags[0].detail and late.duration_s is None
    stale = opened(config, feed(T0, 1_000_000.0, fresh=False, problem="stale (9 s old)"))
    assert stale.energy_source == "charger" and "stale (9 s old)" in stale.flags[0].detail

    rec = opened(config, feed(T0, 1_000_000.0))
    stop = T0 + timedelta(minutes=10)
    update(rec, T0 + timedelta(minutes=5), 700.0)
    end(rec, stop, 1500.0)
    _, flags = settlement.finish(
        rec, feed(stop, 1_001_500.0, False, "poll failed: timeout"), Tolerance(), True, "run", 700.0
    )
    assert [f.kind for f in flags] == ["energy_source_fallback"] and rec.energy_source == "charger"
    assert rec.kwh == 1.5 and "charger energy billed (meter unavailable)" in (settlement.remark(rec) or "")


def test_clock_flags_unsynchronized_and_stepped_clocks_and_durations_use_the_monotonic_clock() -> None:
    rec = opened(validate(toml(meters=False)), None)
    assert settlement.on_clock(rec, ClockState(True, "ok"), T0) == []
    assert settlement.on_clock(rec, ClockState(None, "unknown"), T0) == []  # unknown is not a finding
    (flag,) = settlement.on_clock(rec, ClockState(False, "kernel clock state 5"), T0)
    assert flag.kind == "clock_unsynced" and settlement.on_clock(rec, ClockState(False, "x"), T0) == []
    # The wall clock says 2 h passed, the monotonic clock 10 min: NTP stepped it meanwhile.
    end(rec, T0 + timedelta(hours=2), 1000.0)
    _, flags = settlement.finish(rec, None, Tolerance(), True, "run", 100.0 + 600.0)
    assert [f.kind for f in flags] == ["clock_step"] and rec.duration_s == 600.0
    assert "moved +6600 s" in flags[0].detail
    # Another controller run cannot compare monotonic times: the timestamps give the duration.
    other = opened(validate(toml(meters=False)), None)
    end(other, T0 + timedelta(minutes=3), 10.0)
    settlement.finish(other, None, Tolerance(), True, "another-run", 5.0)
    assert (other.duration_s, other.duration_source) == (180.0, "timestamps")
    assert core.duration_of(other) == 180.0


def test_adjtimex_answers_are_read_as_the_kernel_means_them() -> None:
    assert from_adjtimex(TIME_ERROR, STA_UNSYNC, 16_000_000).synchronized is False
    assert from_adjtimex(0, STA_UNSYNC, 16_000_000).synchronized is False
    assert from_adjtimex(0, 0x2001, 40_000).synchronized is True  # TIME_OK, PLL | NANO
    assert from_adjtimex(-1, 0, 0).synchronized is None


def test_the_linux_adapter_reads_the_kernel_state() -> None:
    # Whatever this machine's state is, the adapter must report a decision (not "unknown") on Linux,
    # with the raw kernel figures it decided from.
    state = LinuxClockSync().state()
    assert state.synchronized in (True, False)
    assert "kernel clock state" in state.detail and "status 0x" in state.detail


def test_parse_correction_names_what_is_wrong() -> None:
    assert settlement.parse_correction({"reason": " typo ", "energy_wh": 1200}) == Correction("typo", 1200.0)
    for body, why in (
        ([], "JSON object"),
        ({"energy_wh": 5}, "reason"),
        ({"reason": "x" * 201, "energy_wh": 5}, "reason"),
        ({"reason": "r", "energy_wh": True}, "energy_wh"),
        ({"reason": "r", "energy_wh": -1}, "energy_wh"),
        ({"reason": "r", "energy_source": "sun"}, "energy_source"),
        ({"reason": "r", "energy_wh": 1, "energy_source": "meter"}, "not both"),
        ({"reason": "r"}, "nothing to correct"),
        ({"reason": "r", "tariff_id": ""}, "tariff_id"),
        ({"reason": "r", "extra": 1}, "unknown field"),
    ):
        with pytest.raises(CorrectionError, match=why) as err:
            settlement.parse_correction(body)
        assert err.value.status == 422


def test_a_credit_cdr_keeps_every_field_and_negates_only_total_cost() -> None:
    original = {
        "id": "6f1c3c0e-5a7e-4b1e-9d7a-2f3d8c1b5e42",
        "total_cost": {"excl_vat": 1.5, "incl_vat": 1.815},
        "total_energy_cost": {"excl_vat": 1.0, "incl_vat": 1.21},
        "total_energy": 4.0,
        "last_updated": "2026-06-01T12:00:00.000Z",
    }
    rec = opened(validate(toml()), None)
    credit_id, new_id = settlement.correction_ids(rec, original["id"], 1)
    credit = settlement.credit_cdr(original, credit_id, T0)
    assert credit == {
        **original,
        "id": original["id"] + "-C",
        "total_cost": {"excl_vat": -1.5, "incl_vat": -1.815},
        "credit": True,
        "credit_reference_id": original["id"],
        "last_updated": "2026-06-01T11:50:00.000Z",
    }
    assert len(credit["id"]) == 38 and len(new_id) == 36 and new_id != original["id"]
    assert settlement.correction_ids(rec, original["id"], 2)[1] != new_id


def test_display_messages_per_protocol() -> None:
    price = {"tariff_id": "T", "currency": "EUR", "text": "0.30 EUR/kWh incl. VAT", "components": []}
    assert display_target("ocpp201", "2.0.1") == DisplayTarget("ocpp201")
    assert display_target("ocpp201", "1.6") is None  # 1.6 has no standard display message
    assert display_target("none", "2.0.1") is None
    assert display_target("datatransfer:com.x:Price", "1.6") == DisplayTarget(
        "datatransfer", "com.x", "Price"
    )
    assert display_text({"tariff_id": None, "text": "no tariff known"}, 1, 1) is None
    text = display_text(price, 2, 2)
    assert text == "EVSE 2: 0.30 EUR/kWh incl. VAT"
    action, params = display_request(DisplayTarget("ocpp201"), price, text, 2, 2)
    assert action == "SetDisplayMessage"
    assert params["message"]["id"] == 9102 and params["message"]["message"]["content"] == text
    assert params["message"]["display"] == {"name": "Display", "evse": {"id": 2}}
    action, params = display_request(DisplayTarget("datatransfer", "com.x", "Price"), price, text, 2, 2)
    assert (action, params["vendorId"], params["messageId"]) == ("DataTransfer", "com.x", "Price")
    assert json.loads(params["data"])["text"] == text
    assert len(display_text({**price, "text": "x" * 600}, 1, 1) or "") == 512

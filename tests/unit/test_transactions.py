"""The version-neutral transaction model, pure: conversion, decisions, idempotency, seqNo gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.core.events import MeterSample, TransactionEnded, TransactionStarted, TransactionUpdated
from controller.core.ocpp_facts import (
    meter_16,
    meter_201,
    parse_time,
    samples_16,
    samples_201,
    start_16,
    stop_16,
    transaction_event_201,
)
from controller.core.transactions import (
    FactKind,
    MemoryJournal,
    Outcome,
    events_of,
    power_w,
    register_wh,
    split_key,
    transaction_key,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def ts(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_key_round_trips_and_splits_at_the_first_slash() -> None:
    assert split_key(transaction_key("CP-1", "a/b")) == ("CP-1", "a/b")
    assert split_key("no-slash") is None and split_key("/x") is None


def test_parse_time_is_aware_utc_and_never_raises() -> None:
    assert parse_time("2025-03-01T13:00:00+01:00", NOW) == NOW
    assert parse_time("2025-03-01T12:00:00", NOW) == NOW  # naive means UTC
    assert parse_time("yesterday", NOW) is NOW and parse_time(None, NOW) is NOW


def test_16_samples_keep_measurand_phase_context_unit_and_signed_data() -> None:
    mv = [
        {
            "timestamp": ts(0),
            "sampled_value": [
                {"value": "12.5", "unit": "kWh", "context": "Sample.Clock"},
                {
                    "value": "230.1",
                    "measurand": "Voltage",
                    "phase": "L1-N",
                    "unit": "V",
                    "location": "Outlet",
                },
                {"value": "0A1B", "format": "SignedData", "context": "Transaction.End"},
                {"value": "NaN", "measurand": "Power.Active.Import", "unit": "W"},
            ],
        }
    ]
    energy, volts, signed, nan = samples_16(mv, NOW)
    assert energy.measurand == "Energy.Active.Import.Register" and energy.si() == 12500.0
    assert (volts.phase, volts.location, volts.unit, volts.value) == ("L1-N", "Outlet", "V", 230.1)
    assert signed.value is None and signed.signed == {"format": "SignedData", "value": "0A1B"}
    assert nan.value is None  # a NaN must not poison sums or the JSON journal


def test_201_samples_use_unit_of_measure_multiplier_and_signed_meter_value() -> None:
    signed = {
        "signed_meter_data": "b64",
        "signing_method": "ECDSA",
        "encoding_method": "OCMF",
        "public_key": "",
    }
    mv = [
        {
            "timestamp": ts(0),
            "sampled_value": [
                {
                    "value": 7.4,
                    "measurand": "Power.Active.Import",
                    "unit_of_measure": {"unit": "W", "multiplier": 3},
                },
                {"value": 1000, "signed_meter_value": signed},
            ],
        }
    ]
    power, energy = samples_201(mv, NOW)
    assert power.si() == 7400.0 and energy.unit == "Wh" and energy.signed == signed


def test_power_is_the_total_or_the_sum_of_phases_and_register_ignores_phases() -> None:
    def s(m: str, v: float, phase: str | None = None) -> MeterSample:
        return MeterSample(NOW, m, v, "W" if m.startswith("Power") else "Wh", phase=phase)

    phases = [s("Power.Active.Import", 1000, p) for p in ("L1", "L2", "L3")]
    assert power_w(phases) == 3000
    assert power_w([*phases, s("Power.Active.Import", 2900)]) == 2900
    assert (
        register_wh([s("Energy.Active.Import.Register", 5, "L1"), s("Energy.Active.Import.Register", 9)]) == 9
    )


def start(journal: MemoryJournal, **kw: Any) -> Any:
    payload = {"connector_id": 1, "id_tag": "T", "meter_start": 100, "timestamp": ts(0)} | kw
    return journal.record(start_16("CP", NOW, payload)).result()


def test_16_ids_count_up_and_a_resent_start_gets_the_same_one() -> None:
    j = MemoryJournal()
    first = start(j)
    assert first.outcome is Outcome.NEW and first.record.ocpp_tx_id == "1"
    again = start(j)
    assert again.outcome is Outcome.DUPLICATE and again.record.key == first.record.key and not again.changed
    assert start(j, timestamp=ts(1)).record.ocpp_tx_id == "2"


def test_16_stop_for_unknown_reserves_its_id_and_a_second_stop_is_already_ended() -> None:
    j = MemoryJournal()
    unknown = j.record(
        stop_16("CP", NOW, {"meter_stop": 5, "timestamp": ts(0), "transaction_id": 1})
    ).result()
    assert unknown.outcome is Outcome.UNKNOWN and unknown.record.ended and unknown.notes
    assert start(j).record.ocpp_tx_id == "2"  # id 1 is taken by the orphan stop
    stop = {"meter_stop": 900, "timestamp": ts(30), "transaction_id": 2, "reason": "Remote"}
    ended = j.record(stop_16("CP", NOW, stop)).result()
    assert ended.outcome is Outcome.APPLIED and ended.record.energy_wh == 800
    assert j.record(stop_16("CP", NOW, stop)).result().outcome is Outcome.ALREADY_ENDED


def test_16_meter_values_update_energy_but_never_regress_on_an_older_sample() -> None:
    j = MemoryJournal()
    start(j)

    def mv(minutes: float, wh: str) -> Any:
        payload = {
            "connector_id": 1,
            "transaction_id": 1,
            "meter_value": [{"timestamp": ts(minutes), "sampled_value": [{"value": wh}]}],
        }
        return j.record(meter_16("CP", NOW, payload)).result()

    assert mv(10, "400").record.energy_wh == 300
    assert mv(5, "200").record.energy_wh == 300  # older than what is known
    outside = j.record(meter_16("CP", NOW, {"connector_id": 1, "meter_value": []})).result()
    assert outside.outcome is Outcome.NO_TRANSACTION and outside.record is None


def event(kind: str, seq: int, minutes: float, wh: float, **kw: Any) -> Any:
    payload = {
        "event_type": kind,
        "timestamp": ts(minutes),
        "trigger_reason": "MeterValuePeriodic",
        "seq_no": seq,
        "transaction_info": {"transaction_id": "tx-9", **kw.pop("info", {})},
        "meter_value": [{"timestamp": ts(minutes), "sampled_value": [{"value": wh}]}],
        **kw,
    }
    return transaction_event_201("ST", NOW, payload)


def test_E01_FR_07_gap_is_noted_late_fills_duplicate_is_ignored() -> None:
    j = MemoryJournal()
    assert (
        j.record(event("Started", 0, 0, 100, evse={"id": 2, "connector_id": 1})).result().outcome
        is Outcome.NEW
    )
    gap = j.record(event("Updated", 3, 3, 400)).result()
    assert gap.record.missing_seq == (1, 2) and "gap" in gap.notes[0]
    late = j.record(event("Updated", 2, 2, 300)).result()
    assert late.outcome is Outcome.LATE and late.record.missing_seq == (1,) and late.record.register_wh == 400
    assert j.record(event("Updated", 3, 3, 400)).result().outcome is Outcome.DUPLICATE


def test_201_updated_before_started_creates_the_transaction_and_the_late_start_completes_it() -> None:
    j = MemoryJournal()
    first = j.record(event("Updated", 1, 1, 150, evse={"id": 1})).result()
    assert (
        first.outcome is Outcome.UNKNOWN
        and first.record.started_at is None
        and first.record.missing_seq == (0,)
    )
    token = {"id_token": "LATE", "type": "ISO14443"}
    late = j.record(event("Started", 0, 0, 100, id_token=token)).result()
    assert late.outcome is Outcome.LATE and late.record.started_at is not None
    assert late.record.id_tag == "LATE" and late.record.meter_start_wh == 100 and late.record.energy_wh == 50


def test_events_are_the_same_types_for_both_versions() -> None:
    j16, j201 = MemoryJournal(), MemoryJournal()
    f16 = start_16("CP", NOW, {"connector_id": 1, "id_tag": "T", "meter_start": 0, "timestamp": ts(0)})
    f201 = event(
        "Started", 0, 0, 0, evse={"id": 1, "connector_id": 1}, id_token={"id_token": "T", "type": "ISO14443"}
    )
    (e16,) = events_of(j16.record(f16).result(), f16)
    (e201,) = events_of(j201.record(f201).result(), f201)
    assert type(e16) is type(e201) is TransactionStarted
    upd = event("Updated", 1, 5, 500, info={"charging_state": "Charging"})
    (u,) = events_of(j201.record(upd).result(), upd)
    assert isinstance(u, TransactionUpdated) and u.energy_wh == 500 and u.charging_state == "Charging"
    end = event("Ended", 2, 9, 700, offline=True, info={"stopped_reason": "EVDisconnected"})
    (e,) = events_of(j201.record(end).result(), end)
    assert (
        isinstance(e, TransactionEnded)
        and e.energy_wh == 700
        and e.offline
        and e.stop_reason == "EVDisconnected"
    )
    assert end.kind is FactKind.ENDED
    mv = meter_201(
        "ST", NOW, {"evse_id": 1, "meter_value": [{"timestamp": ts(1), "sampled_value": [{"value": 3}]}]}
    )
    (reported,) = events_of(j201.record(mv).result(), mv)
    assert reported.samples[0].value == 3

"""OCPP 1.6 and 2.0.1 transaction payloads (snake_case, as the ocpp library hands them) as facts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from controller.core.events import MeterSample
from controller.core.transactions import ENERGY_REGISTER, FactKind, TransactionFact

_KINDS_201 = {"Started": FactKind.STARTED, "Updated": FactKind.UPDATED, "Ended": FactKind.ENDED}


def parse_time(text: Any, fallback: datetime) -> datetime:
    """An OCPP dateTime as aware UTC; naive means UTC; unparseable gives `fallback` (never lose a fact)."""
    if not isinstance(text, str):
        return fallback
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return fallback
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _number(value: Any) -> float | None:
    """A finite number, or None (a NaN register must not poison sums or the JSON journal)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value if isinstance(value, int | float) else str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def samples_16(meter_value: Sequence[Mapping[str, Any]], fallback: datetime) -> tuple[MeterSample, ...]:
    """1.6 MeterValue[] (or transactionData) as samples; defaults per OCPP 1.6 section 7.45."""
    out: list[MeterSample] = []
    for mv in meter_value:
        at = parse_time(mv.get("timestamp"), fallback)
        for sv in mv.get("sampled_value") or ():
            raw = sv.get("value")
            signed = sv.get("format") == "SignedData"
            out.append(
                MeterSample(
                    at=at,
                    measurand=sv.get("measurand") or ENERGY_REGISTER,
                    value=None if signed else _number(raw),
                    unit=sv.get("unit") or "Wh",
                    phase=sv.get("phase"),
                    context=sv.get("context"),
                    location=sv.get("location"),
                    signed={"format": "SignedData", "value": raw} if signed else None,
                )
            )
    return tuple(out)


def samples_201(meter_value: Sequence[Mapping[str, Any]], fallback: datetime) -> tuple[MeterSample, ...]:
    """2.0.1 MeterValueType[] as samples; unitOfMeasure defaults to Wh, multiplier 0."""
    out: list[MeterSample] = []
    for mv in meter_value:
        at = parse_time(mv.get("timestamp"), fallback)
        for sv in mv.get("sampled_value") or ():
            unit = sv.get("unit_of_measure") or {}
            signed = sv.get("signed_meter_value")
            out.append(
                MeterSample(
                    at=at,
                    measurand=sv.get("measurand") or ENERGY_REGISTER,
                    value=_number(sv.get("value")),
                    unit=unit.get("unit") or "Wh",
                    multiplier=int(unit.get("multiplier") or 0),
                    phase=sv.get("phase"),
                    context=sv.get("context"),
                    location=sv.get("location"),
                    signed=dict(signed) if signed else None,
                )
            )
    return tuple(out)


def start_16(charger_id: str, received_at: datetime, payload: Mapping[str, Any]) -> TransactionFact:
    """StartTransaction.req: the journal assigns the transactionId."""
    return TransactionFact(
        kind=FactKind.STARTED,
        charger_id=charger_id,
        ocpp_version="1.6",
        at=parse_time(payload.get("timestamp"), received_at),
        received_at=received_at,
        ocpp_evse=payload.get("connector_id"),
        connector_id=payload.get("connector_id"),
        id_tag=payload.get("id_tag"),
        meter_wh=_number(payload.get("meter_start")),
        raw=dict(payload),
    )


def stop_16(charger_id: str, received_at: datetime, payload: Mapping[str, Any]) -> TransactionFact:
    """StopTransaction.req with its transactionData."""
    return TransactionFact(
        kind=FactKind.ENDED,
        charger_id=charger_id,
        ocpp_version="1.6",
        at=parse_time(payload.get("timestamp"), received_at),
        received_at=received_at,
        ocpp_tx_id=str(payload.get("transaction_id")),
        id_tag=payload.get("id_tag"),
        meter_wh=_number(payload.get("meter_stop")),
        samples=samples_16(payload.get("transaction_data") or (), received_at),
        stop_reason=payload.get("reason") or "Local",
        raw=dict(payload),
    )


def meter_16(charger_id: str, received_at: datetime, payload: Mapping[str, Any]) -> TransactionFact:
    """MeterValues.req: in a transaction if it names one, else plain meter samples."""
    samples = samples_16(payload.get("meter_value") or (), received_at)
    tx = payload.get("transaction_id")
    return TransactionFact(
        kind=FactKind.METER if tx is None else FactKind.UPDATED,
        charger_id=charger_id,
        ocpp_version="1.6",
        at=max((s.at for s in samples), default=received_at),
        received_at=received_at,
        ocpp_evse=payload.get("connector_id"),
        connector_id=payload.get("connector_id"),
        ocpp_tx_id=None if tx is None else str(tx),
        samples=samples,
        raw=dict(payload),
    )


def transaction_event_201(
    charger_id: str, received_at: datetime, payload: Mapping[str, Any]
) -> TransactionFact:
    """TransactionEventRequest (Started, Updated or Ended)."""
    info = payload.get("transaction_info") or {}
    evse = payload.get("evse") or {}
    token = payload.get("id_token") or {}
    kind = _KINDS_201.get(str(payload.get("event_type")), FactKind.UPDATED)
    return TransactionFact(
        kind=kind,
        charger_id=charger_id,
        ocpp_version="2.0.1",
        at=parse_time(payload.get("timestamp"), received_at),
        received_at=received_at,
        ocpp_evse=evse.get("id"),
        connector_id=evse.get("connector_id"),
        ocpp_tx_id=str(info.get("transaction_id")),
        id_tag=token.get("id_token"),
        samples=samples_201(payload.get("meter_value") or (), received_at),
        stop_reason=(info.get("stopped_reason") or "Local") if kind is FactKind.ENDED else None,
        seq_no=payload.get("seq_no"),
        offline=bool(payload.get("offline")),
        trigger=payload.get("trigger_reason"),
        charging_state=info.get("charging_state"),
        remote_start_id=info.get("remote_start_id"),
        raw=dict(payload),
    )


def meter_201(charger_id: str, received_at: datetime, payload: Mapping[str, Any]) -> TransactionFact:
    """MeterValuesRequest: samples outside a transaction (2.0.1 sends in-transaction ones as events)."""
    samples = samples_201(payload.get("meter_value") or (), received_at)
    return TransactionFact(
        kind=FactKind.METER,
        charger_id=charger_id,
        ocpp_version="2.0.1",
        at=max((s.at for s in samples), default=received_at),
        received_at=received_at,
        ocpp_evse=payload.get("evse_id"),
        samples=samples,
        raw=dict(payload),
    )

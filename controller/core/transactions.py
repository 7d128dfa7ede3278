"""One transaction model above OCPP 1.6 and 2.0.1: facts in, a journal record and events out (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from controller.core.clock import rfc3339
from controller.core.events import (
    MeterSample,
    MeterValuesReported,
    TransactionAnomaly,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
# Charger ids never contain "/" (it ends the OCPP path), so the key splits unambiguously.
KEY_SEP = "/"


def transaction_key(charger_id: str, ocpp_tx_id: str) -> str:
    """The siteedge-wide key of a charger's transaction: "{charger_id}/{ocpp transaction id}"."""
    return f"{charger_id}{KEY_SEP}{ocpp_tx_id}"


def split_key(key: str) -> tuple[str, str] | None:
    """(charger_id, ocpp transaction id) of a key, None if it is not one."""
    charger_id, sep, tx_id = key.partition(KEY_SEP)
    return (charger_id, tx_id) if sep and charger_id and tx_id else None


class FactKind(StrEnum):
    """What a transaction message says happened."""

    STARTED = "started"
    UPDATED = "updated"
    ENDED = "ended"
    METER = "meter"  # meter values outside any transaction


class Outcome(StrEnum):
    """How the journal applied a fact."""

    NEW = "new"
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seen before: the same reply, no change
    LATE = "late"  # older than what is known (fills a seqNo gap or follows the stop): kept, no regress
    UNKNOWN = "unknown"  # a transaction siteedge never saw start
    ALREADY_ENDED = "already_ended"
    NO_TRANSACTION = "no_transaction"


@dataclass(frozen=True, slots=True)
class TransactionFact:
    """One charger message about a transaction, version-neutral; `raw` keeps the payload."""

    kind: FactKind
    charger_id: str
    ocpp_version: str
    at: datetime  # the charger's timestamp (in the past for offline-queued messages)
    received_at: datetime
    ocpp_evse: int | None = None
    connector_id: int | None = None
    ocpp_tx_id: str | None = None  # None on a 1.6 start: the journal numbers it
    id_tag: str | None = None
    meter_wh: float | None = None  # 1.6 meterStart / meterStop
    samples: tuple[MeterSample, ...] = ()
    stop_reason: str | None = None
    seq_no: int | None = None  # 2.0.1 only
    offline: bool = False
    trigger: str | None = None
    charging_state: str | None = None
    remote_start_id: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Identity of a 1.6 start: a resent StartTransaction carries exactly the same fields."""
        return f"{self.connector_id}|{self.id_tag}|{self.at.isoformat()}|{self.meter_wh}"


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A transaction as the journal keeps it."""

    key: str
    charger_id: str
    ocpp_version: str
    ocpp_tx_id: str
    ocpp_evse: int | None
    connector_id: int | None
    id_tag: str | None
    started_at: datetime | None  # None while siteedge has not seen the start
    meter_start_wh: float | None
    updated_at: datetime
    ended: bool = False
    stopped_at: datetime | None = None
    meter_stop_wh: float | None = None
    stop_reason: str | None = None
    register_wh: float | None = None  # latest energy register
    power_w: float | None = None
    sampled_at: datetime | None = None
    last_seq_no: int | None = None
    missing_seq: tuple[int, ...] = ()
    charging_state: str | None = None
    offline: bool = False  # some fact of it was queued offline by the charger
    remote_start_id: int | None = None
    fingerprint: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form for the API (times RFC 3339)."""

        def ts(value: datetime | None) -> str | None:
            return None if value is None else rfc3339(value)

        return {
            "id": self.key,
            "charger_id": self.charger_id,
            "ocpp_version": self.ocpp_version,
            "ocpp_transaction_id": self.ocpp_tx_id,
            "ocpp_evse": self.ocpp_evse,
            "connector_id": self.connector_id,
            "id_tag": self.id_tag,
            "active": not self.ended,
            "started": ts(self.started_at),
            "stopped": ts(self.stopped_at),
            "meter_start_wh": self.meter_start_wh,
            "meter_stop_wh": self.meter_stop_wh,
            "energy_wh": self.energy_wh,
            "power_w": self.power_w,
            "stop_reason": self.stop_reason,
            "charging_state": self.charging_state,
            "offline": self.offline,
            "missing_seq_no": list(self.missing_seq),
            "updated": ts(self.updated_at),
        }

    @property
    def energy_wh(self) -> float | None:
        """Energy delivered so far (or in total once ended), None if start or register is unknown."""
        end = self.meter_stop_wh if self.ended and self.meter_stop_wh is not None else self.register_wh
        if end is None or self.meter_start_wh is None:
            return None
        return max(0.0, end - self.meter_start_wh)


@dataclass(frozen=True, slots=True)
class Decision:
    """What applying a fact did: the outcome, the record to store (if changed) and anomalies."""

    outcome: Outcome
    record: TransactionRecord | None
    changed: bool
    notes: tuple[str, ...] = ()


# Gaps wider than this are recorded as a count, not enumerated (a charger with a global counter).
MAX_TRACKED_GAP = 100


def register_wh(samples: Sequence[MeterSample]) -> float | None:
    """The last whole-meter energy import register among samples, in Wh."""
    found = [s.si() for s in samples if s.measurand == ENERGY_REGISTER and s.phase is None]
    found = [v for v in found if v is not None]
    return found[-1] if found else None


def power_w(samples: Sequence[MeterSample]) -> float | None:
    """Active import power in W: the total if reported, else the sum of the phases of one instant."""
    if not samples:
        return None
    latest = max(s.at for s in samples)
    now = [s for s in samples if s.measurand == POWER and s.at == latest and s.si() is not None]
    total = [s.si() for s in now if s.phase is None]
    if total:
        return total[-1]
    phases = {s.phase: s.si() for s in now}
    return sum(v for v in phases.values() if v is not None) if phases else None


class JournalView(Protocol):
    """What deciding needs to read (and reserve) inside the journal's write transaction."""

    def by_key(self, key: str) -> TransactionRecord | None:
        """The record with this key, if any."""
        ...

    def by_fingerprint(self, charger_id: str, fingerprint: str) -> TransactionRecord | None:
        """The 1.6 transaction started with exactly these fields, if any."""
        ...

    def next_tx_id(self) -> int:
        """Reserve the next 1.6 transaction id (never handed out twice, restarts included)."""
        ...

    def tx_id_used(self, ocpp_tx_id: str) -> bool:
        """True if some 1.6 transaction already has this id."""
        ...


def decide(view: JournalView, fact: TransactionFact) -> Decision:
    """Find the record a fact belongs to (numbering a new 1.6 start) and apply the fact to it."""
    if fact.kind is FactKind.STARTED and fact.ocpp_tx_id is None:
        existing = view.by_fingerprint(fact.charger_id, fact.fingerprint())
        if existing is not None:
            return apply(existing, fact, existing.key)
        tx_id = view.next_tx_id()
        while view.tx_id_used(str(tx_id)):  # an id a stop for an unknown transaction took
            tx_id = view.next_tx_id()
        fact = replace(fact, ocpp_tx_id=str(tx_id))
    if fact.ocpp_tx_id is None:
        return apply(None, fact, None)
    key = transaction_key(fact.charger_id, fact.ocpp_tx_id)
    return apply(view.by_key(key), fact, key)


class MemoryJournal:
    """A journal without a disk (tests, tools): same decisions, futures resolve at once."""

    def __init__(self) -> None:
        self.records: dict[str, TransactionRecord] = {}
        self.facts: list[tuple[TransactionFact, Decision]] = []
        self._next = 1

    def by_key(self, key: str) -> TransactionRecord | None:
        return self.records.get(key)

    def by_fingerprint(self, charger_id: str, fingerprint: str) -> TransactionRecord | None:
        return next(
            (r for r in self.records.values() if r.charger_id == charger_id and r.fingerprint == fingerprint),
            None,
        )

    def next_tx_id(self) -> int:
        self._next += 1
        return self._next - 1

    def tx_id_used(self, ocpp_tx_id: str) -> bool:
        return any(r.ocpp_version == "1.6" and r.ocpp_tx_id == ocpp_tx_id for r in self.records.values())

    def record(self, fact: TransactionFact) -> Future[Decision]:
        """Decide and keep the fact; the future is already resolved."""
        decision = decide(self, fact)
        if decision.changed and decision.record is not None:
            self.records[decision.record.key] = decision.record
        self.facts.append((fact, decision))
        done: Future[Decision] = Future()
        done.set_result(decision)
        return done

    def open_transactions(self) -> list[TransactionRecord]:
        """Every transaction not ended."""
        return [r for r in self.records.values() if not r.ended]

    def transactions(self, charger_id: str | None = None, limit: int = 100) -> list[TransactionRecord]:
        """Newest first."""
        found = [r for r in self.records.values() if charger_id is None or r.charger_id == charger_id]
        return list(reversed(found))[:limit]

    def get(self, key: str) -> TransactionRecord | None:
        """The record with this key."""
        return self.records.get(key)

    def close(self) -> None:
        """Nothing to release."""


def apply(record: TransactionRecord | None, fact: TransactionFact, key: str | None) -> Decision:
    """Apply one fact to the record it belongs to (None if unknown); never raises on odd input."""
    if fact.kind is FactKind.METER or key is None:
        return Decision(Outcome.NO_TRANSACTION, None, False)
    if fact.kind is FactKind.STARTED and record is not None and fact.ocpp_tx_id is None:
        return Decision(Outcome.DUPLICATE, record, False)  # a resent 1.6 StartTransaction
    if record is None:
        return _first(fact, key)
    seq = _sequence(record, fact)
    if seq is not None:
        return seq
    if record.ended:
        outcome = Outcome.ALREADY_ENDED if fact.kind is FactKind.ENDED else Outcome.LATE
        return Decision(outcome, _seq_seen(record, fact), fact.seq_no is not None)
    return _update(record, fact)


def _first(fact: TransactionFact, key: str) -> Decision:
    """A transaction siteedge sees for the first time."""
    reg = register_wh(fact.samples)
    started = fact.kind is FactKind.STARTED
    start_wh = _start_wh(fact)
    # seqNo starts at 0 per transaction (E01.FR.07): a first message with a later number had
    # predecessors that may still arrive; a Started with a later one is a charger-wide counter.
    seq = fact.seq_no
    missing = tuple(range(seq)) if seq is not None and not started and seq <= MAX_TRACKED_GAP else ()
    rec = TransactionRecord(
        key=key,
        charger_id=fact.charger_id,
        ocpp_version=fact.ocpp_version,
        ocpp_tx_id=fact.ocpp_tx_id or "",
        ocpp_evse=fact.ocpp_evse,
        connector_id=fact.connector_id,
        id_tag=fact.id_tag,
        started_at=fact.at if started else None,
        meter_start_wh=start_wh,
        updated_at=fact.received_at,
        register_wh=reg if reg is not None else start_wh,
        power_w=power_w(fact.samples),
        sampled_at=fact.at,
        last_seq_no=fact.seq_no,
        missing_seq=missing,
        charging_state=fact.charging_state,
        offline=fact.offline,
        remote_start_id=fact.remote_start_id,
        fingerprint=fact.fingerprint() if started and fact.ocpp_version == "1.6" else None,
    )
    if started:
        return Decision(Outcome.NEW, rec, True)
    note = f"{fact.kind.value} for a transaction siteedge never saw start"
    if fact.kind is FactKind.ENDED:
        rec = _end(rec, fact)
    return Decision(Outcome.UNKNOWN, rec, True, (note,))


def _sequence(record: TransactionRecord, fact: TransactionFact) -> Decision | None:
    """2.0.1 seqNo bookkeeping: a duplicate or late message short-circuits; a gap is noted."""
    seq, last = fact.seq_no, record.last_seq_no
    if seq is None or last is None:
        return None
    if seq in record.missing_seq:
        filled = replace(
            _fill(record, fact),
            missing_seq=tuple(n for n in record.missing_seq if n != seq),
            updated_at=fact.received_at,
        )
        return Decision(Outcome.LATE, filled, True, (f"seqNo {seq} arrived late and fills its gap",))
    if seq <= last:
        return Decision(Outcome.DUPLICATE, record, False)
    return None


def _seq_seen(record: TransactionRecord, fact: TransactionFact) -> TransactionRecord:
    """Advance seqNo bookkeeping for a fact that changes nothing else."""
    if fact.seq_no is None:
        return record
    return replace(record, last_seq_no=fact.seq_no, updated_at=fact.received_at)


def _gap(record: TransactionRecord, fact: TransactionFact) -> tuple[tuple[int, ...], tuple[str, ...]]:
    seq, last = fact.seq_no, record.last_seq_no
    if seq is None or last is None or seq <= last + 1:
        return record.missing_seq, ()
    missing = range(last + 1, seq)
    note = f"seqNo gap: {last + 1}..{seq - 1} missing before {seq}"
    if len(missing) > MAX_TRACKED_GAP:
        return record.missing_seq, (note + " (too wide to track)",)
    return record.missing_seq + tuple(missing), (note,)


def _update(record: TransactionRecord, fact: TransactionFact) -> Decision:
    """A fact about a running transaction, in order or with a gap before it."""
    missing, notes = _gap(record, fact)
    rec = replace(
        _fill(record, fact),
        missing_seq=missing,
        last_seq_no=fact.seq_no if fact.seq_no is not None else record.last_seq_no,
        offline=record.offline or fact.offline,
        updated_at=fact.received_at,
    )
    if fact.kind is FactKind.STARTED:
        return Decision(Outcome.APPLIED, rec, True, notes)
    newer = rec.sampled_at is None or fact.at >= rec.sampled_at
    if newer:
        reg, pw = register_wh(fact.samples), power_w(fact.samples)
        rec = replace(
            rec,
            register_wh=reg if reg is not None else rec.register_wh,
            power_w=pw if pw is not None else rec.power_w,
            sampled_at=fact.at if fact.samples else rec.sampled_at,
            charging_state=fact.charging_state or rec.charging_state,
        )
    if fact.kind is FactKind.ENDED:
        rec = _end(rec, fact)
    return Decision(Outcome.APPLIED, rec, True, notes)


def _fill(record: TransactionRecord, fact: TransactionFact) -> TransactionRecord:
    """Take what the record lacks from the fact (a late Started supplies the start)."""
    started = fact.kind is FactKind.STARTED
    return replace(
        record,
        ocpp_evse=record.ocpp_evse if record.ocpp_evse is not None else fact.ocpp_evse,
        connector_id=record.connector_id if record.connector_id is not None else fact.connector_id,
        id_tag=record.id_tag or fact.id_tag,
        started_at=record.started_at or (fact.at if started else None),
        meter_start_wh=record.meter_start_wh if record.meter_start_wh is not None else _start_wh(fact),
        remote_start_id=record.remote_start_id or fact.remote_start_id,
    )


def _start_wh(fact: TransactionFact) -> float | None:
    """The meter start a Started fact states: 1.6 meterStart, else its energy register."""
    if fact.kind is not FactKind.STARTED:
        return None
    return fact.meter_wh if fact.meter_wh is not None else register_wh(fact.samples)


def _end(record: TransactionRecord, fact: TransactionFact) -> TransactionRecord:
    reg = register_wh(fact.samples)
    stop = fact.meter_wh if fact.meter_wh is not None else reg if reg is not None else record.register_wh
    return replace(
        record,
        ended=True,
        stopped_at=fact.at,
        meter_stop_wh=stop,
        register_wh=stop if stop is not None else record.register_wh,
        power_w=0.0,
        stop_reason=fact.stop_reason or "Local",  # 1.6: an absent reason means Local
        charging_state=fact.charging_state or record.charging_state,
    )


def events_of(decision: Decision, fact: TransactionFact) -> list[object]:
    """The core events a committed decision announces (none for duplicates)."""
    out: list[object] = [
        TransactionAnomaly(decision.record.key if decision.record else None, fact.charger_id, note, fact.at)
        for note in decision.notes
    ]
    rec = decision.record
    if decision.outcome is Outcome.NO_TRANSACTION:
        if fact.samples:
            evse = fact.ocpp_evse or 0
            out.append(MeterValuesReported(fact.charger_id, fact.ocpp_version, evse, fact.at, fact.samples))
        return out
    if rec is None or not decision.changed or decision.outcome in (Outcome.LATE, Outcome.ALREADY_ENDED):
        return out
    common = (rec.key, rec.charger_id, rec.ocpp_version, rec.ocpp_evse, rec.connector_id, rec.ocpp_tx_id)
    if fact.kind is FactKind.STARTED and rec.started_at is not None:
        out.append(
            TransactionStarted(
                *common, rec.id_tag, rec.started_at, rec.meter_start_wh, fact.offline, rec.remote_start_id
            )
        )
    elif fact.kind is FactKind.UPDATED:
        out.append(
            TransactionUpdated(
                *common,
                rec.id_tag,
                rec.started_at,
                fact.at,
                rec.energy_wh,
                rec.power_w,
                rec.charging_state,
                fact.samples,
                fact.offline,
            )
        )
    elif fact.kind is FactKind.ENDED:
        out.append(
            TransactionEnded(
                *common,
                rec.id_tag,
                rec.started_at,
                rec.stopped_at or fact.at,
                rec.meter_start_wh,
                rec.meter_stop_wh,
                rec.energy_wh,
                rec.stop_reason or "Local",
                fact.samples,
                fact.offline,
            )
        )
    return out

"""OCPI 2.2.1 Sessions and CDRs from the version-neutral transaction events (pure).

Choices where OCPI or OCPP leave room (also in docs/architecture.md, "Sessions and CDRs"):

- Ids: a transaction key ("{charger_id}/{ocpp transaction id}") can be longer than OCPI's 36
  characters, so the Session id and the CDR id are UUIDv5 of the key: stable across restarts,
  so a re-sent object is the same object, and the key is kept beside it.
- Status: PENDING when the transaction starts, ACTIVE at its first meter report, COMPLETED when
  it ends (INVALID instead if `invalidate` was called: an authorization found invalid later).
  `start_date_time` stays the transaction's start: the metered energy counts from there.
- Energy: points of (time, Wh delivered since the meter start) from the charger's registers;
  an interval without energy is parking (connected, not charging), any other is charging.
  Power and current per interval are left to the engine (average power from energy); the
  engine spreads an interval's energy linearly over its time, never inventing a register value.
- Charging periods: the tariff engine starts one at every tariff switch; `price` adds one at
  least every 15 minutes by cutting longer periods at exact 15-minute marks.
- Token: the cached OCPI Token's identity; an unknown one is recorded as the site's own
  country_code/party_id, type OTHER and contract_id = uid (OCPI requires all five fields).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any, Protocol

from controller.core.clock import rfc3339
from controller.core.config import Config
from controller.core.events import MeterSample, TransactionEnded, TransactionStarted, TransactionUpdated
from controller.core.pricing import Activity, Cost, MeterInterval, compute_cost, round4
from controller.core.tariffs import Dimension, PriceComponent, Tariff, TariffElement, parse_datetime
from controller.core.tokens import Token

# Fixed forever: changing it would give every running session a new id after an update.
_NAMESPACE = uuid.UUID("6f1c3c0e-5a7e-4b1e-9d7a-2f3d8c1b5e42")
MAX_PERIOD = timedelta(minutes=15)
CONNECTOR_ID = "1"  # as in core/location.py: every OCPI EVSE here has one connector
_US = timedelta(microseconds=1)


class SessionStatus(StrEnum):
    """OCPI SessionStatus (RESERVATION is not produced: reservations are not sessions here)."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"

    @property
    def final(self) -> bool:
        """True for COMPLETED and INVALID: nothing changes any more."""
        return self in (SessionStatus.COMPLETED, SessionStatus.INVALID)


class AuthMethod(StrEnum):
    """OCPI AuthMethod: what decided that the driver may charge."""

    AUTH_REQUEST = "AUTH_REQUEST"  # the eMSP answered a real-time request
    COMMAND = "COMMAND"  # a remote start
    WHITELIST = "WHITELIST"  # decided locally from the whitelist


def session_id_of(key: str) -> str:
    """The OCPI Session id of a transaction key: a UUIDv5, 36 characters, stable."""
    return str(uuid.uuid5(_NAMESPACE, f"session:{key}"))


def cdr_id_of(key: str) -> str:
    """The OCPI CDR id of a transaction key: a UUIDv5, 36 characters, stable."""
    return str(uuid.uuid5(_NAMESPACE, f"cdr:{key}"))


@dataclass(frozen=True, slots=True)
class CdrToken:
    """OCPI CdrToken: the eMSP (country_code + party_id) and the token that charged."""

    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str

    def to_ocpi(self) -> dict[str, str]:
        """The JSON form."""
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": self.uid,
            "type": self.type,
            "contract_id": self.contract_id,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> CdrToken:
        """Inverse of to_ocpi."""
        return CdrToken(d["country_code"], d["party_id"], d["uid"], d["type"], d["contract_id"])


def cdr_token_of(token: Token | None, uid: str | None, country_code: str, party_id: str) -> CdrToken:
    """The CdrToken of a cached token; an unknown uid becomes the site's own OTHER token."""
    if token is not None:
        return CdrToken(token.country_code, token.party_id, token.uid, token.type, token.contract_id)
    shown = (uid or "UNKNOWN")[:36]  # a transaction without an idTag (free vend) still needs a uid
    return CdrToken(country_code, party_id, shown, "OTHER", shown)


@dataclass(frozen=True, slots=True)
class Authorization:
    """How a session was authorized: the OCPI auth_method and the eMSP's reference, if any."""

    method: AuthMethod
    reference: str | None = None


def auth_method_of(remote_start: bool, decided_by_emsp: bool | None) -> AuthMethod:
    """COMMAND for a remote start, AUTH_REQUEST if the eMSP answered, else WHITELIST."""
    if remote_start:
        return AuthMethod.COMMAND
    return AuthMethod.AUTH_REQUEST if decided_by_emsp else AuthMethod.WHITELIST


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """Energy delivered since the meter start (Wh) at an instant."""

    at: datetime
    energy_wh: float

    def to_json(self) -> list[Any]:
        """Compact JSON form [time, Wh]."""
        return [rfc3339_us(self.at), self.energy_wh]

    @staticmethod
    def from_json(d: Sequence[Any]) -> MeterPoint:
        """Inverse of to_json."""
        return MeterPoint(parse_datetime(d[0], "at"), float(d[1]))


@dataclass(frozen=True, slots=True)
class SignedValue:
    """One signed meter value as the charger sent it, ready for OCPI SignedValue."""

    nature: str  # Start, End or Intermediate
    encoding: str
    plain_data: str
    signed_data: str
    public_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form for the store."""
        return {
            "nature": self.nature,
            "encoding": self.encoding,
            "plain_data": self.plain_data,
            "signed_data": self.signed_data,
            "public_key": self.public_key,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> SignedValue:
        """Inverse of to_json."""
        return SignedValue(d["nature"], d["encoding"], d["plain_data"], d["signed_data"], d.get("public_key"))


_NATURE = {"Transaction.Begin": "Start", "Transaction.End": "End"}


def signed_values(samples: Sequence[MeterSample]) -> list[SignedValue]:
    """The signed samples among a message's samples, carried unchanged.

    2.0.1 signedMeterData is already base64 (OCPP) and goes as is. A 1.6 SignedData value is text:
    OCMF ("OCMF|payload|signature") is base64-encoded byte for byte, so a verifier recovers
    the exact string; anything else (vendor hex) is passed through as received.
    """
    out = []
    for s in samples:
        if not s.signed:
            continue
        nature = _NATURE.get(s.context or "", "Intermediate")
        plain = "" if s.value is None else f"{s.value:g} {s.unit}"
        if "signed_meter_data" in s.signed:  # OCPP 2.0.1 SignedMeterValueType
            out.append(
                SignedValue(
                    nature,
                    str(s.signed.get("encoding_method") or "OCMF")[:36],
                    plain[:512],
                    str(s.signed["signed_meter_data"]),
                    s.signed.get("public_key") or None,
                )
            )
            continue
        raw = str(s.signed.get("value", ""))
        if raw.startswith("OCMF|"):
            out.append(SignedValue(nature, "OCMF", plain[:512], base64.b64encode(raw.encode()).decode()))
        else:
            out.append(SignedValue(nature, "OCPP 1.6 SignedData", plain[:512], raw))
    return out


@dataclass(frozen=True, slots=True)
class Reading:
    """A bound meter's energy register (absolute Wh) as read at an instant (the site's clock)."""

    at: datetime
    wh: float

    def to_json(self) -> list[Any]:
        """Compact JSON form [time, Wh]."""
        return [rfc3339_us(self.at), self.wh]

    @staticmethod
    def from_json(d: Sequence[Any] | None) -> Reading | None:
        """Inverse of to_json (None stays None)."""
        return None if d is None else Reading(parse_datetime(d[0], "at"), float(d[1]))


@dataclass(frozen=True, slots=True)
class Flag:
    """Something about a session's figures a technician and the eMSP must know (an alarm).

    Kinds: energy_mismatch, meter_gap (from `at` until `until`), energy_source_fallback,
    clock_unsynced, clock_step.
    """

    kind: str
    at: datetime
    detail: str
    until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (also the API's)."""
        until = None if self.until is None else rfc3339(self.until)
        return {"kind": self.kind, "at": rfc3339(self.at), "detail": self.detail, "until": until}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Flag:
        """Inverse of to_json."""
        at = _dt(d["at"])
        assert at is not None
        return Flag(d["kind"], at, d["detail"], _dt(d.get("until")))


def rfc3339_us(ts: datetime) -> str:
    """UTC RFC 3339 with microseconds, for the store (the wire uses rfc3339's milliseconds)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ts(ts: datetime | None) -> str | None:
    return None if ts is None else rfc3339_us(ts)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else parse_datetime(value, "datetime")


@dataclass(slots=True)
class SessionRecord:
    """One session as siteedge keeps it; `ocpi` is the latest OCPI Session object."""

    session_id: str
    key: str
    charger_id: str
    evse_uid: str
    connector_id: str
    status: SessionStatus
    started_at: datetime
    token: CdrToken
    auth: Authorization
    currency: str
    tariff: dict[str, Any] | None  # the raw OCPI Tariff that applies, sealed at the start
    meter_id: str | None
    last_updated: datetime
    points: list[MeterPoint] = field(default_factory=list)
    signed: list[SignedValue] = field(default_factory=list)
    ended_at: datetime | None = None
    stop_reason: str | None = None
    invalid: bool = False  # set when the authorization later turned out invalid
    ocpi: dict[str, Any] = field(default_factory=dict)
    cdr_id: str | None = None  # set once the CDR was built and stored; the latest after corrections
    # Settlement (docs/adr/0004-energy-source.md): `points` are the charger's registers,
    # `meter_points` the bound meter's (Wh since its start reading); `energy_source` says which bills.
    energy_source: str = "charger"
    meter_points: list[MeterPoint] = field(default_factory=list)
    meter_start: Reading | None = None
    meter_last: Reading | None = None  # the latest accepted reading while the session ran
    meter_stop: Reading | None = None
    flags: list[Flag] = field(default_factory=list)
    run_id: str | None = None  # the controller run whose monotonic clock mono_start belongs to
    mono_start: float | None = None
    duration_s: float | None = None  # measured once ended: monotonic if possible (duration_source)
    duration_source: str | None = None  # "monotonic" or "timestamps"

    @property
    def billed(self) -> list[MeterPoint]:
        """The energy series the CDR bills: the meter's or the charger's (energy_source)."""
        return self.meter_points if self.energy_source == "meter" else self.points

    @property
    def charger_wh(self) -> float:
        """Energy the charger's registers report so far (Wh)."""
        return self.points[-1].energy_wh if self.points else 0.0

    @property
    def meter_wh(self) -> float | None:
        """Energy the bound meter counted from the start reading to the stop (or latest) one."""
        end = self.meter_stop or self.meter_last
        if self.meter_start is None or end is None:
            return None
        return max(0.0, end.wh - self.meter_start.wh)

    @property
    def kwh(self) -> float:
        """Energy delivered so far in kWh (4 decimals), from the billed series."""
        billed = self.billed
        wh = billed[-1].energy_wh if billed else 0.0
        return float(round4(Decimal(str(wh)) / 1000))

    def header(self) -> dict[str, Any]:
        """Everything but the points, JSON-ready (the store appends points separately)."""
        return {
            "session_id": self.session_id,
            "key": self.key,
            "charger_id": self.charger_id,
            "evse_uid": self.evse_uid,
            "connector_id": self.connector_id,
            "status": self.status.value,
            "started_at": rfc3339_us(self.started_at),
            "token": self.token.to_ocpi(),
            "auth_method": self.auth.method.value,
            "authorization_reference": self.auth.reference,
            "currency": self.currency,
            "tariff": self.tariff,
            "meter_id": self.meter_id,
            "last_updated": rfc3339_us(self.last_updated),
            "signed": [s.to_json() for s in self.signed],
            "ended_at": _ts(self.ended_at),
            "stop_reason": self.stop_reason,
            "invalid": self.invalid,
            "ocpi": self.ocpi,
            "cdr_id": self.cdr_id,
            "energy_source": self.energy_source,
            "meter_start": None if self.meter_start is None else self.meter_start.to_json(),
            "meter_last": None if self.meter_last is None else self.meter_last.to_json(),
            "meter_stop": None if self.meter_stop is None else self.meter_stop.to_json(),
            "flags": [f.to_json() for f in self.flags],
            "run_id": self.run_id,
            "mono_start": self.mono_start,
            "duration_s": self.duration_s,
            "duration_source": self.duration_source,
        }

    @staticmethod
    def from_header(
        d: Mapping[str, Any], points: Sequence[MeterPoint], meter_points: Sequence[MeterPoint] = ()
    ) -> SessionRecord:
        """Inverse of header() plus the stored points (charger's and meter's)."""
        started = _dt(d["started_at"])
        updated = _dt(d["last_updated"])
        assert started is not None and updated is not None
        return SessionRecord(
            session_id=d["session_id"],
            key=d["key"],
            charger_id=d["charger_id"],
            evse_uid=d["evse_uid"],
            connector_id=d["connector_id"],
            status=SessionStatus(d["status"]),
            started_at=started,
            token=CdrToken.from_json(d["token"]),
            auth=Authorization(AuthMethod(d["auth_method"]), d.get("authorization_reference")),
            currency=d["currency"],
            tariff=d.get("tariff"),
            meter_id=d.get("meter_id"),
            last_updated=updated,
            points=list(points),
            signed=[SignedValue.from_json(s) for s in d.get("signed", [])],
            ended_at=_dt(d.get("ended_at")),
            stop_reason=d.get("stop_reason"),
            invalid=bool(d.get("invalid", False)),
            ocpi=dict(d.get("ocpi") or {}),
            cdr_id=d.get("cdr_id"),
            energy_source=d.get("energy_source", "charger"),
            meter_points=list(meter_points),
            meter_start=Reading.from_json(d.get("meter_start")),
            meter_last=Reading.from_json(d.get("meter_last")),
            meter_stop=Reading.from_json(d.get("meter_stop")),
            flags=[Flag.from_json(f) for f in d.get("flags", [])],
            run_id=d.get("run_id"),
            mono_start=d.get("mono_start"),
            duration_s=d.get("duration_s"),
            duration_source=d.get("duration_source"),
        )


# --- listing filters -----------------------------------------------------------------------------


def parse_partner(text: str) -> tuple[str, str]:
    """An eMSP as people write it, "NL-ABC" (or "NL*ABC" as exports show it) -> ("NL", "ABC").

    ValueError says what is wrong. Upper-cased: OCPI country codes and party ids are case-insensitive.
    """
    cc, sep, party = text.strip().upper().replace("*", "-").partition("-")
    if not sep or len(cc) != 2 or not cc.isalpha() or len(party) != 3 or not party.isalnum():
        raise ValueError(
            f"partner must be country_code-party_id such as NL-ABC (2 letters, 3 characters), got {text!r}"
        )
    return cc, party


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Which sessions a list shows: every criterion given must hold (None: any)."""

    status: str | None = None
    evse_uid: str | None = None
    charger_id: str | None = None  # every EVSE of the charger
    partner: tuple[str, str] | None = None  # (country_code, party_id) of the token's eMSP

    def matches(self, rec: SessionRecord) -> bool:
        """True if the session meets every criterion."""
        return (
            (self.status is None or rec.status.value == self.status)
            and (self.evse_uid is None or rec.evse_uid == self.evse_uid)
            and (self.charger_id is None or rec.charger_id == self.charger_id)
            and (
                self.partner is None
                or (rec.token.country_code.upper(), rec.token.party_id.upper()) == self.partner
            )
        )


# --- applying transaction events ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What the site knows when a session opens: where, who, how authorized, which tariff."""

    evse_uid: str
    token: CdrToken
    auth: Authorization
    tariff: dict[str, Any] | None
    currency: str
    meter_id: str | None
    now: datetime


def open_session(key: str, charger_id: str, started_at: datetime, ctx: SessionContext) -> SessionRecord:
    """A new PENDING session at the transaction's start, with its first point (0 Wh)."""
    return SessionRecord(
        session_id=session_id_of(key),
        key=key,
        charger_id=charger_id,
        evse_uid=ctx.evse_uid,
        connector_id=CONNECTOR_ID,
        status=SessionStatus.PENDING,
        started_at=started_at,
        token=ctx.token,
        auth=ctx.auth,
        currency=ctx.currency,
        tariff=ctx.tariff,
        meter_id=ctx.meter_id,
        last_updated=ctx.now,
        points=[MeterPoint(started_at, 0.0)],
    )


def _add_point(rec: SessionRecord, at: datetime, energy_wh: float | None) -> list[MeterPoint]:
    """Append a charger point if it is newer; registers never go back (a regressing one is clamped)."""
    return add_point(rec.points, at, energy_wh)


def add_point(series: list[MeterPoint], at: datetime, energy_wh: float | None) -> list[MeterPoint]:
    """Append a point to a series if it is newer, clamped to never go back; returns what was added."""
    if energy_wh is None:
        return []
    last = series[-1] if series else None
    value = max(energy_wh, last.energy_wh) if last is not None else energy_wh
    if last is not None and at <= last.at:
        return []  # older or same instant: the journal already refused to regress; keep the timeline
    point = MeterPoint(at, value)
    series.append(point)
    return [point]


def apply_update(rec: SessionRecord, ev: TransactionUpdated, now: datetime) -> list[MeterPoint]:
    """A meter report: new point, signed values, PENDING becomes ACTIVE. Returns the new points."""
    if rec.status.final:
        return []
    new = _add_point(rec, ev.at, ev.energy_wh)
    rec.signed.extend(signed_values(ev.samples))
    if rec.status is SessionStatus.PENDING:
        rec.status = SessionStatus.ACTIVE
    rec.last_updated = now
    return new


def apply_end(rec: SessionRecord, ev: TransactionEnded, now: datetime) -> list[MeterPoint]:
    """The transaction ended: final point, COMPLETED (or INVALID). Returns the new points."""
    if rec.status.final:
        return []
    end = max(ev.stopped_at, rec.points[-1].at if rec.points else rec.started_at)
    new = _add_point(rec, ev.stopped_at, ev.energy_wh)
    if not new and rec.points and ev.energy_wh is not None and ev.energy_wh > rec.points[-1].energy_wh:
        # The stop carries the final register at the last sample's instant: it wins.
        rec.points[-1] = replace(rec.points[-1], energy_wh=ev.energy_wh)
        new = [rec.points[-1]]
    rec.signed.extend(signed_values(ev.samples))
    rec.ended_at = end
    rec.stop_reason = ev.stop_reason
    rec.status = SessionStatus.INVALID if rec.invalid else SessionStatus.COMPLETED
    rec.last_updated = now
    return new


def invalidate(rec: SessionRecord, now: datetime) -> None:
    """Hook: the authorization turned out invalid; the session ends INVALID (not billed)."""
    rec.invalid = True
    if rec.status is SessionStatus.COMPLETED:
        rec.status = SessionStatus.INVALID
    rec.last_updated = now


def started_event_of(ev: TransactionUpdated | TransactionEnded) -> TransactionStarted:
    """A start for a transaction first heard of by a later message (the journal saw no start)."""
    at = ev.started_at or (ev.at if isinstance(ev, TransactionUpdated) else ev.stopped_at)
    return TransactionStarted(
        ev.key,
        ev.charger_id,
        ev.ocpp_version,
        ev.ocpp_evse,
        ev.connector_id,
        ev.ocpp_transaction_id,
        ev.id_tag,
        at,
        None,
        ev.offline,
    )


# --- pricing -----------------------------------------------------------------------------------

# Without a tariff the engine still measures: one free FLAT element, periods by activity only.
_NO_TARIFF_ELEMENT = TariffElement((PriceComponent(Dimension.FLAT, Decimal(0), Decimal(0), 0),))


def _no_tariff(currency: str) -> Tariff:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    elements = (_NO_TARIFF_ELEMENT,)
    return Tariff("ZZ", "ZZZ", "none", currency, None, elements, None, None, None, None, epoch, {})


def intervals(points: Sequence[MeterPoint]) -> list[MeterInterval]:
    """Metered intervals between consecutive points; no energy in an interval means parking."""
    out = []
    for a, b in pairwise(points):
        if b.at <= a.at:
            continue
        wh = Decimal(str(b.energy_wh)) - Decimal(str(a.energy_wh))
        wh = max(wh, Decimal(0))
        out.append(MeterInterval(a.at, b.at, wh, Activity.CHARGING if wh > 0 else Activity.PARKING))
    return out


def _split(ivs: Sequence[MeterInterval], cuts: Sequence[datetime]) -> list[MeterInterval]:
    """The intervals cut at the given instants, energy shared in proportion to time (as the engine)."""
    out: list[MeterInterval] = []
    todo = sorted(cuts)
    k = 0
    for iv in ivs:
        while k < len(todo) and todo[k] <= iv.start:
            k += 1
        inner = []
        while k < len(todo) and todo[k] < iv.end:
            inner.append(todo[k])
            k += 1
        if not inner:
            out.append(iv)
            continue
        total = Decimal(iv.energy_wh)
        length = Decimal((iv.end - iv.start) // _US)
        used = Decimal(0)
        edges = [iv.start, *inner, iv.end]
        for s, e in pairwise(edges):
            wh = total - used if e == iv.end else total * Decimal((e - iv.start) // _US) / length - used
            used += wh
            out.append(replace(iv, start=s, end=e, energy_wh=wh))
    return out


def price(tariff: Tariff | None, currency: str, tz: tzinfo, points: Sequence[MeterPoint]) -> Cost:
    """Cost and ChargingPeriods of a session so far; a new period at least every 15 minutes.

    First pass: the periods the tariff makes (a new one at every element or activity switch).
    Second pass: each of them longer than 15 minutes gets interval boundaries at exact
    15-minute marks from its start, and `max_period` turns those into new periods. Cutting an
    interval never changes the cost (the engine spreads energy linearly either way).
    """
    used = tariff if tariff is not None else _no_tariff(currency)
    ivs = intervals(points)
    cost = compute_cost(used, tz, ivs)
    if not ivs:
        return _strip(cost, tariff)
    starts = [p.start_date_time for p in cost.charging_periods]
    cuts = []
    for s, e in zip(starts, [*starts[1:], ivs[-1].end], strict=True):
        mark = s + MAX_PERIOD
        while mark < e:
            cuts.append(mark)
            mark += MAX_PERIOD
    if cuts:
        cost = compute_cost(used, tz, _split(ivs, cuts), max_period=MAX_PERIOD)
    return _strip(cost, tariff)


def _strip(cost: Cost, tariff: Tariff | None) -> Cost:
    if tariff is not None:
        return cost
    periods = tuple(replace(p, tariff_id=None) for p in cost.charging_periods)
    return replace(cost, charging_periods=periods)


# --- OCPI objects ------------------------------------------------------------------------------


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def session_object(
    rec: SessionRecord, cost: Cost, country_code: str, party_id: str, location_id: str
) -> dict[str, Any]:
    """The full OCPI 2.2.1 Session (PUT semantics: every field, every time)."""
    return _drop_none(
        {
            "country_code": country_code,
            "party_id": party_id,
            "id": rec.session_id,
            "start_date_time": rfc3339(rec.started_at),
            "end_date_time": None if rec.ended_at is None else rfc3339(rec.ended_at),
            "kwh": rec.kwh,
            "cdr_token": rec.token.to_ocpi(),
            "auth_method": rec.auth.method.value,
            "authorization_reference": rec.auth.reference,
            "location_id": location_id,
            "evse_uid": rec.evse_uid,
            "connector_id": rec.connector_id,
            "meter_id": rec.meter_id,
            "currency": rec.currency,
            "charging_periods": [p.to_ocpi() for p in cost.charging_periods],
            # Without a tariff the cost is unknown, not zero: OCPI says leave it out then.
            "total_cost": cost.total_cost.to_ocpi() if rec.tariff is not None else None,
            "status": rec.status.value,
            "last_updated": rfc3339(rec.last_updated),
        }
    )


def cdr_location(config: Config, evse_uid: str, connector_id: str) -> dict[str, Any]:
    """OCPI CdrLocation from the configuration; an EVSE without evse_id reports its uid there."""
    s = config.site
    evse = next((e for c in config.chargers for e in c.evses if e.evse_uid == evse_uid), None)
    return _drop_none(
        {
            "id": s.location_id,
            "name": s.name or None,
            "address": s.address,
            "city": s.city,
            "postal_code": s.postal_code or None,
            "country": s.country,
            "coordinates": {"latitude": s.latitude, "longitude": s.longitude},
            "evse_uid": evse_uid,
            "evse_id": (evse.evse_id if evse is not None else None) or evse_uid,
            "connector_id": connector_id,
            # An adopted (unconfigured) EVSE has no connector data: the configuration defaults.
            "connector_standard": evse.standard if evse is not None else "IEC_62196_T2",
            "connector_format": evse.format if evse is not None else "SOCKET",
            "connector_power_type": evse.power_type if evse is not None else "AC_3_PHASE",
        }
    )


def signed_data(values: Sequence[SignedValue]) -> dict[str, Any] | None:
    """OCPI SignedData of the session's signed values (one encoding: the first one's), or None."""
    if not values:
        return None
    encoding = values[0].encoding
    same = [v for v in values if v.encoding == encoding]
    key = next((v.public_key for v in same if v.public_key), None)
    return _drop_none(
        {
            "encoding_method": encoding,
            "public_key": key,
            "signed_values": [
                {"nature": v.nature, "plain_data": v.plain_data, "signed_data": v.signed_data} for v in same
            ],
        }
    )


def cdr_object(
    rec: SessionRecord,
    cost: Cost,
    country_code: str,
    party_id: str,
    location: Mapping[str, Any],
    now: datetime,
    *,
    cdr_id: str | None = None,
    remark: str | None = None,
) -> dict[str, Any]:
    """The OCPI 2.2.1 CDR of an ended session: sealed with the tariff and token of its start.

    `cdr_id` replaces the session's own id (a corrected CDR); `remark` is added to the CDR's.
    """
    assert rec.ended_at is not None, "a CDR needs an ended session"
    fields = cost.to_ocpi()
    periods = fields["charging_periods"] or [
        # OCPI requires at least one period; a session without any metered interval has this one.
        {"start_date_time": rfc3339(rec.started_at), "dimensions": [{"type": "TIME", "volume": 0.0}]}
    ]
    return _drop_none(
        {
            "country_code": country_code,
            "party_id": party_id,
            "id": cdr_id or cdr_id_of(rec.key),
            "start_date_time": rfc3339(rec.started_at),
            "end_date_time": rfc3339(rec.ended_at),
            "session_id": rec.session_id,
            "cdr_token": rec.token.to_ocpi(),
            "auth_method": rec.auth.method.value,
            "authorization_reference": rec.auth.reference,
            "cdr_location": dict(location),
            "meter_id": rec.meter_id,
            "currency": rec.currency,
            "tariffs": [rec.tariff] if rec.tariff is not None else None,
            "charging_periods": periods,
            "signed_data": signed_data(rec.signed),
            "total_cost": fields["total_cost"],
            "total_fixed_cost": fields["total_fixed_cost"],
            "total_energy": fields["total_energy"],
            "total_energy_cost": fields["total_energy_cost"],
            "total_time": fields["total_time"],
            "total_time_cost": fields["total_time_cost"],
            "total_parking_time": fields["total_parking_time"],
            "total_parking_cost": fields["total_parking_cost"],
            "remark": join_remarks(
                None if rec.tariff is not None else "no tariff applied at this EVSE: cost 0", remark
            ),
            "last_updated": rfc3339(now),
        }
    )


def join_remarks(*parts: str | None) -> str | None:
    """An OCPI remark of the given parts, joined and cut to the 255 characters OCPI allows."""
    text = "; ".join(p for p in parts if p)
    return None if not text else text if len(text) <= 255 else text[:254] + "…"


def due(last_sent: float | None, now: float, interval: float, force: bool) -> bool:
    """Rate limit of Session updates: forced (start, status change, end) or interval elapsed."""
    return force or last_sent is None or now - last_sent >= interval


# --- tariffs per EVSE ----------------------------------------------------------------------------


def tariff_ids_for(config: Config, evse_uid: str) -> list[str]:
    """The tariffs an EVSE offers, in order: its connector's tariff_ids, else the site default."""
    evse = next((e for c in config.chargers for e in c.evses if e.evse_uid == evse_uid), None)
    ids = list(evse.tariff_ids) if evse is not None else []
    if not ids and config.site.default_tariff_id:
        ids = [config.site.default_tariff_id]
    return ids


def choose_tariff(ids: Sequence[str], known: Mapping[str, Tariff], at: datetime) -> Tariff | None:
    """The first of the EVSE's tariffs that is known and valid at `at` (OCPI: valid at the start)."""
    for tariff_id in ids:
        t = known.get(tariff_id)
        if t is not None and t.is_active(at):
            return t
    return None


def meter_id_for(config: Config, evse_uid: str) -> str | None:
    """The id of the Modbus meter bound to an EVSE (role "evse:<uid>"), if any."""
    return next((m.id for m in config.meters if m.role == f"evse:{evse_uid}"), None)


def duration_of(rec: SessionRecord) -> float | None:
    """Seconds from start to end: the measured (monotonic) duration when known, else timestamps."""
    if rec.duration_s is not None:
        return rec.duration_s
    return None if rec.ended_at is None else (rec.ended_at - rec.started_at).total_seconds()


# --- partner report ------------------------------------------------------------------------------


def partner_report(records: Sequence[SessionRecord], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per eMSP (token country_code + party_id): sessions started in [start, end) and their figures.

    Revenue sums the sessions' total_cost; `revenue_incl_vat` is None once any session's cost
    including VAT is unknown (never a guess). Duration is start to end of ended sessions.
    """
    groups: dict[tuple[str, str], list[SessionRecord]] = {}
    for r in records:
        if start <= r.started_at < end and r.status is not SessionStatus.INVALID:
            groups.setdefault((r.token.country_code, r.token.party_id), []).append(r)
    out = []
    for (cc, party), rs in sorted(groups.items()):
        # The stored OCPI object's kwh: listings load records without their points.
        kwh = sum((Decimal(str(r.ocpi.get("kwh", r.kwh))) for r in rs), Decimal(0))
        excl, incl = Decimal(0), Decimal(0)
        incl_known = True
        for r in rs:
            total = r.ocpi.get("total_cost")
            if total is None:
                continue
            excl += Decimal(str(total["excl_vat"]))
            if total.get("incl_vat") is None:
                incl_known = False
            else:
                incl += Decimal(str(total["incl_vat"]))
        ended = [r for r in rs if r.ended_at is not None]
        seconds = sum(duration_of(r) or 0.0 for r in ended)
        out.append(
            {
                "country_code": cc,
                "party_id": party,
                "sessions": len(rs),
                "completed": sum(r.status is SessionStatus.COMPLETED for r in rs),
                "kwh": float(round4(kwh)),
                "revenue_excl_vat": float(round4(excl)),
                "revenue_incl_vat": float(round4(incl)) if incl_known else None,
                "currencies": sorted({r.currency for r in rs}),
                "average_kwh": float(round4(kwh / len(rs))),
                "average_duration_s": round(seconds / len(ended), 1) if ended else None,
            }
        )
    return out


# --- ports ---------------------------------------------------------------------------------------


class SessionStore(Protocol):
    """Durable sessions, their meter points and the one CDR of each (implemented in store/)."""

    def save(
        self,
        rec: SessionRecord,
        new_points: Sequence[MeterPoint],
        new_meter_points: Sequence[MeterPoint] = (),
    ) -> None:
        """Store the record's header and append its new (charger and meter) points; durable on return."""
        ...

    def open_sessions(self) -> list[SessionRecord]:
        """Sessions not final yet, with their points (to resume after a restart)."""
        ...

    def get(self, session_id: str) -> SessionRecord | None:
        """One session with its points."""
        ...

    def listing(self, limit: int, status: str | None) -> list[SessionRecord]:
        """Newest first, without points."""
        ...

    def started_between(self, start: datetime, end: datetime) -> list[SessionRecord]:
        """Sessions started in [start, end), without points."""
        ...

    def put_cdr(self, session_id: str, cdr: dict[str, Any]) -> dict[str, Any]:
        """Store a session's CDR unless one exists; returns the stored one (the first wins)."""
        ...

    def unsent_cdrs(self) -> list[tuple[str, dict[str, Any]]]:
        """(session_id, CDR) of CDRs not yet handed to the outbox."""
        ...

    def mark_cdr_sent(self, session_id: str) -> None:
        """The CDR is committed in the outbox; never hand it over again."""
        ...

    def cdr_sent(self, session_id: str) -> bool:
        """True once the session's first CDR is committed in the outbox."""
        ...

    def add_correction(
        self, session_id: str, credit: dict[str, Any], cdr: dict[str, Any], reason: str
    ) -> None:
        """Store a credit CDR and its replacement together (in this order); durable on return."""
        ...

    def unsent_corrections(self) -> list[tuple[int, dict[str, Any]]]:
        """(sequence number, CDR) of correction CDRs not yet in the outbox, in the order stored."""
        ...

    def mark_correction_sent(self, seqs: Sequence[int]) -> None:
        """These correction CDRs are committed in the outbox."""
        ...

    def cdrs_of(self, session_id: str) -> list[dict[str, Any]]:
        """Every CDR of a session in the order made: the original, then credit/replacement pairs."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


class TariffStore(Protocol):
    """Durable OCPI Tariffs as received from the backend, by id."""

    def put_tariff(self, tariff_id: str, raw: dict[str, Any]) -> None:
        """Insert or replace a tariff; durable when this returns."""
        ...

    def delete_tariff(self, tariff_id: str) -> bool:
        """Remove a tariff; True if it existed."""
        ...

    def tariffs(self) -> dict[str, dict[str, Any]]:
        """Every stored tariff (raw OCPI) by id."""
        ...


class SessionQueries(Protocol):
    """What the web API asks about sessions, partners and prices (called on the loop)."""

    async def sessions(self, limit: int, status: str | None) -> list[dict[str, Any]]:
        """OCPI Sessions, newest first."""
        ...

    async def session(self, session_id: str) -> dict[str, Any] | None:
        """One OCPI Session, None if unknown."""
        ...

    async def partner_report(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per-eMSP figures for sessions started in [start, end)."""
        ...

    def price(self, evse_uid: str) -> dict[str, Any] | None:
        """The ad hoc price of an EVSE now; None if the EVSE is unknown."""
        ...

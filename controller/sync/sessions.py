"""Sessions and CDRs to the backend, tariffs from it: the core's session rules, durably applied."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from controller.core import sessions as core
from controller.core import settlement
from controller.core.clock import Clock
from controller.core.clocksync import ClockState, ClockSync
from controller.core.config import Config, MeterSettings
from controller.core.envelope import Outgoing, Topics
from controller.core.events import (
    MeterFailed,
    MeterRead,
    TransactionAuthorizationFailed,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from controller.core.ports import TransactionJournal
from controller.core.pricing import price_before_start
from controller.core.sessions import (
    Authorization,
    Flag,
    Reading,
    SessionContext,
    SessionRecord,
    SessionStore,
)
from controller.core.settlement import Correction, CorrectionError, MeterFeed
from controller.core.tariffs import Tariff, TariffError, parse_tariff
from controller.core.token_sync import TokenCache, pick
from controller.core.transactions import TransactionRecord
from controller.core.uplink import cdr_message, session_message

log = logging.getLogger(__name__)

TxEvent = TransactionStarted | TransactionUpdated | TransactionEnded


@dataclass(frozen=True, slots=True)
class _Flush:
    """A rate-limited session's latest state is due now."""

    session_id: str


@dataclass(frozen=True, slots=True)
class _Late:
    """A transaction event heard late (restart, journal): no reading taken now belongs to it."""

    event: TxEvent


@dataclass(frozen=True, slots=True)
class _MeterNews:
    """A bound meter's news for the session running at its EVSE: a reading, or why there is none."""

    evse_uid: str
    reading: Reading | None
    problem: str | None


@dataclass(slots=True)
class _MeterState:
    """The latest energy register of a bound meter, as the Modbus service reported it."""

    meter_id: str
    evse_uid: str
    max_age_s: float  # older than this, the reading is stale
    reading: Reading | None = None
    read_mono: float | None = None
    problem: str | None = "no reading yet"


def _bound(m: MeterSettings) -> _MeterState:
    return _MeterState(m.id, m.role[5:], 3.0 * max(m.slow_interval, m.poll_interval) + 1.0)


# A clock that never synchronizes (no NTP configured) must not flood the log: one line per session.
_ALWAYS_SYNCED = ClockState(True, "not checked")


class _NoClockSync:
    """Used when no ClockSync adapter is given: treats the clock as synchronized."""

    def state(self) -> ClockState:
        return _ALWAYS_SYNCED


class SessionService:
    """Turns transaction events into OCPI Sessions and CDRs in arrival order; serves the API."""

    def __init__(
        self,
        config: Config,
        store: SessionStore,
        tariffs: Mapping[str, Tariff],
        tokens: TokenCache,
        journal: TransactionJournal,
        *,
        authorization: Callable[[TransactionStarted], Authorization],
        evse_of: Callable[[str, int | None], str | None],
        evses: Callable[[], Collection[str]],
        tz: tzinfo,
        clock: Clock,
        send: Callable[[Sequence[Outgoing]], Future[None]],
        topics: Topics,
        clock_sync: ClockSync | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._tokens = tokens
        self._journal = journal
        self._authorization = authorization
        self._evse_of = evse_of
        self._evses = evses
        self._tz = tz
        self._clock = clock
        self._send = send
        self._topics = topics
        self._interval = config.mqtt.session_update_interval
        self._clock_sync: ClockSync = clock_sync or _NoClockSync()
        self._run_id = uuid.uuid4().hex  # monotonic times are comparable only within one run
        self._correcting = asyncio.Lock()
        # Bound meters (role evse:<uid>) by meter id; energy counters are read every slow_interval.
        self._meters = {m.id: _bound(m) for m in config.meters if m.role.startswith("evse:")}
        self._queue: asyncio.Queue[TxEvent | TransactionAuthorizationFailed | _Flush | _Late | _MeterNews] = (
            asyncio.Queue()
        )
        self._open: dict[str, SessionRecord] = {}  # by transaction key
        self._sealed: dict[str, Tariff | None] = {}  # each open session's tariff, parsed once
        self._last_sent: dict[str, float] = {}  # monotonic time of the last Session update sent
        self._dirty: set[str] = set()  # session ids with an unsent newer state
        self.resumed = asyncio.Event()  # set once stored state and the journal were reconciled
        self._known = tariffs  # a live view: the tariff sync updates it

    def use_config(self, config: Config) -> None:
        """Adopt a configuration that gained meters while running (live commissioning).

        A newly bound meter bills the EVSE's next session; the one running there keeps its source,
        since it has no start reading from that meter (settlement ignores meters without one).
        """
        self._config = config
        for m in config.meters:
            if m.role.startswith("evse:") and m.id not in self._meters:
                self._meters[m.id] = _bound(m)

    # --- inputs ----------------------------------------------------------------------------

    def handle(self, event: object) -> None:
        """Bus subscriber: queue a transaction event for the session task (never blocks)."""
        if isinstance(
            event, TransactionStarted | TransactionUpdated | TransactionEnded | TransactionAuthorizationFailed
        ):
            self._queue.put_nowait(event)

    def handle_meter(self, event: object) -> None:
        """Bus subscriber for MeterRead/MeterFailed: keep bound meters' registers (never blocks)."""
        if not isinstance(event, MeterRead | MeterFailed) or (m := self._meters.get(event.meter_id)) is None:
            return
        news: _MeterNews | None
        if isinstance(event, MeterFailed):
            m.problem = f"poll failed: {event.reason}"
            news = _MeterNews(m.evse_uid, None, m.problem)
        else:
            wh = event.values.get("energy_import")
            if wh is None:
                m.problem = event.problems.get("energy_import", "no energy value")
                news = _MeterNews(m.evse_uid, None, m.problem)
            else:
                # A slow register carried over from an earlier poll was read that much earlier.
                age = float(event.value_ages.get("energy_import", 0.0))
                m.reading = Reading(event.at - timedelta(seconds=age), float(wh))
                m.read_mono, m.problem = self._clock.monotonic() - age, None
                news = _MeterNews(m.evse_uid, m.reading, None)
        if any(r.evse_uid == m.evse_uid for r in self._open.values()):
            self._queue.put_nowait(news)  # only while a session runs there: the task has work

    def _feed(self, evse_uid: str) -> MeterFeed | None:
        """The bound meter's register now, with whether it can be trusted as current."""
        m = next((m for m in self._meters.values() if m.evse_uid == evse_uid), None)
        if m is None:
            return None
        age = None if m.read_mono is None else self._clock.monotonic() - m.read_mono
        fresh = m.problem is None and age is not None and age <= m.max_age_s
        problem = m.problem or (None if fresh else f"stale ({age or 0:.0f} s old)")
        return MeterFeed(m.meter_id, m.reading, fresh, problem)

    def _alarm(self, rec: SessionRecord, flags: Sequence[Flag]) -> None:
        for f in flags:
            log.warning("session %s at %s: %s: %s", rec.session_id, rec.evse_uid, f.kind, f.detail)

    # --- the task --------------------------------------------------------------------------

    async def run(self) -> None:
        """Resume after a restart, then apply events one at a time until cancelled."""
        await self._resume()
        self.resumed.set()
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Flush):
                    self._flush(item.session_id)
                elif isinstance(item, _MeterNews):
                    await self._meter_news(item)
                elif isinstance(item, _Late):
                    await self._apply(item.event, live=False)
                else:
                    await self._apply(item)
            except Exception:
                log.exception("sessions: could not apply %s", type(item).__name__)
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Wait until every queued event is applied (at shutdown, before the task is cancelled)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            log.warning("sessions: %d event(s) not applied at shutdown", self._queue.qsize())

    async def _resume(self) -> None:
        """Hand over stored CDRs not yet in the outbox; pick up what the journal knows better."""
        for session_id, cdr in await asyncio.to_thread(self._store.unsent_cdrs):
            await self._hand_over_cdr(session_id, cdr)
        for rec in await asyncio.to_thread(self._store.open_sessions):
            self._open[rec.key] = rec
            self._sealed[rec.key] = self._parse(rec.tariff)
            journal = await asyncio.to_thread(self._journal.get, rec.key)
            if journal is not None and journal.ended:
                # The stop was committed to the journal but not yet to the session (a crash).
                await self._apply(_ended_of(journal), live=False)
            else:
                self._publish(rec, force=True)
        for tx in await asyncio.to_thread(self._journal.open_transactions):
            if tx.key in self._open or tx.started_at is None:
                continue
            if await asyncio.to_thread(self._store.get, core.session_id_of(tx.key)) is not None:
                continue
            # The transaction started before sessions existed (or before the session was stored).
            await self._apply(_started_of(tx), live=False)
            if tx.sampled_at is not None and tx.energy_wh is not None and tx.sampled_at > tx.started_at:
                await self._apply(_updated_of(tx), live=False)
        for seq, cdr in await asyncio.to_thread(self._store.unsent_corrections):
            await self._hand_over_corrections([(seq, cdr)])

    async def _meter_news(self, news: _MeterNews) -> None:
        """A bound meter's reading or problem, applied to the session running at its EVSE."""
        rec = next((r for r in self._open.values() if r.evse_uid == news.evse_uid), None)
        if rec is None:
            return
        before = list(rec.flags)
        new: list[core.MeterPoint] = []
        if news.reading is None:
            flags = settlement.on_meter_problem(rec, self._clock.now(), news.problem or "no value")
        else:
            new, flags = settlement.on_meter(rec, news.reading)
            flags += settlement.on_clock(rec, self._clock_sync.state(), news.reading.at)
        if not new and rec.flags == before:
            return  # nothing durable changed: the next point or event stores the latest reading
        self._alarm(rec, flags)
        await self._commit(rec, [], force=bool(flags), new_meter=new)

    async def _apply(self, ev: TxEvent | TransactionAuthorizationFailed, live: bool = True) -> None:
        now = self._clock.now()
        if isinstance(ev, TransactionAuthorizationFailed):
            await self._invalidate(ev, now)
            return
        rec = self._open.get(ev.key)
        if rec is None:
            if await asyncio.to_thread(self._store.get, core.session_id_of(ev.key)) is not None:
                return  # a finished session: nothing changes it any more
            start = ev if isinstance(ev, TransactionStarted) else core.started_event_of(ev)
            # A start first heard through a later message was not live, whatever that message is.
            rec = await self._open_session(start, now, live and isinstance(ev, TransactionStarted))
        elif isinstance(ev, TransactionStarted):
            return  # already open (a restart resumed it)
        before = rec.status
        flags = settlement.on_clock(rec, self._clock_sync.state(), now)
        new_meter: list[core.MeterPoint] = []
        match ev:
            case TransactionStarted():
                self._alarm(rec, flags)
                if flags:
                    await self._commit(rec, [], force=True)
                return
            case TransactionUpdated():
                new = core.apply_update(rec, ev, now)
                feed = self._feed(rec.evse_uid)
                if feed is not None and feed.fresh and feed.reading is not None:
                    more_points, more = settlement.on_meter(rec, feed.reading)
                    new_meter, flags = more_points, flags + more
            case TransactionEnded():
                new = core.apply_end(rec, ev, now)
                if rec.ended_at is not None:
                    new_meter, more = settlement.finish(
                        rec,
                        self._feed(rec.evse_uid),
                        settlement.tolerance_for(self._config, rec.evse_uid),
                        live and not ev.offline,
                        self._run_id,
                        self._clock.monotonic(),
                    )
                    flags += more
        self._alarm(rec, flags)
        await self._commit(rec, new, force=rec.status is not before or bool(flags), new_meter=new_meter)
        if rec.status.final:
            await self._close(rec)

    async def _invalidate(self, ev: TransactionAuthorizationFailed, now: datetime) -> None:
        """Late truth: keep the session, mark it INVALID (not billed) and tell the backend at once."""
        rec = self._open.get(ev.key)
        if rec is None:
            log.warning("session of %s: authorization failed (%s) after it was closed", ev.key, ev.reason)
            return
        log.warning("session %s: token found invalid (%s); marked INVALID", rec.session_id, ev.reason)
        core.invalidate(rec, now)
        await self._commit(rec, [], force=True)

    async def _open_session(self, ev: TransactionStarted, now: datetime, live: bool) -> SessionRecord:
        evse_uid = self._evse_of(ev.charger_id, ev.ocpp_evse)
        if evse_uid is None:
            # OCPI needs an EVSE; a transaction on an unmapped one is still billed, under this name.
            evse_uid = f"{ev.charger_id}-{ev.ocpp_evse or 0}"[:36]
            log.warning("session %s: no configured EVSE for %s, using %s", ev.key, ev.charger_id, evse_uid)
        token = None
        if ev.id_tag:
            token = pick(await asyncio.to_thread(self._tokens.lookup, ev.id_tag))
        site = self._config.site
        tariff = core.choose_tariff(core.tariff_ids_for(self._config, evse_uid), self._known, ev.started_at)
        ctx = SessionContext(
            evse_uid=evse_uid,
            token=core.cdr_token_of(token, ev.id_tag, site.country_code, site.party_id),
            auth=self._authorization(ev),
            tariff=None if tariff is None else dict(tariff.raw),
            currency=tariff.currency if tariff is not None else site.currency,
            meter_id=core.meter_id_for(self._config, evse_uid),
            now=now,
        )
        rec = core.open_session(ev.key, ev.charger_id, ev.started_at, ctx)
        source = settlement.energy_source_for(self._config, evse_uid)
        flags = settlement.begin(
            rec, source, self._feed(evse_uid), live and not ev.offline, self._run_id, self._clock.monotonic()
        )
        flags += settlement.on_clock(rec, self._clock_sync.state(), now)
        self._alarm(rec, flags)
        self._open[ev.key] = rec
        self._sealed[ev.key] = tariff
        await self._commit(rec, rec.points, force=True, new_meter=rec.meter_points)
        return rec

    async def _commit(
        self,
        rec: SessionRecord,
        new: Sequence[core.MeterPoint],
        force: bool,
        new_meter: Sequence[core.MeterPoint] = (),
    ) -> None:
        """Price, store durably, then publish (now, or when the rate limit allows)."""
        cost = core.price(self._sealed.get(rec.key), rec.currency, self._tz, rec.billed)
        site = self._config.site
        rec.ocpi = core.session_object(rec, cost, site.country_code, site.party_id, site.location_id)
        await asyncio.to_thread(self._store.save, rec, new, new_meter)
        self._publish(rec, force)

    def _publish(self, rec: SessionRecord, force: bool) -> None:
        now = self._clock.monotonic()
        last = self._last_sent.get(rec.session_id)
        if core.due(last, now, self._interval, force):
            self._send([session_message(rec.ocpi, self._topics)])
            self._last_sent[rec.session_id] = now
            self._dirty.discard(rec.session_id)
            return
        if rec.session_id not in self._dirty and last is not None:
            self._dirty.add(rec.session_id)
            delay = max(0.0, last + self._interval - now)
            asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, _Flush(rec.session_id))

    def _flush(self, session_id: str) -> None:
        rec = next((r for r in self._open.values() if r.session_id == session_id), None)
        if rec is not None and session_id in self._dirty:
            self._publish(rec, force=True)

    async def _close(self, rec: SessionRecord) -> None:
        """Seal the CDR: built once, stored before it is queued, so a restart re-sends the same one."""
        if rec.invalid:
            # OCPI: an INVALID session is not billed, so it gets no CDR; the session object (sent
            # with status INVALID) and the journal keep the facts for the operator.
            await asyncio.to_thread(self._store.save, rec, [])
            self._forget(rec)
            return
        site = self._config.site
        cost = core.price(self._sealed.get(rec.key), rec.currency, self._tz, rec.billed)
        location = core.cdr_location(self._config, rec.evse_uid, rec.connector_id)
        cdr = core.cdr_object(
            rec,
            cost,
            site.country_code,
            site.party_id,
            location,
            self._clock.now(),
            remark=settlement.remark(rec),
        )
        stored = await asyncio.to_thread(self._store.put_cdr, rec.session_id, cdr)
        rec.cdr_id = stored["id"]
        await asyncio.to_thread(self._store.save, rec, [])
        self._forget(rec)
        await self._hand_over_cdr(rec.session_id, stored)

    def _forget(self, rec: SessionRecord) -> None:
        """Drop a closed session from the in-memory working set (the store keeps it)."""
        self._open.pop(rec.key, None)
        self._sealed.pop(rec.key, None)
        self._dirty.discard(rec.session_id)
        self._last_sent.pop(rec.session_id, None)

    async def _hand_over_cdr(self, session_id: str, cdr: dict[str, Any]) -> None:
        # Marked sent only once the outbox committed it: a crash in between re-sends the same CDR.
        await asyncio.wrap_future(self._send([cdr_message(cdr, self._topics)]))
        await asyncio.to_thread(self._store.mark_cdr_sent, session_id)
        log.info("CDR %s of session %s queued", cdr["id"], session_id)

    async def _hand_over_corrections(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Queue correction CDRs in their order (credit before its replacement), then mark them sent."""
        await asyncio.wrap_future(self._send([cdr_message(cdr, self._topics) for _, cdr in rows]))
        await asyncio.to_thread(self._store.mark_correction_sent, [seq for seq, _ in rows])
        for _, cdr in rows:
            log.info("correction CDR %s queued (credit: %s)", cdr["id"], bool(cdr.get("credit")))

    # --- settlement (Settlement port) ------------------------------------------------------

    async def settlement(self, session_id: str) -> dict[str, Any] | None:
        """A session's settlement facts: both energies, the source, flags, duration, its CDRs."""
        rec = await asyncio.to_thread(self._store.get, session_id)
        if rec is None:
            return None
        live = next((r for r in self._open.values() if r.session_id == session_id), None)
        cdrs = await asyncio.to_thread(self._store.cdrs_of, session_id)
        return settlement.settlement_view(live or rec, cdrs)

    async def alarms(self, limit: int) -> list[dict[str, Any]]:
        """Recent sessions with alarms, newest first (of the last 1000 sessions)."""
        records = await asyncio.to_thread(self._store.listing, 1000, None)
        flagged = [r for r in records if settlement.alarms_of(r)][:limit]
        return [settlement.settlement_view(r, []) for r in flagged]

    async def correct(self, session_id: str, correction: Correction) -> dict[str, Any]:
        """Credit the session's current CDR and issue a corrected one; both go up in this order."""
        async with self._correcting:  # one correction at a time: each credits the previous result
            rec = await asyncio.to_thread(self._store.get, session_id)
            if rec is None:
                raise CorrectionError(404, f"no session {session_id}")
            if rec.invalid:
                raise CorrectionError(409, "an INVALID session is not billed: there is no CDR to correct")
            if not rec.status.final or rec.cdr_id is None:
                raise CorrectionError(409, "the session has no CDR yet (still running?)")
            if not await asyncio.to_thread(self._store.cdr_sent, session_id):
                raise CorrectionError(409, "the session's CDR is not queued for the backend yet; retry")
            cdrs = await asyncio.to_thread(self._store.cdrs_of, session_id)
            current = next(c for c in reversed(cdrs) if not c.get("credit"))
            tariff = self._sealed_or_parsed(rec)
            fixed = replace(rec)
            if correction.tariff_id is not None:
                tariff = self._known.get(correction.tariff_id)
                if tariff is None:
                    raise CorrectionError(422, f"tariff_id: no tariff {correction.tariff_id} is known")
                fixed = replace(rec, tariff=dict(tariff.raw), currency=tariff.currency)
            series = settlement.corrected_series(rec, correction)
            if correction.energy_source is not None:
                fixed.energy_source = correction.energy_source
            cost = core.price(tariff, fixed.currency, self._tz, series)
            credit_id, new_id = settlement.correction_ids(rec, current["id"], len(cdrs) // 2 + 1)
            now = self._clock.now()
            site = self._config.site
            location = core.cdr_location(self._config, rec.evse_uid, rec.connector_id)
            note = f"corrects CDR {current['id']}: {correction.reason}"
            new = core.cdr_object(
                fixed,
                cost,
                site.country_code,
                site.party_id,
                location,
                now,
                cdr_id=new_id,
                remark=core.join_remarks(note, settlement.remark(rec)),
            )
            credit = settlement.credit_cdr(current, credit_id, now)
            await asyncio.to_thread(self._store.add_correction, session_id, credit, new, correction.reason)
            rec.cdr_id = new_id
            await asyncio.to_thread(self._store.save, rec, [])
            pending = await asyncio.to_thread(self._store.unsent_corrections)
            await self._hand_over_corrections(pending)
            log.warning(
                "session %s: CDR %s credited, replaced by %s (%s)",
                session_id,
                current["id"],
                new_id,
                correction.reason,
            )
            return {"credit": credit, "cdr": new}

    def _sealed_or_parsed(self, rec: SessionRecord) -> Tariff | None:
        for key, r in self._open.items():
            if r.session_id == rec.session_id:
                return self._sealed.get(key)
        return self._parse(rec.tariff)

    @staticmethod
    def _parse(raw: dict[str, Any] | None) -> Tariff | None:
        if raw is None:
            return None
        try:
            return parse_tariff(raw)
        except TariffError:
            log.exception("sealed tariff no longer parses; pricing without it")
            return None

    # --- queries (SessionQueries port) -----------------------------------------------------

    async def sessions(self, limit: int, status: str | None) -> list[dict[str, Any]]:
        """OCPI Sessions, newest first."""
        records = await asyncio.to_thread(self._store.listing, limit, status)
        return [r.ocpi for r in records]

    async def session(self, session_id: str) -> dict[str, Any] | None:
        """One OCPI Session."""
        rec = await asyncio.to_thread(self._store.get, session_id)
        return None if rec is None else rec.ocpi

    async def partner_report(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per-eMSP figures for sessions started in [start, end)."""
        records = await asyncio.to_thread(self._store.started_between, start, end)
        return core.partner_report(records, start, end)

    def price(self, evse_uid: str) -> dict[str, Any] | None:
        """The ad hoc price of an EVSE now, in words and per component."""
        if evse_uid not in self._evses():
            return None
        now = self._clock.now()
        ids = core.tariff_ids_for(self._config, evse_uid)
        tariff = core.choose_tariff(ids, self._known, now)
        if tariff is None:
            return {"evse_uid": evse_uid, "tariff_id": None, "tariff_ids": ids, "text": "no tariff known"}
        return {"evse_uid": evse_uid, "tariff_ids": ids, **price_before_start(tariff, self._tz, now)}


def _started_of(tx: TransactionRecord) -> TransactionStarted:
    assert tx.started_at is not None
    return TransactionStarted(
        tx.key,
        tx.charger_id,
        tx.ocpp_version,
        tx.ocpp_evse,
        tx.connector_id,
        tx.ocpp_tx_id,
        tx.id_tag,
        tx.started_at,
        tx.meter_start_wh,
        tx.offline,
        tx.remote_start_id,
    )


def _updated_of(tx: TransactionRecord) -> TransactionUpdated:
    assert tx.sampled_at is not None
    return TransactionUpdated(
        tx.key,
        tx.charger_id,
        tx.ocpp_version,
        tx.ocpp_evse,
        tx.connector_id,
        tx.ocpp_tx_id,
        tx.id_tag,
        tx.started_at,
        tx.sampled_at,
        tx.energy_wh,
        tx.power_w,
        tx.charging_state,
    )


def _ended_of(tx: TransactionRecord) -> TransactionEnded:
    return TransactionEnded(
        tx.key,
        tx.charger_id,
        tx.ocpp_version,
        tx.ocpp_evse,
        tx.connector_id,
        tx.ocpp_tx_id,
        tx.id_tag,
        tx.started_at,
        tx.stopped_at or tx.updated_at,
        tx.meter_start_wh,
        tx.meter_stop_wh,
        tx.energy_wh,
        tx.stop_reason or "Local",
        (),
        tx.offline,
    )

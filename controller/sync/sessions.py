"""Sessions and CDRs to the backend, tariffs from it: the core's session rules, durably applied."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from controller.core import sessions as core
from controller.core.clock import Clock
from controller.core.config import Config
from controller.core.envelope import Outgoing, Topics
from controller.core.events import (
    TransactionAuthorizationFailed,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from controller.core.ports import TransactionJournal
from controller.core.pricing import price_before_start
from controller.core.sessions import (
    Authorization,
    SessionContext,
    SessionRecord,
    SessionStore,
)
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
        self._queue: asyncio.Queue[TxEvent | TransactionAuthorizationFailed | _Flush] = asyncio.Queue()
        self._open: dict[str, SessionRecord] = {}  # by transaction key
        self._sealed: dict[str, Tariff | None] = {}  # each open session's tariff, parsed once
        self._last_sent: dict[str, float] = {}  # monotonic time of the last Session update sent
        self._dirty: set[str] = set()  # session ids with an unsent newer state
        self.resumed = asyncio.Event()  # set once stored state and the journal were reconciled
        self._known = tariffs  # a live view: the tariff sync updates it

    # --- inputs ----------------------------------------------------------------------------

    def handle(self, event: object) -> None:
        """Bus subscriber: queue a transaction event for the session task (never blocks)."""
        if isinstance(
            event, TransactionStarted | TransactionUpdated | TransactionEnded | TransactionAuthorizationFailed
        ):
            self._queue.put_nowait(event)

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
                await self._apply(_ended_of(journal))
            else:
                self._publish(rec, force=True)
        for tx in await asyncio.to_thread(self._journal.open_transactions):
            if tx.key in self._open or tx.started_at is None:
                continue
            if await asyncio.to_thread(self._store.get, core.session_id_of(tx.key)) is not None:
                continue
            # The transaction started before sessions existed (or before the session was stored).
            await self._apply(_started_of(tx))
            if tx.sampled_at is not None and tx.energy_wh is not None and tx.sampled_at > tx.started_at:
                await self._apply(_updated_of(tx))

    async def _apply(self, ev: TxEvent | TransactionAuthorizationFailed) -> None:
        now = self._clock.now()
        if isinstance(ev, TransactionAuthorizationFailed):
            await self._invalidate(ev, now)
            return
        rec = self._open.get(ev.key)
        if rec is None:
            if await asyncio.to_thread(self._store.get, core.session_id_of(ev.key)) is not None:
                return  # a finished session: nothing changes it any more
            start = ev if isinstance(ev, TransactionStarted) else core.started_event_of(ev)
            rec = await self._open_session(start, now)
        elif isinstance(ev, TransactionStarted):
            return  # already open (a restart resumed it)
        before = rec.status
        match ev:
            case TransactionStarted():
                return
            case TransactionUpdated():
                new = core.apply_update(rec, ev, now)
            case TransactionEnded():
                new = core.apply_end(rec, ev, now)
        await self._commit(rec, new, force=rec.status is not before)
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

    async def _open_session(self, ev: TransactionStarted, now: datetime) -> SessionRecord:
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
        self._open[ev.key] = rec
        self._sealed[ev.key] = tariff
        await self._commit(rec, rec.points, force=True)
        return rec

    async def _commit(self, rec: SessionRecord, new: Sequence[core.MeterPoint], force: bool) -> None:
        """Price, store durably, then publish (now, or when the rate limit allows)."""
        cost = core.price(self._sealed.get(rec.key), rec.currency, self._tz, rec.points)
        site = self._config.site
        rec.ocpi = core.session_object(rec, cost, site.country_code, site.party_id, site.location_id)
        await asyncio.to_thread(self._store.save, rec, new)
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
        cost = core.price(self._sealed.get(rec.key), rec.currency, self._tz, rec.points)
        location = core.cdr_location(self._config, rec.evse_uid, rec.connector_id)
        cdr = core.cdr_object(rec, cost, site.country_code, site.party_id, location, self._clock.now())
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

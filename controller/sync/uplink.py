"""Drains the durable outbox to the broker in a bounded window; deletes only after PUBACK."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.config import MqttSettings
from controller.core.envelope import Outgoing
from controller.core.events import UplinkChanged
from controller.core.ports import Outbox
from controller.core.stats import Histogram
from controller.sync.connection import BrokerConnection, online_payload
from controller.sync.downlink import Downlink

log = logging.getLogger(__name__)

# Deletes of PUBACKed rows are committed in groups at most this long after the first PUBACK:
# one transaction (and fsync) for many messages. A crash in between only means redelivery of
# messages the broker already has, which the contract allows (at least once, with ids).
ACK_DELAY = 0.2
# A backlog figure that only moved is reported at most this often (every drain pass would send
# an UplinkChanged through the site for each message); a state change is reported at once.
REPORT_EVERY = 0.5


class Uplink:
    """The box-to-backend link: durable enqueue, ordered drain, acknowledgement bookkeeping."""

    def __init__(
        self,
        settings: MqttSettings,
        outbox: Outbox,
        clock: Clock,
        emit: Callable[[object], None],
        version: str,
        downlink: Downlink | None = None,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._emit = emit
        self._window = settings.max_inflight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._inflight: dict[int, tuple[int, float]] = {}  # paho mid -> (outbox row, monotonic publish time)
        self._epoch = 0  # counts reconnects: a read from before one is stale
        self.ack_seconds = Histogram()  # publish -> PUBACK of delivered messages (/metrics)
        self._acking: set[int] = set()  # delivered rows whose delete is not yet committed
        self._to_delete: list[int] = []  # delivered rows waiting for the next grouped delete
        self._delete_timer: asyncio.TimerHandle | None = None
        # Crossings from the outbox and paho threads are coalesced: one loop wake-up for many.
        self._cross_lock = threading.Lock()
        self._acked_mids: list[int] = []
        self._acks_scheduled = False
        self._wake_scheduled = False
        self._dirty = True  # rows may have been committed since the drain last read
        self._more = False  # the drain's last read filled its window: more rows may be waiting
        self._task: asyncio.Task[None] | None = None
        self._downlink = downlink
        self._down_task: asyncio.Task[None] | None = None
        self._on_connected: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._conn = BrokerConnection(
            settings,
            online_payload(version, rfc3339(clock.now())),
            self._state_threadsafe,
            self._ack_threadsafe,
            subscriptions=(lambda: downlink.filters) if downlink else tuple,
            on_message=downlink.deliver_threadsafe if downlink else None,
        )
        self._last_reported: tuple[bool, int, int, bool] | None = None
        self._last_report_at = 0.0
        self.published = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (in the background) and start draining."""
        self._loop = asyncio.get_running_loop()
        if self._downlink is not None:
            self._downlink.attach()
            self._down_task = asyncio.create_task(self._downlink.run(), name="uplink-downlink")
        self._conn.start()
        self._task = asyncio.create_task(self._drain(), name="uplink-drain")

    async def stop(self) -> None:
        """Stop draining, say offline, disconnect; unacknowledged messages stay in the outbox."""
        tasks = [t for t in (self._task, self._down_task, *self._side_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._delete_acked()  # queued before the outbox closes, so committed by its close
        await asyncio.to_thread(self._conn.stop)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._conn.connected

    # --- producers -------------------------------------------------------------------------

    def enqueue(self, messages: Sequence[Outgoing]) -> Future[None]:
        """Store messages durably; the drain picks them up once committed."""
        fut = self._outbox.put(messages)
        fut.add_done_callback(lambda f: self._wake_threadsafe())
        return fut

    # --- thread crossings ------------------------------------------------------------------

    def _wake_threadsafe(self) -> None:
        with self._cross_lock:
            if self._wake_scheduled:
                return  # the scheduled wake-up runs after this commit, so the drain will see it
            self._wake_scheduled = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._committed)

    def _state_threadsafe(self, connected: bool, detail: str) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_state, connected, detail)

    def _ack_threadsafe(self, mid: int) -> None:
        with self._cross_lock:
            self._acked_mids.append(mid)
            if self._acks_scheduled:
                return
            self._acks_scheduled = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_acks)

    # --- loop side -------------------------------------------------------------------------

    def on_connected(self, callback: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run callback (a coroutine function) after every successful (re)connect."""
        self._on_connected.append(callback)

    def _on_state(self, connected: bool, detail: str) -> None:
        if connected:
            for callback in self._on_connected:
                self._spawn(callback(), "uplink-on-connected")
            # Whatever paho still holds from the last connection may or may not reach the broker;
            # the outbox is the truth, so re-send every unacknowledged row (duplicates carry ids).
            self._inflight.clear()
            self._epoch += 1  # a read in flight excluded rows that are no longer in flight
        self._report(detail, force=True)
        self._dirty = True
        self._wake.set()

    def _committed(self) -> None:
        with self._cross_lock:
            self._wake_scheduled = False
        self._dirty = True
        self._wake.set()

    def _on_acks(self) -> None:
        with self._cross_lock:
            mids, self._acked_mids = self._acked_mids, []
            self._acks_scheduled = False
        now = time.monotonic()
        for mid in mids:
            found = self._inflight.pop(mid, None)
            if found is None:
                continue
            row, sent = found
            self.ack_seconds.observe(now - sent)
            self.published += 1
            # Until the delete commits, the row is still "pending" on disk: keep it out of the
            # next read, or it would be published twice.
            self._acking.add(row)
            self._to_delete.append(row)
        if self._to_delete and self._delete_timer is None and self._loop is not None:
            self._delete_timer = self._loop.call_later(ACK_DELAY, self._delete_acked)
        if self._more:
            self._wake.set()  # the window had filled up: room again for rows already waiting

    def _delete_acked(self) -> None:
        if self._delete_timer is not None:
            self._delete_timer.cancel()
            self._delete_timer = None
        rows, self._to_delete = self._to_delete, []
        if rows:
            self._outbox.ack(rows).add_done_callback(lambda f: self._acked_threadsafe(rows))

    def _acked_threadsafe(self, rows: list[int]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._acked, rows)

    def _acked(self, rows: list[int]) -> None:
        self._acking.difference_update(rows)

    def _report(self, detail: str = "", force: bool = False) -> None:
        stats = self._outbox.stats()
        state = (self._conn.connected, stats.pending, stats.dropped_telemetry, stats.near_limit)
        last = self._last_reported
        # Only the backlog moved: throttled (the drain's pass at least once a second reports
        # where it ends up).
        backlog_only = last is not None and state[0] == last[0] and state[2:] == last[2:]
        if not force and backlog_only and time.monotonic() - self._last_report_at < REPORT_EVERY:
            return
        if force or state != last:
            self._last_reported = state
            self._last_report_at = time.monotonic()
            self._emit(
                UplinkChanged(
                    self._conn.connected,
                    stats.pending,
                    self._clock.now(),
                    detail,
                    stats.dropped_telemetry,
                    stats.near_limit,
                )
            )

    async def _drain(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # no helper task per wait, unlike wait_for
                    await self._wake.wait()
            timed_out = not self._wake.is_set()
            self._wake.clear()
            # Read only when something may be waiting: a commit since the last read, a read that
            # filled the window, or the periodic pass (which also catches anything missed).
            while (
                (self._dirty or self._more or timed_out)
                and self._conn.connected
                and len(self._inflight) < self._window
            ):
                self._dirty = timed_out = False
                room = self._window - len(self._inflight)
                busy = {row for row, _ in self._inflight.values()} | self._acking
                epoch = self._epoch
                rows = await asyncio.to_thread(self._outbox.pending, room, busy)
                if epoch != self._epoch:
                    # Reconnected meanwhile: rows that were in flight (so left out of this read)
                    # must be sent again first; publishing these now would overtake them.
                    self._dirty = True
                    continue
                sent = 0
                for r in rows:
                    mid = self._conn.publish(r.topic, r.payload, r.qos, r.retain)
                    if mid is None:
                        break
                    self._inflight[mid] = (r.row, time.monotonic())
                    sent += 1
                self._more = sent == room
                if sent < room:
                    break
            self._report()

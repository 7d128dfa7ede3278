"""OCPP charge point simulators (1.6J and 2.0.1) that drive realistic sessions over a SiteModel."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import random
import re
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as Ocpp16ChargePoint
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as Ocpp201ChargePoint
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from hil.sim.physics import (
    MIN_POWER_W,
    NOMINAL_VOLTAGE,
    PHASES,
    EvModel,
    SimClock,
    SiteModel,
    current_to_power,
)

log = logging.getLogger(__name__)

# Session phases in 1.6 vocabulary; the 2.0.1 simulator maps them onto its own messages.
PREPARING, CHARGING, SUSPENDED_EV, SUSPENDED_EVSE, FINISHING, AVAILABLE = (
    "Preparing",
    "Charging",
    "SuspendedEV",
    "SuspendedEVSE",
    "Finishing",
    "Available",
)
# Errors after which a session is abandoned and the connector loop carries on.
SESSION_ERRORS = (ConnectionClosed, ConnectionError, TimeoutError, OCPPError)
MAINTENANCE_STEP_S = 0.4  # real seconds between firmware or log stages (a real download takes minutes)


def utc_now() -> str:
    """Current UTC time as RFC 3339 with milliseconds and a Z, as OCPP expects."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class NotConnectedError(ConnectionError):
    """The simulator has no open OCPP connection (and is not reconnecting)."""


@dataclass(eq=False)
class Connector:
    """One connector's simulated state (a 1.6 connector id; a 2.0.1 EVSE id with connector 1)."""

    number: int
    evse_uid: str
    status: str = AVAILABLE  # last status sent, in the protocol's own vocabulary
    available: bool = True
    tx_id: int | str | None = None
    tx_accepted: bool = False
    seq_no: int = 0
    session: asyncio.Task[None] | None = None
    pending_remote: tuple[str, int | None] | None = None  # (id tag, 2.0.1 remoteStartId)
    stop_requested: bool = False
    stop_reason: str = "Remote"
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class BaseChargePointSimulator:
    """Connection, task ownership and the session engine shared by the 1.6J and 2.0.1 simulators.

    Physics lives in a SiteModel (shared with meter simulators for a consistent site); its clock
    sets the time compression. Energy integrates in simulated time, timestamps are wall-clock.
    """

    version = ""
    subprotocol = ""

    def __init__(
        self,
        cp_id: str,
        csms_url: str,
        *,
        connectors: int = 1,
        password: str | None = None,
        site: SiteModel | None = None,
        speed: float = 1.0,
        meter_interval_s: float = 60.0,
        max_power_w: float = 22_000.0,
        vendor: str = "siteedge-hil",
        model: str = "SimCharger",
        serial: str | None = None,
        firmware: str = "1.0.0",
        reconnect: bool = False,
        response_timeout: float = 10.0,
        id_tags: Sequence[str] = ("SIMTAG0001", "SIMTAG0002", "SIMTAG0003"),
        seed: int | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.id = cp_id
        self.url = f"{csms_url.rstrip('/')}/{cp_id}"
        self.password = password
        self.site = site if site is not None else SiteModel(clock=SimClock(speed), seed=seed)
        self.meter_interval_s = meter_interval_s
        self.vendor, self.model, self.firmware = vendor, model, firmware
        self.serial = serial or f"SIM-{cp_id}"
        self.reconnect = reconnect
        self.response_timeout = response_timeout
        self.id_tags = tuple(id_tags)
        self.connectors = {n: Connector(n, f"{cp_id}-{n}") for n in range(1, connectors + 1)}
        for conn in self.connectors.values():
            self.site.add_evse(conn.evse_uid, max_power_w)
        self.received: list[tuple[str, dict[str, Any]]] = []  # CSMS-initiated calls, in order
        self.registration: str | None = None  # status of the last BootNotification
        self.heartbeat_interval = 0
        self._rng = random.Random(seed)
        self._ws: ClientConnection | None = None
        self._link: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[Any] | None = None
        self._online = asyncio.Event()  # connected and booted (Accepted)
        self._closing = False
        self._boot_reason = "PowerUp"
        self._ev_models: tuple[EvModel, ...] = (EvModel(),)
        self._session_stop = asyncio.Event()
        self.local_list_version = 0  # SendLocalList / GetLocalListVersion
        self.local_list: dict[str, str] = {}  # id token -> status held for offline decisions
        self.reservations: dict[int, int] = {}  # reservation id -> connector
        # The charger's own clock for message timestamps (a test may run it at another time).
        self.wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self.displayed: dict[int, dict[str, Any]] = {}  # 2.0.1 SetDisplayMessage by message id
        self.data_transfers: list[tuple[str, str | None, str | None]] = []  # (vendorId, messageId, data)
        # Set by a test or the demo: the next firmware update ends with this status instead of
        # Installed ("DownloadFailed" or "InstallationFailed"); the next log upload fails if True.
        self.firmware_fails: str | None = None
        self.log_upload_fails = False
        self.has_diagnostics = True  # False: a 1.6 GetDiagnostics is answered without a fileName
        self.maintenance_step_s = MAINTENANCE_STEP_S  # a browser test slows the stages to watch them

    def timestamp(self) -> str:
        """The charger clock's time as RFC 3339 with milliseconds and a Z, as OCPP expects."""
        return self.wall_clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # --- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._ws is not None

    def _make_link(self, ws: ClientConnection) -> Any:
        raise NotImplementedError

    async def connect(self) -> None:
        """Open the WebSocket with this version's subprotocol and start serving CSMS calls."""
        if self._ws is not None:
            return
        self._closing = False
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        ws = await connect(
            self.url,
            subprotocols=[Subprotocol(self.subprotocol)],
            additional_headers=headers,
            open_timeout=self.response_timeout,
        )
        if ws.subprotocol != self.subprotocol:
            await ws.close()
            raise ConnectionError(f"CSMS did not accept subprotocol {self.subprotocol}")
        self._ws, self._link = ws, self._make_link(ws)
        self._spawn(self._serve(self._link, ws), "serve")

    async def _serve(self, link: Any, ws: ClientConnection) -> None:
        try:
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._lost_connection()

    def _forget_connection(self) -> ClientConnection | None:
        ws, self._ws, self._link = self._ws, None, None
        self._online.clear()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        return ws

    def _lost_connection(self) -> None:
        self._forget_connection()
        reconnecting = self._reconnecting is not None and not self._reconnecting.done()
        if self.reconnect and not self._closing and not reconnecting:
            self._reconnecting = self._spawn(self._reconnect(), "reconnect")

    async def _reconnect(self) -> None:
        """Reconnect with capped backoff, boot until Accepted, then re-announce every status."""
        delay = 1.0
        while not self._closing:
            try:
                await self.connect()
                await self._boot_until_accepted(self._boot_reason, asyncio.Event())
                await self._announce()
            except (OSError, WebSocketException, *SESSION_ERRORS) as exc:
                log.info("charge point %s: reconnect failed (%r); retrying in %.0f s", self.id, exc, delay)
                await self._drop_connection()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._boot_reason = "PowerUp"
            return

    async def _drop_connection(self) -> None:
        ws = self._forget_connection()
        if ws is not None:
            await ws.close()

    async def close(self) -> None:
        """Cancel every task (sessions, heartbeat, loops), close the socket, zero the power."""
        self._closing = True
        ws = self._forget_connection()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if ws is not None:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in self.connectors.values():
            conn.session = None
            self.site.set_power(conn.evse_uid, 0.0)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("charge point %s: task %s failed", self.id, task.get_name(), exc_info=exc)

    async def _call(self, payload: Any) -> Any:
        """Send a CALL and return its result; with reconnect, wait out an outage and resend."""
        while True:
            link = self._link
            if link is not None and (self._online.is_set() or not self.reconnect):
                try:
                    return await link.call(payload, suppress=False)
                except ConnectionClosed:
                    if not self.reconnect or self._closing:
                        raise
                    if self._link is link:
                        self._online.clear()  # _serve notices the close and starts reconnecting
            elif not self.reconnect or self._closing:
                raise NotConnectedError(f"charge point {self.id} is not connected")
            await self._online.wait()

    # --- protocol primitives (per version) --------------------------------------------------

    def _boot_payload(self, reason: str) -> Any:
        raise NotImplementedError

    async def boot(self, reason: str = "PowerUp") -> str:
        """Send BootNotification; on Accepted start heartbeats. Returns the registration status."""
        if self._link is None:
            raise NotConnectedError(f"charge point {self.id} is not connected")
        result = await self._link.call(self._boot_payload(reason), suppress=False)
        self.registration = str(result.status)
        self.heartbeat_interval = int(result.interval)
        if self.registration == "Accepted":
            self._online.set()
            self._restart_heartbeat()
        return self.registration

    async def _boot_until_accepted(self, reason: str, stop: asyncio.Event) -> bool:
        """Boot, retrying after the CSMS's interval while Pending/Rejected; False if stopped first."""
        while not stop.is_set():
            if await self.boot(reason) == "Accepted":
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.heartbeat_interval or 10)
        return False

    def _restart_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        self._heartbeat = self._spawn(self._heartbeat_loop(), "heartbeat")

    async def _heartbeat_loop(self) -> None:
        # Heartbeats run on wall-clock time: the CSMS judges liveness in real seconds.
        while True:
            await asyncio.sleep(self.heartbeat_interval if self.heartbeat_interval > 0 else 300)
            try:
                await self.heartbeat()
            except SESSION_ERRORS as exc:  # a missed heartbeat is the CSMS's problem to notice
                log.warning("charge point %s: heartbeat failed: %r", self.id, exc)

    async def heartbeat(self) -> str:
        """Send Heartbeat; returns the CSMS's current time."""
        raise NotImplementedError

    async def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        """Send a StatusNotification for one connector."""
        raise NotImplementedError

    async def security_event(self, kind: str, tech_info: str | None = None) -> None:
        """Send SecurityEventNotification (2.0.1, and 1.6 with the security extension)."""
        module = call16 if self.version == "1.6" else call201
        await self._call(
            module.SecurityEventNotification(type=kind, timestamp=self.timestamp(), tech_info=tech_info)
        )

    async def authorize(self, id_tag: str) -> bool:
        """Send Authorize; True if the CSMS accepted the tag."""
        raise NotImplementedError

    async def start_transaction(
        self, connector: int, id_tag: str, meter_start_wh: float, *, remote_start_id: int | None = None
    ) -> int | str:
        """Start a transaction; returns its id (the connector remembers it and whether it was accepted)."""
        raise NotImplementedError

    async def meter_values(self, connector: int, energy_wh: float, power_w: float) -> None:
        """Report the energy register and power (in the running transaction, if any)."""
        raise NotImplementedError

    async def stop_transaction(self, connector: int, meter_stop_wh: float, reason: str = "Local") -> None:
        """Stop the connector's transaction with a 1.6 reason name (mapped for 2.0.1)."""
        raise NotImplementedError

    async def _phase(self, conn: Connector, phase: str) -> None:
        """Tell the CSMS a session phase changed (1.6: a status; 2.0.1: a status or event)."""
        raise NotImplementedError

    async def _announce(self) -> None:
        """Send every connector's current status (after boot or reconnect)."""
        for conn in self.connectors.values():
            await self.status(conn.number, conn.status)

    # --- commands from the CSMS (called by the protocol links) ------------------------------

    def _claim_remote(self, connector: int | None, id_tag: str, remote_start_id: int | None = None) -> bool:
        """Reserve an idle connector for a remote start; the session begins after the reply."""
        if connector:
            candidates = [self.connectors[connector]] if connector in self.connectors else []
        else:
            candidates = list(self.connectors.values())
        for conn in candidates:
            if conn.available and conn.session is None and conn.pending_remote is None:
                conn.pending_remote = (id_tag, remote_start_id)
                return True
        return False

    def _begin_remote_sessions(self) -> None:
        for conn in self.connectors.values():
            if conn.pending_remote is not None and conn.session is None:
                tag, remote_start_id = conn.pending_remote
                conn.pending_remote = None
                conn.session = self._spawn(
                    self._session(
                        conn, self._pick_ev(), tag, self._session_stop, remote_start_id, remote=True
                    ),
                    f"remote-session-{conn.number}",
                )

    def _connector_of_tx(self, tx_id: int | str) -> Connector | None:
        return next((c for c in self.connectors.values() if c.tx_id is not None and c.tx_id == tx_id), None)

    def _request_stop(self, tx_id: int | str, reason: str = "Remote") -> None:
        conn = self._connector_of_tx(tx_id)
        if conn is not None:
            conn.stop_requested, conn.stop_reason = True, reason
            conn.wake.set()

    def _targets(self, connector: int | None) -> list[Connector]:
        return list(self.connectors.values()) if not connector else [self.connectors[connector]]

    def _set_availability(self, targets: Iterable[Connector], available: bool) -> str:
        """Mark connectors (in)operative; busy ones change when their session ends ("Scheduled")."""
        busy = False
        for conn in targets:
            conn.available = available
            busy = busy or conn.session is not None
        return "Scheduled" if busy else "Accepted"

    async def _announce_idle(self, targets: Iterable[Connector]) -> None:
        for conn in targets:
            if conn.session is None:
                await self._phase(conn, AVAILABLE)

    def _set_limit(self, connector: int | None, limit_w: float | None) -> None:
        for conn in self._targets(connector):
            self.site.evses[conn.evse_uid].limit_w = limit_w
            conn.wake.set()

    def _firmware_status(self, status: str, request_id: int | None) -> Any:
        raise NotImplementedError

    def _log_status(self, status: str, request_id: int | None) -> Any:
        raise NotImplementedError

    async def _update_firmware(self, location: str, retrieve_at: str, request_id: int | None) -> None:
        """Wait for the retrieve time, walk the firmware stages (1.6 / 2.0.1 L01), reboot into it.

        The new version is the one in the file name (fw-2.1.0.bin: 2.1.0); Installed is sent
        after the reboot's BootNotification, as a 2.0.1 station does.
        """
        wait = (datetime.fromisoformat(retrieve_at) - self.wall_clock()).total_seconds()
        if wait > 0:
            if self.version != "1.6":  # 1.6 has no word for it: the charger just waits
                await self._notify(self._firmware_status("DownloadScheduled", request_id))
            await asyncio.sleep(wait)
        stages = ["Downloading", "Downloaded", "Installing"]
        for status in stages:
            if self.firmware_fails == "DownloadFailed" and status == "Downloaded":
                status = "DownloadFailed"
            elif self.firmware_fails == "InstallationFailed" and status == "Installing":
                await self._notify(self._firmware_status(status, request_id))
                await asyncio.sleep(self.maintenance_step_s)
                status = "InstallationFailed"
            await self._notify(self._firmware_status(status, request_id))
            if status.endswith("Failed"):
                self.firmware_fails = None
                return
            await asyncio.sleep(self.maintenance_step_s)
        found = re.search(r"(\d+(?:\.\d+)+)", location.rsplit("/", 1)[-1])
        self.firmware = found.group(1) if found else f"{self.firmware}+1"
        if self.version != "1.6":
            await self._notify(self._firmware_status("InstallRebooting", request_id))
        await self._reset("Reboot", boot_reason="FirmwareUpdate")
        await self._notify(self._firmware_status("Installed", request_id))
        with contextlib.suppress(*SESSION_ERRORS):
            await self.security_event("FirmwareUpdated", f"now {self.firmware}")

    async def _upload_log(self, request_id: int | None) -> None:
        """Uploading, then Uploaded (or the version's failure word)."""
        await self._notify(self._log_status("Uploading", request_id))
        await asyncio.sleep(self.maintenance_step_s)
        failed = "UploadFailed" if self.version == "1.6" else "UploadFailure"
        await self._notify(self._log_status(failed if self.log_upload_fails else "Uploaded", request_id))
        self.log_upload_fails = False

    async def _reset(self, reason: str, boot_reason: str = "RemoteReset") -> None:
        """End sessions with the reset reason, drop the connection, reconnect and boot again."""
        for conn in self.connectors.values():
            if conn.session is not None:
                conn.stop_requested, conn.stop_reason = True, reason
                conn.wake.set()
        sessions = [c.session for c in self.connectors.values() if c.session is not None]
        if sessions:
            await asyncio.wait(sessions, timeout=10.0)
        self._boot_reason = boot_reason
        # This task reconnects; marking it as the reconnect keeps _serve's hook from starting another.
        self._reconnecting = asyncio.current_task()
        await self._drop_connection()
        await asyncio.sleep(1.0)
        await self._reconnect()

    async def _triggered(self, message: str, connector: int | None) -> None:
        """Send what a TriggerMessage asked for (after the reply went out)."""
        targets = self._targets(connector)
        if message == "BootNotification":
            await self.boot("Triggered")
        elif message == "Heartbeat":
            await self.heartbeat()
        elif message == "StatusNotification":
            for conn in targets:
                await self.status(conn.number, conn.status)
        elif message == "MeterValues":
            await self._send_meter_values(targets)

    def _send_local_list(
        self, version: int, update_type: str, entries: Sequence[tuple[str, str | None]] = ()
    ) -> str:
        """Accept a full list, or a differential one newer than what is held (None status: delete)."""
        if update_type == "Differential" and version <= self.local_list_version:
            return "VersionMismatch"
        if update_type == "Full":
            self.local_list = {}
        for token, status in entries:
            if status is None:
                self.local_list.pop(token, None)
            else:
                self.local_list[token] = status
        self.local_list_version = version
        return "Accepted"

    def _reserve(self, reservation_id: int, connector: int | None) -> str:
        """Reserve an idle connector (any, if None); Occupied while a session runs."""
        conn = self.connectors.get(connector or 1)
        if conn is None:
            return "Rejected"
        if conn.session is not None or conn.pending_remote is not None:
            return "Occupied"
        self.reservations[reservation_id] = conn.number
        return "Accepted"

    def _schedule(self, connector: int) -> dict[str, Any] | None:
        """The composite schedule: the current limit as one period, None without a limit."""
        conn = self.connectors.get(connector)
        limit = None if conn is None else self.site.evses[conn.evse_uid].limit_w
        if limit is None:
            return None
        return {"charging_rate_unit": "W", "charging_schedule_period": [{"start_period": 0, "limit": limit}]}

    async def _notify(self, payload: Any) -> None:
        """Send a notification the CSMS asked for indirectly (firmware, log, report)."""
        try:
            await self._call(payload)
        except SESSION_ERRORS as exc:
            log.warning("charge point %s: notification failed: %r", self.id, exc)

    async def _send_meter_values(self, targets: Iterable[Connector]) -> None:
        for conn in targets:
            await self.meter_values(
                conn.number, self.site.energy_wh(conn.evse_uid), self.site.evses[conn.evse_uid].power_w
            )

    # --- the session engine ------------------------------------------------------------------

    def _pick_ev(self) -> EvModel:
        return self._rng.choice(self._ev_models)

    def _draw(self, bounds: tuple[float, float]) -> float:
        return self._rng.uniform(*bounds)

    @property
    def _clock(self) -> SimClock:
        if self.site.clock is None:
            raise ValueError("sessions need a SiteModel with a clock (SiteModel(clock=SimClock(speed)))")
        return self.site.clock

    async def _pause(self, conn: Connector, sim_seconds: float, stop: asyncio.Event) -> None:
        """Sleep simulated time; a stop, a remote command or a new limit wakes it early."""
        if stop.is_set() or conn.stop_requested:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.wake.wait(), self._clock.real_seconds(sim_seconds))
        conn.wake.clear()

    async def run_sessions(
        self, ev_model: EvModel | Sequence[EvModel] | None = None, stop_event: asyncio.Event | None = None
    ) -> None:
        """Connect and boot if needed, then simulate sessions on every connector until stop_event."""
        stop = stop_event if stop_event is not None else asyncio.Event()
        if ev_model is not None:
            self._ev_models = (ev_model,) if isinstance(ev_model, EvModel) else tuple(ev_model)
        self._session_stop = stop
        _ = self._clock  # fail fast without a clock
        if self._ws is None:
            await self.connect()
        if self.registration != "Accepted" and not await self._boot_until_accepted("PowerUp", stop):
            return
        await self._announce()
        loops = [
            self._spawn(self._connector_loop(c, stop), f"connector-{n}") for n, c in self.connectors.items()
        ]
        waker = self._spawn(self._wake_on(stop), "stop-waker")
        try:
            await asyncio.wait(loops)
        finally:
            waker.cancel()
            for task in loops:
                task.cancel()
            self._session_stop = asyncio.Event()  # later remote starts must not see this stop

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        for conn in self.connectors.values():
            conn.wake.set()

    async def _connector_loop(self, conn: Connector, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set() and not self._closing:
                await self._pause(conn, self._draw(self._pick_ev().idle_s), stop)
                if stop.is_set():
                    break
                idle = conn.session is None and conn.pending_remote is None
                if idle and conn.available and self._online.is_set():
                    tag = self._rng.choice(self.id_tags)
                    conn.session = self._spawn(
                        self._session(conn, self._pick_ev(), tag, stop, None, remote=False),
                        f"session-{conn.number}",
                    )
                if conn.session is not None:
                    await asyncio.wait([conn.session])
        finally:
            if conn.session is not None and not stop.is_set():
                conn.session.cancel()

    async def _session(
        self,
        conn: Connector,
        ev: EvModel,
        id_tag: str,
        stop: asyncio.Event,
        remote_start_id: int | None,
        *,
        remote: bool,
    ) -> None:
        """One car: plug in, authorize, charge, linger, stop, unplug."""
        conn.stop_requested, conn.stop_reason = False, "Remote"
        uid = conn.evse_uid
        try:
            await self._phase(conn, PREPARING)
            if (not remote or self._authorize_remote()) and not await self.authorize(id_tag):
                await self._pause(conn, 20.0, stop)  # the driver reads "rejected" and leaves
                await self._phase(conn, AVAILABLE)
                return
            await self._pause(conn, self._draw((2.0, 8.0)), stop)  # cable lock, CP/PP handshake
            await self.start_transaction(
                conn.number, id_tag, self.site.energy_wh(uid), remote_start_id=remote_start_id
            )
            reason = await self._charge(conn, ev, stop) if conn.tx_accepted else "DeAuthorized"
            self.site.set_power(uid, 0.0)
            await self.stop_transaction(conn.number, self.site.energy_wh(uid), reason)
            await self._phase(conn, FINISHING)
            await self._pause(conn, self._draw((10.0, 60.0)), stop)  # driver unplugs
            await self._phase(conn, AVAILABLE)
        except SESSION_ERRORS as exc:
            log.warning("charge point %s connector %d: session abandoned: %r", self.id, conn.number, exc)
        finally:
            self.site.set_power(uid, 0.0)
            self.site.evses[uid].energy_cap_wh = None
            conn.tx_id, conn.session = None, None

    def _authorize_remote(self) -> bool:
        """Whether a remote start is authorized again locally (1.6 AuthorizeRemoteTxRequests)."""
        return False

    async def _charge(self, conn: Connector, ev: EvModel, stop: asyncio.Event) -> str:
        """Draw power along the EV's curve until it is full and the driver returns; the stop reason."""
        clock, uid = self._clock, conn.evse_uid
        evse = self.site.evses[uid]
        soc = self._draw(ev.arrival_soc)
        target = max(soc, self._draw(ev.target_soc))
        energy = self.site.energy_wh(uid)
        # The site stops the car at exactly this register value, whatever the tick timing.
        evse.energy_cap_wh = energy + (target - soc) * ev.battery_wh
        state, leave_at = "", None
        next_sample = clock.now() + self.meter_interval_s
        # Re-evaluate often enough for limits and curves, but never spin faster than 20 Hz.
        tick = max(min(self.meter_interval_s, 10.0), 0.05 * clock.speed)
        while True:
            if stop.is_set():
                return "Local"
            if conn.stop_requested:
                return conn.stop_reason
            now_energy = self.site.energy_wh(uid)
            soc, energy = soc + (now_energy - energy) / ev.battery_wh, now_energy
            full = evse.energy_cap_wh is not None and energy >= evse.energy_cap_wh - 1e-6
            wanted = 0.0 if full else self.site.jitter(ev.power_at(soc), ev.power_noise)
            if wanted <= 0.0:
                new_state = SUSPENDED_EV
            elif evse.available_power() < min(MIN_POWER_W, wanted):
                new_state = SUSPENDED_EVSE  # the limit is below what the car can draw at minimum
            else:
                new_state = CHARGING
            power = self.site.set_power(uid, wanted if new_state == CHARGING else 0.0)
            if new_state != state:
                state = new_state
                await self._phase(conn, state)
                if state == SUSPENDED_EV and leave_at is None:
                    leave_at = clock.now() + self._draw(ev.linger_s)
            if leave_at is not None and clock.now() >= leave_at:
                return "EVDisconnected"
            if clock.now() >= next_sample:
                next_sample = clock.now() + self.meter_interval_s
                await self.meter_values(conn.number, energy, power)
            await self._pause(conn, tick, stop)


def _phase_currents(power_w: float) -> float:
    return power_w / (PHASES * NOMINAL_VOLTAGE)


def _limit_w(schedule: dict[str, Any]) -> float | None:
    """The first period's limit of a charging schedule in W (A converted at nominal voltage)."""
    periods = schedule.get("charging_schedule_period") or []
    if not periods:
        return None
    first = periods[0]
    limit = float(first["limit"])
    if schedule.get("charging_rate_unit") == "A":
        return current_to_power(limit, int(first.get("number_phases") or PHASES))
    return limit


# ============================================================================================
# OCPP 1.6J
# ============================================================================================


class _Link16(Ocpp16ChargePoint):  # type: ignore[misc]
    """The 1.6J wire: routes CSMS calls to the simulator; handlers only reply and hand over."""

    def __init__(self, sim: ChargePointSimulator, ws: ClientConnection) -> None:
        super().__init__(sim.id, ws, response_timeout=sim.response_timeout)
        self.sim = sim

    async def _handle_call(self, msg: Any) -> Any:
        self.sim.received.append((str(msg.action), dict(msg.payload)))
        return await super()._handle_call(msg)

    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        ok = self.sim._claim_remote(connector_id, id_tag)
        return result16.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after(Action16.remote_start_transaction)
    def after_remote_start(self, **_: Any) -> None:
        # After the reply is on the wire, so StartTransaction never overtakes it.
        self.sim._begin_remote_sessions()

    @on(Action16.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> Any:
        known = self.sim._connector_of_tx(transaction_id) is not None
        return result16.RemoteStopTransaction(status="Accepted" if known else "Rejected")

    @after(Action16.remote_stop_transaction)
    def after_remote_stop(self, transaction_id: int) -> None:
        self.sim._request_stop(transaction_id, "Remote")

    @on(Action16.reset)
    def on_reset(self, type: str) -> Any:
        return result16.Reset(status="Accepted")

    @after(Action16.reset)
    def after_reset(self, type: str) -> None:
        self.sim._spawn(self.sim._reset("HardReset" if type == "Hard" else "SoftReset"), "reset")

    @on(Action16.change_availability)
    def on_change_availability(self, connector_id: int, type: str) -> Any:
        if connector_id and connector_id not in self.sim.connectors:
            return result16.ChangeAvailability(status="Rejected")
        targets = self.sim._targets(connector_id)
        return result16.ChangeAvailability(status=self.sim._set_availability(targets, type == "Operative"))

    @after(Action16.change_availability)
    def after_change_availability(self, connector_id: int, type: str) -> None:
        if not connector_id or connector_id in self.sim.connectors:
            self.sim._spawn(self.sim._announce_idle(self.sim._targets(connector_id)), "availability")

    @on(Action16.trigger_message)
    def on_trigger(self, requested_message: str, connector_id: int | None = None) -> Any:
        known = requested_message in ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues")
        valid = not connector_id or connector_id in self.sim.connectors
        status = "Accepted" if known and valid else ("NotImplemented" if not known else "Rejected")
        return result16.TriggerMessage(status=status)

    @after(Action16.trigger_message)
    def after_trigger(self, requested_message: str, connector_id: int | None = None) -> None:
        if connector_id and connector_id not in self.sim.connectors:
            return
        self.sim._spawn(self.sim._triggered(requested_message, connector_id), f"trigger-{requested_message}")

    @on(Action16.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        config = self.sim.config
        wanted = key or list(config)
        found = [{"key": k, "readonly": config[k][1], "value": config[k][0]} for k in wanted if k in config]
        unknown = [k for k in wanted if k not in config]
        return result16.GetConfiguration(configuration_key=found, unknown_key=unknown or None)

    @on(Action16.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> Any:
        return result16.ChangeConfiguration(status=self.sim._change_configuration(key, value))

    @on(Action16.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        if connector_id and connector_id not in self.sim.connectors:
            return result16.SetChargingProfile(status="Rejected")
        self.sim._set_limit(connector_id, _limit_w(cs_charging_profiles.get("charging_schedule", {})))
        return result16.SetChargingProfile(status="Accepted")

    @on(Action16.clear_charging_profile)
    def on_clear_charging_profile(self, connector_id: int | None = None, **_: Any) -> Any:
        self.sim._set_limit(connector_id if connector_id in self.sim.connectors else None, None)
        return result16.ClearChargingProfile(status="Accepted")

    @on(Action16.unlock_connector)
    def on_unlock(self, connector_id: int) -> Any:
        return result16.UnlockConnector(status="Unlocked")

    @on(Action16.clear_cache)
    def on_clear_cache(self) -> Any:
        return result16.ClearCache(status="Accepted")

    @on(Action16.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str, **kw: Any) -> Any:
        entries = [
            (e["id_tag"], (e.get("id_tag_info") or {}).get("status"))
            for e in kw.get("local_authorization_list") or []
        ]
        return result16.SendLocalList(status=self.sim._send_local_list(list_version, update_type, entries))

    @on(Action16.get_local_list_version)
    def on_get_local_list_version(self) -> Any:
        return result16.GetLocalListVersion(list_version=self.sim.local_list_version)

    @on(Action16.reserve_now)
    def on_reserve_now(self, connector_id: int, reservation_id: int, **_: Any) -> Any:
        return result16.ReserveNow(status=self.sim._reserve(reservation_id, connector_id))

    @on(Action16.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> Any:
        known = self.sim.reservations.pop(reservation_id, None) is not None
        return result16.CancelReservation(status="Accepted" if known else "Rejected")

    @on(Action16.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int, **_: Any) -> Any:
        schedule = self.sim._schedule(connector_id)
        if schedule is None:
            return result16.GetCompositeSchedule(status="Rejected")
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=self.sim.timestamp(),
            charging_schedule={"duration": duration, **schedule},
        )

    @on(Action16.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> Any:
        return result16.UpdateFirmware()

    @after(Action16.update_firmware)
    def after_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> None:
        self.sim._spawn(self.sim._update_firmware(location, retrieve_date, None), "firmware-update")

    @on(Action16.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> Any:
        if not self.sim.has_diagnostics:
            return result16.GetDiagnostics()
        return result16.GetDiagnostics(file_name=f"diagnostics-{self.sim.id}.log")

    @after(Action16.get_diagnostics)
    def after_get_diagnostics(self, **_: Any) -> None:
        if self.sim.has_diagnostics:
            self.sim._spawn(self.sim._upload_log(None), "diagnostics-upload")

    @on(Action16.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> Any:
        self.sim.data_transfers.append((vendor_id, message_id, data))
        if vendor_id != self.sim.vendor:
            return result16.DataTransfer(status="UnknownVendorId")
        return result16.DataTransfer(status="Accepted", data=data)


class ChargePointSimulator(BaseChargePointSimulator):
    """An OCPP 1.6J charge point: ws://HOST:PORT/ocpp/{id}, subprotocol ocpp1.6."""

    version = "1.6"
    subprotocol = "ocpp1.6"

    def __init__(self, cp_id: str, csms_url: str, **kwargs: Any) -> None:
        super().__init__(cp_id, csms_url, **kwargs)
        # key -> (value, readonly), answered by GetConfiguration and changed by ChangeConfiguration
        self.config: dict[str, tuple[str, bool]] = {
            "HeartbeatInterval": ("0", False),
            "MeterValueSampleInterval": (str(int(self.meter_interval_s)), False),
            "NumberOfConnectors": (str(len(self.connectors)), True),
            "AuthorizeRemoteTxRequests": ("false", False),
            "MeterValuesSampledData": (
                "Energy.Active.Import.Register,Power.Active.Import,Current.Import",
                False,
            ),
            "SupportedFeatureProfiles": ("Core,RemoteTrigger,SmartCharging,LocalAuthListManagement", True),
            "LocalAuthListEnabled": ("true", False),
            "LocalAuthListMaxLength": ("50", True),
            "SendLocalListMaxLength": ("5", True),
            "LocalAuthorizeOffline": ("true", False),
            "LocalPreAuthorize": ("true", False),
            "AllowOfflineTxForUnknownId": ("true", False),
            "AuthorizationCacheEnabled": ("true", False),
        }

    def _make_link(self, ws: ClientConnection) -> Any:
        return _Link16(self, ws)

    def _firmware_status(self, status: str, request_id: int | None) -> Any:
        return call16.FirmwareStatusNotification(status=status)

    def _log_status(self, status: str, request_id: int | None) -> Any:
        return call16.DiagnosticsStatusNotification(status=status)

    def _change_configuration(self, key: str, value: str) -> str:
        if key == "AuthorizationKey":
            # Write-only (never in GetConfiguration): 16..20 bytes as hex; used from the next connection.
            if not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){16,20}", value):
                return "Rejected"
            self.password = value
            return "Accepted"
        if key not in self.config:
            return "NotSupported"
        if self.config[key][1]:
            return "Rejected"
        if key in ("HeartbeatInterval", "MeterValueSampleInterval") and not value.isdigit():
            return "Rejected"
        self.config[key] = (value, False)
        if key == "HeartbeatInterval":
            self.heartbeat_interval = int(value)
            if self._online.is_set():
                self._restart_heartbeat()
        elif key == "MeterValueSampleInterval":
            self.meter_interval_s = float(value)  # simulated seconds, like every session timing
        return "Accepted"

    def _authorize_remote(self) -> bool:
        return self.config["AuthorizeRemoteTxRequests"][0].lower() == "true"

    def _boot_payload(self, reason: str) -> Any:
        return call16.BootNotification(
            charge_point_model=self.model,
            charge_point_vendor=self.vendor,
            charge_point_serial_number=self.serial,
            firmware_version=self.firmware,
        )

    async def boot(self, reason: str = "PowerUp") -> str:
        """Send BootNotification; on Accepted start heartbeats. Returns the registration status."""
        status = await super().boot(reason)
        self.config["HeartbeatInterval"] = (str(self.heartbeat_interval), False)
        return status

    async def heartbeat(self) -> str:
        """Send Heartbeat; returns the CSMS's current time."""
        return str((await self._call(call16.Heartbeat())).current_time)

    async def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        """Send StatusNotification (connector 0 is the charge point itself)."""
        if connector in self.connectors:
            self.connectors[connector].status = status
        await self._call(
            call16.StatusNotification(
                connector_id=connector, error_code=error_code, status=status, timestamp=self.timestamp()
            )
        )

    async def _announce(self) -> None:
        await self.status(0, "Available")
        await super()._announce()

    async def _phase(self, conn: Connector, phase: str) -> None:
        if phase == AVAILABLE and not conn.available:
            phase = "Unavailable"
        if phase != conn.status:
            await self.status(conn.number, phase)

    async def authorize(self, id_tag: str) -> bool:
        """Send Authorize; True if the CSMS accepted the tag."""
        result = await self._call(call16.Authorize(id_tag=id_tag))
        return bool(result.id_tag_info.get("status") == "Accepted")

    async def start_transaction(
        self, connector: int, id_tag: str, meter_start_wh: float, *, remote_start_id: int | None = None
    ) -> int:
        """Send StartTransaction; returns the CSMS's transaction id."""
        result = await self._call(
            call16.StartTransaction(
                connector_id=connector,
                id_tag=id_tag,
                meter_start=round(meter_start_wh),
                timestamp=self.timestamp(),
            )
        )
        conn = self.connectors[connector]
        conn.tx_id = int(result.transaction_id)
        conn.tx_accepted = result.id_tag_info.get("status") == "Accepted"
        return conn.tx_id

    def _sampled(self, energy_wh: float, power_w: float, context: str) -> list[dict[str, Any]]:
        amps = _phase_currents(power_w)
        values: list[dict[str, Any]] = [
            {
                "value": f"{energy_wh:.0f}",
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            },
            {"value": f"{power_w:.0f}", "context": context, "measurand": "Power.Active.Import", "unit": "W"},
        ]
        values += [
            {
                "value": f"{amps:.2f}",
                "context": context,
                "measurand": "Current.Import",
                "phase": p,
                "unit": "A",
            }
            for p in ("L1", "L2", "L3")
        ]
        return [{"timestamp": self.timestamp(), "sampled_value": values}]

    async def meter_values(self, connector: int, energy_wh: float, power_w: float) -> None:
        """Send MeterValues: energy register, power and per-phase currents."""
        tx_id = self.connectors[connector].tx_id if connector in self.connectors else None
        await self._call(
            call16.MeterValues(
                connector_id=connector,
                transaction_id=tx_id,
                meter_value=self._sampled(energy_wh, power_w, "Sample.Periodic"),
            )
        )

    async def stop_transaction(self, connector: int, meter_stop_wh: float, reason: str = "Local") -> None:
        """Send StopTransaction for the connector's transaction."""
        conn = self.connectors[connector]
        if conn.tx_id is None:
            raise RuntimeError(f"connector {connector} has no transaction")
        await self._call(
            call16.StopTransaction(
                meter_stop=round(meter_stop_wh),
                timestamp=self.timestamp(),
                transaction_id=conn.tx_id,
                reason=reason,
                transaction_data=self._sampled(meter_stop_wh, 0.0, "Transaction.End"),
            )
        )
        conn.tx_id = None


# ============================================================================================
# OCPP 2.0.1
# ============================================================================================

_REASON_201 = {"HardReset": "ImmediateReset", "SoftReset": "ImmediateReset"}
_TRIGGER_201 = {
    "EVDisconnected": "EVDeparted",
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
    "DeAuthorized": "Deauthorized",
    "ImmediateReset": "ResetCommand",
}


class _Link201(Ocpp201ChargePoint):  # type: ignore[misc]
    """The 2.0.1 wire: routes CSMS calls to the simulator; handlers only reply and hand over."""

    def __init__(self, sim: ChargePointSimulator201, ws: ClientConnection) -> None:
        super().__init__(sim.id, ws, response_timeout=sim.response_timeout)
        self.sim = sim

    async def _handle_call(self, msg: Any) -> Any:
        self.sim.received.append((str(msg.action), dict(msg.payload)))
        return await super()._handle_call(msg)

    @on(Action201.request_start_transaction)
    def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None, **_: Any
    ) -> Any:
        ok = self.sim._claim_remote(evse_id, str(id_token["id_token"]), remote_start_id)
        return result201.RequestStartTransaction(status="Accepted" if ok else "Rejected")

    @after(Action201.request_start_transaction)
    def after_request_start(self, **_: Any) -> None:
        self.sim._begin_remote_sessions()

    @on(Action201.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        known = self.sim._connector_of_tx(transaction_id) is not None
        return result201.RequestStopTransaction(status="Accepted" if known else "Rejected")

    @after(Action201.request_stop_transaction)
    def after_request_stop(self, transaction_id: str, **_: Any) -> None:
        self.sim._request_stop(transaction_id, "Remote")

    @on(Action201.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        # A per-EVSE reset is optional in 2.0.1; this station resets only as a whole.
        return result201.Reset(status="Rejected" if evse_id else "Accepted")

    @after(Action201.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        if not evse_id:
            self.sim._spawn(self.sim._reset("ImmediateReset"), "reset")

    @on(Action201.change_availability)
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        evse_id = int(evse["id"]) if evse else 0
        if evse_id and evse_id not in self.sim.connectors:
            return result201.ChangeAvailability(status="Rejected")
        targets = self.sim._targets(evse_id)
        return result201.ChangeAvailability(
            status=self.sim._set_availability(targets, operational_status == "Operative")
        )

    @after(Action201.change_availability)
    def after_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> None:
        evse_id = int(evse["id"]) if evse else 0
        if not evse_id or evse_id in self.sim.connectors:
            self.sim._spawn(self.sim._announce_idle(self.sim._targets(evse_id)), "availability")

    @on(Action201.trigger_message)
    def on_trigger(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> Any:
        known = requested_message in ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues")
        return result201.TriggerMessage(status="Accepted" if known else "NotImplemented")

    @after(Action201.trigger_message)
    def after_trigger(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> None:
        evse_id = int(evse["id"]) if evse else 0
        if evse_id and evse_id not in self.sim.connectors:
            return
        self.sim._spawn(self.sim._triggered(requested_message, evse_id), f"trigger-{requested_message}")

    @on(Action201.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return result201.GetVariables(
            get_variable_result=[self.sim._get_variable(d) for d in get_variable_data]
        )

    @on(Action201.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return result201.SetVariables(
            set_variable_result=[self.sim._set_variable(d) for d in set_variable_data]
        )

    @on(Action201.unlock_connector)
    def on_unlock(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        known = evse_id in self.sim.connectors and connector_id == 1
        return result201.UnlockConnector(status="Unlocked" if known else "UnknownConnector")

    @on(Action201.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        return result201.GetBaseReport(status="Accepted")

    @after(Action201.get_base_report)
    def after_get_base_report(self, request_id: int, **_: Any) -> None:
        self.sim._spawn(self.sim._notify(self.sim._report(request_id)), "notify-report")

    @on(Action201.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        return result201.ClearCache(status="Accepted")

    @on(Action201.send_local_list)
    def on_send_local_list(self, version_number: int, update_type: str, **kw: Any) -> Any:
        entries = [
            (e["id_token"]["id_token"], (e.get("id_token_info") or {}).get("status"))
            for e in kw.get("local_authorization_list") or []
        ]
        return result201.SendLocalList(status=self.sim._send_local_list(version_number, update_type, entries))

    @on(Action201.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> Any:
        return result201.GetLocalListVersion(version_number=self.sim.local_list_version)

    @on(Action201.reserve_now)
    def on_reserve_now(self, id: int, evse_id: int | None = None, **_: Any) -> Any:
        return result201.ReserveNow(status=self.sim._reserve(id, evse_id))

    @on(Action201.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        known = self.sim.reservations.pop(reservation_id, None) is not None
        return result201.CancelReservation(status="Accepted" if known else "Rejected")

    @on(Action201.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        if evse_id and evse_id not in self.sim.connectors:
            return result201.SetChargingProfile(status="Rejected")
        schedules = charging_profile.get("charging_schedule") or [{}]
        self.sim._set_limit(evse_id, _limit_w(schedules[0]))
        return result201.SetChargingProfile(status="Accepted")

    @on(Action201.clear_charging_profile)
    def on_clear_charging_profile(self, **_: Any) -> Any:
        self.sim._set_limit(None, None)
        return result201.ClearChargingProfile(status="Accepted")

    @on(Action201.get_composite_schedule)
    def on_get_composite_schedule(self, duration: int, evse_id: int, **_: Any) -> Any:
        schedule = self.sim._schedule(evse_id)
        if schedule is None:
            return result201.GetCompositeSchedule(status="Rejected")
        full = {"evse_id": evse_id, "duration": duration, "schedule_start": self.sim.timestamp(), **schedule}
        return result201.GetCompositeSchedule(status="Accepted", schedule=full)

    @on(Action201.update_firmware)
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> Any:
        return result201.UpdateFirmware(status="Accepted")

    @after(Action201.update_firmware)
    def after_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> None:
        task = self.sim._update_firmware(firmware["location"], firmware["retrieve_date_time"], request_id)
        self.sim._spawn(task, "firmware-update")

    @on(Action201.get_log)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **_: Any) -> Any:
        return result201.GetLog(status="Accepted", filename=f"{log_type.lower()}-{self.sim.id}.log")

    @after(Action201.get_log)
    def after_get_log(self, request_id: int, **_: Any) -> None:
        self.sim._spawn(self.sim._upload_log(request_id), "log-upload")

    @on(Action201.set_display_message)
    def on_set_display_message(self, message: dict[str, Any], **_: Any) -> Any:
        # Same id replaces the message, as OCPP 2.0.1 (O01) says a display does.
        self.sim.displayed[int(message["id"])] = message
        return result201.SetDisplayMessage(status="Accepted")

    @on(Action201.data_transfer)
    def on_data_transfer(self, vendor_id: str, data: Any = None, **_: Any) -> Any:
        if vendor_id != self.sim.vendor:
            return result201.DataTransfer(status="UnknownVendorId")
        return result201.DataTransfer(status="Accepted", data=data)


class ChargePointSimulator201(BaseChargePointSimulator):
    """An OCPP 2.0.1 charging station: one connector per EVSE, subprotocol ocpp2.0.1."""

    version = "2.0.1"
    subprotocol = "ocpp2.0.1"

    def __init__(self, cp_id: str, csms_url: str, **kwargs: Any) -> None:
        super().__init__(cp_id, csms_url, **kwargs)
        self.variables: dict[tuple[str, str], str] = {
            ("OCPPCommCtrlr", "HeartbeatInterval"): "0",
            ("SampledDataCtrlr", "TxUpdatedInterval"): str(int(self.meter_interval_s)),
            ("AuthCtrlr", "AuthorizeRemoteStart"): "false",
            ("LocalAuthListCtrlr", "Enabled"): "true",
            ("LocalAuthListCtrlr", "Entries"): "50",  # read as MaxSet: the list's capacity
            ("LocalAuthListCtrlr", "ItemsPerMessage"): "5",
            ("AuthCtrlr", "LocalAuthorizeOffline"): "true",
            ("AuthCtrlr", "LocalPreAuthorize"): "true",
            ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "true",
        }
        self._tx_counter = itertools.count(1)

    def _make_link(self, ws: ClientConnection) -> Any:
        return _Link201(self, ws)

    def _firmware_status(self, status: str, request_id: int | None) -> Any:
        return call201.FirmwareStatusNotification(status=status, request_id=request_id)

    def _log_status(self, status: str, request_id: int | None) -> Any:
        return call201.LogStatusNotification(status=status, request_id=request_id)

    def _get_variable(self, data: dict[str, Any]) -> dict[str, Any]:
        component, variable = data["component"], data["variable"]
        key = (component["name"], variable["name"])
        result: dict[str, Any] = {"component": component, "variable": variable}
        if key in self.variables:
            return result | {"attribute_status": "Accepted", "attribute_value": self.variables[key]}
        known = any(c == key[0] for c, _ in self.variables)
        return result | {"attribute_status": "UnknownVariable" if known else "UnknownComponent"}

    def _set_variable(self, data: dict[str, Any]) -> dict[str, Any]:
        component, variable, value = data["component"], data["variable"], str(data["attribute_value"])
        key = (component["name"], variable["name"])
        result: dict[str, Any] = {"component": component, "variable": variable}
        if key == ("SecurityCtrlr", "BasicAuthPassword"):
            # Write-only: 16..40 characters; used from the next connection.
            if not 16 <= len(value) <= 40:
                return result | {"attribute_status": "Rejected"}
            self.password = value
            return result | {"attribute_status": "Accepted"}
        if key not in self.variables:
            known = any(c == key[0] for c, _ in self.variables)
            return result | {"attribute_status": "UnknownVariable" if known else "UnknownComponent"}
        numeric = key[1] in ("HeartbeatInterval", "TxUpdatedInterval")
        if numeric and not value.isdigit():
            return result | {"attribute_status": "Rejected"}
        self.variables[key] = value
        if key[1] == "HeartbeatInterval":
            self.heartbeat_interval = int(value)
            if self._online.is_set():
                self._restart_heartbeat()
        elif key[1] == "TxUpdatedInterval":
            self.meter_interval_s = float(value)
        return result | {"attribute_status": "Accepted"}

    def _authorize_remote(self) -> bool:
        return self.variables[("AuthCtrlr", "AuthorizeRemoteStart")].lower() == "true"

    def _report(self, request_id: int) -> Any:
        """NotifyReport with every variable this station has (one message, no tbc)."""
        data = [
            {
                "component": {"name": component},
                "variable": {"name": variable},
                "variable_attribute": [{"type": "Actual", "value": value}],
            }
            for (component, variable), value in self.variables.items()
        ]
        return call201.NotifyReport(
            request_id=request_id, generated_at=self.timestamp(), seq_no=0, report_data=data
        )

    def _boot_payload(self, reason: str) -> Any:
        station = {
            "model": self.model,
            "vendor_name": self.vendor,
            "serial_number": self.serial,
            "firmware_version": self.firmware,
        }
        return call201.BootNotification(charging_station=station, reason=reason)

    async def boot(self, reason: str = "PowerUp") -> str:
        """Send BootNotification; on Accepted start heartbeats. Returns the registration status."""
        status = await super().boot(reason)
        self.variables[("OCPPCommCtrlr", "HeartbeatInterval")] = str(self.heartbeat_interval)
        return status

    async def heartbeat(self) -> str:
        """Send Heartbeat; returns the CSMS's current time."""
        return str((await self._call(call201.Heartbeat())).current_time)

    async def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        """Send StatusNotification for EVSE `connector`, connector 1 (Available, Occupied, ...)."""
        if connector in self.connectors:
            self.connectors[connector].status = status
        await self._call(
            call201.StatusNotification(
                timestamp=self.timestamp(), connector_status=status, evse_id=connector, connector_id=1
            )
        )

    async def _phase(self, conn: Connector, phase: str) -> None:
        if phase in (CHARGING, SUSPENDED_EV, SUSPENDED_EVSE):
            if conn.tx_id is not None:
                await self._tx_event(conn, "Updated", "ChargingStateChanged", {"charging_state": phase})
            return
        if phase == PREPARING:
            wanted = "Occupied"
        elif phase == AVAILABLE:
            wanted = "Available" if conn.available else "Unavailable"
        else:
            return  # Finishing: the cable is still in, the connector stays Occupied
        if wanted != conn.status:
            await self.status(conn.number, wanted)

    async def authorize(self, id_tag: str) -> bool:
        """Send Authorize with an ISO14443 idToken; True if Accepted."""
        result = await self._call(call201.Authorize(id_token={"id_token": id_tag, "type": "ISO14443"}))
        return bool(result.id_token_info.get("status") == "Accepted")

    def _meter_value(self, energy_wh: float, power_w: float, context: str) -> list[dict[str, Any]]:
        amps = _phase_currents(power_w)
        values: list[dict[str, Any]] = [
            {
                "value": round(energy_wh, 1),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unit_of_measure": {"unit": "Wh"},
            },
            {
                "value": round(power_w, 1),
                "context": context,
                "measurand": "Power.Active.Import",
                "unit_of_measure": {"unit": "W"},
            },
        ]
        values += [
            {"value": round(amps, 2), "context": context, "measurand": "Current.Import", "phase": p}
            for p in ("L1", "L2", "L3")
        ]
        return [{"timestamp": self.timestamp(), "sampled_value": values}]

    async def _tx_event(
        self,
        conn: Connector,
        event_type: str,
        trigger: str,
        info: dict[str, Any],
        **extra: Any,
    ) -> Any:
        assert conn.tx_id is not None
        seq_no, conn.seq_no = conn.seq_no, conn.seq_no + 1
        return await self._call(
            call201.TransactionEvent(
                event_type=event_type,
                timestamp=self.timestamp(),
                trigger_reason=trigger,
                seq_no=seq_no,
                transaction_info={"transaction_id": str(conn.tx_id), **info},
                **extra,
            )
        )

    async def start_transaction(
        self, connector: int, id_tag: str, meter_start_wh: float, *, remote_start_id: int | None = None
    ) -> str:
        """Send TransactionEvent Started (EVConnected, with idToken and meter value); returns its id."""
        conn = self.connectors[connector]
        conn.tx_id, conn.seq_no = f"{self.id}-{next(self._tx_counter)}-{uuid.uuid4().hex[:8]}", 0
        info: dict[str, Any] = {"charging_state": "EVConnected"}
        if remote_start_id is not None:
            info["remote_start_id"] = remote_start_id
        result = await self._tx_event(
            conn,
            "Started",
            "RemoteStart" if remote_start_id is not None else "Authorized",
            info,
            evse={"id": connector, "connector_id": 1},
            id_token={"id_token": id_tag, "type": "ISO14443"},
            meter_value=self._meter_value(meter_start_wh, 0.0, "Transaction.Begin"),
        )
        token_info = result.id_token_info or {"status": "Accepted"}
        conn.tx_accepted = token_info.get("status") == "Accepted"
        return conn.tx_id

    async def meter_values(self, connector: int, energy_wh: float, power_w: float) -> None:
        """TransactionEvent Updated (MeterValuePeriodic) in a transaction, else MeterValues."""
        conn = self.connectors[connector]
        if conn.tx_id is None:
            await self._call(
                call201.MeterValues(
                    evse_id=connector, meter_value=self._meter_value(energy_wh, power_w, "Sample.Periodic")
                )
            )
            return
        await self._tx_event(
            conn,
            "Updated",
            "MeterValuePeriodic",
            {},
            meter_value=self._meter_value(energy_wh, power_w, "Sample.Periodic"),
        )

    async def stop_transaction(self, connector: int, meter_stop_wh: float, reason: str = "Local") -> None:
        """Send TransactionEvent Ended with the stopped reason and the final meter value."""
        conn = self.connectors[connector]
        if conn.tx_id is None:
            raise RuntimeError(f"EVSE {connector} has no transaction")
        reason = _REASON_201.get(reason, reason)
        charging_state = "Idle" if reason == "EVDisconnected" else "EVConnected"
        await self._tx_event(
            conn,
            "Ended",
            _TRIGGER_201.get(reason, "AbnormalCondition"),
            {"stopped_reason": reason, "charging_state": charging_state},
            meter_value=self._meter_value(meter_stop_wh, 0.0, "Transaction.End"),
        )
        conn.tx_id = None


SIMULATORS: dict[str, type[BaseChargePointSimulator]] = {
    "1.6": ChargePointSimulator,
    "2.0.1": ChargePointSimulator201,
}

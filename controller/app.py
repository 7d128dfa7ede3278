"""Composition root: the one module that builds every adapter and wires them to the core."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tomllib
import zoneinfo
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from controller import __version__, logring
from controller.core import location
from controller.core.clock import Clock, SystemClock, rfc3339
from controller.core.clocksync import ClockSync
from controller.core.config import Config, ConfigError, Problem, validate
from controller.core.envelope import Outgoing, Topics
from controller.core.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargerReported,
    ConnectorStatusChanged,
    EventBus,
    EvseStatusPublished,
    MaintenanceRequested,
    MeterFailed,
    MeterHealth,
    MeterRead,
    ModbusChargerStatus,
    TelemetryReady,
    TransactionAuthorizationFailed,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    UplinkChanged,
)
from controller.core.maintenance import KEPT_MESSAGES
from controller.core.ports import ModbusBusy
from controller.core.registry import ChargerApproved, ChargerRegistry
from controller.core.sessions import Authorization, auth_method_of, session_id_of
from controller.core.site import Site
from controller.core.tokens import SitePolicy
from controller.core.uplink import (
    location_message,
    rejection_message,
    status_messages,
    telemetry_message,
)
from controller.ocpp.commands import CommandService
from controller.ocpp.context import OcppContext
from controller.ocpp.credentials import CredentialService
from controller.ocpp.local_lists import LocalListManager, LocalListSettings
from controller.ocpp.price_display import PriceDisplay
from controller.ocpp.server import OcppServer
from controller.store.accounts import SqliteAccountStore
from controller.store.auth_audit import SqliteAuthAudit
from controller.store.documents import TinyDocumentStore
from controller.store.journal import SqliteJournal
from controller.store.msglog import SqliteMessageLog
from controller.store.outbox import SqliteOutbox
from controller.store.sessions import SqliteSessionStore
from controller.store.status_history import SqliteStatusHistory
from controller.store.tokens import SqliteTokenCache
from controller.sync.authorization import RealtimeAuthorizer
from controller.sync.commands import OcpiCommands
from controller.sync.downlink import Downlink
from controller.sync.reports import ReportService
from controller.sync.sessions import SessionService
from controller.sync.tariffs import TariffSync
from controller.sync.tokens import TokenSync
from controller.sync.uplink import Uplink
from controller.system.clocksync import LinuxClockSync
from controller.system_admin import SystemService
from drivers.library import available as device_models
from drivers.library import load_device, models_of
from drivers.service import ModbusService
from local_api import LiveHub, LocalApiServer, create_app
from local_api.auth import Security
from local_api.tls import ensure_certificate

log = logging.getLogger(__name__)

INPUT_EVENTS = (
    ChargerConnected,
    ChargerDisconnected,
    ChargerBooted,
    ConnectorStatusChanged,
    MeterRead,
    MeterFailed,
    MeterHealth,
    ModbusChargerStatus,
    UplinkChanged,
    TransactionStarted,
    TransactionUpdated,
    TransactionEnded,
    ChargerApproved,
    MaintenanceRequested,
)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; ConfigError lists every problem with its key."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid TOML: not UTF-8 ({exc})")]) from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str) -> Config:
    """Validate TOML text as `siteedge run` would; `source` names the text in a parse error."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(source, f"not valid TOML: {exc}")]) from exc
    problems: list[Problem] = []
    try:
        config = validate(doc)
    except ConfigError as exc:
        problems, config = list(exc.problems), None
    # Checks that need the outside world (time zone database, device library) live here,
    # so the core's validation stays a pure function.
    tz = doc.get("site", {}).get("time_zone", "UTC") if isinstance(doc.get("site"), dict) else "UTC"
    if isinstance(tz, str):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(Problem("site.time_zone", f"unknown IANA time zone {tz!r}"))
    models = set(device_models())
    for i, m in enumerate(doc.get("meters", []) if isinstance(doc.get("meters"), list) else []):
        model = m.get("model") if isinstance(m, dict) else None
        # "sunspec": any SunSpec meter; its model chain is discovered at first contact.
        if isinstance(model, str) and model not in models and model != "sunspec":
            problems.append(Problem(f"meters[{i}].model", f"no device model {model!r} in the library"))
    raw_chargers = doc.get("modbus_chargers")
    for i, c in enumerate(raw_chargers if isinstance(raw_chargers, list) else []):
        model = c.get("model") if isinstance(c, dict) else None
        if isinstance(model, str) and model not in set(models_of("charger")):
            problems.append(
                Problem(f"modbus_chargers[{i}].model", f"no charger model {model!r} in the library")
            )
    if problems or config is None:
        raise ConfigError(problems)
    return config


def _library() -> list[dict[str, str]]:
    """The device library as the web UI lists it (name, vendor, product, kind)."""
    return [
        {"name": d.name, "vendor": d.vendor, "model": d.model, "kind": d.kind}
        for d in (load_device(n) for n in device_models())
    ]


class SiteController:
    """siteedge in one asyncio process: OCPP server, meter polling, uplink and web API."""

    def __init__(
        self,
        config: Config,
        clock: Clock | None = None,
        *,
        config_path: str | Path | None = None,
        on_restart: Callable[[], None] | None = None,
        clock_sync: ClockSync | None = None,
    ) -> None:
        """config_path: the file config came from (None: no config editing); on_restart: the runner's
        graceful-restart hook (None: no restart from the web UI)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.clock_sync = clock_sync or LinuxClockSync()  # tests inject a controllable one
        self.bus = EventBus()
        self.site = Site(config, self.clock, self.bus.publish, config.mqtt.telemetry_interval)
        self.hub = LiveHub()
        data_dir = Path(config.site.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = SqliteOutbox(str(data_dir / "outbox.sqlite3"), config.mqtt.outbox_max_bytes)
        self._topics = Topics(config.mqtt.topic_root)
        self.tokens = SqliteTokenCache(data_dir / "tokens.sqlite3")
        self.downlink = Downlink(config.mqtt.topic_root, self._reject_downlink)
        self.token_sync = TokenSync(self.tokens, self._topics, self._enqueue)
        self.token_sync.register(self.downlink)
        # Every authorization decision is kept on disk (audit API, partner report's refusals).
        self.auth_audit = SqliteAuthAudit(data_dir / "auth_audit.sqlite3")
        self.authorizer = RealtimeAuthorizer(
            self.tokens,
            SitePolicy(
                config.auth.accept_unknown_offline, config.auth.realtime_timeout, config.auth.free_vend
            ),
            self._topics,
            config.site.location_id,
            self.clock,
            self._enqueue,
            lambda: self.uplink.connected,
            audit_log=self.auth_audit,
        )
        self.authorizer.register(self.downlink)
        # Settlement (sessions, CDRs, tariffs) in one SQLite file; tariffs come down retained.
        self.session_store = SqliteSessionStore(data_dir / "sessions.sqlite3")
        self.tariffs = TariffSync(self.session_store)
        self.tariffs.register(self.downlink)
        self.uplink = Uplink(
            config.mqtt, self.outbox, self.clock, self.bus.publish, __version__, downlink=self.downlink
        )
        self.uplink.on_connected(self.token_sync.announce)
        # Transactions running when the controller last stopped are known before chargers return.
        self.journal = SqliteJournal(data_dir / "journal.sqlite3")
        self.site.resume_transactions(self.journal.open_transactions())
        self.sessions = SessionService(
            config,
            self.session_store,
            self.tariffs.known,
            self.tokens,
            self.journal,
            authorization=self._authorization_of,
            evse_of=self.site.evse_uid_of,
            evses=lambda: self.site.evses.keys(),
            tz=zoneinfo.ZoneInfo(config.site.time_zone),  # the core loads no zone files
            clock=self.clock,
            send=self.uplink.enqueue,
            topics=self._topics,
            clock_sync=self.clock_sync,
        )
        # Status history, NEVI uptime and quarterly data, partner reports (docs/adr/0005-uptime.md).
        self.status_history = SqliteStatusHistory(data_dir / "reports.sqlite3")
        self.reports = ReportService(
            self.status_history,
            self.session_store,
            self.auth_audit,
            site={
                "country_code": config.site.country_code,
                "party_id": config.site.party_id,
                "location_id": config.site.location_id,
            },
            ports=self._ports,
            tz=zoneinfo.ZoneInfo(config.site.time_zone),
            clock=self.clock,
            send=self.uplink.enqueue,
            topics=self._topics,
        )
        self.reports.register(self.downlink)
        # Commissioning state (TinyDB, small and human-readable) and the OCPP frame log (SQLite).
        self.registry_docs = TinyDocumentStore(str(data_dir / "registry.json"))
        self.registry = ChargerRegistry(self.registry_docs, config, self.clock, self.bus.publish)
        self.message_log = SqliteMessageLog(data_dir / "ocpp_messages.sqlite3")
        ocpp_ctx = OcppContext(
            config,
            self.clock,
            self.bus.publish,
            journal=self.journal,
            registry=self.registry,
            message_log=self.message_log,
            authorizer=self.authorizer,
        )
        self.commands = CommandService(ocpp_ctx.sessions, config, emit=self.bus.publish, clock=self.clock)
        self.price_display = PriceDisplay(config, self.commands, self.sessions.price, self._connected_version)
        self.ocpi_commands = OcpiCommands(
            self.commands,
            self.authorizer,
            self._topics,
            config.site.location_id,
            self._enqueue,
            self.site.evse_status,
            self._transaction_of_session,
            config.evse_uids(),
        )
        self.ocpi_commands.register(self.downlink)
        self.local_lists = LocalListManager(
            self.commands,
            self.tokens,
            self.registry_docs,
            LocalListSettings(
                config.auth.local_list_partners,
                config.auth.local_list_recent_days,
                config.auth.accept_unknown_offline,
            ),
            self.clock,
            self._connected_version,
        )
        self._list_syncs: dict[str, asyncio.Task[Any]] = {}
        self._list_dirty: set[str] = set()
        self.token_sync.on_change = self._lists_changed
        self.ocpp = OcppServer(ocpp_ctx)
        self.ocpp_stats = ocpp_ctx.stats
        self.charger_credentials = CredentialService(self.ocpp.credentials, self.commands, ocpp_ctx)
        # One bus (and scheduler) per distinct transport: meters sharing an RS-485 line share it.
        self.modbus = ModbusService(config.meters, self.clock, self.bus.publish, config.modbus_chargers)
        self._api: LocalApiServer | None = None
        # Web UI accounts, API tokens, sessions and the audit log.
        self.accounts = SqliteAccountStore(data_dir / "accounts.sqlite3")
        self.security = Security(self.accounts, self.clock, setup_code_file=data_dir / "setup-code.txt")
        self.system = SystemService(
            config_path=Path(config_path) if config_path is not None else None,
            data_dir=data_dir,
            site_id=config.site.location_id,
            version=__version__,
            parse=parse_config,
            health=self.site.health,
            listeners=self._listeners,
            registry_docs=self.registry_docs,
            log_ring=logring.install(),
            clock=self.clock,
            clock_sync=self.clock_sync,
            restart=on_restart,
            apply_live=self._apply_live,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wire()
        self.registry.announce()  # approved chargers not in the config get their EVSEs adopted

    def _stats(self) -> dict[str, Any]:
        """Traffic counters and latency histograms for /metrics (OCPP, Modbus buses, uplink)."""
        return {
            "ocpp": self.ocpp_stats.snapshot(),
            "modbus": [
                {"transport": s.bus.url, "latency": s.bus.latency.snapshot()}
                for s in self.modbus.buses.values()
            ],
            "uplink_ack": self.uplink.ack_seconds.snapshot(),
        }

    def _apply_live(self, array: str, entry: Mapping[str, Any], written: Config) -> bool:
        """Take a [[meters]] entry just appended to the config file into the running site.

        Only that entry is taken from `written` (which may hold other edits still waiting for a
        restart): polled from now on, its role counts at once, and a meter bound to an EVSE bills
        that EVSE's next session. False (a restart is needed) when it cannot start now.
        """
        found = [m for m in written.meters if m.id == entry.get("id")] if array == "meters" else []
        if len(found) != 1 or any(m.id == found[0].id for m in self.config.meters):
            return False
        m = found[0]
        try:
            self.modbus.add_meter(m)  # first: the only step that can refuse, so nothing is half-done
        except (ValueError, RuntimeError, ModbusBusy) as exc:
            log.warning("meter %s saved; it starts at the next restart: %s", m.id, exc)
            return False
        self.site.add_meter(m)
        log.warning("meter %s (%s, %s) commissioned: polled from now on", m.id, m.model, m.role)
        self.config = dataclasses.replace(self.config, meters=(*self.config.meters, m))
        self.sessions.use_config(self.config)
        self.hub.notify()
        return True

    def _wire(self) -> None:
        for event_type in INPUT_EVENTS:
            self.bus.subscribe(event_type, self.site.handle)
            self.bus.subscribe(event_type, lambda _e: self.hub.notify())
        # Only the reports the site keeps (firmware, logs, security) change what the UI shows.
        self.bus.subscribe(ChargerReported, self.site.handle)
        self.bus.subscribe(
            ChargerReported, lambda e: self.hub.notify() if e.message in KEPT_MESSAGES else None
        )
        self.bus.subscribe(EvseStatusPublished, self._publish_status)
        for report_event in (EvseStatusPublished, TransactionUpdated, TransactionEnded):
            self.bus.subscribe(report_event, self.reports.handle)
        self.bus.subscribe(TelemetryReady, self._publish_telemetry)
        for tx_event in (
            TransactionStarted,
            TransactionUpdated,
            TransactionEnded,
            TransactionAuthorizationFailed,
        ):
            self.bus.subscribe(tx_event, self.sessions.handle)
        self.bus.subscribe(MeterRead, self.sessions.handle_meter)
        self.bus.subscribe(MeterFailed, self.sessions.handle_meter)
        self.bus.subscribe(ChargerBooted, self.price_display.handle)
        self.bus.subscribe(ChargerDisconnected, self.price_display.handle)
        if not self.config.auth.free_vend:  # a free-vend site needs no lists: nobody is refused
            self.bus.subscribe(ChargerBooted, lambda e: self._schedule_list_sync(e.charger_id, 2.0))

    def _ports(self) -> dict[str, tuple[str, str | None]]:
        """Every EVSE the site knows (configured or adopted): its charger and configured evse_id."""
        evse_ids = {e.evse_uid: e.evse_id for c in self.config.chargers for e in c.evses}
        return {uid: (e.charger_id, evse_ids.get(uid)) for uid, e in self.site.evses.items()}

    def _connected_version(self, charger_id: str) -> str | None:
        """The OCPP version of a connected charger, None while it is offline."""
        ch = self.site.chargers.get(charger_id)
        return ch.ocpp_version if ch is not None and ch.connected else None

    def _lists_changed(self) -> None:
        if not self.config.auth.free_vend:
            for charger_id, ch in self.site.chargers.items():
                if ch.connected:
                    self._schedule_list_sync(charger_id, 5.0)  # debounced: deltas come in bursts

    def _schedule_list_sync(self, charger_id: str, delay_s: float) -> None:
        """Update a charger's local list after a pause (after its boot reply; coalescing bursts)."""
        self._list_dirty.add(charger_id)
        pending = self._list_syncs.get(charger_id)
        if pending is not None and not pending.done():
            return  # the running task sees the dirty flag and goes round once more

        async def later() -> None:
            await asyncio.sleep(delay_s)
            while charger_id in self._list_dirty:
                self._list_dirty.discard(charger_id)
                outcome = await self.local_lists.sync(charger_id)
                log.info("local list of %s: %s", charger_id, outcome)

        task = asyncio.get_running_loop().create_task(later(), name=f"local-list-{charger_id}")
        self._list_syncs[charger_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _authorization_of(self, ev: TransactionStarted) -> Authorization:
        """OCPI auth_method of a starting transaction, from what decided (the authorizer's memory)."""
        decision = self.authorizer.recent(ev.id_tag, 24 * 3600.0) if ev.id_tag else None
        by_emsp = decision is not None and decision.by_emsp
        return Authorization(auth_method_of(ev.remote_start_id is not None, by_emsp))

    def _transaction_of_session(self, session_id: str) -> str | None:
        """The running transaction behind an OCPI session id (STOP_SESSION), None if none is."""
        keys = self.site.running_transactions().values()
        return next((key for key in keys if session_id_of(key) == session_id), None)

    def _enqueue(self, messages: Sequence[Outgoing]) -> None:
        self.uplink.enqueue(messages)

    def _reject_downlink(self, topic: str, reason: str) -> None:
        self.uplink.enqueue([rejection_message(topic, reason, self._topics)])

    def _publish_status(self, event: EvseStatusPublished) -> None:
        self.uplink.enqueue(status_messages(event, self._topics))
        self.hub.notify()

    def _publish_telemetry(self, event: TelemetryReady) -> None:
        self.uplink.enqueue([telemetry_message(event, self._topics)])

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._crashed)

    @staticmethod
    def _crashed(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s died", task.get_name(), exc_info=task.exception())

    def _publish_location(self) -> None:
        """Publish the OCPI Location; its last_updated moves only when its static data changed."""
        static = location.static_part(self.config)
        digest = location.fingerprint(static)
        docs = TinyDocumentStore(str(Path(self.config.site.data_dir) / "state.json"))
        try:
            known = docs.get("meta", "location")
            if known is None or known.get("fingerprint") != digest:
                known = {"fingerprint": digest, "last_updated": rfc3339(self.clock.now())}
                docs.put("meta", "location", known)
        finally:
            docs.close()
        updated = datetime.fromisoformat(known["last_updated"].replace("Z", "+00:00"))
        statuses = {uid: (e.status, e.last_updated) for uid, e in self.site.evses.items()}
        doc = location.location_document(static, updated, statuses)
        self.uplink.enqueue([location_message(doc, self._topics)])

    @property
    def ocpp_port(self) -> int:
        """The bound OCPP port."""
        return self.ocpp.port

    @property
    def ocpp_tls_port(self) -> int | None:
        """The bound wss:// OCPP port, None without [ocpp] tls_cert."""
        return self.ocpp.tls_port

    def _listeners(self) -> dict[str, int | None]:
        """The bound ports (System page)."""
        return {"ocpp": self.ocpp_port, "ocpp_tls": self.ocpp_tls_port, "api": self.api_port}

    @property
    def api_port(self) -> int:
        """The bound web API port."""
        assert self._api is not None and self._api.servers
        return int(self._api.servers[0].sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Open every listener and start every loop; returns once all are listening."""
        await self.uplink.start()
        await asyncio.to_thread(self._publish_location)
        self._spawn(self.sessions.run(), "sessions")
        self._spawn(self.price_display.run(), "price-display")
        await self.reports.recover()  # before any charger can report a status
        self._spawn(self.reports.run(), "reports")
        await self.ocpp.start()
        self._spawn(self.modbus.run(), "meter-buses")
        app = create_app(
            self.site,
            self.hub,
            __version__,
            commands=self.commands,
            transactions=self.journal,
            modbus=self.modbus,
            modbus_chargers=self.modbus,
            chargers=self.registry,
            charger_credentials=self.charger_credentials,
            messages=self.message_log,
            sessions=self.sessions,
            settlement=self.sessions,
            authorizations=self.authorizer,
            reports=self.reports,
            system=self.system,
            power=self.site,
            device_models=_library(),
            security=self.security,
            stats=self._stats,
        )
        tls = await asyncio.to_thread(self._api_certificate)
        cfg = uvicorn.Config(
            app,
            host=self.config.api.host,
            port=self.config.api.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=3,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
        self._api = LocalApiServer(cfg, self.hub)
        self._spawn(self._api.serve(), "web-api")
        while not self._api.started:
            if not self._tasks:
                raise RuntimeError("web API failed to start (port in use?)")
            await asyncio.sleep(0.01)
        web = f"{self.api_scheme}://{self.config.api.host}:{self.api_port}"
        log.info(
            "siteedge %s up: OCPP ws://%s:%d/ocpp/{id}, web %s/, uplink %s",
            __version__,
            self.config.ocpp.host,
            self.ocpp_port,
            web,
            self.config.mqtt.url,
        )
        code = await asyncio.to_thread(self.security.prepare_setup)
        if code is not None:
            log.warning("web UI setup code: %s (create the admin account at %s/#/setup)", code, web)

    @property
    def api_scheme(self) -> str:
        """The web API's scheme: "https" when [api] tls is on, else "http"."""
        return "https" if self.config.api.tls else "http"

    def _api_certificate(self) -> tuple[str, str] | None:
        """The web UI's (cert, key) files, made self-signed in {data_dir}/tls at first start; None: no TLS."""
        api = self.config.api
        if not api.tls:
            return None
        if api.cert is not None and api.key is not None:
            for path in (api.cert, api.key):
                if not Path(path).is_file():
                    raise RuntimeError(f"[api] cert/key: {path} does not exist")
            return api.cert, api.key
        tls_dir = Path(self.config.site.data_dir) / "tls"
        cert, key = tls_dir / "api.crt", tls_dir / "api.key"
        if ensure_certificate(cert, key, [api.host]):
            log.info("web UI: made a self-signed certificate %s (replace it with your own if you like)", cert)
        return str(cert), str(key)

    # Each part of stop() gets at most this long. A part that hangs (a cancellation swallowed on
    # 3.11 once kept a Modbus bus, and with it stop(), alive) is named in a warning and left behind,
    # so shutdown always ends and the stores are still closed.
    STOP_PART_S = 10.0

    async def stop(self) -> None:
        """Stop accepting, close chargers, flush the outbox to disk, say offline; idempotent, bounded."""
        self.hub.close()
        if self._api is not None:
            self._api.should_exit = True
        await self._stop_part("OCPP server", self.ocpp.stop())
        await self.sessions.drain(5.0)  # no charger is connected: the last events are all queued
        for task in list(self._tasks):
            if task.get_name().startswith(("meter-", "sessions", "local-list-", "reports", "price-display")):
                task.cancel()
        await self._tasks_ended("background tasks", set(self._tasks))  # the web API ends by should_exit
        await self._stop_part("OCPI commands", self.ocpi_commands.close())
        await self._stop_part("uplink", self.uplink.stop())
        await self._stop_part("outbox", asyncio.to_thread(self.outbox.close))
        # After the OCPP server: no handler commits any more.
        await self._stop_part("journal", asyncio.to_thread(self.journal.close))
        await self._stop_part("token cache", asyncio.to_thread(self.tokens.close))
        await self._stop_part("session store", asyncio.to_thread(self.session_store.close))
        self.status_history.mark_alive(self.clock.now())  # the time after this shows as UNKNOWN
        await self._stop_part("status history", asyncio.to_thread(self.status_history.close))
        await self._stop_part("authorization audit", asyncio.to_thread(self.auth_audit.close))
        await self._stop_part("message log", asyncio.to_thread(self.message_log.close))
        await self._stop_part("charger registry", asyncio.to_thread(self.registry_docs.close))
        await self._stop_part("accounts", asyncio.to_thread(self.accounts.close))
        log.info("siteedge stopped; %d message(s) kept for the next start", self.outbox_backlog_hint)

    async def _stop_part(self, part: str, step: Coroutine[Any, Any, Any]) -> None:
        """Run one part of the shutdown for at most STOP_PART_S; a hang or an error is logged, not raised."""
        task = asyncio.create_task(step, name=f"stop {part}")
        await self._tasks_ended(part, {task})
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("shutdown: %s failed; going on", part, exc_info=task.exception())

    async def _tasks_ended(self, part: str, tasks: set[asyncio.Task[Any]]) -> None:
        """Wait at most STOP_PART_S for tasks to end; warn naming the part and every task still running."""
        if not tasks:
            return
        try:
            # asyncio.wait, not a timeout around the await: a task that swallowed its cancellation
            # would hold up asyncio.timeout (and gather) as long as it runs.
            _, pending = await asyncio.wait(tasks, timeout=self.STOP_PART_S)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        if pending:
            names = ", ".join(sorted(t.get_name() for t in pending))
            log.warning(
                "shutdown: %s did not stop within %g s (still running: %s); going on without it",
                part,
                self.STOP_PART_S,
                names,
            )
            for task in pending:
                task.cancel()  # once more, in case the first cancellation was swallowed; nobody waits now

    @property
    def outbox_backlog_hint(self) -> int:
        """Backlog as last reported to the site (the outbox may be closed)."""
        return self.site.uplink.backlog

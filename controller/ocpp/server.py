"""The OCPP WebSocket endpoint: ws(s)://host:port/ocpp/{charge_point_id}, subprotocol negotiated."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from ocpp.exceptions import OCPPError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from controller.core.config import OcppSettings
from controller.core.events import ChargerConnected, ChargerDisconnected
from controller.ocpp.context import OcppContext
from controller.ocpp.credentials import Credentials
from controller.ocpp.guard import GuardedChargePoint
from controller.ocpp.v16 import CentralSystem16
from controller.ocpp.v201 import CentralSystem201

log = logging.getLogger(__name__)

# Server preference order: the newest protocol both sides speak wins.
SUBPROTOCOLS = ("ocpp2.0.1", "ocpp1.6")
_PREFIX = "/ocpp/"
CLOSE_TIMEOUT = 5.0  # seconds a closing peer gets to answer the close frame


class Guarded16(GuardedChargePoint, CentralSystem16):
    """An OCPP 1.6J session behind the guard."""


class Guarded201(GuardedChargePoint, CentralSystem201):
    """An OCPP 2.0.1 session behind the guard."""


def charger_id_from_path(path: str) -> str | None:
    """The charge point id in /ocpp/{id}, or None if the path is not an OCPP endpoint."""
    path = path.split("?", 1)[0]
    if not path.startswith(_PREFIX):
        return None
    cp_id = unquote(path[len(_PREFIX) :]).strip("/")
    return cp_id if cp_id and "/" not in cp_id and len(cp_id) <= 48 else None


def _basic_password(headers: Headers, charger_id: str) -> str | None:
    auth = headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(auth[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if user == charger_id else None


def tls_context(cfg: OcppSettings) -> ssl.SSLContext:
    """The wss:// server context: TLS 1.2+, our certificate, client certificates checked if offered."""
    assert cfg.tls_cert and cfg.tls_key
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # STANDARDS 2.1: TLS 1.2 or higher
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    if cfg.tls_ca:
        ctx.load_verify_locations(cfg.tls_ca)
        # Optional at the TLS layer because profile 2 chargers share the listener; a profile 3
        # charger without a (valid) certificate is refused by the request check below.
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _peer_common_name(conn: ServerConnection) -> str | None:
    ssl_object = conn.transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class OcppServer:
    """Accepts charger connections and runs one guarded protocol handler per charger.

    Two listeners: ws:// on `ocpp.port` (profiles 0 and 1) and, with `ocpp.tls_cert`, wss:// on
    `ocpp.tls_port` (any profile; required for 2 and 3). A charger is refused on a listener weaker
    than its configured profile, so a profile can never be downgraded by choosing the port.
    """

    def __init__(self, ctx: OcppContext) -> None:
        self._ctx = ctx
        self._server: Server | None = None
        self._tls_server: Server | None = None
        self._sessions: dict[str, ServerConnection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._credentials = Credentials(ctx)

    @property
    def credentials(self) -> Credentials:
        """The Basic password checker (for the service that lets technicians set passwords)."""
        return self._credentials

    @property
    def port(self) -> int:
        """The bound ws:// TCP port (useful when configured as 0)."""
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def tls_port(self) -> int | None:
        """The bound wss:// TCP port, None without TLS."""
        if self._tls_server is None:
            return None
        return int(next(iter(self._tls_server.sockets)).getsockname()[1])

    async def start(self) -> None:
        """Start listening (password hashes are derived in the background meanwhile)."""
        cfg = self._ctx.config.ocpp
        self._spawn(self._credentials.start(), "ocpp-password-hashes")
        common: dict[str, Any] = {
            "subprotocols": list(SUBPROTOCOLS),
            "process_request": self._check_request,
            # A dead TCP peer is noticed within ping_interval + ping_timeout + close_timeout (the
            # close handshake a dead peer never answers): 30 + 25 + 5 = 60 s by default (item 8).
            "ping_interval": cfg.ping_interval,
            "ping_timeout": cfg.ping_timeout,
            "close_timeout": CLOSE_TIMEOUT,
            # A bigger frame closes the connection with 1009 before it is buffered (item 9).
            "max_size": cfg.max_frame_bytes,
        }
        self._server = await serve(self._handle, cfg.host, cfg.port, **common)
        log.info("OCPP endpoint listening on ws://%s:%d%s{charge_point_id}", cfg.host, self.port, _PREFIX)
        if cfg.tls_cert:
            self._tls_server = await serve(
                self._handle, cfg.host, cfg.tls_port, ssl=tls_context(cfg), **common
            )
            log.info("OCPP endpoint listening on wss://%s:%d%s{id}", cfg.host, self.tls_port, _PREFIX)

    async def stop(self) -> None:
        """Close every charger connection and stop listening."""
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _refuse(self, conn: ServerConnection, cp_id: str, status: HTTPStatus, why: str) -> Response:
        log.warning("charger %s refused: %s", cp_id, why)
        return conn.respond(status, why + "\n")

    async def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        cp_id = charger_id_from_path(request.path)
        if cp_id is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "OCPP endpoint is /ocpp/{charge_point_id}\n")
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        if not set(offered) & set(SUBPROTOCOLS):
            return self._refuse(
                conn,
                cp_id,
                HTTPStatus.BAD_REQUEST,
                f"unsupported subprotocol {offered or 'none'}; use one of {', '.join(SUBPROTOCOLS)}",
            )
        profile = self._ctx.security_profile(cp_id)
        tls = conn.transport.get_extra_info("ssl_object") is not None
        if profile >= 2 and not tls:
            return self._refuse(conn, cp_id, HTTPStatus.FORBIDDEN, f"security profile {profile} needs wss://")
        if profile == 3:
            cn = _peer_common_name(conn)
            if cn != cp_id:
                why = "no client certificate" if cn is None else f"client certificate CN {cn!r} is not its id"
                return self._refuse(conn, cp_id, HTTPStatus.FORBIDDEN, f"security profile 3: {why}")
        if profile in (1, 2) or self._credentials.switching(cp_id):
            given = _basic_password(request.headers, cp_id)
            # Checked against the stored scrypt hash in a worker thread (credentials.py); while a
            # new password is being switched to, the old credential (or none, from profile 0) too.
            if not await self._credentials.check(cp_id, given):
                return self._refuse(
                    conn, cp_id, HTTPStatus.UNAUTHORIZED, "bad or missing HTTP Basic credentials"
                )
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        cp_id = charger_id_from_path(conn.request.path if conn.request else "") or ""
        proto = conn.subprotocol or ""
        cls: Any = Guarded16 if proto == "ocpp1.6" else Guarded201
        handler = cls(cp_id, conn, self._ctx)
        old = self._sessions.get(cp_id)
        if old is not None:
            # Chargers reconnect before the old socket times out: the new connection wins.
            log.info("charger %s reconnected; closing its previous connection", cp_id)
            await old.close(code=1000, reason="replaced by a new connection")
        self._sessions[cp_id] = conn
        log.info("charger %s connected (%s) from %s", cp_id, proto, conn.remote_address)
        self._ctx.stats.connections += 1
        self._ctx.emit(ChargerConnected(cp_id, proto.removeprefix("ocpp"), self._ctx.clock.now()))
        refresh = None
        if self._ctx.may_send(cp_id):
            # A reconnect after an accepted boot: no new boot will come, so ask for fresh status.
            refresh = self._spawn(self._refresh_status(handler), f"ocpp-refresh-{cp_id}")
        try:
            await handler.start()
        except ConnectionClosed as exc:
            log.info("charger %s disconnected: %s", cp_id, exc)
        except Exception:  # a broken charger connection must not stop the server
            log.exception("charger %s: connection handler failed", cp_id)
        finally:
            if refresh is not None:
                refresh.cancel()
            if self._sessions.get(cp_id) is conn:
                del self._sessions[cp_id]
                self._ctx.emit(ChargerDisconnected(cp_id, self._ctx.clock.now()))
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close())

    async def _refresh_status(self, handler: GuardedChargePoint) -> None:
        try:
            result = await handler.trigger_status()
            log.info("charger %s: TriggerMessage StatusNotification -> %s", handler.id, result)
        except (OCPPError, TimeoutError, ConnectionClosed) as exc:
            log.info("charger %s: TriggerMessage StatusNotification failed: %r", handler.id, exc)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

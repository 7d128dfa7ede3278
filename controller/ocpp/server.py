"""The OCPP WebSocket endpoint: ws://host:port/ocpp/{charge_point_id}, subprotocol negotiated."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from controller.core.events import ChargerConnected, ChargerDisconnected
from controller.ocpp.context import OcppContext
from controller.ocpp.v16 import CentralSystem16
from controller.ocpp.v201 import CentralSystem201

log = logging.getLogger(__name__)

# Server preference order: the newest protocol both sides speak wins.
SUBPROTOCOLS = ("ocpp2.0.1", "ocpp1.6")
_PREFIX = "/ocpp/"


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


class OcppServer:
    """Accepts charger connections and runs one protocol handler per charger."""

    def __init__(self, ctx: OcppContext) -> None:
        self._ctx = ctx
        self._server: Server | None = None
        self._sessions: dict[str, ServerConnection] = {}

    @property
    def port(self) -> int:
        """The bound TCP port (useful when configured as 0)."""
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def start(self) -> None:
        """Start listening."""
        cfg = self._ctx.config.ocpp
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            process_request=self._check_request,
            ping_interval=60,
            ping_timeout=60,
        )
        log.info("OCPP endpoint listening on ws://%s:%d%s{charge_point_id}", cfg.host, self.port, _PREFIX)

    async def stop(self) -> None:
        """Close every charger connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        cp_id = charger_id_from_path(request.path)
        if cp_id is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "OCPP endpoint is /ocpp/{charge_point_id}\n")
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        if not set(offered) & set(SUBPROTOCOLS):
            log.warning(
                "charger %s refused: offers subprotocols %s, siteedge speaks %s",
                cp_id,
                offered or "none",
                ", ".join(SUBPROTOCOLS),
            )
            return conn.respond(
                HTTPStatus.BAD_REQUEST, f"unsupported subprotocol; use one of {', '.join(SUBPROTOCOLS)}\n"
            )
        expected = self._ctx.password_of(cp_id)
        if expected is not None:
            given = _basic_password(request.headers, cp_id)
            if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
                log.warning("charger %s refused: bad or missing HTTP Basic credentials", cp_id)
                return conn.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        cp_id = charger_id_from_path(conn.request.path if conn.request else "") or ""
        proto = conn.subprotocol or ""
        handler: Any = (CentralSystem16 if proto == "ocpp1.6" else CentralSystem201)(cp_id, conn, self._ctx)
        old = self._sessions.get(cp_id)
        if old is not None:
            # Chargers reconnect before the old socket times out: the new connection wins.
            log.info("charger %s reconnected; closing its previous connection", cp_id)
            await old.close(code=1000, reason="replaced by a new connection")
        self._sessions[cp_id] = conn
        log.info("charger %s connected (%s) from %s", cp_id, proto, conn.remote_address)
        self._ctx.emit(ChargerConnected(cp_id, proto.removeprefix("ocpp"), self._ctx.clock.now()))
        try:
            await handler.start()
        except Exception as exc:  # noqa: BLE001 - a broken charger connection must not stop the server
            log.info("charger %s disconnected: %s", cp_id, type(exc).__name__)
        finally:
            if self._sessions.get(cp_id) is conn:
                del self._sessions[cp_id]
                self._ctx.emit(ChargerDisconnected(cp_id, self._ctx.clock.now()))
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close())

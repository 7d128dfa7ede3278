"""Technicians' REST endpoints: send a command to a charger, read its transactions."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from controller.core.ports import ChargerCommands, CommandResult, TransactionJournal
from local_api.errors import code_for, problem
from local_api.pagination import Page, page_from_top

# The caller's error, not the charger's: answered with an HTTP error status as well.
_HTTP_STATUS = {"InvalidParams": 422, "UnknownCommand": 404, "UnknownEvse": 404, "UnknownTransaction": 404}
MAX_TIMEOUT_S = 120.0


def _reply(result: CommandResult) -> Response:
    status = _HTTP_STATUS.get(result.error or "", 200)
    body = result.as_json()
    if status >= 400:  # the common error shape, plus the result for the details
        body = {**body, "detail": result.detail or f"{result.error}", "code": code_for(status)}
    return JSONResponse(body, status_code=status)


def _problem(status: int, detail: str) -> Response:
    return problem(status, detail)


async def _body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object ({} if empty), None if it is something else."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _timeout(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return min(value, MAX_TIMEOUT_S)


# Where chargers fetch firmware from and upload logs to (OCPP: an anyURI; FTP(S) and HTTP(S) in practice).
URL_SCHEMES = ("http", "https", "ftp", "ftps", "sftp")


def _location(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in URL_SCHEMES or not parts.hostname:
        raise ValueError(f"must be an absolute {', '.join(URL_SCHEMES)} URL with a host")
    return value


class FirmwareBody(BaseModel):
    """POST /api/v1/chargers/{id}/firmware: where the image is, and when to fetch it (default now)."""

    model_config = ConfigDict(extra="forbid")
    location: str = Field(min_length=1, max_length=512)  # OCPP 2.0.1 firmware.location: string[0..512]
    retrieve_at: AwareDatetime | None = None
    retries: int | None = Field(default=None, ge=0, le=100)

    _url = field_validator("location")(_location)


class LogsBody(BaseModel):
    """POST /api/v1/chargers/{id}/logs: where the charger uploads its diagnostics log."""

    model_config = ConfigDict(extra="forbid")
    location: str = Field(min_length=1, max_length=512)  # OCPP 2.0.1 log.remoteLocation: string[0..512]

    _url = field_validator("location")(_location)


def commands_router(commands: ChargerCommands | None, journal: TransactionJournal | None) -> APIRouter:
    """Routes for the command service and the transaction journal (each only if provided)."""
    router = APIRouter()

    if commands is not None:
        cmd = commands

        @router.get("/api/v1/chargers/{charger_id}/commands")
        async def list_commands(charger_id: str) -> Response:
            """The OCPP commands the connected charger's protocol version offers."""
            return JSONResponse({"charger_id": charger_id, "commands": cmd.commands(charger_id)})

        @router.post("/api/v1/chargers/{charger_id}/commands/{name}")
        async def send_command(
            charger_id: str, name: str, request: Request, timeout_s: float | None = None
        ) -> Response:
            """Send one OCPP action; the body is its payload in OCPP camelCase (may be empty)."""
            params = await _body(request)
            if params is None:
                return _problem(422, "the body must be a JSON object (the OCPP payload)")
            return _reply(await cmd.call(charger_id, name, params, _timeout(timeout_s)))

        @router.post("/api/v1/chargers/{charger_id}/firmware")
        async def update_firmware(
            charger_id: str, body: FirmwareBody, timeout_s: float | None = None
        ) -> Response:
            """Install firmware from a URL; progress shows as the charger's firmware_update (health)."""
            when = body.retrieve_at or datetime.now(UTC)
            result = await cmd.update_firmware(
                charger_id, body.location, when, body.retries, _timeout(timeout_s)
            )
            return _reply(result)

        @router.post("/api/v1/chargers/{charger_id}/logs")
        async def upload_logs(charger_id: str, body: LogsBody, timeout_s: float | None = None) -> Response:
            """Have the charger upload its diagnostics log to a URL; progress appears as its log_upload."""
            return _reply(await cmd.upload_logs(charger_id, body.location, _timeout(timeout_s)))

        @router.post("/api/v1/evses/{evse_uid}/start")
        async def remote_start(evse_uid: str, request: Request, timeout_s: float | None = None) -> Response:
            """Start a transaction on an EVSE: body {"id_tag": "..."}."""
            body = await _body(request)
            if body is None or not isinstance(body.get("id_tag"), str) or not body["id_tag"]:
                return _problem(422, 'the body must be {"id_tag": "..."}')
            return _reply(await cmd.remote_start(evse_uid, body["id_tag"], _timeout(timeout_s)))

        @router.post("/api/v1/evses/{evse_uid}/unlock")
        async def unlock(evse_uid: str, timeout_s: float | None = None) -> Response:
            """Unlock an EVSE's connector."""
            return _reply(await cmd.unlock(evse_uid, _timeout(timeout_s)))

        @router.post("/api/v1/transactions/stop")
        async def remote_stop(request: Request, timeout_s: float | None = None) -> Response:
            """Stop a transaction: body {"id": "<transaction id as listed>"}."""
            body = await _body(request)
            if body is None or not isinstance(body.get("id"), str):
                return _problem(422, 'the body must be {"id": "<transaction id>"}')
            return _reply(await cmd.remote_stop(body["id"], _timeout(timeout_s)))

    if journal is not None:
        tx = journal

        @router.get("/api/v1/chargers/{charger_id}/transactions")
        async def charger_transactions(charger_id: str, page: Page) -> Response:
            """The charger's transactions, newest first; paged."""
            records = await asyncio.to_thread(tx.transactions, charger_id, page.through)
            return JSONResponse(page_from_top([r.as_json() for r in records], page))

        @router.get("/api/v1/transactions")
        async def all_transactions(page: Page, active: bool = False) -> Response:
            """Every charger's transactions, newest first (only running ones with active=true); paged."""
            if active:
                records = await asyncio.to_thread(tx.open_transactions)
            else:
                records = await asyncio.to_thread(tx.transactions, None, page.through)
            return JSONResponse(page_from_top([r.as_json() for r in records], page))

    return router

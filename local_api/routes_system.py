"""REST for the System page: status, config view/check/edit, backup/restore, restart, logs."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from controller.core.config import ConfigError
from local_api.auth.middleware import AUDIT
from local_api.errors import problem
from local_api.pagination import Page, page_of
from local_api.ports import SystemAdmin

MAX_TOML_CHARS = 1_000_000  # a site config is a few kB; this only stops abuse
MAX_BUNDLE_BYTES = 16 * 1024 * 1024  # config + registry of a large site, with room to spare
LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
_NO_STORE = {"cache-control": "no-store"}


class TomlBody(BaseModel):
    """A proposed configuration file's full text."""

    toml: str = Field(max_length=MAX_TOML_CHARS)


def _invalid_config(exc: ConfigError) -> JSONResponse:
    n = len(exc.problems)
    return problem(
        422,
        f"the configuration was not changed: {n} problem{'s' if n != 1 else ''} found",
        "invalid",
        errors=[{"key": p.key, "reason": p.reason} for p in exc.problems],
    )


def system_router(system: SystemAdmin) -> APIRouter:
    """Routes under /api/v1/system (roles are enforced centrally by the app)."""
    router = APIRouter(prefix="/api/v1/system")

    @router.get("")
    async def info() -> Response:
        """Version, uptime, time sync, uplink, data dir usage, listeners and config file path."""
        return JSONResponse(await system.info(), headers=_NO_STORE)

    @router.get("/config")
    async def config_view() -> Response:
        """The running config file's TOML, secrets redacted as ********."""
        return JSONResponse({"toml": await system.config_text()}, headers=_NO_STORE)

    @router.post("/config/check")
    async def config_check(body: TomlBody) -> Response:
        """Validate a proposed config (every problem with key and reason) and diff it; changes nothing."""
        return JSONResponse(await system.check_config(body.toml), headers=_NO_STORE)

    @router.put("/config")
    async def config_put(body: TomlBody, request: Request) -> Response:
        """Write a valid config atomically, the previous file kept as <name>.bak-<timestamp>."""
        try:
            result = await system.apply_config(body.toml)
            request.scope[AUDIT] = f"config file replaced (previous kept as {result['backup']})"
            return JSONResponse(result, headers=_NO_STORE)
        except ConfigError as exc:
            return _invalid_config(exc)

    @router.post("/restart")
    async def restart(request: Request) -> Response:
        """Graceful restart: stop everything cleanly, then start again with the config file."""
        request.scope[AUDIT] = "restart"
        return JSONResponse(system.restart(), status_code=202, headers=_NO_STORE)

    @router.get("/backup")
    async def backup() -> Response:
        """A downloadable JSON bundle: config (with secrets) and charger registry; no accounts."""
        bundle, filename = await system.backup()
        return JSONResponse(
            bundle, headers={**_NO_STORE, "content-disposition": f'attachment; filename="{filename}"'}
        )

    @router.post("/restore")
    async def restore(request: Request) -> Response:
        """Apply a backup bundle after validating all of it; nothing changes if any part is bad."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BUNDLE_BYTES:
                return problem(413, f"a backup bundle is at most {MAX_BUNDLE_BYTES} bytes", "invalid")
        try:
            bundle = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return problem(400, f"the body is not a JSON backup bundle: {exc}", "invalid")
        try:
            result = await system.restore(bundle)
            request.scope[AUDIT] = f"backup restored ({result['chargers']} registry entries)"
            return JSONResponse(result, headers=_NO_STORE)
        except ConfigError as exc:
            return _invalid_config(exc)

    @router.get("/logs")
    async def logs(
        page: Page,
        level: str | None = None,
        q: str | None = Query(None, max_length=200),
    ) -> Response:
        """Newest log records first (in-memory, last 2000); level = minimum level, q = text."""
        min_level = 0
        if level:
            if level.upper() not in LEVELS:
                return problem(422, f"level must be one of {', '.join(LEVELS)}", "invalid")
            min_level = LEVELS[level.upper()]
        rows = system.logs(page.probe, page.offset, min_level, q or None)
        return JSONResponse(page_of(rows, page), headers=_NO_STORE)

    return router

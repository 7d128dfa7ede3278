"""Site-level REST for the web UI: site power for the dashboard, the device library for commissioning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response


class PowerView(Protocol):
    """Site power history; controller.core.site.Site satisfies it structurally."""

    def power_history(self, minutes: int) -> dict[str, Any]:
        """{"limit_kw", "source", "step_s", "points": [{"t", "kw"}]} for the last `minutes`."""
        ...


def site_router(power: PowerView | None, device_models: Sequence[Mapping[str, Any]] | None) -> APIRouter:
    """GET /api/v1/site/power and GET /api/v1/modbus/models, each only if its source is given."""
    router = APIRouter()

    if power is not None:
        view = power

        # Async: the site belongs to the loop thread.
        @router.get("/api/v1/site/power")
        async def site_power(minutes: int = Query(60, ge=1, le=60)) -> Response:
            """Site power (grid meter, else the sum of EVSE power) as 10-s averages, and the site limit."""
            return JSONResponse(view.power_history(minutes), headers={"cache-control": "no-store"})

    if device_models is not None:
        models = [dict(m) for m in device_models]

        @router.get("/api/v1/modbus/models")
        async def modbus_models() -> Response:
            """The device library: every model's name, vendor, product name and kind (meter/charger)."""
            return JSONResponse({"models": models})

    return router

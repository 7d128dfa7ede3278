"""Modbus endpoints: device health, bus scans and test reads for commissioning (/api/v1/modbus/...)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from controller.core.config import ConfigError
from controller.core.ports import ModbusBusy, ModbusChargers, ModbusControl
from local_api.auth.middleware import AUDIT
from local_api.errors import problem
from local_api.ports import SystemAdmin

# The keys of a [[meters]] entry; their values are checked by the config validation itself.
METER_KEYS = ("id", "model", "transport", "unit", "role", "poll_interval", "timeout", "slow_interval")


class ScanRequest(BaseModel):
    """POST /api/v1/modbus/scan: which bus and unit ids; wait=true answers when the scan is done."""

    transport: str
    first: int = Field(1, ge=1, le=247)
    last: int = Field(247, ge=1, le=247)
    timeout: float = Field(0.2, ge=0.02, le=2.0)
    wait: bool = False


class ReadRequest(BaseModel):
    """POST /api/v1/modbus/test-read: a device to read with a chosen model."""

    transport: str
    unit: int = Field(1, ge=1, le=247)
    model: str
    timeout: float = Field(0.5, ge=0.02, le=5.0)


class CurrentRequest(BaseModel):
    """POST /api/v1/modbus/chargers/{id}/current: the current limit in A (below 6 A pauses, IEC 61851)."""

    amps: float = Field(ge=0.0, le=1000.0)


def _json(value: Any, status: int = 200) -> Response:
    return JSONResponse(_finite(value), status_code=status, headers={"cache-control": "no-store"})


def _finite(value: Any) -> Any:
    # A garbled float must show as "no value": JSON has no NaN.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _problem(status: int, detail: str) -> Response:
    return problem(status, detail)


def modbus_router(
    control: ModbusControl, chargers: ModbusChargers | None = None, config: SystemAdmin | None = None
) -> APIRouter:
    """The /api/v1/modbus routes over a ModbusControl port (all async: the port lives on the loop)."""
    router = APIRouter(prefix="/api/v1/modbus")

    if chargers is not None:
        _charger_routes(router, chargers)
    if config is not None:
        _save_route(router, config)

    @router.get("/devices")
    async def devices() -> Response:
        """Every bus and device: state, counters, last error, timing and read plan."""
        return _json(control.devices())

    @router.post("/scan")
    async def scan(req: ScanRequest) -> Response:
        """Start a unit-id scan (202 with the job), or run it to the end with wait=true (200)."""
        try:
            job = await control.start_scan(req.transport, req.first, req.last, req.timeout)
        except ValueError as exc:
            return _problem(400, str(exc))
        except ModbusBusy as exc:
            return _problem(409, str(exc))
        if not req.wait:
            return _json(job, 202)
        return _json(await control.wait_scan(job["id"]))

    @router.get("/scan/{scan_id}")
    async def scan_status(scan_id: str) -> Response:
        """A scan's progress (done/total) and the unit ids found so far."""
        job = control.scan(scan_id)
        return _problem(404, f"no scan {scan_id!r}") if job is None else _json(job)

    @router.post("/test-read")
    async def test_read(req: ReadRequest) -> Response:
        """Read a device with a chosen model: decoded values with plausibility problems and hints."""
        try:
            return _json(await control.test_read(req.transport, req.unit, req.model, req.timeout))
        except ValueError as exc:
            return _problem(400, str(exc))

    return router


def _charger_routes(router: APIRouter, chargers: ModbusChargers) -> None:
    """GET /api/v1/modbus/chargers and POST /api/v1/modbus/chargers/{id}/current."""

    @router.get("/chargers")
    async def list_chargers() -> Response:
        """Every Modbus charger: IEC state, setpoint, applied current, watchdog and health."""
        return _json({"chargers": chargers.chargers()})

    @router.post("/chargers/{charger_id}/current")
    async def set_current(charger_id: str, req: CurrentRequest) -> Response:
        """Set a charger's current limit: 200 once written and read back, 502 if the charger refused it."""
        try:
            ok = await chargers.set_current(charger_id, req.amps)
        except KeyError:
            return _problem(404, f"no Modbus charger {charger_id!r}")
        except ValueError as exc:
            return _problem(400, str(exc))
        entry = next((c for c in chargers.chargers() if c.get("id") == charger_id), {})
        body: dict[str, Any] = {"ok": ok, "requested_a": req.amps, "charger": entry}
        if not ok:  # the common error shape, with the charger's state for the details
            body.update(detail=f"charger {charger_id!r} did not take the current limit", code="upstream")
        return _json(body, 200 if ok else 502)


def _entry_problems(body: dict[str, Any]) -> list[dict[str, str]]:
    """What the config validation cannot say about a JSON body: unknown keys, values TOML cannot hold."""
    problems = [{"key": k, "reason": "unknown key"} for k in body if k not in METER_KEYS]
    for key, value in body.items():
        if key in METER_KEYS and not isinstance(value, str | int | float):  # bool is an int: checked later
            problems.append({"key": key, "reason": "must be a string or a number"})
    return problems


def _save_route(router: APIRouter, config: SystemAdmin) -> None:
    """POST /api/v1/modbus/devices: save a commissioned meter to the configuration file."""

    @router.post("/devices", status_code=201)
    async def save_device(request: Request, body: Annotated[dict[str, Any], Body()]) -> Response:
        """Append a [[meters]] entry (checked, written atomically, previous file backed up).

        The running site polls it at once (`active`); `restart_required` says whether the file
        still holds other edits that wait for a restart.
        """
        if problems := _entry_problems(body):
            return problem(422, "the device was not saved", "invalid", errors=problems)
        entry = {k: body[k] for k in METER_KEYS if k in body}  # the config file's key order
        try:
            result = await config.append_entry("meters", entry)
        except ConfigError as exc:
            errors = [{"key": p.key, "reason": p.reason} for p in exc.problems]
            # Only a clash with an existing device: the id is taken (a meter and a Modbus charger share ids).
            duplicate = all(p.reason.startswith("duplicate") for p in exc.problems)
            return problem(
                409 if duplicate else 422,
                "the device was not saved: " + "; ".join(f"{e['key']} {e['reason']}" for e in errors),
                "conflict" if duplicate else "invalid",
                errors=errors,
            )
        request.scope[AUDIT] = (
            f"meter {entry['id']} ({entry['model']}, {entry['transport']} unit {entry.get('unit', 1)}, "
            f"{entry['role']}) added to the config{' and polled' if result['active'] else ''} "
            f"(previous kept as {result['backup']})"
        )
        saved = {
            "saved": True,
            "active": result["active"],
            "restart_required": result["restart_required"],
            "id": entry["id"],
            "backup": result["backup"],
        }
        return _json(saved, 201)

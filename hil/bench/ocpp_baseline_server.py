"""The baseline for the OCPP load benchmark: a minimal 1.6J server on the bare `ocpp` library.

Run: python -m hil.bench.ocpp_baseline_server --port P [--host 127.0.0.1]
A websockets server on ws://host:port/ocpp/{id} (subprotocol ocpp1.6) with one `ocpp.v16`
ChargePoint per connection and handlers for BootNotification, Heartbeat, StatusNotification and
MeterValues that only return their call results: nothing stored, published or logged. The same
websockets settings as siteedge's endpoint where they cost CPU (pings, compression defaults), so
the difference in CPU per message is siteedge's own work. Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HEARTBEAT_INTERVAL = 60


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class BaselineChargePoint(ChargePoint):  # type: ignore[misc]
    """Answers the four messages of the benchmark load and does nothing else."""

    @on(Action.boot_notification)  # type: ignore[untyped-decorator]  # ocpp is untyped
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        return call_result.BootNotification(
            current_time=_now(), interval=HEARTBEAT_INTERVAL, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)  # type: ignore[untyped-decorator]  # ocpp is untyped
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)  # type: ignore[untyped-decorator]  # ocpp is untyped
    def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any) -> Any:
        return call_result.StatusNotification()

    @on(Action.meter_values)  # type: ignore[untyped-decorator]  # ocpp is untyped
    def on_meter_values(self, connector_id: int, meter_value: list[Any], **kw: Any) -> Any:
        return call_result.MeterValues()


async def _handle(conn: ServerConnection) -> None:
    path = conn.request.path if conn.request else ""
    cp = BaselineChargePoint(path.rsplit("/", 1)[-1] or "unknown", conn)
    with contextlib.suppress(ConnectionClosed):
        await cp.start()


async def serve_forever(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # siteedge's endpoint pings every 30 s with a 25 s timeout; the same here (websockets' defaults
    # are 20/20). Compression is the library default on both (the load generator declines it).
    async with serve(
        _handle,
        host,
        port,
        subprotocols=[Subprotocol("ocpp1.6")],
        ping_interval=30.0,
        ping_timeout=25.0,
        max_size=65536,
    ):
        print(f"baseline OCPP server on ws://{host}:{port}/ocpp/{{id}}", flush=True)
        await stop


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m hil.bench.ocpp_baseline_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    asyncio.run(serve_forever(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 3 items 8 and 9 over real WebSockets: bad input, the pre-boot gate, liveness, message log."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from controller.app import SiteController
from controller.core.config import validate
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.siteconfig import SiteSpec, render
from tests.api import api_client

BOOT16 = {"chargePointVendor": "raw", "chargePointModel": "raw"}
BOOT201 = {"reason": "PowerUp", "chargingStation": {"vendorName": "raw", "model": "raw"}}


async def started(spec: SiteSpec, **ocpp: object) -> SiteController:
    """A controller with extra [ocpp] keys."""
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in ocpp.items())
    ctl = SiteController(validate(tomllib.loads(render(spec).replace("[ocpp]\n", "[ocpp]\n" + extra))))
    await ctl.start()
    return ctl


@pytest.fixture
async def controller(site_spec: SiteSpec) -> AsyncIterator[SiteController]:
    ctl = await started(site_spec, max_frame_bytes=4096)
    yield ctl
    await ctl.stop()


class Raw:
    """A bare OCPP-J client: sends any text, reads replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def reply(self) -> list[Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), 5))  # type: ignore[no-any-return]

    async def call(self, action: str, payload: dict[str, Any], uid: str = "u1") -> list[Any]:
        await self.send(json.dumps([2, uid, action, payload]))
        return await self.reply()


@pytest.fixture
async def raw(controller: SiteController) -> AsyncIterator[Callable[..., Any]]:
    opened: list[ClientConnection] = []

    async def open_(cp_id: str = "CP-1", version: str = "1.6", boot: bool = True) -> Raw:
        ws = await connect(
            f"ws://127.0.0.1:{controller.ocpp_port}/ocpp/{cp_id}",
            subprotocols=[Subprotocol(f"ocpp{version}")],
        )
        opened.append(ws)
        client = Raw(ws)
        if boot:
            reply = await client.call("BootNotification", BOOT16 if version == "1.6" else BOOT201, "boot")
            assert reply[2]["status"] == "Accepted"
        return client

    yield open_
    for ws in opened:
        await ws.close()


@pytest.mark.parametrize(
    ("version", "frame", "code", "uid"),
    [
        ("1.6", "this is not json", "FormationViolation", "-1"),
        ("2.0.1", "this is not json", "RpcFrameworkError", "-1"),
        ("2.0.1", '[9, "m1", "Heartbeat", {}]', "MessageTypeNotSupported", "m1"),
        ("1.6", '[9, "m1", "Heartbeat", {}]', "FormationViolation", "m1"),
        ("1.6", '[2, "m2", "Heartbeat", []]', "FormationViolation", "m2"),
        (
            "1.6",
            '[2, "m3", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", '
            '"status": "Available"}]',
            "TypeConstraintViolation",
            "m3",
        ),
        ("2.0.1", '[2, "m4", "Heartbeat", {"unexpected": 1}]', "FormatViolation", "m4"),
        ("1.6", '[2, "m5", "StatusNotification", {"connectorId": 1}]', "ProtocolError", "m5"),
        ("1.6", '[2, "m6", "MakeCoffee", {}]', "NotImplemented", "m6"),
        ("2.0.1", '[2, "m7", "MakeCoffee", {}]', "NotImplemented", "m7"),
        ("1.6", '[2, "m8", "Reset", {"type": "Hard"}]', "NotSupported", "m8"),
    ],
)
async def test_bad_input_gets_the_right_callerror_and_the_connection_keeps_serving(
    raw: Callable[..., Any], version: str, frame: str, code: str, uid: str
) -> None:
    client = await raw(version=version)
    await client.send(frame)
    reply = await client.reply()
    assert reply[0] == 4 and reply[1] == uid and reply[2] == code, reply
    assert isinstance(reply[3], str) and isinstance(reply[4], dict)
    ok = await client.call("Heartbeat", {}, "after")
    assert ok[0] == 3 and ok[1] == "after" and "currentTime" in ok[2]


async def test_stray_replies_are_dropped_without_an_answer(raw: Callable[..., Any]) -> None:
    client = await raw()
    for stray in ('[3, "nobody-asked", {}]', '[4, "nobody", "GenericError", "x", {}]', '[3, "x"]'):
        await client.send(stray)
    ok = await client.call("Heartbeat", {}, "hb")
    assert ok[:2] == [3, "hb"]  # the very next frame is the heartbeat's answer


async def test_oversized_frame_closes_with_1009_and_others_are_unaffected(raw: Callable[..., Any]) -> None:
    big, other = await raw(), await raw("STRANGER", boot=False)
    await big.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "a" * 5000}]))
    with pytest.raises(ConnectionClosed) as exc:
        await big.reply()
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 1009
    assert (await other.call("BootNotification", BOOT16))[2]["status"] == "Pending"


async def test_binary_frame_closes_with_1003(raw: Callable[..., Any]) -> None:
    client = await raw()
    await client.send(b"\x00\x01garbage")
    with pytest.raises(ConnectionClosed) as exc:
        await client.reply()
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 1003


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_calls_before_an_accepted_boot_get_security_error(
    raw: Callable[..., Any], version: str
) -> None:
    # CP-1 is configured but never booted here; STRANGER is unknown and gets Pending.
    for cp_id in ("CP-1", "STRANGER"):
        client = await raw(cp_id, version, boot=False)
        reply = await client.call("Heartbeat", {}, "early")
        assert reply[:3] == [4, "early", "SecurityError"]
    stranger = await raw("STRANGER-2", version, boot=False)
    booted = await stranger.call("BootNotification", BOOT16 if version == "1.6" else BOOT201)
    assert booted[2]["status"] == "Pending"
    assert (await stranger.call("Heartbeat", {}, "still"))[2] == "SecurityError"


async def test_dead_connection_is_detected_by_ping_and_evses_go_unknown(site_spec: SiteSpec) -> None:
    ctl = await started(site_spec, ping_interval=1, ping_timeout=1)
    try:
        async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2) as cp:
            assert await cp.boot() == "Accepted"
            await cp.status(1, "Available")
            assert ctl.site.evses["CP-1-1"].status.value == "AVAILABLE"
            assert cp._ws is not None
            cp._ws.transport.pause_reading()  # a dead peer: no pongs, no close frame
            for _ in range(500):
                if ctl.site.evses["CP-1-1"].status.value == "UNKNOWN":
                    break
                await asyncio.sleep(0.02)
            assert ctl.site.evses["CP-1-1"].status.value == "UNKNOWN"
            assert not ctl.site.chargers["CP-1"].connected
            cp._ws.transport.abort()  # no close handshake with a dead peer
    finally:
        await ctl.stop()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_reconnect_after_accepted_boot_triggers_status_notification(
    controller: SiteController, version: str
) -> None:
    cls = ChargePointSimulator201 if version == "2.0.1" else ChargePointSimulator
    url = f"ws://127.0.0.1:{controller.ocpp_port}/ocpp"
    async with cls("CP-1", url, connectors=2) as first:
        assert await first.boot() == "Accepted"
        assert not any(a == "TriggerMessage" for a, _ in first.received)
    async with cls("CP-1", url, connectors=2) as again:  # same charger, no new boot
        for _ in range(250):
            if again.received:
                break
            await asyncio.sleep(0.02)
        assert ("TriggerMessage", {"requestedMessage": "StatusNotification"}) in again.received
        for _ in range(250):  # the triggered notifications refresh the site's state
            if controller.site.evses["CP-1-2"].status.value == "AVAILABLE":
                break
            await asyncio.sleep(0.02)
        assert controller.site.evses["CP-1-2"].status.value == "AVAILABLE"


async def test_message_log_is_readable_filtered_and_redacted(controller: SiteController) -> None:
    async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{controller.ocpp_port}/ocpp") as cp:
        await cp.boot()
        await cp.heartbeat()
        link = controller.ocpp._ctx.sessions.get("CP-1")
        assert link is not None
        from ocpp.v16 import call

        await link.call(call.ChangeConfiguration(key="AuthorizationKey", value="00112233445566778899"))
    await asyncio.to_thread(controller.message_log.flush)
    async with api_client(controller) as http:
        everything = (await http.get("/api/v1/chargers/CP-1/messages", params={"limit": 500})).json()["items"]
        boots = (await http.get("/api/v1/chargers/CP-1/messages?action=BootNotification")).json()["items"]
        first_page = (await http.get("/api/v1/chargers/CP-1/messages?limit=1")).json()
        second = (await http.get("/api/v1/chargers/CP-1/messages?limit=1&offset=1")).json()
    one = first_page["items"]
    assert first_page["next_offset"] == 1 and second["items"] == everything[1:2]
    assert "00112233445566778899" not in json.dumps(everything)
    change = [m for m in everything if m["action"] == "ChangeConfiguration" and m["direction"] == "out"]
    assert change and change[0]["payload"]["value"] == "***" and change[0]["message_type"] == 2
    assert [(m["direction"], m["message_type"]) for m in boots] == [("out", 3), ("in", 2)]
    assert boots[1]["payload"]["chargePointVendor"] == "siteedge-hil" and boots[0]["unique_id"]
    assert len(one) == 1 and one[0]["action"] == "ChangeConfiguration" and one[0]["direction"] == "in"

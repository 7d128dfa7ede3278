"""Issue 3 item 9 acceptance: thousands of malformed frames; a healthy charger is served throughout."""

from __future__ import annotations

import asyncio
import json
import random
import tomllib
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from controller.app import SiteController
from controller.core.config import validate
from hil.sim.chargepoint import ChargePointSimulator
from hil.siteconfig import SimCharger, SiteSpec, render

FRAMES = 3000
TAILS: tuple[list[Any], ...] = ([{}], ["GenericError", "x", {}], [], [1, 2, 3, 4])
FUZZERS = (("FUZZ-A", "1.6"), ("FUZZ-B", "2.0.1"), ("FUZZ-C", "1.6"), ("STRANGER", "2.0.1"))
ACTIONS = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "TransactionEvent",
    "DataTransfer",
    "SecurityEventNotification",
    "NotifyEvent",
    "Reset",
    "",
    "Héartbeat",
    "../../etc/passwd",
)
VALUES: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**63,
    1.5,
    "",
    "x" * 300,
    "2025-13-45T99:99:99Z",
    [],
    {},
    [1, "a"],
    {"nested": {"deeper": [None]}},
    "\u0000\ud7ff",
)
KEYS = (
    "connectorId",
    "errorCode",
    "status",
    "idTag",
    "meterStart",
    "timestamp",
    "transactionId",
    "meterValue",
    "chargePointVendor",
    "chargePointModel",
    "evseId",
    "connectorStatus",
    "eventType",
    "seqNo",
    "transactionInfo",
    "vendorId",
    "data",
    "type",
)
VALID = (
    [2, "v", "Heartbeat", {}],
    [2, "v", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}],
    [2, "v", "BootNotification", {"chargePointVendor": "f", "chargePointModel": "f"}],
    [
        2,
        "v",
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2025-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}],
        },
    ],
)


def _payload(rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return rng.choice(VALUES)
    return {rng.choice(KEYS): rng.choice(VALUES) for _ in range(rng.randint(0, 5))}


def malformed(rng: random.Random, max_bytes: int) -> str | bytes:
    """One bad frame, seeded; covers every way the framing and payloads can be wrong."""
    kind = rng.randrange(12)
    uid = rng.choice([f"f{rng.randrange(10**6)}", 7, None, "", "x" * 40, ["id"]])
    if kind == 0:  # random text
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randint(0, 80)))
    if kind == 1:  # truncated valid JSON
        text = json.dumps(rng.choice(VALID))
        return text[: rng.randrange(len(text))]
    if kind == 2:  # wrong message type ids and lengths
        return json.dumps(
            [rng.choice([0, 1, 5, 6, -2, "2", 2.0, None, True]), uid, "Heartbeat", {}][: rng.randint(1, 5)]
        )
    if kind == 3:  # a call with wrong element types
        return json.dumps([2, uid, rng.choice([*ACTIONS, 3, None, {}]), _payload(rng)])
    if kind == 4:  # a known action with mutated fields
        msg = json.loads(json.dumps(rng.choice(VALID)))
        msg[1] = f"m{rng.randrange(10**6)}"
        if msg[3]:
            msg[3][rng.choice(list(msg[3]))] = rng.choice(VALUES)
        else:
            msg[3][rng.choice(KEYS)] = rng.choice(VALUES)
        return json.dumps(msg)
    if kind == 5:  # stray responses
        return json.dumps([rng.choice([3, 4]), uid, *rng.choice(TAILS)])
    if kind == 6:  # deep nesting
        depth = rng.choice([50, 900, 1500])
        return '[2,"deep","DataTransfer",{"vendorId":"x","data":' + "[" * depth + "]" * depth + "}]"
    if kind == 7:  # non-JSON constants and odd numbers
        return rng.choice(
            ['[2,"n","Heartbeat",{"a":NaN}]', '[2,"n","Heartbeat",{"a":-Infinity}]', "[2,1e999]"]
        )
    if kind == 8 and rng.random() < 0.05:  # oversized: the connection is closed with 1009
        return json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "a" * (max_bytes + 10)}])
    if kind == 9 and rng.random() < 0.05:  # binary: the connection is closed with 1003
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    if kind == 10:  # not an array
        return json.dumps(_payload(rng))
    return json.dumps([2, f"p{rng.randrange(10**6)}", rng.choice(ACTIONS), _payload(rng)])


class Fuzzer:
    """One raw connection that (re)connects, boots, and sends its share of bad frames."""

    def __init__(self, port: int, cp_id: str, version: str, seed: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/ocpp/{cp_id}"
        self.version = version
        self.rng = random.Random(seed)
        self.replies = 0
        self.close_codes: list[int | None] = []

    async def _open(self) -> ClientConnection:
        ws = await connect(self.url, subprotocols=[Subprotocol(f"ocpp{self.version}")], max_size=None)
        boot = (
            {"chargePointVendor": "fuzz", "chargePointModel": "fuzz"}
            if self.version == "1.6"
            else {"reason": "PowerUp", "chargingStation": {"vendorName": "fuzz", "model": "fuzz"}}
        )
        await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
        return ws

    async def _drain(self, ws: ClientConnection) -> None:
        try:
            async for reply in ws:
                msg = json.loads(reply)
                assert isinstance(msg, list) and msg[0] in (2, 3, 4), msg
                if msg[0] == 4:
                    assert isinstance(msg[2], str) and isinstance(msg[3], str) and isinstance(msg[4], dict)
                self.replies += 1
        except ConnectionClosed:
            pass
        self.close_codes.append(ws.close_code)

    async def run(self, frames: int, max_bytes: int) -> None:
        ws = await self._open()
        reader = asyncio.create_task(self._drain(ws))
        for _ in range(frames):
            frame = malformed(self.rng, max_bytes)
            try:
                await ws.send(frame)
            except ConnectionClosed:
                await reader
                ws = await self._open()
                reader = asyncio.create_task(self._drain(ws))
            if self.rng.random() < 0.05:
                await asyncio.sleep(0)  # let replies flow
        await ws.close()
        await reader


async def test_fuzzed_frames_never_hurt_a_healthy_charger(site_spec: SiteSpec) -> None:
    site_spec.chargers += [SimCharger("FUZZ-A"), SimCharger("FUZZ-B", "2.0.1"), SimCharger("FUZZ-C")]
    text = render(site_spec).replace("[ocpp]\n", "[ocpp]\nmax_frame_bytes = 4096\n")
    ctl = SiteController(validate(tomllib.loads(text)))
    await ctl.start()
    try:
        healthy = ChargePointSimulator("CP-1", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp", connectors=2)
        await healthy.connect()
        assert await healthy.boot() == "Accepted"
        fuzzers = [Fuzzer(ctl.ocpp_port, cp_id, v, seed) for seed, (cp_id, v) in enumerate(FUZZERS)]
        fuzzing = asyncio.gather(*(f.run(FRAMES // len(FUZZERS), 4096) for f in fuzzers))
        round_trips = 0
        statuses = ("Available", "Preparing", "Charging", "Finishing")
        while not fuzzing.done():
            await healthy.heartbeat()  # raises on a CALLERROR or a timeout
            await healthy.status(1 + round_trips % 2, statuses[round_trips % len(statuses)])
            round_trips += 1
        await fuzzing
        # Served throughout: round trips kept completing while the fuzzers ran, and still do.
        assert round_trips >= 3
        assert await healthy.heartbeat()
        assert healthy.connected
        assert all(f.replies > 0 for f in fuzzers), [(f.url, f.replies, f.close_codes) for f in fuzzers]
        assert {c for f in fuzzers for c in f.close_codes} <= {1000, 1003, 1009}
        assert ctl.site.chargers["CP-1"].connected
        await healthy.close()
        async with ChargePointSimulator("FUZZ-A", f"ws://127.0.0.1:{ctl.ocpp_port}/ocpp") as fresh:
            assert await fresh.boot() == "Accepted"
    finally:
        await ctl.stop()

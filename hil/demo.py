"""`siteedge demo`: a simulated site around a real `siteedge run` process, a broker and a backend."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from controller.core.access import Role
from controller.core.clock import SystemClock
from controller.store.accounts import SqliteAccountStore
from hil.broker import Broker, BrokerError, free_port
from hil.sim.backend import BackendSimulator
from hil.sim.chargepoint import BaseChargePointSimulator, ChargePointSimulator, ChargePointSimulator201
from hil.sim.meter import DeviceSimulator, MeterSimulator
from hil.sim.physics import EvModel, SimClock, SiteModel
from hil.sim.rtu import RtuBus
from hil.siteconfig import SimCharger, SimMeter, SimModbusCharger, SiteSpec, render
from local_api.auth import Security

# Three charge points, mixed protocol versions, five EVSEs: a small depot.
CHARGERS = (
    SimCharger("CP-1", "1.6", evses=2),
    SimCharger("CP-2", "2.0.1", evses=2),
    SimCharger("CP-3", "1.6", evses=1),
)
EV_MIX = (
    EvModel("compact 7 kW", battery_wh=40_000, max_power_w=7_400),
    EvModel("family 11 kW", battery_wh=64_000, max_power_w=11_000),
    EvModel("premium 22 kW", battery_wh=90_000, max_power_w=22_000, taper_soc=0.85),
)
METER_REFRESH_S = 0.5
# CP-1's two EVSE meters share one emulated RS-485 line (line speed emulated, unit ids 1 and 2).
RTU_CHARGER = "CP-1"
RTU_BAUD = 19200
# CP-3 is an Alfen NG9xx: besides OCPP, siteedge sets its current limit over Modbus TCP.
MODBUS_CHARGER = SimModbusCharger("CP-3-alfen", "alfen_ng9xx", "", 1, evse_uid="CP-3-1", failsafe_current=6.0)
DEMO_SETPOINT_A = 16.0
# The depot's grid connection (160 A, 3 x 400 V): base load and five cars stay below it unless
# nearly all are 22 kW cars, so the dashboard's power chart shows how close the site gets.
SITE_LIMIT_KW = 110.0
# A time-of-day ad hoc tariff (OCPI 2.2.1, site time zone): an evening peak and a cheap night, a
# start fee at any time. The backend sends it retained; every demo session is priced with it.
TARIFF_ID = "DEPOT-TOU"
TARIFF: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "SED",
    "id": TARIFF_ID,
    "currency": "EUR",
    "type": "AD_HOC_PAYMENT",
    "tariff_alt_text": [
        {"language": "en", "text": "EUR 0.49/kWh 17-21 h, 0.25/kWh 23-7 h, else 0.35/kWh; start EUR 0.50"}
    ],
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.49, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "17:00", "end_time": "21:00"},
        },
        {
            "price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "23:00", "end_time": "07:00"},
        },
        {
            "price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 0},
                {"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1},
            ]
        },
    ],
    "last_updated": "2026-11-01T00:00:00Z",
}
# A fixed, printed login so a person can try the web UI at once; only ever for this simulated site.
DEMO_USER, DEMO_PASSWORD = "admin", "siteedge-demo"


@dataclass(slots=True)
class Demo:
    """Everything the demo started, so that stop() can end all of it."""

    workdir: Path
    speed: float
    api_port: int
    broker: Broker | None = None
    backend: BackendSimulator | None = None
    controller: asyncio.subprocess.Process | None = None
    meters: list[tuple[DeviceSimulator, str, str]] | None = None  # simulator, what it measures, transport
    chargers: list[BaseChargePointSimulator] | None = None
    rtu: RtuBus | None = None
    modbus_charger: MeterSimulator | None = None


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


async def _start_meters(demo: Demo) -> list[tuple[DeviceSimulator, str, str]]:
    """Eastron SDM630 maps: grid and most EVSEs on their own TCP ports, RTU_CHARGER's on one RS-485 line."""

    def tcp_url(sim: MeterSimulator) -> str:
        return f"tcp://127.0.0.1:{sim.port}"

    grid = await MeterSimulator("eastron_sdm630").start()
    meters: list[tuple[DeviceSimulator, str, str]] = [(grid, "grid", tcp_url(grid))]
    on_line: list[tuple[DeviceSimulator, str]] = []
    for c in CHARGERS:
        for n in range(1, c.evses + 1):
            if c.id == RTU_CHARGER:
                on_line.append((DeviceSimulator("eastron_sdm630", unit_id=n), c.evse_uid(n)))
            else:
                sim = await MeterSimulator("eastron_sdm630").start()
                meters.append((sim, c.evse_uid(n), tcp_url(sim)))
    if on_line:
        # Linux ptys refuse parity settings: the line is 8N1 (the bus times what it declares).
        demo.rtu = await RtuBus([d for d, _ in on_line], baudrate=RTU_BAUD, parity="N").start()
        url = f"rtu://{demo.rtu.port}?baud={RTU_BAUD}"
        meters += [(d, what, url) for d, what in on_line]
    return meters


async def _feed_meters(
    site: SiteModel,
    meters: list[tuple[DeviceSimulator, str, str]],
    charger: MeterSimulator | None,
    stop: asyncio.Event,
) -> None:
    """Keep every meter's registers equal to the physics: grid = base load + all EVSEs."""
    while not stop.is_set():
        for meter, what, _ in meters:
            readings = site.grid_readings() if what == "grid" else site.evse_readings(what)
            await meter.set_values(readings, strict=False)
        if charger is not None and MODBUS_CHARGER.evse_uid:
            readings = site.evse_readings(MODBUS_CHARGER.evse_uid)
            await charger.set_values(readings, strict=False)
            await charger.set_state("C" if (readings.get("power") or 0.0) > 0 else "B")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), METER_REFRESH_S)


def _spec(
    demo: Demo, broker: Broker, meters: list[tuple[DeviceSimulator, str, str]], ocpp_port: int
) -> SiteSpec:
    spec = SiteSpec(
        data_dir=str(demo.workdir / "data"),
        mqtt_url=broker.url,
        ocpp_port=ocpp_port,
        api_port=demo.api_port,
        chargers=list(CHARGERS),
        name="siteedge demo depot",
        telemetry_interval=2.0,
        poll_interval=1.0,
        reconnect_max=5.0,
        max_power_kw=SITE_LIMIT_KW,
        default_tariff_id=TARIFF_ID,
    )
    for meter, what, url in meters:
        meter_id = "grid" if what == "grid" else f"m-{what}"
        role = "grid" if what == "grid" else f"evse:{what}"
        spec.meters.append(SimMeter(meter_id, 0, role, unit=meter.unit_id, transport=url))
    if demo.modbus_charger is not None:
        url = f"tcp://127.0.0.1:{demo.modbus_charger.port}"
        spec.modbus_chargers.append(dataclasses.replace(MODBUS_CHARGER, transport=url))
    return spec


async def _provision_accounts(data_dir: Path) -> str:
    """Create the demo admin (a person logs in with it) and a technician API token for the demo's calls."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    store = await asyncio.to_thread(SqliteAccountStore, data_dir / "accounts.sqlite3")
    try:
        security = Security(store, SystemClock())
        await security.add_user(DEMO_USER, DEMO_PASSWORD, Role.ADMIN)
        return security.issue_token("demo", Role.TECHNICIAN)["token"]
    finally:
        store.close()


async def _set_modbus_charger(url: str, token: str) -> str:
    """Set the Modbus charger's current once, as load management would; what the API answered."""
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}, trust_env=False) as http:
        for _ in range(50):  # its first poll may still be under way
            r = await http.post(
                f"{url}/api/v1/modbus/chargers/{MODBUS_CHARGER.id}/current",
                json={"amps": DEMO_SETPOINT_A},
                timeout=10,
            )
            if r.status_code == 200:
                c = r.json()["charger"]
                return f"{c['setpoint_a']:g} A (read back {c['verified_setpoint_a']:g} A)"
            await asyncio.sleep(0.2)
    return f"not applied (HTTP {r.status_code}: {r.text[:200]})"


# The simulated drivers' cards, issued by two roaming partners with different OCPI whitelist rules.
DRIVER_TOKENS = (
    ("SIMTAG0001", "DE", "ABC", "ALWAYS"),  # decided on site, never asked
    ("SIMTAG0002", "NL", "XYZ", "ALLOWED_OFFLINE"),  # asked in real time; accepted if the eMSP is away
    ("SIMTAG0003", "DE", "ABC", "NEVER"),  # only ever the eMSP's word
)


def _roaming(backend: BackendSimulator) -> None:
    """The backend plays both eMSPs: it sends the whitelist and answers real-time requests."""
    tokens = [
        {
            "country_code": cc,
            "party_id": party,
            "uid": uid,
            "type": "RFID",
            "contract_id": f"{cc}-{party}-{uid}",
            "issuer": f"{party} Mobility",
            "valid": True,
            "whitelist": whitelist,
            "group_id": None,
            "last_updated": "2026-11-01T00:00:00Z",
        }
        for uid, cc, party, whitelist in DRIVER_TOKENS
    ]
    backend.publish("tokens/full/demo-1/0", {"total": 1, "version": 1, "tokens": tokens})
    known = {uid for uid, *_ in DRIVER_TOKENS}
    backend.emsp = lambda uid: {"allowed": "ALLOWED"} if uid in known else {"status_code": 2004}


async def _wait_tariff(url: str, token: str) -> str:
    """The price an EVSE shows once the retained tariff arrived (so the first sessions are priced)."""
    evse = CHARGERS[0].evse_uid(1)
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}, trust_env=False) as http:
        for _ in range(50):
            r = await http.get(f"{url}/api/v1/evses/{evse}/price", timeout=5)
            if r.status_code == 200 and r.json().get("tariff_id") == TARIFF_ID:
                return str(r.json().get("text"))
            await asyncio.sleep(0.1)
    return f"not in force yet (HTTP {r.status_code}: {r.text[:200]})"


async def _wait_healthy(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            if proc.returncode is not None:
                tail = (await asyncio.to_thread(log.read_text))[-2000:]
                raise RuntimeError(f"siteedge exited with {proc.returncode}; see {log}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/api/v1/auth/state", timeout=0.5)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"siteedge did not come up; see {log}")


async def run(duration: float | None, api_port: int, speed: float, workdir: Path) -> int:
    """Start the whole simulated site, run until duration or a signal, stop everything."""
    demo = Demo(workdir, speed, api_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    try:
        try:
            demo.broker = Broker().start()
        except (BrokerError, FileNotFoundError) as exc:
            _say(f"cannot start a private MQTT broker: {exc}")
            _say("install it with: sudo apt-get install mosquitto   (make demo does this for you)")
            return 1
        _say(f"private Mosquitto on {demo.broker.url}")

        site = SiteModel(clock=SimClock(speed), seed=42)
        demo.meters = await _start_meters(demo)
        demo.modbus_charger = await MeterSimulator(
            MODBUS_CHARGER.model, unit_id=MODBUS_CHARGER.unit, values={"safe_current": 6.0}
        ).start()
        spec = _spec(demo, demo.broker, demo.meters, free_port())
        cfg = workdir / "site.toml"
        await asyncio.to_thread(cfg.write_text, render(spec))
        token = await _provision_accounts(Path(spec.data_dir))
        root = "siteedge/v1/NL/SED/DEMO01"
        demo.backend = BackendSimulator(demo.broker.url, root, out=workdir / "backend.jsonl").start()

        log = workdir / "siteedge.log"
        with log.open("wb") as log_fh:  # the child keeps its own copy of the descriptor
            demo.controller = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "controller.cli",
                "run",
                "--config",
                str(cfg),
                stdout=log_fh,
                stderr=subprocess.STDOUT,
            )
        ui = f"http://127.0.0.1:{spec.api_port}"
        await _wait_healthy(ui, demo.controller, log)
        _roaming(demo.backend)
        demo.backend.publish(f"tariffs/{TARIFF_ID}", TARIFF, retain=True)
        tariff = await _wait_tariff(ui, token)
        # Before the charge points start: a Ctrl-C right after start-up then meets them as before.
        applied = await _set_modbus_charger(ui, token)

        csms = f"ws://127.0.0.1:{spec.ocpp_port}/ocpp"
        demo.chargers = []
        for c in CHARGERS:
            cls = ChargePointSimulator201 if c.ocpp_version == "2.0.1" else ChargePointSimulator
            cp = cls(
                c.id,
                csms,
                connectors=c.evses,
                site=site,
                meter_interval_s=60.0,
                vendor="siteedge-hil",
                model=f"Sim{c.ocpp_version.replace('.', '')}",
                reconnect=True,
                seed=hash(c.id) & 0xFFFF,
            )
            demo.chargers.append(cp)
            tasks.add(asyncio.create_task(cp.run_sessions(EV_MIX, stop), name=f"sessions-{c.id}"))
        tasks.add(
            asyncio.create_task(_feed_meters(site, demo.meters, demo.modbus_charger, stop), name="meter-feed")
        )

        _say(f"controller running (log: {log})")
        kinds = ", ".join(f"{c.id} ({c.ocpp_version})" for c in CHARGERS)
        _say(f"OCPP endpoint {csms}/{{id}}; chargers: {kinds}")
        if demo.rtu is not None:
            _say(f"{RTU_CHARGER}'s EVSE meters: RS-485 {demo.rtu.port} at {RTU_BAUD} Bd (units 1, 2)")
        _say(
            f"Modbus charger {MODBUS_CHARGER.id} ({MODBUS_CHARGER.model}, "
            f"EVSE {MODBUS_CHARGER.evse_uid}): {applied}"
        )
        _say(f"site limit {SITE_LIMIT_KW:g} kW; tariff {TARIFF_ID}: {tariff}")
        _say(f"backend simulator records to {workdir / 'backend.jsonl'}")
        _say(f"time runs {speed:g}x faster in the simulated cars")
        _say(f"web UI: {ui}/")
        _say(f"web UI login: user {DEMO_USER}, password {DEMO_PASSWORD}")
        _say("  (a demo account with a published password: a real site starts with a one-time setup code)")
        _say("press Ctrl-C to stop" if duration is None else f"stopping after {duration:g} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        return 0
    finally:
        stop.set()
        await _shutdown(demo, tasks)


async def _bounded(step: Awaitable[Any], seconds: float, what: str) -> None:
    """Await one shutdown step, but never longer than `seconds`: a demo must always end."""
    try:
        async with asyncio.timeout(seconds):
            await step
    except TimeoutError:
        _say(f"{what} did not stop within {seconds:g} s; moving on")
    except Exception as exc:  # noqa: BLE001 - shutting down: report and carry on with the rest
        _say(f"{what} failed to stop cleanly: {exc!r}")


async def _shutdown(demo: Demo, tasks: set[asyncio.Task[None]]) -> None:
    """End everything the demo started, controller first so it can flush, broker last."""
    _say("stopping ...")
    if tasks:  # stop is set: running sessions end as a driver would (StopTransaction, unplug) first
        await asyncio.wait(tasks, timeout=5.0)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5.0)
    for cp in demo.chargers or []:
        await _bounded(cp.close(), 5.0, f"charge point {cp.id}")
    if demo.controller is not None and demo.controller.returncode is None:
        demo.controller.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(demo.controller.wait(), 15)
        except TimeoutError:
            demo.controller.kill()
            await demo.controller.wait()
    for meter, _, _ in demo.meters or []:
        if isinstance(meter, MeterSimulator):
            await _bounded(meter.stop(), 5.0, "meter simulator")
    if demo.rtu is not None:
        await _bounded(demo.rtu.stop(), 5.0, "RS-485 simulator")
    if demo.modbus_charger is not None:
        await _bounded(demo.modbus_charger.stop(), 5.0, "Modbus charger simulator")
    if demo.backend is not None:
        await asyncio.sleep(0.2)  # let the last retained "offline" arrive
        summary = demo.backend.summary()
        demo.backend.stop()
        (demo.workdir / "backend-summary.json").write_text(json.dumps(summary, indent=2))
        _say(f"backend received: {json.dumps(summary.get('by_kind', summary))}")
    if demo.broker is not None:
        demo.broker.close()
    _say("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the demo."""
    p = argparse.ArgumentParser(prog="siteedge demo", description=__doc__)
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    p.add_argument("--api-port", type=int, default=8080, help="web UI port (0 = any free port)")
    p.add_argument("--speed", type=float, default=30.0, help="simulated-time speed-up of the cars")
    p.add_argument("--workdir", type=Path, default=Path("var/demo"), help="config, data, logs, recordings")
    args = p.parse_args(argv)
    api_port = args.api_port or free_port()
    with contextlib.suppress(OSError), __import__("socket").create_connection(("127.0.0.1", api_port), 0.2):
        _say(f"port {api_port} is taken; using a free one")
        api_port = free_port()
    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    # Not asyncio.run: its final "cancel every task and wait" can hang on a simulator task that
    # swallowed its cancellation (Python 3.11 wait_for, gh-86296). Everything real was stopped by
    # _shutdown already; end the process even if a stray task or thread is left.
    loop = asyncio.new_event_loop()
    try:
        code = loop.run_until_complete(run(args.duration, api_port, args.speed, workdir))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

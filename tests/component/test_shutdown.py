"""Shutdown always ends: Modbus polling and the whole controller stop whenever they are stopped.

Real parts: a Modbus TCP meter simulator on 127.0.0.1 (real sockets), Mosquitto, SQLite on disk,
the web API over HTTP. Python 3.11's asyncio.wait_for (inside pymodbus) can swallow a cancellation
that lands just as a reply arrives (gh-86296); the bus task then polled on forever and teardown
hung. A relay on the line lets the test stop at exactly that moment, 0..5 loop iterations after a
reply passed, round after round. HANG_S only turns "never ends" into a failure that names the
stuck task with its stack; no test asserts how long anything takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from controller.app import SiteController
from controller.core.clock import SystemClock
from controller.core.config import MeterSettings, parse_transport
from drivers.service import ModbusService
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimMeter, SiteSpec
from tests.api import api_client
from tests.conftest import config_of

HANG_S = 60.0  # far beyond any healthy shutdown, even on a loaded machine
SCENARIOS = ("reply-arriving", "mid-request", "reconnect-backoff", "scan")
# A stop as a reply arrives is the moment a cancellation used to be swallowed: most rounds are that,
# with the cancel landing 0..5 loop iterations after the reply left the relay.
ROUNDS = ("reply-arriving",) * 6 + ("mid-request", "reconnect-backoff", "scan")
ROUNDS_REPEATED = 6
# Tasks of the meter's side of the line: the loop's accept task for a listening socket and the
# relay's own; briefly alive after siteedge connects or disconnects, not siteedge's.
NOT_SITEEDGE = {"_accept_connection2", "_relay_connection", "_relay_pump"}


class ReplyRelay:
    """A TCP relay between siteedge and the meter simulator that calls a hook as a reply passes."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._hook: Callable[[], None] | None = None
        self.port = 0

    async def __aenter__(self) -> ReplyRelay:
        self._server = await asyncio.start_server(self._relay_connection, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def on_next_reply(self, hook: Callable[[], None]) -> None:
        """Call hook once, right after the next reply was passed on to siteedge."""
        self._hook = hook

    async def _relay_connection(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:  # the meter is down: siteedge sees its connection dropped
            down_w.close()
            return
        await asyncio.gather(self._relay_pump(down_r, up_w, False), self._relay_pump(up_r, down_w, True))

    async def _relay_pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(4096):
                dst.write(data)
                hook, self._hook = (self._hook, None) if replies else (None, self._hook)
                if hook is not None:
                    hook()
        dst.close()


def _after_iterations(n: int, fn: Callable[[], None]) -> None:
    """Call fn n event-loop iterations from now (0: at once)."""
    if n == 0:
        fn()
    else:
        asyncio.get_running_loop().call_soon(_after_iterations, n - 1, fn)


def _stray(before: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    """Tasks that exist now but did not before: the test's own and the meter side's aside."""
    me = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks()
        if t not in before and t is not me and not t.done() and _name_of(t) not in NOT_SITEEDGE
    ]


def _name_of(task: asyncio.Task[object]) -> str:
    return str(getattr(task.get_coro(), "__name__", ""))


def _stacks(tasks: list[asyncio.Task[object]]) -> str:
    out = io.StringIO()
    for task in tasks:
        print(f"--- {task.get_name()} (cancelling={task.cancelling()})", file=out)
        task.print_stack(file=out)
    return out.getvalue()


async def _ends(what: str, awaitable: Awaitable[object], before: set[asyncio.Task[object]]) -> None:
    """Await a shutdown; fail with the stacks of every task it left behind if it never ends."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=HANG_S)
    if not done:
        pytest.fail(f"{what} never ended; tasks still running:\n{_stacks(_stray(before))}")
    task.result()  # a shutdown that raised is a failure too (a cancelled run() ends as cancelled)


async def _until(check: Callable[[], bool], what: str) -> None:
    """Wait (polling) until check() holds; fail naming what never happened."""
    for _ in range(int(HANG_S / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"never happened: {what}")


@pytest.fixture
async def meter() -> AsyncIterator[MeterSimulator]:
    async with MeterSimulator("eastron_sdm630") as sim:
        yield sim


@pytest.fixture
async def relay(meter: MeterSimulator) -> AsyncIterator[ReplyRelay]:
    async with ReplyRelay(meter.port) as r:
        yield r


def _settings(port: int) -> MeterSettings:
    url = f"tcp://127.0.0.1:{port}"
    # Polled as fast as it goes: replies keep flowing while the test waits for its moment.
    return MeterSettings("grid", "eastron_sdm630", parse_transport(url), url, 1, "grid", 0.01, 0.2, 0.05)


def _port_for(scenario: str, meter: MeterSimulator, relay: ReplyRelay) -> int:
    """Through the relay where the test needs the reply's moment; else straight to the meter, so a
    stopped meter refuses the connection (the relay would accept and drop it)."""
    return relay.port if scenario == "reply-arriving" else meter.port


StartScan = Callable[[], Awaitable[str]]


async def _stop_in(
    scenario: str,
    stop: Callable[[], object],
    meter: MeterSimulator,
    relay: ReplyRelay,
    service: ModbusService,
    start_scan: StartScan,
    moment: int,
) -> str | None:
    """Bring the bus into the scenario's state and call stop() at a moment in it; the scan's id if any."""
    scan_id = None
    (device,) = service.devices_by_id.values()
    await _until(lambda: device.health.last_good_at is not None, "a first good poll")
    if scenario == "reply-arriving":
        stopped = asyncio.Event()

        def stop_now() -> None:
            stop()
            stopped.set()

        relay.on_next_reply(lambda: _after_iterations(moment, stop_now))
        await _until(stopped.is_set, "a reply passing the relay")
        return None
    if scenario == "mid-request":
        meter.go_silent()  # requests are taken in and never answered: one stays in flight
        meter.accesses.clear()
        await _until(lambda: bool(meter.accesses), "a request to the silent meter")
    elif scenario == "reconnect-backoff":
        await meter.stop()
        await _until(lambda: (device.health.last_error or "").startswith("connection"), "a failed connect")
    elif scenario == "scan":
        meter.go_silent()  # every probe waits for its timeout: the scan stays in flight
        scan_id = await start_scan()
        await _until(lambda: (service.scan(scan_id) or {}).get("done", 0) >= 1, "a probed unit")
    await asyncio.sleep(moment / 200)  # 0..25 ms into the state
    stop()
    return scan_id


async def test_modbus_polling_stops_whenever_it_is_cancelled(
    meter: MeterSimulator, relay: ReplyRelay
) -> None:
    before = asyncio.all_tasks()
    for i, scenario in enumerate(ROUNDS * ROUNDS_REPEATED):
        port = _port_for(scenario, meter, relay)
        service = ModbusService([_settings(port)], SystemClock(), lambda _e: None)

        async def start_scan(service: ModbusService = service) -> str:
            return str((await service.start_scan(f"tcp://127.0.0.1:{meter.port}", 1, 60, 0.2))["id"])

        run = asyncio.create_task(service.run(), name="test-modbus-run")
        where = f"round {i} ({scenario}, moment {i % 6})"
        scan_id = await _stop_in(scenario, run.cancel, meter, relay, service, start_scan, i % 6)
        with pytest.raises(asyncio.CancelledError):
            await _ends(f"ModbusService.run in {where}", run, before)
        assert _stray(before) == [], f"{where} left tasks behind:\n{_stacks(_stray(before))}"
        if scan_id is not None:
            # What an operator sees: the interrupted scan reads as cancelled, not as still running.
            assert (service.scan(scan_id) or {})["state"] == "cancelled", where
        meter.recover()
        await meter.start()  # again on the same port after the backoff scenario


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_controller_stop_ends_while_the_modbus_side_is_busy(
    scenario: str, site_spec: SiteSpec, meter: MeterSimulator, relay: ReplyRelay
) -> None:
    port = _port_for(scenario, meter, relay)
    spec = replace(site_spec, meters=[SimMeter("grid", port, "grid")], poll_interval=0.05)
    before = asyncio.all_tasks()
    ctl = SiteController(config_of(spec))
    await ctl.start()
    stopping: list[asyncio.Future[None]] = []
    async with api_client(ctl, "technician") as api:

        async def start_scan() -> str:
            body = {"transport": f"tcp://127.0.0.1:{port}", "first": 1, "last": 60, "timeout": 0.5}
            started = await api.post("/api/v1/modbus/scan", json=body)
            assert started.status_code == 202, started.text
            return str(started.json()["id"])

        def stop() -> None:
            stopping.append(asyncio.ensure_future(ctl.stop()))

        scan_id = await _stop_in(scenario, stop, meter, relay, ctl.modbus, start_scan, 1)
    await _ends(f"SiteController.stop ({scenario})", stopping[0], before)
    assert _stray(before) == [], f"stop() left tasks behind:\n{_stacks(_stray(before))}"
    if scan_id is not None:
        assert (ctl.modbus.scan(scan_id) or {})["state"] == "cancelled"


async def test_controller_stop_names_a_part_that_never_ends_and_still_closes_the_stores(
    site_spec: SiteSpec, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.app")
    before = asyncio.all_tasks()
    ctl = SiteController(config_of(site_spec))
    ctl.STOP_PART_S = 2.0  # the limit itself is not under test; a short one keeps the test short
    await ctl.start()
    release = asyncio.Event()

    async def stubborn() -> None:
        # Swallows every cancellation, as pymodbus' wait_for once did, until the test lets it go.
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    ctl._spawn(stubborn(), "meter-stubborn")
    try:
        await _ends("SiteController.stop with a part that never ends", ctl.stop(), before)
    finally:
        release.set()  # else the test's own loop could never close
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("did not stop" in w and "meter-stubborn" in w for w in warnings), warnings
    # The parts after the stuck one ran: the stores were closed and the last line was logged.
    assert any(r.getMessage().startswith("siteedge stopped") for r in caplog.records)
    await asyncio.sleep(0)
    assert _stray(before) == [], f"stop() left tasks behind:\n{_stacks(_stray(before))}"

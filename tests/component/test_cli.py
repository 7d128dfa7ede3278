"""The `siteedge` command as a user runs it: real processes, real signals, a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controller import __version__
from hil.broker import Broker, free_port
from hil.sim.backend import BackendSimulator
from hil.sim.chargepoint import ChargePointSimulator
from hil.siteconfig import SiteSpec, render

ROOT = "siteedge/v1/NL/SED/DEMO01"
SITEEDGE = [sys.executable, "-m", "controller.cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SITEEDGE, *args], capture_output=True, text=True, timeout=60, check=False)


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"siteedge {__version__}"


def test_check_config_accepts_the_documented_example() -> None:
    out = run_cli("check-config", str(Path(__file__).parents[2] / "docs" / "config.example.toml"))
    assert out.returncode == 0, out.stderr
    assert "2 EVSE(s)" in out.stdout


def test_check_config_reports_typo_wrong_type_and_missing_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[site]\ncountry_code = 'NL'\ncountry = 'NLD'\nlocation_id = 'L1'\n"
        "data_dir = '/tmp/x'\nnmae = 'typo'\n"
        "[api]\nport = '8080'\n[mqtt]\nurl = 'mqtt://127.0.0.1:1883'\n"
        "[[meters]]\nid = 'm'\nmodel = 'no_such_meter'\ntransport = 'tcp://127.0.0.1:502'\nrole = 'grid'\n"
    )
    out = run_cli("check-config", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert any("site.nmae: unknown key" in line for line in lines)
    assert any("api.port: must be an integer" in line for line in lines)
    assert any("site.party_id: required key is missing" in line for line in lines)
    assert any("meters[0].model: no device model 'no_such_meter'" in line for line in lines)
    assert len(lines) == 4


def test_check_config_on_unparseable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\n")
    out = run_cli("check-config", str(bad))
    assert out.returncode == 2 and "not valid TOML" in out.stderr


@pytest.fixture
def daemon(tmp_path: Path, broker: Broker) -> Iterator[tuple[subprocess.Popen[str], SiteSpec]]:
    spec = SiteSpec(
        data_dir=str(tmp_path / "data"), mqtt_url=broker.url, ocpp_port=free_port(), api_port=free_port()
    )
    from hil.siteconfig import SimCharger

    spec.chargers.append(SimCharger("CP-1", evses=1))
    cfg = tmp_path / "site.toml"
    cfg.write_text(render(spec))
    proc = subprocess.Popen(
        [*SITEEDGE, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            state = httpx.get(f"http://127.0.0.1:{spec.api_port}/api/v1/auth/state", timeout=0.5)
            if state.status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"siteedge run did not serve /api/v1/auth/state: {proc.communicate()[0]}")
    yield proc, spec
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_sigterm_stops_cleanly_and_says_offline(
    daemon: tuple[subprocess.Popen[str], SiteSpec], broker: Broker
) -> None:
    proc, spec = daemon
    with BackendSimulator(broker.url, ROOT) as backend:
        await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/online" and m.payload["online"] is True)
        async with ChargePointSimulator("CP-1", f"ws://127.0.0.1:{spec.ocpp_port}/ocpp") as cp:
            await cp.boot()
            await cp.status(1, "Available")
            await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/evses/CP-1-1/status")
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, output
        off = await backend.wait_for_async(
            lambda m: m.topic == f"{ROOT}/online" and m.payload["online"] is False
        )
    assert off.payload["version"] == __version__
    assert "stop requested" in output


async def test_sigkill_leaves_the_will_saying_offline(
    daemon: tuple[subprocess.Popen[str], SiteSpec], broker: Broker
) -> None:
    proc, _ = daemon
    with BackendSimulator(broker.url, ROOT) as backend:
        await backend.wait_for_async(lambda m: m.topic == f"{ROOT}/online" and m.payload["online"] is True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        will = await backend.wait_for_async(
            lambda m: m.topic == f"{ROOT}/online" and m.payload["online"] is False, within=10.0
        )
    assert will.payload["online"] is False

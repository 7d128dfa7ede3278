"""`siteedge demo` as the README promises: a live simulated site that ends cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hil.demo import SITE_LIMIT_KW, TARIFF_ID


def _children_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def demo() -> Iterator[Callable[[list[str]], subprocess.Popen[str]]]:
    """Factory: start `siteedge demo` in its own process group; the group is killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield start
    # A failed assertion must not leave a demo (and its `siteedge run`) holding ports and ptys.
    for proc in started:
        if _children_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_demo_runs_a_live_site_and_leaves_nothing_behind(
    tmp_path: Path, demo: Callable[[list[str]], subprocess.Popen[str]]
) -> None:
    workdir = tmp_path / "demo"
    proc = demo(
        [
            "--duration",
            "20",
            "--api-port",
            "0",
            "--workdir",
            str(workdir),
        ]
    )
    assert proc.stdout is not None
    url = login = None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while login is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "web UI: " in line:
            url = line.split("web UI: ", 1)[1].strip()
        if "web UI login: " in line:  # "user admin, password siteedge-demo"
            user, password = line.split("web UI login: ", 1)[1].strip().split(", ")
            login = {"username": user.removeprefix("user "), "password": password.removeprefix("password ")}
    assert url is not None and login is not None, "".join(lines)
    # While it runs: every charger connected and every meter reading, as a technician would see.
    http = httpx.Client(base_url=url, timeout=2, trust_env=False)
    assert http.get("api/v1/health").status_code == 401  # nothing without logging in
    assert http.post("api/v1/auth/login", json=login).status_code == 200  # the printed login works
    health: dict[str, Any] = {}
    for _ in range(100):
        health = http.get("api/v1/health").json()
        evses = [e for c in health["chargers"] for e in c["evses"]]
        if (
            all(c["connected"] for c in health["chargers"])
            and all(e["status"] != "UNKNOWN" for e in evses)
            and all(m["ok"] for m in health["meters"])
        ):
            break
        time.sleep(0.2)
    assert {c["ocpp_version"] for c in health["chargers"]} == {"1.6", "2.0.1"}
    assert len(health["chargers"]) >= 3 and all(c["connected"] for c in health["chargers"])
    assert len(health["meters"]) >= 2 and all(m["ok"] for m in health["meters"])
    grid = next(m for m in health["meters"] if m["role"] == "grid")
    evse_power = sum(m["values"]["power"] for m in health["meters"] if m["role"].startswith("evse:"))
    assert grid["values"]["power"] >= evse_power  # grid = base load + every EVSE
    # The dashboard's power chart has the site limit; sessions are priced by the time-of-day tariff.
    assert health["power"]["limit_kw"] == SITE_LIMIT_KW and health["power"]["source"] == "grid"
    assert http.get("api/v1/site/power").json()["limit_kw"] == SITE_LIMIT_KW
    price = http.get("api/v1/evses/CP-1-1/price").json()
    assert price["tariff_id"] == TARIFF_ID and "EUR" in price["text"], price

    http.close()
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    summary = json.loads((workdir / "backend-summary.json").read_text())
    assert summary["streams"]["evses"] >= 5 and summary["streams"]["telemetry"] > 0
    assert summary["duplicate_ids"] == 0
    assert summary["contract_violations"] == [] and summary["seq_gaps"] == {}
    assert not _children_alive(proc.pid), "the demo left processes behind"


def test_demo_ctrl_c_stops_everything(
    tmp_path: Path, demo: Callable[[list[str]], subprocess.Popen[str]]
) -> None:
    proc = demo(["--api-port", "0", "--workdir", str(tmp_path / "d")])
    assert proc.stdout is not None
    for line in proc.stdout:
        if "press Ctrl-C" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped" in out
    time.sleep(0.5)
    assert not _children_alive(proc.pid), "the demo left processes behind"

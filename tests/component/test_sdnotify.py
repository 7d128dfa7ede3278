"""`siteedge run` under systemd's notify protocol: READY after start, watchdog pings, STOPPING at stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from controller.sdnotify import Notifier
from hil.broker import Broker, free_port
from hil.siteconfig import SimCharger, SiteSpec, render


def _receive(sock: socket.socket, until: str, deadline_s: float = 30.0) -> list[str]:
    """Datagrams (as text) up to and including the first that contains `until`."""
    got: list[str] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            continue
        got.append(data)
        if until in data:
            return got
    raise AssertionError(f"no {until!r} from siteedge; got {got}")


def test_run_notifies_ready_pings_the_watchdog_and_says_stopping(tmp_path: Path, broker: Broker) -> None:
    spec = SiteSpec(
        data_dir=str(tmp_path / "data"), mqtt_url=broker.url, ocpp_port=free_port(), api_port=free_port()
    )
    spec.chargers.append(SimCharger("CP-1", evses=1))
    cfg = tmp_path / "site.toml"
    cfg.write_text(render(spec))
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(0.5)
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "--config", str(cfg)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            before_ready = _receive(sock, "READY=1")
            # READY comes once the listeners are open, so the OCPP port answers by now.
            with socket.create_connection(("127.0.0.1", spec.ocpp_port), timeout=2):
                pass
            assert "WATCHDOG=1" not in "".join(before_ready)
            assert any("STATUS=siteedge" in d for d in before_ready)
            pings = _receive(sock, "WATCHDOG=1") + _receive(sock, "WATCHDOG=1")
            assert sum("WATCHDOG=1" in d for d in pings) >= 2
            proc.send_signal(signal.SIGTERM)
            _receive(sock, "STOPPING=1")
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_without_systemd_nothing_is_sent_and_a_foreign_watchdog_is_ignored() -> None:
    assert not Notifier({}).send("READY=1")
    assert Notifier({}).watchdog_s is None
    # Variables inherited from a parent that systemd watches are not ours to honour.
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None
    mine = Notifier(
        {"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.enabled and mine.watchdog_s == 1.0

"""SIGKILL the uplink at random moments during traffic: the backend still gets every message."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from hil.broker import Broker
from hil.sim.backend import BackendSimulator
from hil.siteconfig import SiteSpec, render

KILLS = 50
ROOT = "siteedge/v1/NL/SED/DEMO01"
WRITER = Path(__file__).with_name("uplink_crash_writer.py")


def _env() -> dict[str, str]:
    root = str(Path(__file__).parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_sigkill_loses_nothing_committed(tmp_path: Path, broker: Broker) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        render(SiteSpec(data_dir=str(tmp_path / "data"), mqtt_url=broker.url, reconnect_max=0.2))
    )
    rng = random.Random(20261127)
    committed: set[int] = set()
    kills = 0
    with BackendSimulator(broker.url, ROOT) as backend:
        while kills < KILLS:
            start = max(committed, default=0) + 1
            proc = subprocess.Popen(
                [sys.executable, str(WRITER), str(config), str(start)],
                stdout=subprocess.PIPE,
                text=True,
                env=_env(),
            )
            assert proc.stdout is not None
            deadline = time.monotonic() + rng.uniform(0.05, 0.6)
            os.set_blocking(proc.stdout.fileno(), False)
            # Read what it reports until the chosen moment, then kill it mid-stride.
            while time.monotonic() < deadline and proc.poll() is None:
                for line in proc.stdout.readlines():
                    if line.startswith("committed "):
                        committed.add(int(line.split()[1]))
                time.sleep(0.005)
            outage = kills % 5 == 4
            if outage:
                # The broker hangs (nothing read, nothing acknowledged) while the writer keeps
                # queueing, then both die: only what the outbox kept can still arrive.
                broker.freeze()
                time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if outage:
                broker.kill()
                seen = backend.connects
                broker.start()
                # The backend (a plain subscriber on a broker without persistence) must be
                # subscribed again before anyone publishes, or it would miss what the box delivers.
                for _ in range(3000):
                    if backend.connects > seen:
                        break
                    time.sleep(0.01)
                else:
                    raise AssertionError("the backend simulator did not reconnect within 30 s")
            for line in proc.stdout.readlines():  # lines written before the kill still count
                if line.startswith("committed "):
                    committed.add(int(line.split()[1]))
            kills += 1
        # One clean run delivers whatever the killed ones left in the outbox.
        out = subprocess.run(
            [sys.executable, str(WRITER), str(config), "0", "drain"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert "drained" in out.stdout, out.stderr
        # "drained" means the broker acknowledged everything; its delivery to the subscriber
        # follows asynchronously, so give the backend a moment to catch up before judging.
        received: set[int] = set()
        for _ in range(1000):
            received = {
                m.payload["data"]["n"] for m in backend.messages("probe") if isinstance(m.payload, dict)
            }
            if committed <= received:
                break
            time.sleep(0.01)
    assert kills == KILLS
    assert len(committed) > KILLS  # the writers made real progress between kills
    missing = committed - received
    assert not missing, f"{len(missing)} committed messages never reached the backend: {sorted(missing)[:10]}"

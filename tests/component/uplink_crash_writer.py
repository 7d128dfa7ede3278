"""Uplink crash-test process: queues numbered messages through the real outbox and uplink.

Run as `python uplink_crash_writer.py CONFIG START [drain]`; tests/component/test_uplink_crash.py
kills it with SIGKILL at random moments. Protocol on stdout, one flushed line each:
`committed N` once message N is durable in the outbox (from then on it must reach the backend);
in drain mode, `drained` once the outbox is empty (everything was acknowledged by the broker).
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path

from controller.core.clock import SystemClock
from controller.core.config import Config, validate
from controller.core.envelope import Lane, Outgoing
from controller.store.outbox import SqliteOutbox
from controller.sync.uplink import Uplink

TOPIC = "probe"


async def main(config: Config, start: int, drain: bool) -> None:
    """Queue messages start, start+1, ... as fast as they commit (or only drain what is queued)."""
    outbox = SqliteOutbox(Path(config.site.data_dir) / "outbox.sqlite3", config.mqtt.outbox_max_bytes)
    uplink = Uplink(config.mqtt, outbox, SystemClock(), lambda _e: None, "crash-test")
    await uplink.start()
    if drain:
        while outbox.stats().pending:  # noqa: ASYNC110 - polling the disk-backed backlog is the point
            await asyncio.sleep(0.02)
        print("drained", flush=True)
        await uplink.stop()
        outbox.close()
        return
    n = start
    while True:
        message = Outgoing(
            topic=f"{config.mqtt.topic_root}/{TOPIC}",
            stream=TOPIC,
            type="probe",
            data={"n": n},
            lane=Lane.SESSION,
        )
        await asyncio.wrap_future(uplink.enqueue([message]))
        print(f"committed {n}", flush=True)
        n += 1


if __name__ == "__main__":
    cfg = validate(tomllib.loads(Path(sys.argv[1]).read_text()))
    Path(cfg.site.data_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(cfg, int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "drain"))

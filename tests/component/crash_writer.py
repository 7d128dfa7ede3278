"""Crash-test writer: commits numbered states forever and reports each one once it is durable.

Run as `python crash_writer.py DIR`; tests/component/test_crash_durability.py kills it with
SIGKILL. Protocol on stdout, one line each, flushed: `ready N` once both stores are open (N is
the document state found), then `committed N` after document N and outbox message N are durable.
"""

from __future__ import annotations

import sys
from pathlib import Path

from controller.core.envelope import Lane, Outgoing
from controller.store.documents import TinyDocumentStore
from controller.store.outbox import SqliteOutbox

DOCS = "docs.json"
OUTBOX = "outbox.db"
STREAM = "crash"
STATUS_STREAM = "crash-status"


def state(n: int) -> dict[str, object]:
    """Document state n: its whole history, so a torn or mixed document cannot pass for it."""
    return {"n": n, "history": list(range(1, n + 1))}


def messages(n: int) -> list[Outgoing]:
    """Session message n (never dropped) and a coalesced status that replaces the previous one."""
    return [
        Outgoing(topic=f"crash/sessions/{n}", stream=STREAM, type="state", data={"n": n}, lane=Lane.SESSION),
        Outgoing(
            topic="crash/status",
            stream=STATUS_STREAM,
            type="status",
            data={"n": n},
            lane=Lane.STATUS,
            coalesce_key="evse-1",
        ),
    ]


def main(directory: Path) -> None:
    """Loop forever: document n, then outbox message n, then report n."""
    docs = TinyDocumentStore(directory / DOCS)
    outbox = SqliteOutbox(directory / OUTBOX, max_bytes=1 << 30)
    current = docs.get("state", "current")
    n = int(current["n"]) if current else 0
    print(f"ready {n}", flush=True)
    while True:
        n += 1
        docs.put("state", "current", state(n))
        outbox.put(messages(n)).result()
        print(f"committed {n}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

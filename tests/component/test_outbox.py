"""SqliteOutbox against a real SQLite file: ordering, numbering, coalescing, bounds, shutdown."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.core.envelope import Lane, Outgoing
from controller.store.outbox import SqliteOutbox

BIG = 1 << 30


def msg(
    lane: int,
    n: int = 0,
    *,
    stream: str = "s",
    coalesce_key: str | None = None,
    envelope: bool = True,
    data: dict[str, Any] | None = None,
) -> Outgoing:
    return Outgoing(
        topic=f"site/{stream}/{n}",
        stream=stream,
        type="t",
        data={"n": n} if data is None else data,
        lane=lane,
        coalesce_key=coalesce_key,
        envelope=envelope,
    )


def payloads(outbox: SqliteOutbox) -> list[dict[str, Any]]:
    return [json.loads(s.payload) for s in outbox.pending(1_000_000, set())]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def outbox(path: Path) -> Iterator[SqliteOutbox]:
    box = SqliteOutbox(path, max_bytes=BIG)
    yield box
    box.close()


def test_pending_orders_by_lane_then_insertion(outbox: SqliteOutbox) -> None:
    lanes = [Lane.TELEMETRY, Lane.SESSION, Lane.STATUS, Lane.COMMAND, Lane.SESSION, Lane.STATUS]
    outbox.put([msg(lane, i) for i, lane in enumerate(lanes)]).result()
    stored = outbox.pending(10, set())
    assert [(s.lane, json.loads(s.payload)["data"]["n"]) for s in stored] == [
        (Lane.STATUS, 2),
        (Lane.STATUS, 5),
        (Lane.COMMAND, 3),
        (Lane.SESSION, 1),
        (Lane.SESSION, 4),
        (Lane.TELEMETRY, 0),
    ]
    rows_in_lane = [s.row for s in stored if s.lane == Lane.SESSION]
    assert rows_in_lane == sorted(rows_in_lane)


def test_pending_honours_limit_and_exclude(outbox: SqliteOutbox) -> None:
    outbox.put([msg(Lane.SESSION, i) for i in range(5)]).result()
    rows = [s.row for s in outbox.pending(10, set())]
    assert [s.row for s in outbox.pending(2, set())] == rows[:2]
    assert [s.row for s in outbox.pending(2, {rows[0], rows[1]})] == rows[2:4]
    assert [s.row for s in outbox.pending(10, set(rows[1:]))] == rows[:1]
    assert outbox.pending(0, set()) == []


def test_stored_carries_topic_qos_retain(outbox: SqliteOutbox) -> None:
    retained = Outgoing("site/evses/1/status", "st", "status", {}, Lane.STATUS, 1, True)
    outbox.put([retained, Outgoing("site/tel", "tel", "m", {}, Lane.TELEMETRY, qos=0)]).result()
    first, second = outbox.pending(10, set())
    assert (first.topic, first.qos, first.retain) == ("site/evses/1/status", 1, True)
    assert (second.topic, second.qos, second.retain) == ("site/tel", 0, False)


def test_seq_is_per_stream_monotonic_and_survives_reopen(path: Path) -> None:
    with SqliteOutbox(path, BIG) as box:
        box.put([msg(Lane.SESSION, 0, stream="a"), msg(Lane.SESSION, 0, stream="b")]).result()
        box.put([msg(Lane.SESSION, 1, stream="a")]).result()
        # Acked messages leave the table, but their numbers must not be handed out again.
        box.ack([s.row for s in box.pending(10, set())]).result()
    with SqliteOutbox(path, BIG) as box:
        box.put([msg(Lane.SESSION, 2, stream="a"), msg(Lane.SESSION, 1, stream="b")]).result()
        box.put([msg(Lane.SESSION, 0, stream="c")]).result()
        by_topic = {s.topic: json.loads(s.payload)["seq"] for s in box.pending(10, set())}
    assert by_topic == {"site/a/2": 3, "site/b/1": 2, "site/c/0": 1}


def test_rows_survive_reopen_and_numbering_continues(path: Path) -> None:
    with SqliteOutbox(path, BIG) as box:
        box.put([msg(Lane.SESSION, i) for i in range(3)]).result()
        before = box.pending(10, set())
        stats = box.stats()
    with SqliteOutbox(path, BIG) as box:
        assert box.pending(10, set()) == before
        assert box.stats() == stats
        box.put([msg(Lane.SESSION, 3)]).result()
        after = box.pending(10, set())
    assert after[-1].row > before[-1].row
    assert [json.loads(s.payload)["seq"] for s in after] == [1, 2, 3, 4]


def test_coalescing_replaces_the_unsent_older_message(outbox: SqliteOutbox) -> None:
    outbox.put([msg(Lane.STATUS, 1, stream="st", coalesce_key="evse-1")]).result()
    outbox.put([msg(Lane.STATUS, 1, stream="st", coalesce_key="evse-2")]).result()
    outbox.put([msg(Lane.SESSION, 1)]).result()
    outbox.put([msg(Lane.STATUS, 2, stream="st", coalesce_key="evse-1")]).result()
    stored = outbox.pending(10, set())
    assert [s.topic for s in stored] == ["site/st/1", "site/st/2", "site/s/1"]
    assert json.loads(stored[1].payload)["data"] == {"n": 2}
    assert outbox.stats().pending == 3
    assert outbox.stats().bytes == sum(len(s.payload) for s in stored)


def test_coalescing_within_one_put_keeps_the_last(outbox: SqliteOutbox) -> None:
    batch = [msg(Lane.STATUS, i, stream="st", coalesce_key="evse-1") for i in range(4)]
    outbox.put(batch).result()
    assert [p["data"]["n"] for p in payloads(outbox)] == [3]


def test_ack_deletes_and_is_idempotent(outbox: SqliteOutbox) -> None:
    outbox.put([msg(Lane.SESSION, i) for i in range(4)]).result()
    rows = [s.row for s in outbox.pending(10, set())]
    outbox.ack([rows[0], rows[2]]).result()
    assert [s.row for s in outbox.pending(10, set())] == [rows[1], rows[3]]
    outbox.ack([rows[0], rows[2], rows[2], 999_999]).result()
    assert [s.row for s in outbox.pending(10, set())] == [rows[1], rows[3]]
    left = outbox.pending(10, set())
    assert outbox.stats().pending == 2
    assert outbox.stats().bytes == sum(len(s.payload) for s in left)
    outbox.ack(rows).result()
    assert outbox.pending(10, set()) == []
    assert outbox.stats().bytes == 0


def test_ack_of_many_rows_crosses_parameter_chunks(outbox: SqliteOutbox) -> None:
    outbox.put([msg(Lane.TELEMETRY, i) for i in range(1200)]).result()
    rows = [s.row for s in outbox.pending(2000, set())]
    outbox.ack(rows[:1100]).result()
    assert [s.row for s in outbox.pending(2000, set())] == rows[1100:]


def _size(tmp_path: Path, message: Outgoing) -> int:
    """Payload size of one message (fixed-width data, so every such message is this big)."""
    with SqliteOutbox(tmp_path / "probe.db", BIG) as box:
        box.put([message]).result()
        return box.stats().bytes


def test_telemetry_is_dropped_first_and_counted_sessions_never(tmp_path: Path) -> None:
    size = _size(tmp_path, msg(Lane.TELEMETRY, 100, stream="tel"))
    path = tmp_path / "bounded.db"
    with SqliteOutbox(path, max_bytes=10 * size) as box:
        box.put([msg(Lane.TELEMETRY, 100 + i, stream="tel") for i in range(8)]).result()
        assert box.stats().dropped_telemetry == 0
        assert not box.stats().near_limit
        # Four session messages of the same size need two telemetry rows to make room.
        box.put([msg(Lane.SESSION, 100 + i, stream="ses") for i in range(4)]).result()
        stats = box.stats()
        stored = box.pending(100, set())
        assert stats.dropped_telemetry == 2
        assert stats.bytes <= 10 * size
        assert stats.near_limit
        tel = [json.loads(s.payload)["data"]["n"] for s in stored if s.lane == Lane.TELEMETRY]
        assert tel == list(range(102, 108)), "the oldest telemetry goes first"
        # Far past the bound: telemetry is exhausted, sessions are still accepted.
        box.put([msg(Lane.SESSION, 200 + i, stream="ses") for i in range(20)]).result()
        stats = box.stats()
        stored = box.pending(100, set())
        assert [s.lane for s in stored] == [Lane.SESSION] * 24
        assert stats.dropped_telemetry == 8
        assert stats.bytes > 10 * size
        assert stats.near_limit
        # New telemetry has nowhere to go: it is dropped and counted as well.
        box.put([msg(Lane.TELEMETRY, 300, stream="tel")]).result()
        assert box.stats().dropped_telemetry == 9
        assert box.stats().pending == 24
    with SqliteOutbox(path, max_bytes=10 * size) as box:
        assert box.stats().dropped_telemetry == 9  # the counter is persistent


def test_other_lanes_are_never_dropped(tmp_path: Path) -> None:
    size = _size(tmp_path, msg(Lane.STATUS, 100))
    with SqliteOutbox(tmp_path / "bounded.db", max_bytes=2 * size) as box:
        for lane in (Lane.STATUS, Lane.COMMAND, Lane.SESSION):
            box.put([msg(lane, 100 + i, stream=str(lane)) for i in range(3)]).result()
        assert len(box.pending(100, set())) == 9
        assert box.stats().dropped_telemetry == 0


def test_envelope_fields(outbox: SqliteOutbox) -> None:
    outbox.put([msg(Lane.SESSION, 7, data={"x": "é", "n": 7})]).result()
    outbox.put([msg(Lane.SESSION, 8)]).result()
    first, second = payloads(outbox)
    assert set(first) == {"id", "seq", "ts", "type", "data"}
    assert uuid.UUID(first["id"]).version == 7
    assert first["id"] != second["id"]
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["ts"].endswith("Z")
    assert first["type"] == "t"
    assert first["data"] == {"x": "é", "n": 7}


def test_payload_is_compact_json_and_raw_without_envelope(outbox: SqliteOutbox) -> None:
    outbox.put([msg(Lane.STATUS, data={"online": True, "v": [1, 2]}, envelope=False)]).result()
    (stored,) = outbox.pending(1, set())
    assert stored.payload == b'{"online":true,"v":[1,2]}'


def test_a_poison_message_fails_only_its_own_put(outbox: SqliteOutbox) -> None:
    good = [outbox.put([msg(Lane.SESSION, i)]) for i in range(3)]
    bad = outbox.put([msg(Lane.TELEMETRY, data={"power": float("nan")})])
    more = [outbox.put([msg(Lane.SESSION, i)]) for i in range(3, 6)]
    for future in good + more:
        future.result()
    with pytest.raises(ValueError):
        bad.result()
    assert [p["data"]["n"] for p in payloads(outbox)] == list(range(6))
    assert [p["seq"] for p in payloads(outbox)] == list(range(1, 7))


def test_close_commits_everything_queued(path: Path) -> None:
    box = SqliteOutbox(path, BIG)
    futures = [box.put([msg(Lane.SESSION, i)]) for i in range(500)]
    box.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with SqliteOutbox(path, BIG) as reopened:
        assert [p["data"]["n"] for p in payloads(reopened)] == list(range(500))


def test_calls_after_close_fail(path: Path) -> None:
    box = SqliteOutbox(path, BIG)
    box.close()
    box.close()  # idempotent
    put = box.put([msg(Lane.SESSION)])
    ack = box.ack([1])
    assert isinstance(put.exception(), RuntimeError)
    assert isinstance(ack.exception(), RuntimeError)
    with pytest.raises(RuntimeError):
        box.pending(1, set())


async def test_usable_from_an_event_loop(outbox: SqliteOutbox) -> None:
    # put() returns at once; the loop awaits the commit, pending() runs in a worker thread.
    await asyncio.wrap_future(outbox.put([msg(Lane.SESSION, 1)]))
    found = await asyncio.to_thread(outbox.pending, 10, set())
    await asyncio.wrap_future(outbox.ack([s.row for s in found]))
    assert len(found) == 1
    assert await asyncio.to_thread(outbox.pending, 10, set()) == []

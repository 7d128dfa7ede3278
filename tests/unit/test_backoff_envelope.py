"""Reconnect backoff bounds and the uplink envelope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from controller.core.backoff import backoff_delay
from controller.core.clock import rfc3339
from controller.core.envelope import uuid7, wrap


@given(st.integers(0, 1000), st.floats(0.0, 1.0))
def test_backoff_stays_within_floor_and_cap(attempt: int, r: float) -> None:
    delay = backoff_delay(attempt, 0.5, 60.0, lambda: r)
    assert 0.25 <= delay <= 60.0


def test_backoff_grows_then_caps() -> None:
    top = [backoff_delay(n, 0.5, 8.0, lambda: 1.0) for n in range(8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_jitter_spreads_delays() -> None:
    assert backoff_delay(5, 0.5, 60.0, lambda: 0.0) < backoff_delay(5, 0.5, 60.0, lambda: 1.0)


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert len(set(ids)) == 50
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_envelope_fields_and_utc_z_timestamps() -> None:
    ts = datetime(2026, 11, 27, 10, 0, 1, 234567, tzinfo=UTC)
    env = wrap("id-1", 7, ts, "evse_status", {"a": 1})
    assert env == {
        "id": "id-1",
        "seq": 7,
        "ts": "2026-11-27T10:00:01.234Z",
        "type": "evse_status",
        "data": {"a": 1},
    }
    assert rfc3339(ts).endswith("Z")

"""The backend simulator's contract checker catches what a real backend would choke on."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.core.envelope import uuid7, wrap
from hil.sim.contract import ContractChecker

ROOT = "siteedge/v1/NL/SED/DEMO01"
TS = datetime(2026, 11, 27, tzinfo=UTC)


def status(seq: int, status: str = "AVAILABLE", msg_id: str | None = None) -> dict:
    data = {
        "evse_uid": "E1",
        "status": status,
        "last_updated": "2026-11-27T00:00:00.000Z",
        "charger_id": "C",
        "ocpp": {},
    }
    return wrap(msg_id or uuid7(), seq, TS, "evse_status", data)


def test_valid_stream_passes() -> None:
    c = ContractChecker(ROOT)
    for seq in (1, 2, 3):
        assert c.check(f"{ROOT}/events/status", status(seq))
    assert c.violations == [] and dict(c.gaps) == {} and c.duplicates == 0


def test_bad_enum_unknown_topic_duplicate_and_gap_are_reported() -> None:
    c = ContractChecker(ROOT)
    c.check(f"{ROOT}/evses/E1/status", status(1, "OCCUPIED"))
    c.check(f"{ROOT}/nonsense", {"x": 1})
    dup = status(1)
    c.check(f"{ROOT}/events/status", dup)
    assert c.check(f"{ROOT}/events/status", dup) is False
    c.check(f"{ROOT}/events/status", status(5))
    assert any("OCCUPIED" in v for v in c.violations)
    assert any("not in the contract" in v for v in c.violations)
    assert c.duplicates == 1
    assert c.gaps["events/status"] == [(1, 5)]


def test_location_is_checked_against_ocpi() -> None:
    c = ContractChecker(ROOT)
    c.check(f"{ROOT}/location", {"id": "L1"}, retained=True)
    assert any("location" in v and "required" in v for v in c.violations)

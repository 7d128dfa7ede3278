"""The session store keeps both energy series, the settlement facts and corrections across a reopen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from controller.core import sessions as core
from controller.core.sessions import (
    Flag,
    MeterPoint,
    Reading,
)
from controller.store.sessions import SqliteSessionStore
from tests.unit.test_settlement import T0, whitelist_context


def test_meter_series_flags_and_corrections_survive_a_reopen_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SqliteSessionStore(path)
    rec = core.open_session("CP-1/7", "CP-1", T0, whitelist_context())
    rec.energy_source, rec.meter_start = "meter", Reading(T0, 1_000_000.0)
    rec.meter_points = [MeterPoint(T0, 0.0)]
    store.save(rec, rec.points, rec.meter_points)
    later = MeterPoint(T0 + timedelta(minutes=15), 3000.0)
    rec.meter_points.append(later)
    rec.flags.append(
        Flag("meter_gap", T0 + timedelta(minutes=3), "meter data gap: timeout", T0 + timedelta(minutes=4))
    )
    store.save(rec, [], [later])
    store.put_cdr(rec.session_id, {"id": "A", "total_cost": {"excl_vat": 1.0}})
    assert store.unsent_corrections() == [] and store.cdr_sent(rec.session_id) is False
    store.mark_cdr_sent(rec.session_id)
    store.add_correction(rec.session_id, {"id": "A-C", "credit": True}, {"id": "B"}, "wrong meter")
    store.close()

    again = SqliteSessionStore(path)  # a restart: everything from disk
    back = again.get(rec.session_id)
    assert back is not None
    assert back.meter_points == rec.meter_points and back.points == rec.points
    assert (back.energy_source, back.meter_start, back.flags) == ("meter", rec.meter_start, rec.flags)
    assert back.kwh == 3.0  # the billed series is the meter's
    assert again.cdr_sent(rec.session_id) is True
    pending = again.unsent_corrections()
    assert [c["id"] for _, c in pending] == ["A-C", "B"]  # credit first, as queued
    again.mark_correction_sent([seq for seq, _ in pending])
    assert again.unsent_corrections() == []
    assert [c["id"] for c in again.cdrs_of(rec.session_id)] == ["A", "A-C", "B"]
    again.close()

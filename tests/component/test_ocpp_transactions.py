"""Transactions over real WebSockets: one model for both versions, durable, idempotent, resumable."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from controller.app import SiteController
from controller.core.events import TransactionAnomaly, TransactionEnded, TransactionStarted
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201, utc_now
from hil.siteconfig import SimCharger, SiteSpec


def journal_rows(spec: SiteSpec, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the journal file with a connection of our own: what is on disk, not in memory."""
    conn = sqlite3.connect(Path(spec.data_dir) / "journal.sqlite3")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def evse_tx(ctl: SiteController, uid: str) -> Any:
    for charger in ctl.site.health()["chargers"]:
        for evse in charger["evses"]:
            if evse["evse_uid"] == uid:
                return evse["transaction"]
    raise KeyError(uid)


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


async def until(cond: Any, within: float = 15.0) -> None:
    for _ in range(int(within / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition did not hold within {within} s")


async def test_E_full_session_16_becomes_version_neutral_events(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    seen: list[object] = []
    ctl.bus.subscribe(TransactionStarted, seen.append)
    ctl.bus.subscribe(TransactionEnded, seen.append)
    cp: ChargePointSimulator = await charge_point(ctl, connectors=2)
    assert await cp.boot() == "Accepted"
    tx_id = await cp.start_transaction(2, "TAG1", 1000)
    assert evse_tx(ctl, "CP-1-2") == {
        "id": f"CP-1/{tx_id}",
        "id_tag": "TAG1",
        "started": evse_tx(ctl, "CP-1-2")["started"],
        "energy_wh": 0.0,
        "power_w": None,
    }
    await cp.meter_values(2, 1500, 7400)
    tx = evse_tx(ctl, "CP-1-2")
    assert tx["energy_wh"] == 500 and tx["power_w"] == 7400
    await cp.stop_transaction(2, 2200, reason="EVDisconnected")
    assert evse_tx(ctl, "CP-1-2") is None
    started, ended = seen
    assert isinstance(started, TransactionStarted) and isinstance(ended, TransactionEnded)
    assert started.key == ended.key == f"CP-1/{tx_id}" and ended.ocpp_evse == 2
    assert (ended.meter_start_wh, ended.meter_stop_wh, ended.energy_wh) == (1000, 2200, 1200)
    assert ended.stop_reason == "EVDisconnected"
    # transactionData samples arrive with measurand, phase, context and unit.
    phases = {s.phase for s in ended.samples if s.measurand == "Current.Import"}
    assert phases == {"L1", "L2", "L3"} and {s.context for s in ended.samples} == {"Transaction.End"}


async def test_E_full_session_201_becomes_the_same_events(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    seen: list[Any] = []
    ctl.bus.subscribe(TransactionStarted, seen.append)
    ctl.bus.subscribe(TransactionEnded, seen.append)
    cp: ChargePointSimulator201 = await charge_point(ctl, version="2.0.1", connectors=2)
    assert await cp.boot() == "Accepted"
    tx_id = await cp.start_transaction(1, "TAG201", 5000.0)
    await cp.meter_values(1, 5600.0, 11000.0)
    tx = evse_tx(ctl, "CP-1-1")
    assert tx["id"] == f"CP-1/{tx_id}" and tx["id_tag"] == "TAG201"
    assert tx["energy_wh"] == 600 and tx["power_w"] == 11000
    await cp.stop_transaction(1, 6000.0, reason="EVDisconnected")
    assert evse_tx(ctl, "CP-1-1") is None
    started, ended = seen
    assert started.ocpp_version == ended.ocpp_version == "2.0.1"
    assert (ended.meter_start_wh, ended.meter_stop_wh, ended.energy_wh) == (5000, 6000, 1000)
    assert ended.stop_reason == "EVDisconnected" and ended.ocpp_evse == 1
    (rec,) = ctl.journal.transactions("CP-1")
    assert rec.ended and rec.last_seq_no == 2 and rec.missing_seq == ()


async def test_durability_start_meter_stop_are_on_disk_when_the_reply_arrives(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp: ChargePointSimulator = await charge_point(ctl, connectors=2)
    await cp.boot()
    tx_id = await cp.start_transaction(1, "TAG1", 100)
    # No await between the reply and this read: the commit preceded the CALLRESULT.
    rows = journal_rows(site_spec, "SELECT ended FROM transactions WHERE key = ?", (f"CP-1/{tx_id}",))
    assert rows == [(0,)]
    await cp.meter_values(1, 150, 3000)
    kinds = journal_rows(site_spec, "SELECT kind FROM facts WHERE key = ? ORDER BY id", (f"CP-1/{tx_id}",))
    assert kinds == [("started",), ("updated",)]
    await cp.stop_transaction(1, 200)
    assert journal_rows(site_spec, "SELECT ended FROM transactions") == [(1,)]


async def test_durability_reply_waits_for_a_slow_commit(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    """A journal that commits late delays the CALLRESULT; it never overtakes the commit."""
    ctl: SiteController = await start_controller(site_spec)
    journal = ctl.journal
    real = journal.record
    committed: list[str] = []

    def slow(fact: Any) -> Future[Any]:
        out: Future[Any] = Future()

        def settle(done: Future[Any]) -> None:
            time.sleep(0.3)  # on the writer thread: the commit is done but "not yet reported"
            committed.append(fact.kind.value)
            out.set_result(done.result())

        real(fact).add_done_callback(settle)
        return out

    journal.record = slow  # type: ignore[method-assign]
    cp: ChargePointSimulator = await charge_point(ctl)
    await cp.boot()
    await cp.start_transaction(1, "TAG1", 0)
    assert committed == ["started"]
    await cp.stop_transaction(1, 10)
    assert committed == ["started", "ended"]


async def test_E_restart_during_10_sessions_loses_none_and_doubles_none(
    site_spec: SiteSpec, start_controller: Any
) -> None:
    site_spec.chargers = [
        SimCharger("A16", "1.6", evses=2),
        SimCharger("B16", "1.6", evses=2),
        SimCharger("C16", "1.6", evses=2),
        SimCharger("D201", "2.0.1", evses=2),
        SimCharger("E201", "2.0.1", evses=2),
    ]
    ctl1: SiteController = await start_controller(site_spec)
    url = f"ws://127.0.0.1:{ctl1.ocpp_port}/ocpp"
    sims: list[Any] = [
        (ChargePointSimulator201 if c.ocpp_version == "2.0.1" else ChargePointSimulator)(
            c.id, url, connectors=2, reconnect=True
        )
        for c in site_spec.chargers
    ]
    try:
        for sim in sims:
            await sim.connect()
            assert await sim.boot() == "Accepted"
            for n in (1, 2):
                await sim.start_transaction(n, f"TAG-{sim.id}-{n}", 1000.0 * n)
                await sim.meter_values(n, 1000.0 * n + 100, 3000.0)
        assert len(ctl1.journal.open_transactions()) == 10

        site_spec.ocpp_port = ctl1.ocpp_port  # the chargers know one address
        await ctl1.stop()
        # While siteedge is down, two chargers stop sessions; their messages wait in their queues.
        queued = [
            asyncio.create_task(sims[0].stop_transaction(1, 1300.0)),
            asyncio.create_task(sims[3].stop_transaction(2, 2300.0)),
        ]
        ctl2: SiteController = await start_controller(site_spec)
        # Resumed from the journal before any charger is back.
        running = [e["transaction"] for c in ctl2.site.health()["chargers"] for e in c["evses"]]
        assert sum(t is not None for t in running) == 10
        await asyncio.wait_for(asyncio.gather(*queued), 30)
        for sim in sims:
            await asyncio.wait_for(sim._online.wait(), 30)
        for sim in sims:
            for n in (1, 2):
                if sim.connectors[n].tx_id is not None:
                    await sim.meter_values(n, 1000.0 * n + 200, 3000.0)
                    await sim.stop_transaction(n, 1000.0 * n + 300)
        records = ctl2.journal.transactions(None, 100)
        assert len(records) == 10 and all(r.ended for r in records)
        assert len({r.key for r in records}) == 10
        assert all(r.energy_wh == 300 for r in records)
        ids16 = [int(r.ocpp_tx_id) for r in records if r.ocpp_version == "1.6"]
        assert len(set(ids16)) == 6
        # New 1.6 ids after the restart continue past every earlier one.
        new_id = await sims[1].start_transaction(1, "AFTER", 5000.0)
        assert int(new_id) > max(ids16)
    finally:
        for sim in sims:
            await sim.close()


async def test_duplicate_start_transaction_gets_the_same_id(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp: ChargePointSimulator = await charge_point(ctl)
    await cp.boot()
    start = call16.StartTransaction(connector_id=1, id_tag="DUP", meter_start=42, timestamp=ago(5))
    first = await cp._call(start)
    again = await cp._call(start)
    assert first.transaction_id == again.transaction_id
    other = await cp._call(
        call16.StartTransaction(connector_id=1, id_tag="DUP", meter_start=42, timestamp=ago(1))
    )
    assert other.transaction_id != first.transaction_id
    outcomes = journal_rows(site_spec, "SELECT outcome FROM facts WHERE kind = 'started' ORDER BY id")
    assert outcomes == [("new",), ("duplicate",), ("new",)]


async def test_stop_for_unknown_or_stopped_transaction_is_answered_and_recorded(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    anomalies: list[TransactionAnomaly] = []
    ctl.bus.subscribe(TransactionAnomaly, anomalies.append)
    cp: ChargePointSimulator = await charge_point(ctl)
    await cp.boot()
    stop_unknown = call16.StopTransaction(meter_stop=10, timestamp=utc_now(), transaction_id=987654)
    await cp._call(stop_unknown)  # a CALLRESULT, not a CALLERROR the charger would retry
    tx_id = await cp.start_transaction(1, "T", 0)
    stop = call16.StopTransaction(meter_stop=50, timestamp=utc_now(), transaction_id=tx_id, id_tag="T")
    first = await cp._call(stop)
    again = await cp._call(stop)
    assert first.id_tag_info["status"] == again.id_tag_info["status"] == "Accepted"
    rows = journal_rows(site_spec, "SELECT key, outcome FROM facts WHERE kind = 'ended' ORDER BY id")
    assert rows == [
        ("CP-1/987654", "unknown"),
        (f"CP-1/{tx_id}", "applied"),
        (f"CP-1/{tx_id}", "already_ended"),
    ]
    assert ctl.journal.get(f"CP-1/{tx_id}").meter_stop_wh == 50  # type: ignore[union-attr]
    assert [a.key for a in anomalies] == ["CP-1/987654"]
    # The unknown stop reserved its id: a new start never reuses it.
    assert ctl.journal.get("CP-1/987654").ended  # type: ignore[union-attr]


T0 = datetime.now(UTC).replace(microsecond=0)


def tx_event(event_type: str, seq_no: int, tx: str, minutes_ago: float, wh: float, **kw: Any) -> Any:
    """A TransactionEvent stamped minutes before T0 (one fixed instant, so durations are exact)."""
    when = (T0 - timedelta(minutes=minutes_ago)).isoformat()
    return call201.TransactionEvent(
        event_type=event_type,
        timestamp=when,
        trigger_reason=kw.pop("trigger", "MeterValuePeriodic"),
        seq_no=seq_no,
        transaction_info={"transaction_id": tx, **kw.pop("info", {})},
        meter_value=[
            {
                "timestamp": when,
                "sampled_value": [{"value": wh, "measurand": "Energy.Active.Import.Register"}],
            }
        ],
        **kw,
    )


async def test_E01_FR_07_seqno_gap_is_recorded_and_a_late_message_fills_it(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp: ChargePointSimulator201 = await charge_point(ctl, version="2.0.1")
    await cp.boot()
    token = {"id_token": "G", "type": "ISO14443"}
    await cp._call(
        tx_event("Started", 0, "gap-1", 10, 100, evse={"id": 1, "connector_id": 1}, id_token=token)
    )
    await cp._call(tx_event("Updated", 3, "gap-1", 7, 400))
    rec = ctl.journal.get("CP-1/gap-1")
    assert rec is not None and rec.missing_seq == (1, 2) and rec.register_wh == 400
    notes = journal_rows(site_spec, "SELECT notes FROM facts WHERE seq_no = 3")
    assert "seqNo gap: 1..2 missing before 3" in notes[0][0]
    await cp._call(tx_event("Updated", 1, "gap-1", 9, 200))  # late: fills, does not regress
    rec = ctl.journal.get("CP-1/gap-1")
    assert rec is not None and rec.missing_seq == (2,) and rec.register_wh == 400
    await cp._call(tx_event("Updated", 3, "gap-1", 7, 400))  # duplicate: no change
    outcomes = journal_rows(site_spec, "SELECT seq_no, outcome FROM facts ORDER BY id")
    assert outcomes == [(0, "new"), (3, "applied"), (1, "late"), (3, "duplicate")]


async def test_E_offline_queued_events_replayed_in_order(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    """A whole session that happened offline arrives later with offline=true and past timestamps."""
    ctl: SiteController = await start_controller(site_spec)
    ended: list[TransactionEnded] = []
    ctl.bus.subscribe(TransactionEnded, ended.append)
    cp: ChargePointSimulator201 = await charge_point(ctl, version="2.0.1")
    await cp.boot()
    token = {"id_token": "OFF", "type": "ISO14443"}
    evse = {"id": 1, "connector_id": 1}
    await cp._call(tx_event("Started", 0, "off-1", 30, 1000, offline=True, evse=evse, id_token=token))
    await cp._call(tx_event("Updated", 1, "off-1", 20, 1500, offline=True))
    await cp._call(
        tx_event(
            "Ended",
            2,
            "off-1",
            10,
            2000,
            offline=True,
            trigger="EVDeparted",
            info={"stopped_reason": "EVDisconnected"},
        )
    )
    (done,) = ended
    assert done.offline and done.energy_wh == 1000 and done.stop_reason == "EVDisconnected"
    assert done.started_at is not None and done.stopped_at - done.started_at == timedelta(minutes=20)
    rec = ctl.journal.get("CP-1/off-1")
    assert rec is not None and rec.offline and rec.ended and rec.id_tag == "OFF"


async def test_meter_values_outside_a_transaction_are_recorded(
    site_spec: SiteSpec, start_controller: Any, charge_point: Any
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    cp16: ChargePointSimulator = await charge_point(ctl)
    await cp16.boot()
    await cp16.meter_values(1, 12345, 0)
    rows = journal_rows(site_spec, "SELECT key, kind, outcome FROM facts")
    assert rows == [(None, "meter", "no_transaction")]

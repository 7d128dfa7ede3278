"""The status history and authorization audit stores on disk: durable, bounded, restart-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.core.reports import AuditEntry
from controller.core.uptime import Window, to_us
from controller.store.auth_audit import SqliteAuthAudit
from controller.store.status_history import SqliteStatusHistory

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def test_history_survives_reopening_and_downtime_becomes_unknown(tmp_path: Path) -> None:
    path = tmp_path / "reports.sqlite3"
    store = SqliteStatusHistory(path)
    assert store.recover(T0, ["E1", "E2"]) == 2  # first start: both in service from now, UNKNOWN
    store.append("E1", T0 + timedelta(minutes=1), "AVAILABLE", "NoError")
    store.append("E2", T0 + timedelta(minutes=1), "AVAILABLE", "NoError")
    store.append("E2", T0 + timedelta(minutes=5), "UNKNOWN", "charger offline")
    store.mark_alive(T0 + timedelta(minutes=10))
    store.close()  # then siteedge is down (a crash: no UNKNOWN written) until an hour later

    again = SqliteStatusHistory(path)
    assert again.recover(T0 + timedelta(hours=1), ["E1", "E2"]) == 1  # E2 was UNKNOWN already
    h = again.histories(T0, T0 + timedelta(days=1))
    assert h["E1"].changes == [
        (to_us(T0), "UNKNOWN"),
        (to_us(T0 + timedelta(minutes=1)), "AVAILABLE"),
        (to_us(T0 + timedelta(minutes=10)), "UNKNOWN"),  # from when it was last seen alive
    ]
    reasons = [t["reason"] for t in again.transitions("E1", T0, T0 + timedelta(days=1), 10)]
    assert reasons == ["siteedge started; no status yet", "NoError", "siteedge was not running"]
    # A status stamped before the port's last one (a charger clock behind) keeps the order.
    again.append("E1", T0 + timedelta(minutes=5), "AVAILABLE")
    again.flush()
    last = again.histories(T0, T0 + timedelta(days=1))["E1"].changes[-1]
    assert last == (to_us(T0 + timedelta(minutes=10)), "AVAILABLE")
    again.close()


def test_history_is_bounded_but_keeps_each_ports_state_at_the_cutoff(tmp_path: Path) -> None:
    store = SqliteStatusHistory(tmp_path / "reports.sqlite3", keep_days=30)
    old = [
        ("E1", to_us(T0 + timedelta(days=d)), "AVAILABLE" if d % 2 else "OUTOFORDER", "") for d in range(60)
    ]
    store.load(old)
    store.recover(T0 + timedelta(days=61), ["E1"])  # prunes what is older than 30 days
    h = store.histories(T0 + timedelta(days=40), T0 + timedelta(days=62))["E1"]
    assert h.before == "AVAILABLE"  # day 39's status: in force when day 40 began
    assert h.first_seen_us == to_us(T0)  # in service since its first status, pruned or not
    assert len(store.histories(T0, T0 + timedelta(days=62))["E1"].changes) == 30 + 1  # days 30..59 + recovery
    store.close()


def test_windows_and_sent_reports_persist(tmp_path: Path) -> None:
    path = tmp_path / "reports.sqlite3"
    store = SqliteStatusHistory(path)
    w = store.add_window(Window(None, None, T0, T0 + timedelta(hours=2), "utility_outage", "grid", T0))
    store.mark_published("uptime", "2026-10", T0)
    store.close()
    again = SqliteStatusHistory(path)
    (found,) = again.windows(T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert found == w and w.id is not None
    assert again.windows(T0 + timedelta(hours=2), T0 + timedelta(hours=3)) == []  # [start, end)
    assert again.published() == [("uptime", "2026-10")]
    assert again.delete_window(w.id) and not again.delete_window(w.id)
    again.close()


def test_audit_survives_reopening_counts_refusals_per_partner_and_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "auth_audit.sqlite3"
    audit = SqliteAuthAudit(path)
    entries = [
        AuditEntry(T0, "A", "CP-1", "CP-1-1", "ACCEPT", "whitelist ALWAYS", "DE*ABC*A"),
        AuditEntry(T0 + timedelta(minutes=1), "B", "CP-1", "CP-1-1", "REJECT", "blocked", "DE*ABC*B"),
        AuditEntry(T0 + timedelta(minutes=2), "C", "CP-1", None, "REJECT", "unknown token", None),
        AuditEntry(T0 + timedelta(days=40), "D", "CP-1", None, "REJECT", "expired", "NL*XYZ*D"),
    ]
    for e in entries:
        audit.append(e)
    audit.close()
    again = SqliteAuthAudit(path, max_rows=3)
    assert [e.uid for e in again.recent(10)] == ["D", "C", "B", "A"]
    assert [e.uid for e in again.recent(2, offset=1)] == ["C", "B"]
    assert again.recent(1)[0] == entries[-1]
    assert again.failed_by_partner(T0, T0 + timedelta(days=1)) == {("DE", "ABC"): 1, None: 1}
    for i in range(10_000):  # a prune runs every 10,000 appends
        again.append(AuditEntry(T0 + timedelta(days=41), f"X{i}", "CP-1", None, "ACCEPT", "ok", None))
    again.flush()
    assert len(again.recent(100)) == 3
    again.close()

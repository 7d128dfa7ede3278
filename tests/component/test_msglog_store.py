"""The OCPP message log on disk: frames kept as text, secrets never written, old files upgraded."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from controller.core.msglog import IN, OUT, REDACTED
from controller.store.msglog import SqliteMessageLog

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_frames_read_back_as_payloads_and_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "frames.sqlite3"
    log = SqliteMessageLog(path)
    log.record_text("CP-1", AT, IN, 2, "a1", "Heartbeat", '[2,"a1","Heartbeat",{}]')
    log.record_text("CP-1", AT, IN, 3, "b2", "GetConfiguration", '[3,"b2",{"configurationKey":[]}]')
    # A secret spelt with a JSON escape, so its name is not in the text as such.
    escaped = '[2,"c3","ChangeConfiguration",{"key":"Authoriz\\u0061tionKey","value":"s3cret-key"}]'
    log.record_text("CP-1", AT, OUT, 2, "c3", "ChangeConfiguration", escaped)
    log.record_text("CP-1", AT, IN, 2, "d4", "X", '[2,"d4","X",{"basic_auth_password":"hunter22"}]')
    log.record_text("CP-1", AT, OUT, 4, "e5", "X", '[4,"e5","NotImplemented","X is not known",{}]')
    log.close()
    newest_first = SqliteMessageLog(path).recent("CP-1", 10)
    assert [f.unique_id for f in newest_first] == ["e5", "d4", "c3", "b2", "a1"]
    assert newest_first[0].payload == ["NotImplemented", "X is not known", {}]
    assert newest_first[1].payload == {"basic_auth_password": REDACTED}
    assert newest_first[2].payload == {"key": "AuthorizationKey", "value": REDACTED}
    assert newest_first[3].payload == {"configurationKey": []}
    assert newest_first[4].payload == {} and newest_first[4].action == "Heartbeat"
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"s3cret-key" not in on_disk and b"hunter22" not in on_disk


def test_a_log_written_before_text_frames_is_upgraded_and_still_readable(tmp_path: Path) -> None:
    path = tmp_path / "frames.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE frames (id INTEGER PRIMARY KEY AUTOINCREMENT, charger_id TEXT NOT NULL,"
        " at TEXT NOT NULL, direction TEXT NOT NULL, message_type INTEGER, unique_id TEXT,"
        " action TEXT, payload TEXT NOT NULL);"
        "INSERT INTO frames (charger_id, at, direction, message_type, unique_id, action, payload)"
        " VALUES ('CP-1', '2026-11-27T11:00:00+00:00', 'in', 2, 'old', 'Heartbeat', '{}');"
    )
    old.commit()
    old.close()
    log = SqliteMessageLog(path)
    log.record_text("CP-1", AT, IN, 2, "new", "Heartbeat", '[2,"new","Heartbeat",{}]')
    log.flush()
    frames = log.recent("CP-1", 10, action="Heartbeat")
    log.close()
    assert [(f.unique_id, f.payload) for f in frames] == [("new", {}), ("old", {})]

"""Config text for the web UI: secrets never shown, placeholders keep the right secret, redacted diffs."""

from __future__ import annotations

import logging
import tomllib

from controller.configedit import PLACEHOLDER, prepare_edit, redact
from controller.logring import LogRing

CURRENT = """# the site's config
[mqtt]
url = "mqtts://site:urlpass@broker.example:8883"
username = "site"
password = "mqtt-pass"  # from the CPO
api = { token = "tok-123", name = "x" }

[[chargers]]
id = "CP-1"
password = 'cp1-password-0001'

[[chargers]]
id = "CP-2"
password = "cp2-password-0002"

[vault]
client_secret = ["s1", "s2"]
retries = 3
"""


def test_redact_hides_every_secret_and_keeps_the_rest_of_the_file() -> None:
    shown = redact(CURRENT)
    for secret in ("urlpass", "mqtt-pass", "tok-123", "cp1-password", "cp2-password", "s1", "s2"):
        assert secret not in shown
    doc = tomllib.loads(shown)
    assert doc["mqtt"]["url"] == f"mqtts://site:{PLACEHOLDER}@broker.example:8883"
    assert doc["mqtt"]["api"] == {"token": PLACEHOLDER, "name": "x"}
    assert doc["vault"] == {"client_secret": [PLACEHOLDER, PLACEHOLDER], "retries": 3}
    assert shown.startswith("# the site's config\n") and "# from the CPO" in shown


def test_round_trip_of_the_redacted_text_gives_back_the_file_byte_for_byte() -> None:
    edit = prepare_edit(redact(CURRENT), CURRENT, "site.toml")
    assert edit.problems == [] and edit.text == CURRENT and edit.diff == ""


def test_placeholders_follow_chargers_by_id_when_the_list_is_reordered() -> None:
    shown = redact(CURRENT)
    one, two = shown.index("[[chargers]]"), shown.index("[[chargers]]", shown.index("[[chargers]]") + 1)
    end = shown.index("[vault]")
    swapped = shown[:one] + shown[two:end] + shown[one:two] + shown[end:]
    edit = prepare_edit(swapped, CURRENT, "site.toml")
    assert edit.problems == []
    chargers = {c["id"]: c["password"] for c in tomllib.loads(edit.text)["chargers"]}
    assert chargers == {"CP-1": "cp1-password-0001", "CP-2": "cp2-password-0002"}


def test_a_placeholder_with_nothing_to_keep_names_its_key() -> None:
    renamed = redact(CURRENT).replace('id = "CP-2"', 'id = "CP-3"')
    edit = prepare_edit(renamed, CURRENT, "site.toml")
    assert [p.key for p in edit.problems] == ["chargers[1].password"]


def test_a_typed_secret_replaces_the_old_one_and_the_diff_only_says_it_changed() -> None:
    edited = redact(CURRENT).replace(f'password = "{PLACEHOLDER}"  # from', 'password = "brand-new"  # from')
    edit = prepare_edit(edited, CURRENT, "site.toml")
    assert edit.problems == [] and tomllib.loads(edit.text)["mqtt"]["password"] == "brand-new"
    diff = edit.diff
    changes = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
    assert len(changes) == 2  # just the one line, before and after
    assert f'+password = "{PLACEHOLDER} (changed)"  # from the CPO\n' in diff
    assert "brand-new" not in diff and "mqtt-pass" not in diff


def test_log_ring_keeps_the_newest_and_filters() -> None:
    ring = LogRing(capacity=3)
    log = logging.getLogger("siteedge.test.ring")
    log.addHandler(ring)
    log.propagate = False
    try:
        for n in range(5):
            log.warning("record %d", n)
        log.error("failed", exc_info=ValueError("boom"))
    finally:
        log.removeHandler(ring)
        log.propagate = True
    assert [e.message.splitlines()[0] for e in ring.query(10, 0)] == ["failed", "record 4", "record 3"]
    assert "ValueError: boom" in ring.query(1, 0)[0].message
    assert [e.message for e in ring.query(10, 0, logging.WARNING, "RECORD")] == ["record 4", "record 3"]
    assert [e.message for e in ring.query(1, 1, text="record")] == ["record 3"]

"""Pure parts of the OCPP connection level: framing, error codes, redaction, commissioning."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.core.commissioning import BootAnswer, Registration, decide_boot, may_send
from controller.core.config import ConfigError, validate
from controller.core.msglog import REDACTED, redact, redact_text
from controller.core.registry import ChargerApproved, ChargerRegistry
from controller.ocpp.frames import Malformed, Parsed, call_error, error_code, parse_frame
from hil.siteconfig import SimCharger, SiteSpec, render


@pytest.mark.parametrize(
    ("raw", "code", "uid", "reply"),
    [
        ("not json", "RpcFrameworkError", "-1", True),
        ('{"a": 1}', "RpcFrameworkError", "-1", True),
        ("[]", "RpcFrameworkError", "-1", True),
        ('[2, "1", "Heartbeat", {"x": NaN}]', "RpcFrameworkError", "-1", True),
        ("[" * 5000 + "]" * 5000, "RpcFrameworkError", "-1", True),
        ("[" * 500 + "]" * 500, "FormatViolation", "-1", False),
        ('[7, "abc", "Heartbeat", {}]', "MessageTypeNotSupported", "abc", True),
        ('[true, "abc", "Heartbeat", {}]', "MessageTypeNotSupported", "abc", True),
        ('[2, 17, "Heartbeat", {}]', "RpcFrameworkError", "-1", True),
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "RpcFrameworkError", "-1", True),
        ('[2, "1", "Heartbeat"]', "RpcFrameworkError", "1", True),
        ('[2, "1", 5, {}]', "RpcFrameworkError", "1", True),
        ('[2, "1", "Heartbeat", []]', "FormatViolation", "1", True),
        ('[3, "1"]', "FormatViolation", "1", False),
        ('[4, "1", 5]', "FormatViolation", "1", False),
        ("[3, 1, {}]", "RpcFrameworkError", "-1", False),
    ],
)
def test_malformed_frames_are_classified(raw: str, code: str, uid: str, reply: bool) -> None:
    got = parse_frame(raw)
    assert isinstance(got, Malformed)
    assert (got.code, got.unique_id, got.reply) == (code, uid, reply)


def test_well_formed_frames_parse() -> None:
    assert parse_frame('[2,"a","Heartbeat",{}]') == Parsed(2, "a", "Heartbeat", {})
    assert parse_frame('[3,"a",{"x":1}]') == Parsed(3, "a", None, {"x": 1})
    err = parse_frame('[4,"a","GenericError","boom",{}]')
    assert isinstance(err, Parsed) and err.error == ("GenericError", "boom", {})


def test_error_codes_are_spelled_per_version() -> None:
    assert error_code("FormatViolation", "1.6") == "FormationViolation"
    assert error_code("OccurrenceConstraintViolation", "1.6") == "OccurenceConstraintViolation"
    assert error_code("RpcFrameworkError", "1.6") == "FormationViolation"
    assert error_code("FormationViolation", "2.0.1") == "FormatViolation"
    assert error_code("SecurityError", "2.0.1") == "SecurityError"
    assert error_code("NoSuchCode", "2.0.1") == "GenericError"
    frame = json.loads(call_error("x", "FormatViolation", "d" * 400, "1.6"))
    assert frame[:3] == [4, "x", "FormationViolation"] and len(frame[3]) == 255 and frame[4] == {}


def test_passwords_are_redacted_in_logged_payloads() -> None:
    change16 = {"key": "AuthorizationKey", "value": "0011223344556677"}
    assert redact(change16) == {"key": "AuthorizationKey", "value": REDACTED}
    get16 = {"configurationKey": [{"key": "AuthorizationKey", "readonly": False, "value": "s3cret"}]}
    assert "s3cret" not in json.dumps(redact(get16))
    set201 = {
        "setVariableData": [
            {
                "attributeValue": "verysecretpassword",
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            },
            {"attributeValue": "60", "component": {"name": "X"}, "variable": {"name": "Interval"}},
        ]
    }
    out = redact(set201)
    assert out["setVariableData"][0]["attributeValue"] == REDACTED
    assert out["setVariableData"][1]["attributeValue"] == "60"
    assert redact({"password": "x", "nested": [{"privateKey": "k"}]}) == {
        "password": REDACTED,
        "nested": [{"privateKey": REDACTED}],
    }
    assert "hunter2" not in redact_text('[2,"1","X",{"BasicAuthPassword":"hunter2"')


def test_boot_decisions() -> None:
    assert decide_boot(Registration.APPROVED, "rejected") is BootAnswer.ACCEPTED
    assert decide_boot(Registration.REJECTED, "pending") is BootAnswer.REJECTED
    assert decide_boot(Registration.WAITING, "pending") is BootAnswer.PENDING
    assert decide_boot(None, "rejected") is BootAnswer.REJECTED
    assert may_send(Registration.APPROVED, "Accepted")
    assert not may_send(Registration.APPROVED, None)  # never booted: boot first
    assert not may_send(Registration.APPROVED, "Pending")
    assert not may_send(Registration.WAITING, "Accepted")


class MemoryDocs:
    """DocumentStore in a dict, counting writes."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.writes = 0

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self.tables.get(table, {}).get(key)

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        self.writes += 1
        self.tables.setdefault(table, {})[key] = dict(doc)

    def delete(self, table: str, key: str) -> None:
        self.tables.get(table, {}).pop(key, None)

    def all(self, table: str) -> dict[str, dict[str, Any]]:
        return dict(self.tables.get(table, {}))

    def close(self) -> None:
        pass


class FixedClock:
    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0


def _config(**ocpp: Any) -> Any:
    text = render(SiteSpec("/tmp/x", "mqtt://127.0.0.1:1883", chargers=[SimCharger("CP-1")]))
    doc = tomllib.loads(text)
    doc["ocpp"].update(ocpp)
    return validate(doc)


def test_registry_unknown_charger_waits_then_approval_accepts_and_writes_only_on_change() -> None:
    docs, events = MemoryDocs(), list[object]()
    reg = ChargerRegistry(docs, _config(), FixedClock(), events.append)
    boot = {"vendor": "V", "model": "M", "serial": "S", "firmware": "1", "ocpp_version": "1.6"}
    assert reg.boot_answer("NEW") is BootAnswer.PENDING
    reg.record_boot("NEW", "Pending", boot)
    reg.record_boot("NEW", "Pending", boot)
    assert docs.writes == 1
    (entry,) = [c for c in reg.listing() if c["id"] == "NEW"]
    assert entry["waiting_for_approval"] and entry["boot"]["vendor"] == "V"
    assert not reg.may_send("NEW")
    assert reg.approve("NEW") and events == [ChargerApproved("NEW", FixedClock().now())]
    assert reg.boot_answer("NEW") is BootAnswer.ACCEPTED
    assert not reg.may_send("NEW")  # until it boots again
    reg.record_boot("NEW", "Accepted", boot)
    assert reg.may_send("NEW")
    again = ChargerRegistry(docs, _config(), FixedClock(), events.append)  # a restart
    assert again.may_send("NEW") and again.boot_answer("NEW") is BootAnswer.ACCEPTED
    assert again.reject("NEW") and again.boot_answer("NEW") is BootAnswer.REJECTED
    assert not again.approve("NEVER-SEEN") and not again.reject("CP-1")
    assert again.is_approved("CP-1")


def test_security_profile_config_rules() -> None:
    with pytest.raises(ConfigError) as exc:
        validate(
            {
                **tomllib.loads(render(SiteSpec("/x", "mqtt://h:1"))),
                "chargers": [
                    {"id": "A", "security_profile": 2, "evses": [{"ocpp_evse": 1, "evse_uid": "A-1"}]},
                    {"id": "B", "security_profile": 3, "evses": [{"ocpp_evse": 1, "evse_uid": "B-1"}]},
                ],
            }
        )
    keys = {p.key for p in exc.value.problems}
    assert {"chargers[0].password", "chargers[0].security_profile", "chargers[1].security_profile"} <= keys
    cfg = _config(max_frame_bytes=4096, ping_interval=5)
    assert cfg.ocpp.max_frame_bytes == 4096 and cfg.ocpp.ping_interval == 5
    assert cfg.chargers[0].security_profile == 0


def test_deeply_nested_frames_are_refused_before_anything_recurses() -> None:
    deep = '[2,"d","DataTransfer",{"vendorId":"x","data":' + "[" * 900 + "]" * 900 + "}]"
    got = parse_frame(deep)
    assert isinstance(got, Malformed) and (got.code, got.unique_id, got.reply) == (
        "FormatViolation",
        "d",
        True,
    )


def test_credentials_in_firmware_and_log_addresses_are_redacted_the_rest_kept() -> None:
    update16 = {"location": "ftp://fitter:pa@ss@10.0.0.9/fw-2.1.bin", "retrieveDate": "2026-01-01T00:00:00Z"}
    assert redact(update16)["location"] == f"ftp://{REDACTED}@10.0.0.9/fw-2.1.bin"
    get_log = {"log": {"remoteLocation": "https://u:p@logs.example.test/up"}, "requestId": 1}
    assert redact(get_log)["log"]["remoteLocation"] == f"https://{REDACTED}@logs.example.test/up"
    plain = {"location": "https://files.example.test/fw@2.bin"}  # an @ in the path is no credential
    assert redact(plain) == plain

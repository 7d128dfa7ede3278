"""Configuration validation: every problem named with its key, secrets never shown."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from controller.core.config import ConfigError, parse_transport, validate

EXAMPLE = Path(__file__).parents[2] / "docs" / "config.example.toml"


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def problems(doc: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate(doc)
    return {p.key: p.reason for p in info.value.problems}


def test_example_config_is_valid_and_defaults_the_topic_root() -> None:
    config = validate(example())
    assert config.mqtt.topic_root == "siteedge/v1/NL/TNM/LOC001"
    assert config.evse_uids() == ["CP001-1", "CP001-2"]
    assert config.meters[0].transport.port == 5020


def test_typo_wrong_type_and_missing_key_are_all_reported() -> None:
    doc = example()
    doc["ocpp"]["prot"] = 9000  # typo
    doc["api"]["port"] = "8080"  # wrong type
    del doc["site"]["party_id"]  # missing
    found = problems(doc)
    assert "unknown key" in found["ocpp.prot"]
    assert "must be an integer" in found["api.port"]
    assert found["site.party_id"] == "required key is missing"


def test_unknown_section_and_nested_keys_are_rejected() -> None:
    doc = example()
    doc["mqqt"] = {}
    doc["chargers"][0]["evses"][0]["evse_iud"] = "x"
    found = problems(doc)
    assert "unknown section" in found["mqqt"]
    assert "unknown key" in found["chargers[0].evses[0].evse_iud"]


def test_boolean_is_not_a_port() -> None:
    doc = example()
    doc["ocpp"]["port"] = True
    assert "must be an integer" in problems(doc)["ocpp.port"]


def test_duplicate_evse_uid_and_unknown_meter_role_target() -> None:
    doc = example()
    doc["chargers"][0]["evses"][1]["evse_uid"] = "CP001-1"
    doc["meters"][0]["role"] = "evse:NOPE"
    found = problems(doc)
    assert "duplicate evse_uid" in found["chargers[0].evses[1].evse_uid"]
    assert "no EVSE" in found["meters[0].role"]


def test_password_is_not_in_repr_and_must_meet_ocpp_length() -> None:
    doc = example()
    doc["chargers"][0]["password"] = "short"
    assert "16 to 40" in problems(doc)["chargers[0].password"]
    doc["chargers"][0]["password"] = "s3cret-s3cret-s3cret"
    doc["mqtt"]["password"] = "broker-secret"
    config = validate(doc)
    assert "s3cret" not in repr(config)
    assert "broker-secret" not in repr(config)
    assert config.chargers[0].password == "s3cret-s3cret-s3cret"


def test_tls_files_require_mqtts() -> None:
    doc = example()
    doc["mqtt"]["ca_file"] = "/etc/ca.pem"
    assert "mqtts" in problems(doc)["mqtt.url"]


@pytest.mark.parametrize(
    ("url", "kind", "detail"),
    [
        ("tcp://10.0.0.5:502", "tcp", 502),
        ("tcp://meter.local", "tcp", 502),
        ("rtu:///dev/ttyUSB0?baud=19200&parity=E&stopbits=1", "rtu", 19200),
    ],
)
def test_transport_urls(url: str, kind: str, detail: int) -> None:
    t = parse_transport(url)
    assert t.kind == kind
    assert (t.port if kind == "tcp" else t.baudrate) == detail


@pytest.mark.parametrize(
    "url", ["udp://x:1", "rtu:///dev/ttyUSB0?baud=1234", "rtu:///dev/ttyUSB0?speed=9600", "tcp://:502"]
)
def test_bad_transport_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_transport(url)

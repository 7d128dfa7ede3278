"""Technician-set charger passwords: OCPP 1.6 / 2.0.1 rules, generation and the switch-over record."""

from __future__ import annotations

import pytest

from controller.core.charger_credentials import (
    effective_profile,
    generate_password,
    is_technician,
    password_problem,
    switched,
    technician_record,
)
from controller.core.passwords import verify_password

HASH = {"scheme": "scrypt", "n": 2, "r": 1, "p": 1, "salt": "c2FsdA==", "hash": "aGFzaA=="}
OTHER = {**HASH, "hash": "b3RoZXI="}


@pytest.mark.parametrize(
    ("password", "version", "fit"),
    [
        ("00" * 16, "1.6", True),  # 16 bytes as hex
        ("AB" * 20, "1.6", True),  # 20 bytes, upper case hex
        ("00" * 15, "1.6", False),  # 15 bytes
        ("00" * 21, "1.6", False),  # 21 bytes
        ("0" * 33, "1.6", False),  # not whole bytes
        ("g" * 32, "1.6", False),  # not hex
        ("Site-Secret:2026+abc", None, False),  # unknown version: the 1.6 rule, which 2.0.1 also accepts
        ("Site-Secret:2026+abc", "2.0.1", True),
        ("a" * 16, "2.0.1", True),
        ("a" * 15, "2.0.1", False),
        ("a" * 41, "2.0.1", False),
        ("with space 123456789", "2.0.1", False),
        ("non-ascii-ü-1234567", "2.0.1", False),
    ],
)
def test_password_rules_follow_the_ocpp_version(password: str, version: str | None, fit: bool) -> None:
    assert (password_problem(password, version) is None) is fit


def test_a_generated_password_fits_both_versions_and_differs_each_time() -> None:
    first, second = generate_password(), generate_password()
    assert first != second
    for password in (first, second):
        assert password_problem(password, "1.6") is None and password_problem(password, "2.0.1") is None


def test_a_switch_keeps_the_old_credential_and_profile_until_the_new_one_is_used() -> None:
    record = technician_record(
        HASH, 2, "2026-11-27T15:00:00Z", previous=OTHER, previous_profile=1, switching=True, config=OTHER
    )
    assert is_technician(record) and record["previous"]["hash"] == OTHER["hash"]
    assert effective_profile(record) == 1  # the old profile while the old credential is valid
    done = switched(record)
    assert "previous" not in done and effective_profile(done) == 2 and done["config"]["hash"] == OTHER["hash"]
    assert done["hash"] == HASH["hash"]


def test_a_stored_record_holds_no_password_only_its_hash() -> None:
    record = technician_record(
        HASH, 1, "2026-11-27T15:00:00Z", previous=None, previous_profile=0, switching=False, config=None
    )
    assert set(record) == {"scheme", "n", "r", "p", "salt", "hash", "source", "profile", "set_at", "config"}
    assert effective_profile(record) == 1 and effective_profile(None) == 0
    assert not is_technician(HASH) and not verify_password("anything", record)

"""Charger passwords are kept as salted scrypt records that verify only the right password."""

from __future__ import annotations

from controller.core.passwords import hash_password, verify_password


def test_a_record_verifies_its_password_and_no_other() -> None:
    record = hash_password("0123456789abcdef0123")
    assert verify_password("0123456789abcdef0123", record)
    assert not verify_password("0123456789abcdef0124", record)
    assert "0123456789abcdef0123" not in str(record)


def test_each_record_has_its_own_salt() -> None:
    a, b = hash_password("same-password-16ch"), hash_password("same-password-16ch")
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"]


def test_a_malformed_or_foreign_record_verifies_nothing() -> None:
    record = hash_password("0123456789abcdef0123")
    assert not verify_password("0123456789abcdef0123", {})
    assert not verify_password("0123456789abcdef0123", {**record, "scheme": "md5"})
    assert not verify_password("0123456789abcdef0123", {**record, "salt": "not base64!"})

"""Choosing and planning charger local lists (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controller.core.local_list import Entry, UpdateType, apply, choose, entry_of, plan
from controller.core.tokens import parse_token


def tok(uid: str, whitelist: str = "ALWAYS", valid: bool = True) -> object:
    return parse_token(
        {
            "country_code": "DE",
            "party_id": "ABC",
            "uid": uid,
            "type": "RFID",
            "contract_id": "C",
            "issuer": "I",
            "valid": valid,
            "whitelist": whitelist,
            "last_updated": "2026-01-01T00:00:00Z",
        }
    )


def test_never_tokens_stay_off_chargers_and_invalid_ones_go_blocked() -> None:
    assert entry_of(tok("A", "NEVER")) is None  # type: ignore[arg-type]
    assert entry_of(tok("B", valid=False)).status == "Blocked"  # type: ignore[arg-type, union-attr]


def test_recent_tokens_come_first_within_capacity() -> None:
    chosen = choose([tok("P1"), tok("P2")], [tok("r1", "ALLOWED_OFFLINE")], capacity=2)  # type: ignore[list-item]
    assert list(chosen) == ["R1", "P1"]


def test_unknown_charger_list_is_replaced_in_full_then_differential_chunks() -> None:
    wanted = {f"T{i}": Entry(f"T{i}", "Accepted") for i in range(7)}
    msgs = plan(None, wanted, version=4, per_message=3)
    assert [(m.version, m.update_type) for m in msgs] == [
        (5, UpdateType.FULL),
        (6, UpdateType.DIFFERENTIAL),
        (7, UpdateType.DIFFERENTIAL),
    ]


def test_nothing_to_change_sends_nothing() -> None:
    held = {"A": Entry("A", "Accepted")}
    assert plan(held, dict(held), 3, 10) == []


entries = st.dictionaries(
    st.sampled_from([f"T{i}" for i in range(12)]),
    st.builds(Entry, st.sampled_from(["x", "y"]), st.sampled_from(["Accepted", "Blocked"])),
)


@given(entries, entries, st.integers(1, 5), st.booleans())
def test_applying_the_plan_always_yields_the_wanted_list(
    held: dict, wanted: dict, per: int, unknown: bool
) -> None:
    start = None if unknown else held
    result = {} if unknown else dict(held)
    for message in plan(start, wanted, 0, per):
        assert len(message.entries) <= per
        result = apply(result, message)
    assert result == wanted

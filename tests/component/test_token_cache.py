"""The SQLite token cache: atomic snapshot swap, versioned deltas, nothing half-applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.core.token_sync import SyncError, parse_chunk, parse_delta, pick
from controller.store.tokens import SqliteTokenCache


def tok(uid: str, whitelist: str = "ALLOWED", party: str = "ABC", valid: bool = True) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": party,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"C-{uid}",
        "issuer": "ABC",
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": "2026-11-01T00:00:00Z",
    }


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    c = SqliteTokenCache(tmp_path / "tokens.sqlite3")
    yield c
    c.close()


def snapshot(
    cache: SqliteTokenCache, sync_id: str, version: int, chunks: list[list[dict[str, Any]]]
) -> list[bool]:
    return [
        cache.apply_chunk(parse_chunk(sync_id, i, {"total": len(chunks), "version": version, "tokens": toks}))
        for i, toks in enumerate(chunks)
    ]


def test_snapshot_swaps_only_when_complete(cache: SqliteTokenCache) -> None:
    assert snapshot(cache, "s1", 10, [[tok("AA01")], [tok("AA02")]]) == [False, True]
    assert cache.version() == 10 and cache.count() == 2
    # A second snapshot, half received: the working list keeps serving the old one.
    cache.apply_chunk(parse_chunk("s2", 0, {"total": 2, "version": 20, "tokens": [tok("BB01")]}))
    assert cache.version() == 10 and [t.uid for t in cache.lookup("aa01")] == ["AA01"]
    assert cache.lookup("BB01") == []
    cache.apply_chunk(parse_chunk("s2", 1, {"total": 2, "version": 20, "tokens": []}))
    assert cache.version() == 20 and cache.lookup("AA01") == [] and cache.count() == 1


def test_a_newer_snapshot_abandons_an_older_half_one(cache: SqliteTokenCache) -> None:
    cache.apply_chunk(parse_chunk("old", 0, {"total": 2, "version": 5, "tokens": [tok("OLD1")]}))
    assert snapshot(cache, "new", 6, [[tok("NEW1")]]) == [True]
    assert cache.lookup("OLD1") == [] and cache.version() == 6


def test_inconsistent_chunks_are_refused_and_change_nothing(cache: SqliteTokenCache) -> None:
    snapshot(cache, "s1", 1, [[tok("AA01")]])
    cache.apply_chunk(parse_chunk("s2", 0, {"total": 3, "version": 2, "tokens": [tok("X1")]}))
    with pytest.raises(SyncError, match="changed between chunks"):
        cache.apply_chunk(parse_chunk("s2", 1, {"total": 2, "version": 2, "tokens": [tok("X2")]}))
    assert cache.version() == 1 and [t.uid for t in cache.lookup("AA01")] == ["AA01"]


def test_deltas_apply_in_order_and_a_gap_applies_nothing(cache: SqliteTokenCache) -> None:
    snapshot(cache, "s1", 1, [[tok("AA01"), tok("AA02")]])
    cache.apply_delta(
        parse_delta(
            {
                "from_version": 1,
                "to_version": 2,
                "upserts": [tok("AA03")],
                "deletes": [{"country_code": "DE", "party_id": "ABC", "uid": "AA01"}],
            }
        )
    )
    assert cache.version() == 2 and cache.count() == 2 and cache.lookup("AA01") == []
    with pytest.raises(SyncError, match="version gap"):
        cache.apply_delta(parse_delta({"from_version": 5, "to_version": 6, "upserts": [tok("ZZ99")]}))
    assert cache.version() == 2 and cache.lookup("ZZ99") == []


def test_malformed_updates_are_refused_with_a_reason() -> None:
    with pytest.raises(SyncError, match=r"tokens\[1\]\.whitelist"):
        parse_chunk("s", 0, {"total": 1, "version": 1, "tokens": [tok("A"), tok("B", whitelist="MAYBE")]})
    with pytest.raises(SyncError, match="chunk"):
        parse_chunk("s", 3, {"total": 2, "version": 1, "tokens": []})
    with pytest.raises(SyncError, match="to_version"):
        parse_delta({"from_version": 3, "to_version": 3})
    with pytest.raises(SyncError, match="deletes"):
        parse_delta({"from_version": 1, "to_version": 2, "deletes": [{"uid": "x"}]})


def test_lookup_is_case_insensitive_and_same_uid_of_two_emsps_prefers_valid(cache: SqliteTokenCache) -> None:
    snapshot(cache, "s", 1, [[tok("04a2b3", party="ABC", valid=False), tok("04A2B3", party="XYZ")]])
    found = cache.lookup("04A2B3")
    assert {t.party_id for t in found} == {"ABC", "XYZ"}
    best = pick(found)
    assert best is not None and best.party_id == "XYZ"


def test_cache_survives_reopen(tmp_path: Path) -> None:
    c = SqliteTokenCache(tmp_path / "t.sqlite3")
    snapshot(c, "s", 7, [[tok("AA01")]])
    c.close()
    again = SqliteTokenCache(tmp_path / "t.sqlite3")
    try:
        assert again.version() == 7 and again.count() == 1
    finally:
        again.close()

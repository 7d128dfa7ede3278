"""Whitelist sync over a real broker: snapshots, deltas, gaps and garbage from the backend."""

from __future__ import annotations

from typing import Any

import pytest

from controller.app import SiteController
from hil.broker import Broker
from hil.sim.backend import BackendSimulator, Received
from hil.siteconfig import SiteSpec

ROOT = "siteedge/v1/NL/SED/DEMO01"


def tok(uid: str, whitelist: str = "ALLOWED") -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "ABC",
        "uid": uid,
        "type": "RFID",
        "contract_id": f"C-{uid}",
        "issuer": "ABC",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": "2026-11-01T00:00:00Z",
    }


def on(subtopic: str, **data: Any) -> Any:
    def match(m: Received) -> bool:
        if m.topic != f"{ROOT}/{subtopic}" or not isinstance(m.payload, dict):
            return False
        return all(m.payload["data"].get(k) == v for k, v in data.items())

    return match


@pytest.fixture
def backend(broker: Broker) -> Any:
    with BackendSimulator(broker.url, ROOT) as b:
        yield b
    assert b.contract.violations == []


async def test_full_snapshot_then_deltas(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    await backend.wait_for_async(on("tokens/state", version=0, count=0))  # "never synced": send all
    chunks = [[tok(f"AA{i:02d}") for i in range(j * 3, j * 3 + 3)] for j in range(3)]
    for n, toks in enumerate(chunks):
        backend.publish(f"tokens/full/sync-1/{n}", {"total": 3, "version": 100, "tokens": toks})
    await backend.wait_for_async(on("tokens/state", version=100, count=9))
    assert [t.contract_id for t in ctl.tokens.lookup("aa04")] == ["C-AA04"]

    backend.publish(
        "tokens/delta",
        {
            "from_version": 100,
            "to_version": 101,
            "upserts": [tok("BB01", "NEVER")],
            "deletes": [{"country_code": "DE", "party_id": "ABC", "uid": "AA00"}],
        },
    )
    await backend.wait_for_async(on("tokens/state", version=101, count=9))
    assert ctl.tokens.lookup("AA00") == [] and ctl.tokens.lookup("BB01")[0].whitelist == "NEVER"


async def test_gap_and_garbage_are_rejected_with_a_reason_and_ask_for_a_snapshot(
    site_spec: SiteSpec, start_controller: Any, backend: BackendSimulator
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    backend.publish("tokens/full/s1/0", {"total": 1, "version": 5, "tokens": [tok("AA01")]})
    await backend.wait_for_async(on("tokens/state", version=5))

    backend.publish("tokens/delta", {"from_version": 7, "to_version": 8, "upserts": [tok("ZZ01")]})
    await backend.wait_for_async(on("tokens/resync", have_version=5))
    rejected = await backend.wait_for_async(on("errors", topic="tokens/delta"))
    assert "version gap" in rejected.payload["data"]["reason"]

    backend.publish("tokens/full/s2/0", {"total": 2, "version": 9, "tokens": [tok("NEW1")]})
    backend.publish("tokens/full/s2/1", {"total": 2, "version": 9, "tokens": [{"uid": "broken"}]})
    await backend.wait_for_async(on("errors", topic="tokens/full/s2/1"))
    backend.publish("tokens/delta", b"{not json")
    garbage = await backend.wait_for_async(
        lambda m: on("errors", topic="tokens/delta")(m) and "JSON" in m.payload["data"]["reason"]
    )
    assert garbage is not None
    # The working list is exactly what it was: nothing half-applied.
    assert ctl.tokens.version() == 5 and ctl.tokens.count() == 1
    assert ctl.tokens.lookup("NEW1") == [] and ctl.tokens.lookup("ZZ01") == []

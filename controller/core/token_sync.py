"""Whitelist sync messages from the backend: full snapshots in chunks and versioned deltas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from controller.core.tokens import Token, TokenError, parse_token

MAX_CHUNK_TOKENS = 10_000


class SyncError(ValueError):
    """A sync message is malformed or out of order; the message is the reason sent back."""


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    """One chunk of a full whitelist snapshot (chunk numbers start at 0)."""

    sync_id: str
    chunk: int
    total: int
    version: int
    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class TokenDelta:
    """Ordered changes taking the whitelist from one version to the next."""

    from_version: int
    to_version: int
    upserts: tuple[Token, ...]
    deletes: tuple[tuple[str, str, str], ...]


def _int(obj: dict[str, Any], name: str, minimum: int) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SyncError(f"{name}: must be an integer >= {minimum}")
    return value


def _tokens(raw: Any) -> tuple[Token, ...]:
    if not isinstance(raw, list):
        raise SyncError("tokens: must be a list")
    if len(raw) > MAX_CHUNK_TOKENS:
        raise SyncError(f"tokens: more than {MAX_CHUNK_TOKENS} in one message")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(parse_token(item))
        except TokenError as exc:
            raise SyncError(f"tokens[{i}].{exc}") from exc
    return tuple(out)


def parse_chunk(sync_id: str, chunk: int, payload: Any) -> SnapshotChunk:
    """Validate a snapshot chunk (topic tokens/full/{sync_id}/{chunk}); SyncError says why not."""
    if not isinstance(payload, dict):
        raise SyncError("snapshot chunk: must be a JSON object")
    total = _int(payload, "total", 1)
    if not 0 <= chunk < total:
        raise SyncError(f"chunk: {chunk} outside 0..{total - 1}")
    if payload.get("sync_id", sync_id) != sync_id or payload.get("chunk", chunk) != chunk:
        raise SyncError("sync_id/chunk in the payload disagree with the topic")
    return SnapshotChunk(sync_id, chunk, total, _int(payload, "version", 0), _tokens(payload.get("tokens")))


def parse_delta(payload: Any) -> TokenDelta:
    """Validate a delta (topic tokens/delta); SyncError says why not."""
    if not isinstance(payload, dict):
        raise SyncError("delta: must be a JSON object")
    from_v = _int(payload, "from_version", 0)
    to_v = _int(payload, "to_version", 1)
    if to_v <= from_v:
        raise SyncError("to_version must be greater than from_version")
    deletes_raw = payload.get("deletes", [])
    if not isinstance(deletes_raw, list):
        raise SyncError("deletes: must be a list")
    deletes = []
    for i, d in enumerate(deletes_raw):
        if not isinstance(d, dict) or not all(
            isinstance(d.get(k), str) for k in ("country_code", "party_id", "uid")
        ):
            raise SyncError(f"deletes[{i}]: needs country_code, party_id and uid strings")
        deletes.append((d["country_code"].upper(), d["party_id"].upper(), d["uid"]))
    return TokenDelta(from_v, to_v, _tokens(payload.get("upserts", [])), tuple(deletes))


def pick(candidates: list[Token]) -> Token | None:
    """The token that decides when several eMSPs issued the same uid: valid first, then newest."""
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.valid, t.last_updated))


class TokenCache(Protocol):
    """What token sync and authorization need from the token store."""

    def lookup(self, uid: str) -> list[Token]:
        """Every cached token whose uid matches the uid as read."""
        ...

    def version(self) -> int:
        """Version of the working list (0 = never synced)."""
        ...

    def count(self) -> int:
        """Number of tokens in the working list."""
        ...

    def apply_chunk(self, chunk: SnapshotChunk) -> bool:
        """Stage a chunk; True once the snapshot completed and replaced the working list."""
        ...

    def abandon_snapshot(self) -> None:
        """Drop a half-received snapshot."""
        ...

    def apply_delta(self, delta: TokenDelta) -> None:
        """Apply a delta atomically; SyncError on a version gap."""
        ...

    def touch(self, uid: str, at: str) -> None:
        """Remember that a token was accepted here at an RFC 3339 time."""
        ...

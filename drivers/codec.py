"""Register codec: raw 16-bit words <-> engineering values, honouring type, word order, scale."""

from __future__ import annotations

import math
import struct

from drivers.library import Register

_FMT = {
    "u16": ">H",
    "s16": ">h",
    "u32": ">I",
    "s32": ">i",
    "u64": ">Q",
    "s64": ">q",
    "f32": ">f",
    "f64": ">d",
}


def _to_wire_order(words: list[int], order: str) -> list[int]:
    """Reorder big-endian (ABCD) words into the device's order; the mapping is its own inverse."""
    if order == "ABCD" or len(words) == 1:
        return list(words) if order in ("ABCD", "CDAB") else [_swap(w) for w in words]
    if order == "CDAB":
        return list(reversed(words))
    if order == "BADC":
        return [_swap(w) for w in words]
    return [_swap(w) for w in reversed(words)]  # DCBA


def _swap(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def decode(reg: Register, words: list[int]) -> float | None:
    """Engineering value of a register, or None for a sentinel, NaN or infinity (never zero)."""
    if len(words) != reg.count:
        raise ValueError(f"{reg.name}: expected {reg.count} registers, got {len(words)}")
    big = _to_wire_order(words, reg.word_order)
    raw = b"".join(w.to_bytes(2, "big") for w in big)
    if int.from_bytes(raw, "big") in reg.sentinels:
        return None
    (value,) = struct.unpack(_FMT[reg.type], raw)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value) * reg.scale


def encode(reg: Register, value: float) -> list[int]:
    """Raw registers (device word order) for an engineering value; the simulator's inverse of decode."""
    raw_value: float | int = value / reg.scale
    if reg.type[0] in "us":
        raw_value = round(raw_value)
    raw = struct.pack(_FMT[reg.type], raw_value)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return _to_wire_order(words, reg.word_order)

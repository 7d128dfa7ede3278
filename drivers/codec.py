"""Register codec: raw 16-bit words <-> engineering values, honouring type, word order, scale."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence

from drivers.library import TEXT_TYPES, DeviceModel, Register

_FMT = {
    "u16": ">H",
    "s16": ">h",
    "u32": ">I",
    "s32": ">i",
    "u64": ">Q",
    "s64": ">q",
    "f32": ">f",
    "f64": ">d",
    "bit": ">H",
}
SF_NOT_IMPLEMENTED = 0x8000  # SunSpec: a scale factor of 0x8000 means "not implemented"

Value = float | str | None


def _to_wire_order(words: Sequence[int], order: str) -> list[int]:
    """Reorder big-endian (ABCD) words into the device's order; the mapping is its own inverse."""
    if order == "ABCD" or len(words) == 1:
        return list(words) if order in ("ABCD", "CDAB") else [_swap(w) for w in words]
    if order == "CDAB":
        return list(reversed(words))
    if order == "BADC":
        return [_swap(w) for w in words]
    return [_swap(w) for w in reversed(words)]  # DCBA


def to_wire_order(big_endian_words: Sequence[int], order: str) -> list[int]:
    """Big-endian (ABCD) words rearranged into a device's word order (raw sentinels, simulators)."""
    return _to_wire_order(big_endian_words, order)


def _swap(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def swapped_order(order: str) -> str:
    """The word order a miswired driver would assume (ABCD<->CDAB, BADC<->DCBA): fault injection."""
    return {"ABCD": "CDAB", "CDAB": "ABCD", "BADC": "DCBA", "DCBA": "BADC"}[order]


def _raw_bytes(reg: Register, words: Sequence[int]) -> bytes:
    if len(words) != reg.count:
        raise ValueError(f"{reg.name}: expected {reg.count} registers, got {len(words)}")
    return b"".join(w.to_bytes(2, "big") for w in _to_wire_order(words, reg.word_order))


def decode(reg: Register, words: Sequence[int]) -> float | None:
    """Engineering value of a register, or None for a sentinel, NaN or infinity (never zero).

    A register with a scale_register is returned without its power of ten: use decode_block.
    """
    if reg.type in TEXT_TYPES:
        raise ValueError(f"{reg.name}: a text register; use decode_text")
    raw = _raw_bytes(reg, words)
    if int.from_bytes(raw, "big") in reg.sentinels:
        return None
    (value,) = struct.unpack(_FMT[reg.type], raw)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
    elif reg.mask is not None or reg.shift:
        value = (int(value) >> reg.shift) & (reg.mask if reg.mask is not None else -1)
    return float(value) * reg.scale


def decode_text(reg: Register, words: Sequence[int]) -> str | None:
    """A text register (two characters per word, NUL/space padded); None if empty or a sentinel."""
    raw = _raw_bytes(reg, words)
    text = raw.split(b"\0", 1)[0].decode("latin-1").strip()
    return text or None


def decode_value(reg: Register, words: Sequence[int]) -> Value:
    """decode or decode_text, whichever the register's type calls for."""
    return decode_text(reg, words) if reg.type in TEXT_TYPES else decode(reg, words)


def exponent(reg: Register, words: Sequence[int]) -> int | None:
    """A SunSpec scale factor (signed power of ten); None when 0x8000 says 'not implemented'."""
    (word,) = words
    if word == SF_NOT_IMPLEMENTED or word in reg.sentinels:
        return None
    return word - 0x10000 if word & 0x8000 else word


def decode_block(registers: Iterable[Register], address: int, words: Sequence[int]) -> dict[str, Value]:
    """Decode one block read (starting at address) into named values; scale factors are applied.

    Scale-factor registers are consumed, not returned. A value whose scale factor is not
    implemented is None. The block must contain the scale factors its values refer to.
    """
    regs = list(registers)
    sfs: dict[str, int | None] = {}
    for reg in regs:
        if reg.scale_factor:
            sfs[reg.name] = exponent(reg, _slice(reg, address, words))
    out: dict[str, Value] = {}
    for reg in regs:
        if reg.scale_factor:
            continue
        value = decode_value(reg, _slice(reg, address, words))
        if reg.scale_register is not None and isinstance(value, float):
            if reg.scale_register not in sfs:
                raise ValueError(f"{reg.name}: scale factor {reg.scale_register!r} is not in this block")
            sf = sfs[reg.scale_register]
            value = None if sf is None else value * 10.0**sf
        out[reg.name] = value
    return out


def _slice(reg: Register, address: int, words: Sequence[int]) -> list[int]:
    off = reg.address - address
    if off < 0 or off + reg.count > len(words):
        raise ValueError(f"{reg.name}: registers {reg.address}+{reg.count} outside the block read")
    return list(words[off : off + reg.count])


def encode(reg: Register, value: float | str, sf: int = 0) -> list[int]:
    """Raw registers (device word order) for an engineering value; the simulator's inverse of decode.

    sf is the power of ten the raw value is scaled by (SunSpec); ValueError if it does not fit.
    """
    if reg.type in TEXT_TYPES:
        text = str(value).encode("latin-1")
        if len(text) > 2 * reg.count:
            raise ValueError(f"{reg.name}: {value!r} longer than {2 * reg.count} characters")
        raw = text.ljust(2 * reg.count, b"\0")
    else:
        if isinstance(value, str):
            raise TypeError(f"{reg.name}: a numeric register")
        raw_value: float | int = value / reg.scale / 10.0**sf
        if reg.type[0] in "usb":
            raw_value = round(raw_value)
            if reg.mask is not None or reg.shift:
                raw_value = (raw_value & (reg.mask if reg.mask is not None else -1)) << reg.shift
        try:
            raw = struct.pack(_FMT[reg.type], raw_value)
        except (struct.error, OverflowError) as exc:
            raise ValueError(
                f"{reg.name}: {value} does not fit {reg.type} (scale {reg.scale}, sf {sf})"
            ) from exc
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return _to_wire_order(words, reg.word_order)


def iec_state(model: DeviceModel, values: Mapping[str, Value]) -> str | None:
    """A charger's IEC 61851 state (A..F) from decoded values; None if unknown or unavailable."""
    if model.charger is None:
        raise ValueError(f"{model.name} is not a charger")
    c = model.charger
    return c.state_of(values.get(c.status), values.get(c.plug) if c.plug else None)

"""The device library: one TOML file per model, validated into register maps."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEVICES_DIR = Path(__file__).parent / "devices"
TYPES = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "u64": 4, "s64": 4, "f32": 2, "f64": 4}
WORD_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
RATES = ("fast", "slow", "once")


class DeviceMapError(ValueError):
    """A device file is invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Register:
    """One value in a device's register map."""

    name: str
    address: int
    function: int
    type: str
    word_order: str
    scale: float
    unit: str
    rate: str
    counter: bool
    sentinels: tuple[int, ...]

    @property
    def count(self) -> int:
        """Number of 16-bit registers this value spans."""
        return TYPES[self.type]


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """A device model: identity, bus limits and its registers."""

    name: str
    vendor: str
    model: str
    kind: str
    max_span: int
    read_gaps: bool
    turnaround_ms: int
    registers: tuple[Register, ...]


_DEVICE_KEYS = {"name", "vendor", "model", "kind", "max_span", "read_gaps", "turnaround_ms", "notes"}
_REG_KEYS = {
    "name",
    "address",
    "function",
    "type",
    "word_order",
    "scale",
    "unit",
    "rate",
    "counter",
    "sentinels",
}


def _require(cond: bool, where: str, why: str) -> None:
    if not cond:
        raise DeviceMapError(f"{where}: {why}")


def parse_device(doc: dict[str, Any], source: str) -> DeviceModel:
    """Validate a parsed device file; DeviceMapError names the offending key."""
    dev = doc.get("device")
    _require(isinstance(dev, dict), f"{source}: device", "missing [device] table")
    assert isinstance(dev, dict)
    unknown = set(dev) - _DEVICE_KEYS
    _require(not unknown, f"{source}: device", f"unknown keys {sorted(unknown)}")
    for key in ("name", "vendor", "model", "kind"):
        _require(isinstance(dev.get(key), str), f"{source}: device.{key}", "required string")
    _require(dev["kind"] in ("meter", "charger"), f"{source}: device.kind", "meter or charger")
    max_span = dev.get("max_span", 125)
    _require(isinstance(max_span, int) and 1 <= max_span <= 125, f"{source}: device.max_span", "1..125")
    regs: list[Register] = []
    raw_regs = doc.get("registers")
    _require(isinstance(raw_regs, list) and bool(raw_regs), f"{source}: registers", "need [[registers]]")
    assert isinstance(raw_regs, list)
    for i, r in enumerate(raw_regs):
        where = f"{source}: registers[{i}]"
        _require(isinstance(r, dict), where, "must be a table")
        unknown = set(r) - _REG_KEYS
        _require(not unknown, where, f"unknown keys {sorted(unknown)}")
        _require(isinstance(r.get("name"), str), f"{where}.name", "required string")
        _require(
            isinstance(r.get("address"), int) and 0 <= r["address"] <= 0xFFFF, f"{where}.address", "0..65535"
        )
        _require(r.get("type") in TYPES, f"{where}.type", f"one of {sorted(TYPES)}")
        fc = r.get("function", 4 if dev["kind"] == "meter" else 3)
        _require(fc in (3, 4), f"{where}.function", "3 (holding) or 4 (input)")
        order = r.get("word_order", "ABCD")
        _require(order in WORD_ORDERS, f"{where}.word_order", f"one of {WORD_ORDERS}")
        rate = r.get("rate", "fast")
        _require(rate in RATES, f"{where}.rate", f"one of {RATES}")
        scale = r.get("scale", 1.0)
        _require(isinstance(scale, int | float) and scale != 0, f"{where}.scale", "non-zero number")
        sentinels = r.get("sentinels", [])
        _require(
            isinstance(sentinels, list) and all(isinstance(s, int) for s in sentinels),
            f"{where}.sentinels",
            "list of integers",
        )
        regs.append(
            Register(
                name=r["name"],
                address=r["address"],
                function=fc,
                type=r["type"],
                word_order=order,
                scale=float(scale),
                unit=str(r.get("unit", "")),
                rate=rate,
                counter=bool(r.get("counter", False)),
                sentinels=tuple(sentinels),
            )
        )
    names = [r.name for r in regs]
    _require(len(set(names)) == len(names), f"{source}: registers", "duplicate register names")
    return DeviceModel(
        name=dev["name"],
        vendor=dev["vendor"],
        model=dev["model"],
        kind=dev["kind"],
        max_span=max_span,
        read_gaps=bool(dev.get("read_gaps", False)),
        turnaround_ms=int(dev.get("turnaround_ms", 0)),
        registers=tuple(regs),
    )


def available() -> list[str]:
    """Names of every model in the library."""
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


@cache
def load_device(name: str) -> DeviceModel:
    """Load and validate one model by name; KeyError if the library has no such model."""
    path = DEVICES_DIR / f"{name}.toml"
    if not path.is_file():
        raise KeyError(f"no device model {name!r} (have: {', '.join(available())})")
    with path.open("rb") as fh:
        model = parse_device(tomllib.load(fh), path.name)
    _require(model.name == name, f"{path.name}: device.name", f"must equal the file name {name!r}")
    return model

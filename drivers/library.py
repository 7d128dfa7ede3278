"""The device library: one TOML file per model, validated into register maps."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEVICES_DIR = Path(__file__).parent / "devices"
# Registers per value; "str" spans `words` registers (declared per register), "bit" is one coil.
TYPES = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "u64": 4, "s64": 4, "f32": 2, "f64": 4, "bit": 1}
TEXT_TYPES = ("str",)
WORD_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
RATES = ("fast", "slow", "once")
READ_FUNCTIONS = (1, 3, 4)  # coils, holding registers, input registers
# Which write function codes fit which read table: FC5 coils; FC6 one register, FC16 several.
WRITE_FUNCTIONS = {1: (5,), 3: (6, 16)}
IEC_STATES = ("A", "B", "C", "D", "E", "F")
WATCHDOG_KINDS = ("none", "rewrite_setpoint", "life_bit", "write_timeout", "read")
ENABLE_KINDS = ("zero_current", "register")

# The names the core sees. A file maps vendor registers onto these and nothing else, so the core
# never learns a vendor's vocabulary. Value: the engineering unit after scaling.
METER_NAMES: dict[str, str] = {
    **{f"voltage_l{p}": "V" for p in (1, 2, 3)},
    **{f"current_l{p}": "A" for p in (1, 2, 3)},
    "power": "W",
    **{f"power_l{p}": "W" for p in (1, 2, 3)},
    "frequency": "Hz",
    "power_factor": "",
    "energy_import": "Wh",
    "energy_export": "Wh",
    **{f"energy_import_l{p}": "Wh" for p in (1, 2, 3)},
    **{f"energy_export_l{p}": "Wh" for p in (1, 2, 3)},
    # identity (rate "once")
    "serial": "",
    "firmware": "",
    "manufacturer": "",
    "model_name": "",
}
METER_REQUIRED = ("power", "energy_import")
CHARGER_NAMES: dict[str, str] = {
    **{k: v for k, v in METER_NAMES.items() if not k.startswith("energy_export")},
    "energy_session": "Wh",  # resets with every session: never a meter-grade counter
    "energy_since_power_on": "Wh",  # resets on power cycle (Heidelberg)
    "status": "",
    "plug": "",
    "current_limit": "A",  # the setpoint the controller writes
    "current_applied": "A",  # what the charger actually applies
    "safe_current": "A",  # charger-side failsafe current
    "enable": "",
    "remote_lock": "",
    "standby": "",
    "phases": "",
    "watchdog_timeout": "",  # unit given by the register (s or ms): see the file's [charger.watchdog]
    "watchdog_remaining": "s",
    "watchdog_rearm": "s",  # writing the timeout again restarts it (KEBA 5018)
    "life_bit": "",
    "setpoint_accepted": "",
    "connectors": "",
}


class DeviceMapError(ValueError):
    """A device file is invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Register:
    """One value in a device's register map (address is 0-based on the wire)."""

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
    write: int | None = None  # write function code (5, 6, 16); None = read-only
    words: int = 0  # registers of a "str" value
    mask: int | None = None  # raw & mask after >> shift (status bytes packed into a word)
    shift: int = 0
    scale_register: str | None = None  # SunSpec: value = raw * scale * 10**(that register)
    scale_factor: bool = False  # this register is a power-of-ten exponent, not a value
    unverified: str = ""  # why a source was unsure; empty when the facts agree
    readable: bool = True  # False: write-only (a read may be refused); never plan a read of it

    @property
    def count(self) -> int:
        """Number of 16-bit registers this value spans."""
        return self.words if self.type in TEXT_TYPES else TYPES[self.type]

    @property
    def writable(self) -> bool:
        """True if the controller may write this register."""
        return self.write is not None

    @property
    def rollover(self) -> float | None:
        """Engineering value at which an integer counter wraps to zero (None for floats)."""
        if not self.counter or self.type[0] not in "us":
            return None
        bits = 16 * self.count - (1 if self.type[0] == "s" else 0)
        return float(2**bits) * self.scale


@dataclass(frozen=True, slots=True)
class SerialDefaults:
    """Line settings a device ships with (RTU)."""

    baudrate: int
    parity: str
    stopbits: int
    bytesize: int = 8

    @property
    def bits_per_char(self) -> int:
        """Bits on the wire per character: start + data + parity + stop."""
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits


@dataclass(frozen=True, slots=True)
class Watchdog:
    """The charger's own failsafe and how the controller keeps it from firing."""

    kind: str  # one of WATCHDOG_KINDS
    timeout_s: float  # device default; 0 = none or unknown
    keepalive_s: float  # act this often (well inside the device's default timeout)
    keepalive_fraction: float = 0.5  # when the timeout is read from timeout_register: act at this share
    register: str | None = None  # life_bit / write_timeout: the register written
    value: int = 1  # life_bit: the value written
    timeout_register: str | None = None  # where the timeout is read or configured
    timeout_unit: str = "s"  # unit of timeout_register ("s" or "ms")
    failsafe_register: str | None = None  # current the charger falls back to
    verified: bool = True


@dataclass(frozen=True, slots=True)
class Enable:
    """How a charger is paused and resumed."""

    kind: str  # "zero_current": write 0 A to the setpoint; "register": write on/off values
    register: str | None = None
    on: int = 1
    off: int = 0


@dataclass(frozen=True, slots=True)
class Charger:
    """Charger control as data: status mapping, setpoint, enable and watchdog."""

    status: str
    states: tuple[tuple[str, str], ...]  # raw status (decimal or text) -> IEC 61851 letter
    setpoint: str
    enable: Enable
    watchdog: Watchdog
    min_current_a: float = 6.0  # IEC 61851: below 6 A a car cannot charge; use 0 to pause
    max_current_a: float = 32.0
    plug: str | None = None  # optional plug register: not in plug_connected -> state A
    plug_connected: tuple[int, ...] = ()
    connector_stride: int = 0  # connector n uses address + (n-1)*stride

    def state_of(self, raw: float | str | None, plug: float | str | None = None) -> str | None:
        """IEC 61851 state for a decoded status (and plug) value; None if unknown or missing."""
        connected = self.plug is None or plug is None or isinstance(plug, str)
        if not connected and int(plug or 0) not in self.plug_connected:
            return "A"
        if raw is None:
            return None
        key = raw.strip() if isinstance(raw, str) else str(int(raw))
        return dict(self.states).get(key)


@dataclass(frozen=True, slots=True)
class SunSpecBlock:
    """A SunSpec model template: register addresses are offsets from the block's ID register."""

    models: tuple[int, ...]
    length: int  # the L register of the block


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
    unit_id: int = 1
    transports: tuple[str, ...] = ("tcp", "rtu")
    serial: SerialDefaults | None = None
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    charger: Charger | None = None
    sunspec: SunSpecBlock | None = None

    def register(self, name: str) -> Register:
        """The register with this name; KeyError names the model."""
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"{self.name} has no register {name!r}")

    def names(self) -> frozenset[str]:
        """Names of the values this model delivers (scale-factor registers excluded)."""
        return frozenset(r.name for r in self.registers if not r.scale_factor)


_DEVICE_KEYS = {
    "name",
    "vendor",
    "model",
    "kind",
    "max_span",
    "read_gaps",
    "turnaround_ms",
    "notes",
    "unverified",
    "sources",
    "unit_id",
    "transports",
}
_TOP_KEYS = {"device", "registers", "serial", "charger", "sunspec"}
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
    "write",
    "words",
    "mask",
    "shift",
    "scale_register",
    "scale_factor",
    "unverified",
    "readable",
}
_SENTINEL_WORDS = ("all_ones", "signed_max", "signed_min")


def _require(cond: bool, where: str, why: str) -> None:
    if not cond:
        raise DeviceMapError(f"{where}: {why}")


def _keys(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    _require(isinstance(table, dict), where, "must be a table")
    assert isinstance(table, dict)
    unknown = set(table) - allowed
    _require(not unknown, where, f"unknown keys {sorted(unknown)}")
    return table


def _strings(value: Any, where: str) -> tuple[str, ...]:
    _require(isinstance(value, list) and all(isinstance(s, str) for s in value), where, "list of strings")
    return tuple(value)


def _sentinel(value: Any, typ: str, where: str) -> int:
    """A sentinel as the raw unsigned bit pattern the codec compares against."""
    bits = 16 * TYPES.get(typ, 1)
    if isinstance(value, int) and not isinstance(value, bool):
        _require(0 <= value < 2**bits, where, f"must fit {bits} bits unsigned (write signed ones as hex)")
        return value
    _require(value in _SENTINEL_WORDS, where, f"integer or one of {_SENTINEL_WORDS}")
    patterns: dict[str, int] = {
        "all_ones": 2**bits - 1,
        "signed_max": 2 ** (bits - 1) - 1,
        "signed_min": 2 ** (bits - 1),
    }
    return patterns[str(value)]


def _register(r: Any, kind: str, where: str) -> Register:
    r = _keys(r, _REG_KEYS, where)
    _require(isinstance(r.get("name"), str), f"{where}.name", "required string")
    _require(
        isinstance(r.get("address"), int) and 0 <= r["address"] <= 0xFFFF, f"{where}.address", "0..65535"
    )
    typ = r.get("type")
    _require(typ in TYPES or typ in TEXT_TYPES, f"{where}.type", f"one of {sorted(TYPES) + list(TEXT_TYPES)}")
    fc = r.get("function", 4 if kind == "meter" else 3)
    _require(fc in READ_FUNCTIONS, f"{where}.function", "1 (coils), 3 (holding) or 4 (input)")
    _require((typ == "bit") == (fc == 1), f"{where}.type", "coils (function 1) are type 'bit' and only they")
    words = r.get("words", 0)
    if typ in TEXT_TYPES:
        _require(isinstance(words, int) and 1 <= words <= 125, f"{where}.words", "1..125 for a str value")
    else:
        _require("words" not in r, f"{where}.words", "only for type 'str'")
    order = r.get("word_order", "ABCD")
    _require(order in WORD_ORDERS, f"{where}.word_order", f"one of {WORD_ORDERS}")
    rate = r.get("rate", "fast")
    _require(rate in RATES, f"{where}.rate", f"one of {RATES}")
    scale = r.get("scale", 1.0)
    _require(isinstance(scale, int | float) and scale != 0, f"{where}.scale", "non-zero number")
    sentinels = r.get("sentinels", [])
    _require(isinstance(sentinels, list), f"{where}.sentinels", "list of integers or names")
    write = r.get("write")
    if write is not None:
        allowed = WRITE_FUNCTIONS.get(fc, ())
        _require(
            write in allowed, f"{where}.write", f"function {fc} is written with one of {allowed or 'none'}"
        )
        count = words if typ in TEXT_TYPES else TYPES[str(typ)]
        _require(write != 6 or count == 1, f"{where}.write", "FC6 writes one register; use 16")
    mask = r.get("mask")
    _require(mask is None or (isinstance(mask, int) and mask > 0), f"{where}.mask", "positive integer")
    shift = r.get("shift", 0)
    _require(isinstance(shift, int) and 0 <= shift < 64, f"{where}.shift", "0..63")
    _require((mask is None and shift == 0) or str(typ)[0] in "us", f"{where}.mask", "only for integer types")
    sf_reg = r.get("scale_register")
    _require(sf_reg is None or isinstance(sf_reg, str), f"{where}.scale_register", "a register name")
    is_sf = bool(r.get("scale_factor", False))
    _require(not is_sf or typ == "s16", f"{where}.scale_factor", "scale factors are s16")
    unverified = r.get("unverified", "")
    _require(isinstance(unverified, str), f"{where}.unverified", "a string saying what is unsure")
    readable = r.get("readable", True)
    _require(isinstance(readable, bool), f"{where}.readable", "true or false")
    _require(
        readable or write is not None, f"{where}.readable", "a register nobody can read must be writable"
    )
    return Register(
        name=r["name"],
        address=r["address"],
        function=fc,
        type=str(typ),
        word_order=order,
        scale=float(scale),
        unit=str(r.get("unit", "")),
        rate=rate,
        counter=bool(r.get("counter", False)),
        sentinels=tuple(_sentinel(s, str(typ), f"{where}.sentinels") for s in sentinels),
        write=write,
        words=words,
        mask=mask,
        shift=shift,
        scale_register=sf_reg,
        scale_factor=is_sf,
        unverified=unverified,
        readable=readable,
    )


def _serial(doc: Any, source: str) -> SerialDefaults:
    where = f"{source}: serial"
    s = _keys(doc, {"baudrate", "parity", "stopbits", "bytesize"}, where)
    baud = s.get("baudrate")
    _require(isinstance(baud, int) and baud > 0, f"{where}.baudrate", "positive integer")
    parity = s.get("parity", "N")
    _require(parity in ("N", "E", "O"), f"{where}.parity", "N, E or O")
    stopbits = s.get("stopbits", 1)
    _require(stopbits in (1, 2), f"{where}.stopbits", "1 or 2")
    bytesize = s.get("bytesize", 8)
    _require(bytesize in (7, 8), f"{where}.bytesize", "7 or 8")
    return SerialDefaults(baudrate=int(baud or 0), parity=parity, stopbits=stopbits, bytesize=bytesize)


def _charger(doc: Any, regs: dict[str, Register], source: str) -> Charger:
    where = f"{source}: charger"
    c = _keys(
        doc,
        {
            "status",
            "states",
            "setpoint",
            "enable",
            "watchdog",
            "min_current_a",
            "max_current_a",
            "plug",
            "plug_connected",
            "connector_stride",
        },
        where,
    )

    def reg_ref(key: str, value: Any, *, writable: bool = False) -> str:
        _require(
            isinstance(value, str) and value in regs, f"{where}.{key}", "name of a register in this file"
        )
        if writable:
            _require(regs[value].writable, f"{where}.{key}", f"register {value!r} has no write function")
        return str(value)

    status = reg_ref("status", c.get("status"))
    states = c.get("states")
    _require(isinstance(states, dict) and bool(states), f"{where}.states", "table raw value -> IEC state")
    assert isinstance(states, dict)
    for raw, state in states.items():
        _require(state in IEC_STATES, f"{where}.states.{raw}", f"one of {IEC_STATES}")
    setpoint = reg_ref("setpoint", c.get("setpoint"), writable=True)
    _require(regs[setpoint].unit == "A", f"{where}.setpoint", "setpoint register must scale to A")
    en = _keys(
        c.get("enable", {"kind": "zero_current"}), {"kind", "register", "on", "off"}, f"{where}.enable"
    )
    _require(en.get("kind") in ENABLE_KINDS, f"{where}.enable.kind", f"one of {ENABLE_KINDS}")
    enable = Enable(kind=en["kind"])
    if en["kind"] == "register":
        enable = Enable(
            kind="register",
            register=reg_ref("enable.register", en.get("register"), writable=True),
            on=int(en.get("on", 1)),
            off=int(en.get("off", 0)),
        )
    wd = _keys(
        c.get("watchdog"),
        {
            "kind",
            "timeout_s",
            "keepalive_s",
            "keepalive_fraction",
            "register",
            "value",
            "timeout_register",
            "timeout_unit",
            "failsafe_register",
            "verified",
        },
        f"{where}.watchdog",
    )
    kind = wd.get("kind")
    _require(kind in WATCHDOG_KINDS, f"{where}.watchdog.kind", f"one of {WATCHDOG_KINDS}")
    timeout = float(wd.get("timeout_s", 0))
    keepalive = float(wd.get("keepalive_s", 0))
    fraction = wd.get("keepalive_fraction", 0.5)
    _require(
        isinstance(fraction, int | float) and 0 < fraction <= 0.5,
        f"{where}.watchdog.keepalive_fraction",
        "0 < fraction <= 0.5",
    )
    if kind != "none":
        _require(
            keepalive > 0 or "timeout_register" in wd,
            f"{where}.watchdog.keepalive_s",
            "give keepalive_s, or a timeout_register to derive it from",
        )
        _require(
            timeout == 0 or keepalive <= timeout / 2,
            f"{where}.watchdog.keepalive_s",
            "at most half the timeout",
        )
    wd_reg = wd.get("register")
    if kind in ("life_bit", "write_timeout"):
        wd_reg = reg_ref("watchdog.register", wd_reg, writable=True)
    timeout_reg = wd.get("timeout_register")
    if timeout_reg is not None:
        timeout_reg = reg_ref("watchdog.timeout_register", timeout_reg)
    failsafe = wd.get("failsafe_register")
    if failsafe is not None:
        failsafe = reg_ref("watchdog.failsafe_register", failsafe)
    timeout_unit = wd.get("timeout_unit", "s")
    _require(timeout_unit in ("s", "ms"), f"{where}.watchdog.timeout_unit", "s or ms")
    watchdog = Watchdog(
        kind=str(kind),
        timeout_s=timeout,
        keepalive_s=keepalive,
        keepalive_fraction=float(fraction),
        register=wd_reg,
        value=int(wd.get("value", 1)),
        timeout_register=timeout_reg,
        timeout_unit=timeout_unit,
        failsafe_register=failsafe,
        verified=bool(wd.get("verified", True)),
    )
    plug = c.get("plug")
    plug_connected: tuple[int, ...] = ()
    if plug is not None:
        plug = reg_ref("plug", plug)
        pc = c.get("plug_connected")
        _require(
            isinstance(pc, list) and bool(pc) and all(isinstance(v, int) for v in pc),
            f"{where}.plug_connected",
            "list of raw values meaning 'vehicle connected'",
        )
        assert isinstance(pc, list)
        plug_connected = tuple(pc)
    lo, hi = float(c.get("min_current_a", 6.0)), float(c.get("max_current_a", 32.0))
    _require(0 < lo <= hi, f"{where}.min_current_a", "0 < min_current_a <= max_current_a")
    stride = c.get("connector_stride", 0)
    _require(isinstance(stride, int) and stride >= 0, f"{where}.connector_stride", "non-negative integer")
    return Charger(
        status=status,
        states=tuple((str(k), str(v)) for k, v in states.items()),
        setpoint=setpoint,
        enable=enable,
        watchdog=watchdog,
        min_current_a=lo,
        max_current_a=hi,
        plug=plug,
        plug_connected=plug_connected,
        connector_stride=stride,
    )


def parse_device(doc: dict[str, Any], source: str) -> DeviceModel:
    """Validate a parsed device file; DeviceMapError names the offending key."""
    unknown_top = set(doc) - _TOP_KEYS
    _require(not unknown_top, f"{source}", f"unknown tables {sorted(unknown_top)}")
    dev = doc.get("device")
    _require(isinstance(dev, dict), f"{source}: device", "missing [device] table")
    assert isinstance(dev, dict)
    unknown = set(dev) - _DEVICE_KEYS
    _require(not unknown, f"{source}: device", f"unknown keys {sorted(unknown)}")
    for key in ("name", "vendor", "model", "kind"):
        _require(isinstance(dev.get(key), str), f"{source}: device.{key}", "required string")
    kind = dev["kind"]
    _require(kind in ("meter", "charger"), f"{source}: device.kind", "meter or charger")
    max_span = dev.get("max_span", 125)
    _require(isinstance(max_span, int) and 1 <= max_span <= 125, f"{source}: device.max_span", "1..125")
    unit_id = dev.get("unit_id", 1)
    _require(isinstance(unit_id, int) and 0 <= unit_id <= 255, f"{source}: device.unit_id", "0..255")
    transports = _strings(dev.get("transports", ["tcp", "rtu"]), f"{source}: device.transports")
    _require(
        bool(transports) and set(transports) <= {"tcp", "rtu"},
        f"{source}: device.transports",
        "tcp and/or rtu",
    )
    raw_regs = doc.get("registers")
    _require(isinstance(raw_regs, list) and bool(raw_regs), f"{source}: registers", "need [[registers]]")
    assert isinstance(raw_regs, list)
    regs = [_register(r, kind, f"{source}: registers[{i}]") for i, r in enumerate(raw_regs)]
    names = [r.name for r in regs]
    _require(len(set(names)) == len(names), f"{source}: registers", "duplicate register names")
    by_name = {r.name: r for r in regs}
    canonical = METER_NAMES if kind == "meter" else CHARGER_NAMES
    for r in regs:
        where = f"{source}: registers.{r.name}"
        if r.scale_factor:
            continue
        _require(r.name in canonical, where, f"not a canonical {kind} name (see METER_NAMES/CHARGER_NAMES)")
        want = canonical[r.name]
        _require(not want or r.unit == want, f"{where}.unit", f"canonical unit is {want!r}")
        if r.scale_register is not None:
            sf = by_name.get(r.scale_register)
            _require(
                sf is not None and sf.scale_factor, f"{where}.scale_register", "names a scale_factor register"
            )
    _check_overlaps(regs, source)
    if kind == "meter":
        missing = [n for n in METER_REQUIRED if n not in by_name]
        _require(not missing, f"{source}: registers", f"a meter needs {missing}")
    serial = _serial(doc["serial"], source) if "serial" in doc else None
    charger = None
    if kind == "charger":
        _require("charger" in doc, f"{source}: charger", "a charger needs a [charger] table")
        charger = _charger(doc["charger"], by_name, source)
    else:
        _require("charger" not in doc, f"{source}: charger", "only for kind = 'charger'")
    sunspec = None
    if "sunspec" in doc:
        s = _keys(doc["sunspec"], {"models", "length"}, f"{source}: sunspec")
        models = s.get("models")
        _require(
            isinstance(models, list) and bool(models) and all(isinstance(m, int) for m in models),
            f"{source}: sunspec.models",
            "list of model ids",
        )
        length = s.get("length")
        _require(isinstance(length, int) and length > 0, f"{source}: sunspec.length", "the block's L")
        assert isinstance(models, list) and isinstance(length, int)
        for r in regs:
            _require(
                r.address >= 2 and r.address + r.count <= length + 2,
                f"{source}: registers.{r.name}.address",
                "a SunSpec offset inside the block (2 .. L+1)",
            )
        sunspec = SunSpecBlock(models=tuple(models), length=length)
    return DeviceModel(
        name=dev["name"],
        vendor=dev["vendor"],
        model=dev["model"],
        kind=kind,
        max_span=max_span,
        read_gaps=bool(dev.get("read_gaps", False)),
        turnaround_ms=int(dev.get("turnaround_ms", 0)),
        registers=tuple(regs),
        unit_id=unit_id,
        transports=transports,
        serial=serial,
        sources=_strings(dev.get("sources", []), f"{source}: device.sources"),
        notes=_strings(dev.get("notes", []), f"{source}: device.notes"),
        unverified=_strings(dev.get("unverified", []), f"{source}: device.unverified"),
        charger=charger,
        sunspec=sunspec,
    )


def _check_overlaps(regs: list[Register], source: str) -> None:
    """Two values may not share a register: a simulator could not serve both."""
    taken: dict[tuple[int, int], str] = {}
    for r in regs:
        for a in range(r.address, r.address + r.count):
            other = taken.setdefault((r.function, a), r.name)
            _require(other == r.name, f"{source}: registers.{r.name}", f"overlaps {other!r} at {a}")


def available() -> list[str]:
    """Names of every model in the library."""
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


def models_of(kind: str) -> list[str]:
    """Names of every model of one kind ("meter" or "charger")."""
    return [n for n in available() if load_device(n).kind == kind]


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


__all__ = [
    "CHARGER_NAMES",
    "METER_NAMES",
    "Charger",
    "DeviceMapError",
    "DeviceModel",
    "Enable",
    "Register",
    "SerialDefaults",
    "SunSpecBlock",
    "Watchdog",
    "available",
    "load_device",
    "models_of",
    "parse_device",
]

"""Every device file through the real factory, the schema's rules, and the codec's decoding rules."""

from __future__ import annotations

import math
import struct
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import decode, decode_block, decode_text, encode, iec_state, swapped_order
from drivers.library import (
    CHARGER_NAMES,
    METER_NAMES,
    METER_REQUIRED,
    TYPES,
    WORD_ORDERS,
    DeviceMapError,
    Register,
    available,
    load_device,
    parse_device,
)

ALL = available()
METERS = [n for n in ALL if load_device(n).kind == "meter"]
CHARGERS = [n for n in ALL if load_device(n).kind == "charger"]


def test_the_library_has_every_model_the_issue_asks_for() -> None:
    wanted = {
        "eastron_sdm630", "eastron_sdm120", "eastron_sdm72v2", "abb_b23", "carlo_gavazzi_em24",
        "carlo_gavazzi_em340", "janitza_umg604", "phoenix_eem_ma370", "siemens_pac2200",
        "sunspec_meter_int", "sunspec_meter_float", "alfen_ng9xx", "abb_terra_ac", "heidelberg_ec",
        "keba_p30", "keba_p40", "phoenix_charx_sec", "webasto_next",
    }  # fmt: skip
    assert wanted <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_file_loads_and_follows_the_schema(name: str) -> None:
    model = load_device(name)
    assert model.name == name and model.sources, "every file names its sources"
    canonical = METER_NAMES if model.kind == "meter" else CHARGER_NAMES
    for reg in model.registers:
        assert reg.scale_factor or reg.name in canonical, reg.name
        assert reg.count >= 1 and reg.address + reg.count <= 0x10000
        if reg.counter:
            assert reg.unit == "Wh" and reg.rate == "slow", reg.name
        if reg.unverified:
            assert len(reg.unverified) > 10, "say what is unsure"
    if model.serial is not None:
        assert model.serial.bits_per_char in (10, 11)


@pytest.mark.parametrize("name", METERS)
def test_meters_expose_canonical_names_in_canonical_units(name: str) -> None:
    model = load_device(name)
    names = model.names()
    assert set(METER_REQUIRED) <= names
    assert names & {"voltage_l1", "current_l1"} == {"voltage_l1", "current_l1"}
    for reg in model.registers:
        if not reg.scale_factor and METER_NAMES[reg.name]:
            assert reg.unit == METER_NAMES[reg.name]


@pytest.mark.parametrize("name", CHARGERS)
def test_chargers_define_status_setpoint_enable_and_watchdog_as_data(name: str) -> None:
    model = load_device(name)
    c = model.charger
    assert c is not None
    setpoint = model.register(c.setpoint)
    assert setpoint.writable and setpoint.unit == "A"
    assert {state for _, state in c.states} <= set("ABCDEF")
    if c.enable.kind == "register":
        assert c.enable.register is not None and model.register(c.enable.register).writable
    wd = c.watchdog
    if wd.kind != "none":
        assert wd.keepalive_s > 0 or wd.timeout_register is not None
    if not wd.verified:
        assert model.unverified, "an unverified watchdog is listed in the file's unverified points"
    for reg in model.registers:
        if not reg.readable:
            assert reg.writable


def test_files_carry_the_not_verified_points_of_devices_md() -> None:
    assert any("46" in u and "55" in u for u in load_device("siemens_pac2200").unverified)
    assert load_device("phoenix_eem_ma370").register("energy_import").unverified
    assert load_device("janitza_umg604").register("energy_export").unverified
    assert not load_device("abb_terra_ac").charger.watchdog.verified  # type: ignore[union-attr]
    assert load_device("heidelberg_ec").serial is not None
    assert load_device("heidelberg_ec").serial.parity == "E"  # type: ignore[union-attr]


def test_alfen_status_text_maps_to_iec_states() -> None:
    alfen = load_device("alfen_ng9xx")
    reg = alfen.register("status")
    words = encode(reg, "C2")
    assert decode_text(reg, words) == "C2"
    assert iec_state(alfen, {"status": "C2"}) == "C"
    assert iec_state(alfen, {"status": None}) is None


def test_packed_and_plug_status_map_to_iec_states() -> None:
    abb = load_device("abb_terra_ac")
    reg = abb.register("status")
    # byte[2] & 0x7F of the u32: 0x00 0x00 0x04 0x00 -> 4 (C2); high bits of other bytes ignored.
    assert decode(reg, [0xFFFF, 0x8400]) == 4.0
    assert iec_state(abb, {"status": 4.0}) == "C"
    keba = load_device("keba_p30")
    assert iec_state(keba, {"status": 3.0, "plug": 7.0}) == "C"
    assert iec_state(keba, {"status": 3.0, "plug": 1.0}) == "A"  # cable only at the station
    charx = load_device("phoenix_charx_sec")
    assert iec_state(charx, {"status": decode(charx.register("status"), [ord("B") << 8 | 0x31])}) == "B"


# --- schema rejections --------------------------------------------------------------------------


def _doc(**reg: Any) -> dict[str, Any]:
    base = {"name": "power", "address": 0, "type": "f32", "unit": "W"}
    base.update(reg)
    return {
        "device": {"name": "x", "vendor": "v", "model": "m", "kind": "meter"},
        "registers": [base, {"name": "energy_import", "address": 10, "type": "f32", "unit": "Wh"}],
    }


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"typo": 1}, "unknown keys"),
        ({"name": "Leistung"}, "canonical"),
        ({"unit": "kW"}, "canonical unit"),
        ({"write": 6}, "function 4 is written"),
        ({"function": 3, "write": 6}, "FC6 writes one register"),
        ({"word_order": "ACBD"}, "word_order"),
        ({"sentinels": [2**40]}, "must fit"),
        ({"address": 10}, "overlaps"),
        ({"mask": 3}, "only for integer types"),
        ({"readable": False}, "must be writable"),
    ],
)
def test_schema_rejects_mistakes_and_names_the_key(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(DeviceMapError, match=complaint):
        parse_device(_doc(**change), "t.toml")


def test_a_charger_without_a_watchdog_definition_is_rejected() -> None:
    text = (
        '[device]\nname="c"\nvendor="v"\nmodel="m"\nkind="charger"\n'
        '[[registers]]\nname="status"\naddress=0\ntype="u16"\n'
        '[[registers]]\nname="current_limit"\naddress=1\ntype="u16"\nunit="A"\nwrite=6\n'
        '[charger]\nstatus="status"\nsetpoint="current_limit"\nstates={ "0" = "A" }\n'
    )
    with pytest.raises(DeviceMapError, match="watchdog"):
        parse_device(tomllib.loads(text), "c.toml")
    with pytest.raises(DeviceMapError, match="half the timeout"):
        parse_device(
            tomllib.loads(
                text + '[charger.watchdog]\nkind="rewrite_setpoint"\ntimeout_s=10\nkeepalive_s=8\n'
            ),
            "c.toml",
        )


# --- codec: every type x word order -----------------------------------------------------------------

_RANGES = {
    "u16": (0, 2**16 - 1),
    "s16": (-(2**15), 2**15 - 1),
    "u32": (0, 2**32 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "u64": (0, 2**53),
    "s64": (-(2**53), 2**53),
}


def _reg(typ: str, order: str = "ABCD", **kw: Any) -> Register:
    return Register("power", 0, 4, typ, order, kw.pop("scale", 1.0), "W", "fast", False, (), **kw)


@pytest.mark.parametrize("order", WORD_ORDERS)
@pytest.mark.parametrize("typ", sorted(_RANGES))
@given(data=st.data())
def test_integer_types_round_trip_in_every_word_order(typ: str, order: str, data: st.DataObject) -> None:
    lo, hi = _RANGES[typ]
    value = data.draw(st.integers(lo, hi))
    reg = _reg(typ, order)
    words = encode(reg, float(value))
    assert len(words) == TYPES[typ] and all(0 <= w <= 0xFFFF for w in words)
    assert decode(reg, words) == float(value)


@pytest.mark.parametrize("order", WORD_ORDERS)
@pytest.mark.parametrize("typ", ["f32", "f64"])
@given(value=st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float_types_round_trip_in_every_word_order(typ: str, order: str, value: float) -> None:
    reg = _reg(typ, order)
    assert decode(reg, encode(reg, value)) == value


def test_word_orders_are_the_documented_byte_layouts() -> None:
    # 0x11223344 as ABCD / CDAB / BADC / DCBA words.
    expected = {
        "ABCD": [0x1122, 0x3344],
        "CDAB": [0x3344, 0x1122],
        "BADC": [0x2211, 0x4433],
        "DCBA": [0x4433, 0x2211],
    }
    for order, words in expected.items():
        assert encode(_reg("u32", order), float(0x11223344)) == words
        assert swapped_order(swapped_order(order)) == order
    # 64-bit CDAB is word-reversed (pymodbus word_order="little").
    assert encode(_reg("u64", "CDAB"), float(0x0001000200030004)) == [4, 3, 2, 1]


@pytest.mark.parametrize("order", WORD_ORDERS)
@pytest.mark.parametrize("typ", ["f32", "f64"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_decode_to_none_never_zero(typ: str, order: str, bad: float) -> None:
    reg = _reg(typ, order)
    assert decode(reg, encode(reg, bad)) is None


@pytest.mark.parametrize(
    ("typ", "sentinel", "words"),
    [
        ("u32", "all_ones", [0xFFFF, 0xFFFF]),
        ("s32", "signed_max", [0x7FFF, 0xFFFF]),
        ("u64", "all_ones", [0xFFFF] * 4),
        ("s16", "signed_min", [0x8000]),
        ("u16", "all_ones", [0xFFFF]),
    ],
)
def test_sentinels_decode_to_none(typ: str, sentinel: str, words: list[int]) -> None:
    doc = _doc(type=typ, sentinels=[sentinel])
    reg = parse_device(doc, "t.toml").register("power")
    assert decode(reg, words) is None
    assert decode(reg, [0] * len(words)) == 0.0  # a real zero stays zero


def test_abb_missing_values_are_none() -> None:
    abb = load_device("abb_b23")
    assert decode(abb.register("energy_import"), [0xFFFF] * 4) is None
    assert decode(abb.register("power"), [0x7FFF, 0xFFFF]) is None
    assert decode(abb.register("energy_import"), [0, 0, 0, 123]) == pytest.approx(1230.0)


def test_decode_block_applies_sunspec_scale_factors() -> None:
    m = load_device("sunspec_meter_int")
    regs = [m.register(n) for n in ("current_l1", "current_l2", "current_l3", "a_sf", "power", "w_sf")]
    words = [0] * 23
    words[3], words[4], words[5], words[6] = 1234, 0x8000, 0x8000, (-2) & 0xFFFF  # phase B/C missing
    words[18], words[22] = 7400, 0x8000  # power's scale factor not implemented
    got = decode_block(regs, 0, words)
    assert got == {"current_l1": pytest.approx(12.34), "current_l2": None, "current_l3": None, "power": None}
    assert "a_sf" not in got
    with pytest.raises(ValueError, match="not in this block"):
        decode_block([m.register("power")], 18, [7400])


def test_decode_block_reads_a_whole_coalesced_sdm630_block() -> None:
    m = load_device("eastron_sdm630")
    regs = [r for r in m.registers if r.function == 4 and r.address < 0x4C]
    words = [0] * 0x4C
    words[0:2] = encode(m.register("voltage_l1"), 230.5)
    words[0x48:0x4A] = encode(m.register("energy_import"), 1_234_000.0)
    words[0x34:0x36] = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    got = decode_block(regs, 0, words)
    assert got["voltage_l1"] == pytest.approx(230.5)
    assert got["energy_import"] == pytest.approx(1_234_000.0)
    assert got["power"] is None and got["current_l1"] == 0.0


def test_counters_know_where_integer_registers_wrap() -> None:
    sunspec = load_device("sunspec_meter_int").register("energy_import")
    assert sunspec.rollover == 2.0**32
    assert load_device("eastron_sdm630").register("energy_import").rollover is None

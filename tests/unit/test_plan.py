"""Read planning: coalesced per device model, limits respected, far fewer requests than values."""

from __future__ import annotations

import dataclasses

from drivers.library import DeviceModel, Register, available, load_device
from drivers.plan import cached_plan, plan_reads


def reg(
    name: str, address: int, *, fc: int = 4, typ: str = "f32", rate: str = "fast", **kw: object
) -> Register:
    return Register(
        name=name,
        address=address,
        function=fc,
        type=typ,
        word_order="ABCD",
        scale=1.0,
        unit="",
        rate=rate,
        counter=False,
        sentinels=(),
        **kw,  # type: ignore[arg-type]
    )


def model(*regs: Register, max_span: int = 125, read_gaps: bool = True) -> DeviceModel:
    return DeviceModel(
        name="t",
        vendor="v",
        model="m",
        kind="meter",
        max_span=max_span,
        read_gaps=read_gaps,
        turnaround_ms=0,
        registers=regs,
    )


def covered(blocks: tuple[object, ...]) -> set[str]:
    return {r.name for b in blocks for r in b.registers}  # type: ignore[attr-defined]


def test_sdm630_core_values_take_few_requests() -> None:
    sdm = load_device("eastron_sdm630")
    wanted = {
        "voltage_l1",
        "voltage_l2",
        "voltage_l3",
        "current_l1",
        "current_l2",
        "current_l3",
        "power_l1",
        "power_l2",
        "power_l3",
        "frequency",
        "energy_import",
        "energy_export",
    }
    core = dataclasses.replace(sdm, registers=tuple(r for r in sdm.registers if r.name in wanted))
    plan = plan_reads(core, frozenset({"fast", "slow"}))
    assert covered(plan) == wanted
    assert len(plan) == 2  # 0x00 x18 and 0x46 x6, versus 12 one-per-value requests
    assert [(b.address, b.count) for b in plan] == [(0x00, 18), (0x46, 6)]


def test_gaps_are_read_only_when_the_model_allows() -> None:
    regs = (reg("a", 0), reg("b", 4))
    assert len(plan_reads(model(*regs), frozenset({"fast"}))) == 1
    assert len(plan_reads(model(*regs, read_gaps=False), frozenset({"fast"}))) == 2


def test_max_span_and_function_codes_split_blocks() -> None:
    regs = (reg("a", 0), reg("b", 2), reg("c", 4), reg("h", 6, fc=3))
    plan = plan_reads(model(*regs, max_span=4), frozenset({"fast"}))
    assert [(b.function, b.address, b.count) for b in plan] == [(3, 6, 2), (4, 0, 4), (4, 4, 2)]
    assert all(b.count <= 4 for b in plan)


def test_rates_select_registers_and_scale_factors_ride_along() -> None:
    regs = (
        reg("w", 0, typ="s16", scale_register="w_sf"),
        reg("w_sf", 5, typ="s16", rate="once", scale_factor=True),
        reg("e", 10, rate="slow"),
        reg("cmd", 1, typ="u16", readable=False, write=6),
    )
    plan = plan_reads(model(*regs), frozenset({"fast"}))
    assert covered(plan) == {"w", "w_sf"}


def test_every_library_model_plans_within_its_limits() -> None:
    for name in available():
        m = load_device(name)
        plan = cached_plan(m, frozenset({"fast", "slow", "once"}))
        assert all(1 <= b.count <= m.max_span for b in plan), name
        readable = {r.name for r in m.registers if r.readable}
        assert readable <= covered(plan), name
        assert cached_plan(m, frozenset({"fast", "slow", "once"})) is plan  # planned once per model

"""SunSpec discovery: find "SunS", walk the model chain, and place a meter template at its block."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.codec import decode_text
from drivers.library import DeviceModel, Register, load_device

MARKER = (0x5375, 0x6E53)  # "SunS"
BASES = (40000, 0, 50000)  # where devices put the marker, most common first
END_ID = 0xFFFF
COMMON_ID = 1
TEMPLATES = {
    **dict.fromkeys((201, 202, 203, 204), "sunspec_meter_int"),
    **dict.fromkeys((211, 212, 213, 214), "sunspec_meter_float"),
}
MAX_BLOCKS = 64  # a chain longer than this is garbage, not a device

# Reads `count` holding registers at `address`; returns None if the device refuses (exception),
# raises on timeouts and transport errors (those are not "no SunSpec here").
Reader = Callable[[int, int], Awaitable[list[int] | None]]


class SunSpecError(Exception):
    """No SunSpec marker, a broken chain, or no supported meter model on the device."""


@dataclass(frozen=True, slots=True)
class Block:
    """One model block: its id, the address of its ID register, and its length L."""

    model_id: int
    address: int
    length: int


@dataclass(frozen=True, slots=True)
class Chain:
    """The discovered chain: the marker's base address and the blocks in order."""

    base: int
    blocks: tuple[Block, ...]

    def find(self, *model_ids: int) -> Block | None:
        """The first block of any of these models."""
        return next((b for b in self.blocks if b.model_id in model_ids), None)


async def discover(read: Reader, bases: tuple[int, ...] = BASES) -> Chain:
    """Find the "SunS" marker and walk the chain by ID and L until 0xFFFF; never guess addresses."""
    for base in bases:
        head = await read(base, 2)
        if head is None or tuple(head) != MARKER:
            continue
        blocks: list[Block] = []
        addr = base + 2
        for _ in range(MAX_BLOCKS):
            hdr = await read(addr, 2)
            if hdr is None or len(hdr) != 2:
                raise SunSpecError(f"chain broken at {addr} (after {len(blocks)} blocks)")
            model_id, length = hdr
            if model_id == END_ID:
                return Chain(base, tuple(blocks))
            blocks.append(Block(model_id, addr, length))
            addr += 2 + length
            if addr > 0xFFFF:
                break
        raise SunSpecError(f"no end marker in the chain from {base}")
    raise SunSpecError(f"no SunSpec marker at {', '.join(map(str, bases))}")


def place(template: DeviceModel, block: Block) -> DeviceModel:
    """The template with absolute addresses for this block (a model the poller can plan)."""
    spec = template.sunspec
    if spec is None:
        raise SunSpecError(f"{template.name} is not a SunSpec template")
    if block.model_id not in spec.models:
        raise SunSpecError(f"model {block.model_id} does not fit template {template.name}")
    too_far = [r.name for r in template.registers if r.address + r.count > block.length + 2]
    if too_far:
        raise SunSpecError(f"block {block.model_id} (L={block.length}) is too short for {too_far}")
    regs: tuple[Register, ...] = tuple(
        dataclasses.replace(r, address=block.address + r.address) for r in template.registers
    )
    return dataclasses.replace(template, registers=regs, sunspec=None)


def meter_model(chain: Chain) -> DeviceModel:
    """The first supported meter block of the chain, as a placed device model."""
    block = chain.find(*TEMPLATES)
    if block is None:
        found = [b.model_id for b in chain.blocks]
        raise SunSpecError(f"no SunSpec meter model (201-204, 211-214) in chain {found}")
    return place(load_device(TEMPLATES[block.model_id]), block)


# Common model (1) offsets from its ID register: Mn 2..17, Md 18..33, Vr 42..49, SN 50..65.
_COMMON_TEXT = {"manufacturer": (2, 16), "model_name": (18, 16), "firmware": (42, 8), "serial": (50, 16)}


async def identity(read: Reader, chain: Chain) -> dict[str, str | None]:
    """Manufacturer, model, firmware version and serial number from the common model."""
    block = chain.find(COMMON_ID)
    if block is None:
        raise SunSpecError("no common model (1) in the chain")
    words = await read(block.address, 66)
    if words is None or len(words) != 66:
        raise SunSpecError("common model unreadable")
    out: dict[str, str | None] = {}
    for name, (off, n) in _COMMON_TEXT.items():
        reg = Register(name, block.address + off, 3, "str", "ABCD", 1.0, "", "once", False, (), words=n)
        out[name] = decode_text(reg, words[off : off + n])
    return out


def pymodbus_reader(client: object, device_id: int) -> Reader:
    """A Reader over a connected pymodbus async client (exception responses read as None)."""

    async def read(address: int, count: int) -> list[int] | None:
        rr = await client.read_holding_registers(address, count=count, device_id=device_id)  # type: ignore[attr-defined]
        if rr.isError():
            return None
        return list(rr.registers)

    return read

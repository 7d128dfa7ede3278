"""Acceptance: energy you can defend, a time-of-day tariff, alarms, credit CDRs and price display.

Real parts: Mosquitto, the backend simulator with its contract checker (OCPI CDR schema), the 1.6J
and 2.0.1 charge point simulators over WebSockets, Modbus TCP meter simulators, SQLite on disk, the
web API over HTTP. Time: the site's clock is a ManualClock the test moves (wall and monotonic
together), so a session can cross a tariff's 14:00 boundary without waiting; the chargers stamp
their messages with the same clock. The clock's NTP state comes from a settable ClockSync: this
machine cannot un-synchronize (or synchronize) its kernel clock.
"""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from controller.app import SiteController
from controller.core.clocksync import ClockState
from controller.core.config import validate
from controller.core.sessions import session_id_of
from hil.broker import Broker
from hil.sim.backend import BackendSimulator, Received
from hil.sim.chargepoint import ChargePointSimulator, ChargePointSimulator201
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimCharger, SimMeter, SiteSpec, render
from tests.api import api_client

ROOT = "siteedge/v1/NL/SED/DEMO01"
OCPI = Path(__file__).parents[2].parent / "shared" / "ocpi-schemas" / "2.2.1"
TOU_ID = "TOU-AC"
# Peak 14:00-22:00 local (Europe/Amsterdam, UTC+2 in June): 0.40/kWh; otherwise 0.25/kWh; 0.50 start fee.
TOU: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "SED",
    "id": TOU_ID,
    "currency": "EUR",
    "type": "AD_HOC_PAYMENT",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.40, "vat": 21.0, "step_size": 1}],
            "restrictions": {"start_time": "14:00", "end_time": "22:00"},
        },
        {
            "price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 21.0, "step_size": 0},
                {"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1},
            ]
        },
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
FLAT_FEE, PEAK, OFF_PEAK, VAT = Decimal("0.50"), Decimal("0.40"), Decimal("0.25"), Decimal("1.21")
M1, M2 = "m-CP-1-1", "m-CP-2-1"


def hand_cost(off_peak_kwh: str, peak_kwh: str) -> dict[str, float]:
    """The start fee plus each kWh at its time-of-day price; VAT 21 % on everything; 4 decimals."""
    excl = FLAT_FEE + Decimal(off_peak_kwh) * OFF_PEAK + Decimal(peak_kwh) * PEAK
    incl = (excl * VAT).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return {"excl_vat": float(excl), "incl_vat": float(incl)}


class ManualClock:
    """The site's clock, moved by the test: wall time and monotonic time advance together."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._offset = 0.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        # Real monotonic plus every advance: schedulers keep running, elapsed time stays consistent.
        return time.monotonic() + self._offset

    def advance(self, minutes: float) -> None:
        self.at += timedelta(minutes=minutes)
        self._offset += minutes * 60.0


@dataclass
class SettableClockSync:
    """The kernel's NTP state as the test wants it (a real clock cannot be un-synchronized here)."""

    synchronized: bool | None = True

    def state(self) -> ClockState:
        return ClockState(self.synchronized, "set by the test")


@dataclass
class Site:
    """A running controller with its clock, clock-sync state, meters and chargers."""

    ctl: SiteController
    clock: ManualClock
    sync: SettableClockSync
    meters: dict[str, MeterSimulator]
    chargers: list[Any] = field(default_factory=list)

    async def charger(self, cls: type[Any], cp_id: str) -> Any:
        """A connected, booted simulator whose message timestamps come from the site's clock."""
        cp = cls(cp_id, f"ws://127.0.0.1:{self.ctl.ocpp_port}/ocpp", wall_clock=self.clock.now)
        await cp.connect()
        self.chargers.append(cp)
        assert await cp.boot() == "Accepted"
        return cp

    async def reading(self, meter_id: str, wh: float) -> None:
        """Wait until the controller read `wh` from the meter at the clock's current time."""
        m = self.ctl.site.meters[meter_id]
        await until(lambda: m.read_at == self.clock.now() and m.values.get("energy_import") == wh)

    async def step(self, meter_id: str, minutes: float, wh: float) -> None:
        """Time passes and the meter counts `wh` by then, as one move the controller cannot split.

        Done right after a poll completed (the next is a poll interval away): a reply in flight
        while the clock moves would show the old register at the new time, and the counter's
        plausibility check would then reject the jump as too fast.
        """
        m = self.ctl.site.meters[meter_id]
        seen = m.read_mono
        await until(lambda: m.read_mono != seen, step=0.002)
        self.clock.advance(minutes)
        await self.meters[meter_id].set_values({"energy_import": wh})
        await self.reading(meter_id, wh)


async def until(cond: Callable[[], Any], within: float = 10.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition did not hold within {within} s")


def cdr_validator() -> Draft7Validator:
    schema = json.loads((OCPI / "ocpi.2_2_1.cdr.json").read_text())
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def cdrs_of(backend: BackendSimulator, session_id: str) -> list[dict[str, Any]]:
    """Every CDR of a session the backend received, in arrival order."""
    return [
        m.payload["data"]
        for m in backend.messages(f"{ROOT}/cdrs/")
        if m.payload["data"]["session_id"] == session_id
    ]


def is_cdr(session_id: str) -> Callable[[Received], bool]:
    return lambda m: m.topic.startswith(f"{ROOT}/cdrs/") and m.payload["data"]["session_id"] == session_id


@pytest.fixture
def backend(broker: Broker) -> Any:
    with BackendSimulator(broker.url, ROOT) as b:
        yield b
    # Every CDR (credit CDRs included) and Session went through the OCPI schema check.
    assert b.contract.violations == []
    assert dict(b.contract.gaps) == {}, b.contract.gap_evidence


@pytest.fixture
async def site(site_spec: SiteSpec, backend: BackendSimulator) -> AsyncIterator[Callable[..., Any]]:
    """Factory: CP-1 (1.6J) and CP-2 (2.0.1), each EVSE with a bound Modbus meter, the TOU tariff."""
    made: list[Site] = []
    sims: list[MeterSimulator] = []

    async def start(at: datetime, synchronized: bool | None = True) -> Site:
        meters = {
            M1: await MeterSimulator("eastron_sdm630", values={"energy_import": 1_000_000.0}).start(),
            M2: await MeterSimulator("eastron_sdm630", values={"energy_import": 2_000_000.0}).start(),
        }
        sims.extend(meters.values())
        site_spec.chargers = [
            SimCharger("CP-1", "1.6", 1, price_display="datatransfer:siteedge-hil:DisplayPrice"),
            SimCharger("CP-2", "2.0.1", 1),
        ]
        site_spec.meters = [
            SimMeter(M1, meters[M1].port, "evse:CP-1-1"),
            SimMeter(M2, meters[M2].port, "evse:CP-2-1"),
        ]
        text = render(site_spec).replace("[site]\n", f'[site]\ndefault_tariff_id = "{TOU_ID}"\n', 1)
        clock, sync = ManualClock(at), SettableClockSync(synchronized)
        ctl = SiteController(validate(tomllib.loads(text)), clock, clock_sync=sync)
        await ctl.start()
        s = Site(ctl, clock, sync, meters)
        made.append(s)
        backend.publish(f"tariffs/{TOU_ID}", TOU, retain=True)
        await until(lambda: TOU_ID in ctl.tariffs.known)
        await s.reading(M1, 1_000_000.0)
        await s.reading(M2, 2_000_000.0)
        return s

    yield start
    for s in made:
        for cp in s.chargers:
            await cp.close()
        await s.ctl.stop()
    for sim in sims:
        await sim.stop()


async def settlement_of(s: Site, session_id: str) -> dict[str, Any]:
    async with api_client(s.ctl) as http:
        reply = await http.get(f"/api/v1/sessions/{session_id}/settlement")
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


async def test_cdrs_bill_the_meter_across_a_time_of_day_switch_and_match_a_hand_calculation(
    site: Callable[..., Any], backend: BackendSimulator
) -> None:
    # 13:50 local: ten minutes off-peak, then the 14:00 peak starts.
    s: Site = await site(datetime(2026, 6, 1, 11, 50, tzinfo=UTC))
    cp16 = await s.charger(ChargePointSimulator, "CP-1")
    cp201 = await s.charger(ChargePointSimulator201, "CP-2")

    # Session A on the 1.6 charger, 13:50-14:20: meter +3.0 kWh by 14:05, +2.5 kWh by 14:20.
    tx16 = await cp16.start_transaction(1, "TAG16", 5000.0)
    sid16 = session_id_of(f"CP-1/{tx16}")
    await s.step(M1, 15, 1_003_000.0)
    await cp16.meter_values(1, 8000.0, 12000.0)
    await s.step(M1, 15, 1_005_500.0)
    await cp16.stop_transaction(1, 10510.0)  # the charger counts 5.51 kWh: within tolerance
    cdr16 = (await backend.wait_for_async(is_cdr(sid16))).payload["data"]

    # Session B on the 2.0.1 charger, 21:50-22:20: the peak ends at 22:00.
    s.clock.advance(7.5 * 60)
    await s.reading(M2, 2_000_000.0)
    tx201 = await cp201.start_transaction(1, "TAG201", 80000.0)
    sid201 = session_id_of(f"CP-2/{tx201}")
    await s.step(M2, 15, 2_001_500.0)
    await cp201.meter_values(1, 81500.0, 6000.0)
    await s.step(M2, 15, 2_002_250.0)
    await cp201.stop_transaction(1, 82255.0)
    cdr201 = (await backend.wait_for_async(is_cdr(sid201))).payload["data"]

    for cdr in (cdr16, cdr201):
        assert list(cdr_validator().iter_errors(cdr)) == []
        assert "credit" not in cdr and cdr.get("remark") is None  # nothing to warn about
        assert cdr["tariffs"] == [TOU] and cdr["total_time"] == 0.5
    # Energy: the meter's delta, not the charger's (5.51 and 2.255 kWh).
    assert cdr16["total_energy"] == 5.5 and cdr201["total_energy"] == 2.25
    # A: 13:50-14:05 3.0 kWh spread evenly -> 2.0 off-peak (13:50-14:00) + 1.0 peak; 14:05-14:20 2.5 peak.
    assert cdr16["total_cost"] == hand_cost(off_peak_kwh="2.0", peak_kwh="3.5")  # 2.40 / 2.9040
    # B: 21:50-22:05 1.5 kWh -> 1.0 peak (21:50-22:00) + 0.5 off-peak; 22:05-22:20 0.75 off-peak.
    assert cdr201["total_cost"] == hand_cost(off_peak_kwh="1.25", peak_kwh="1.0")  # 1.2125 / 1.4671
    assert cdr16["start_date_time"] == "2026-06-01T11:50:00.000Z"
    assert cdr16["end_date_time"] == "2026-06-01T12:20:00.000Z"
    # A new period starts at the tariff switch: 12:00Z is 14:00 local.
    assert "2026-06-01T12:00:00Z" in [p["start_date_time"] for p in cdr16["charging_periods"]]

    a = await settlement_of(s, sid16)
    assert a["energy_source"] == "meter" and a["meter_id"] == M1
    assert (a["charger_kwh"], a["meter_kwh"], a["alarm"], a["flags"]) == (5.51, 5.5, False, [])
    assert a["duration_source"] == "monotonic" and 1800 <= a["duration_s"] < 1830
    assert [c["id"] for c in a["cdrs"]] == [cdr16["id"]]


async def test_a_disagreeing_meter_raises_an_alarm_and_a_correction_sends_credit_then_new_cdr(
    site: Callable[..., Any], backend: BackendSimulator
) -> None:
    s: Site = await site(datetime(2026, 6, 2, 7, 0, tzinfo=UTC))  # 09:00 local: off-peak all along
    cp = await s.charger(ChargePointSimulator, "CP-1")
    tx = await cp.start_transaction(1, "TAG-X", 0.0)
    sid = session_id_of(f"CP-1/{tx}")
    await s.step(M1, 20, 1_004_000.0)  # the meter counts 4.0 kWh ...
    await cp.stop_transaction(1, 5000.0)  # ... the charger 5.0 kWh: 1 kWh apart, 0.1 kWh allowed
    original = (await backend.wait_for_async(is_cdr(sid))).payload["data"]
    assert original["total_energy"] == 4.0  # the meter is the configured source of truth
    assert original["total_cost"] == hand_cost(off_peak_kwh="4.0", peak_kwh="0")
    assert "charger 5.000 kWh and meter 4.000 kWh differ by 1.000 kWh" in original["remark"]

    detail = await settlement_of(s, sid)
    assert detail["alarm"] is True and [f["kind"] for f in detail["flags"]] == ["energy_mismatch"]
    async with api_client(s.ctl) as http:
        alarms = (await http.get("/api/v1/settlement/alarms")).json()
        assert [a["session_id"] for a in alarms] == [sid]

        # Refused corrections say why and change nothing.
        bad = {
            "/api/v1/sessions/nope/correct": ({"reason": "x", "energy_wh": 1.0}, 404),
            f"/api/v1/sessions/{sid}/correct": ({"energy_wh": 1.0}, 422),
        }
        for url, (body, status) in bad.items():
            reply = await http.post(url, json=body)
            assert reply.status_code == status and reply.json()["detail"]
        for body in (
            {"reason": "r", "energy_wh": -5},
            {"reason": "r", "tariff_id": "NO-SUCH"},
            {"reason": "r", "energy_source": "moon"},
            {"reason": "r"},
            {"reason": "r", "energy_wh": 1, "surprise": 1},
        ):
            reply = await http.post(f"/api/v1/sessions/{sid}/correct", json=body)
            assert reply.status_code == 422, (body, reply.text)
        reply = await http.post(f"/api/v1/sessions/{sid}/correct", content=b"{not json")
        assert reply.status_code == 422

        # The meter's CT sat on the wrong cable: bill the charger's register instead.
        reason = "meter CT on the wrong cable; the charger's MID register is right"
        reply = await http.post(
            f"/api/v1/sessions/{sid}/correct", json={"reason": reason, "energy_source": "charger"}
        )
        assert reply.status_code == 200, reply.text
        outcome = reply.json()
    await until(lambda: len(cdrs_of(backend, sid)) == 3)
    first, credit, fixed = cdrs_of(backend, sid)  # arrival order: original, credit, replacement
    assert first == original
    assert credit == {
        **original,
        **{k: credit[k] for k in ("id", "last_updated")},
        "credit": True,
        "credit_reference_id": original["id"],
        "total_cost": {"excl_vat": -1.5, "incl_vat": -1.815},
    }
    assert credit["id"] == f"{original['id']}-C" and len(credit["id"]) <= 39
    assert fixed["id"] not in (original["id"], credit["id"]) and "credit" not in fixed
    assert fixed["total_energy"] == 5.0 and fixed["total_cost"] == hand_cost(off_peak_kwh="5.0", peak_kwh="0")
    assert fixed["remark"].startswith(f"corrects CDR {original['id']}: {reason}")
    assert outcome == {"credit": credit, "cdr": fixed}
    for cdr in (credit, fixed):
        errors = [e for e in cdr_validator().iter_errors(cdr) if "total_cost" not in list(e.absolute_path)]
        assert errors == []

    # A second correction credits the replacement, never the original again.
    async with api_client(s.ctl) as http:
        reply = await http.post(
            f"/api/v1/sessions/{sid}/correct", json={"reason": "agreed 4.5", "energy_wh": 4500}
        )
        assert reply.status_code == 200
    await until(lambda: len(cdrs_of(backend, sid)) == 5)
    credit2, fixed2 = cdrs_of(backend, sid)[3:]
    assert credit2["credit_reference_id"] == fixed["id"] and credit2["total_cost"]["excl_vat"] == -1.75
    assert fixed2["total_energy"] == 4.5
    assert [c["id"] for c in (await settlement_of(s, sid))["cdrs"]] == [
        c["id"] for c in (original, credit, fixed, credit2, fixed2)
    ]


async def test_meter_gaps_are_marked_on_the_session_and_in_the_cdr(
    site: Callable[..., Any], backend: BackendSimulator
) -> None:
    s: Site = await site(datetime(2026, 6, 3, 6, 0, tzinfo=UTC))
    cp = await s.charger(ChargePointSimulator201, "CP-2")
    tx = await cp.start_transaction(1, "TAG-G", 0.0)
    sid = session_id_of(f"CP-2/{tx}")
    await s.step(M2, 10, 2_002_000.0)
    s.meters[M2].go_silent()  # a hung meter: polls time out
    for _ in range(200):
        open_gaps = [f for f in (await settlement_of(s, sid))["flags"] if f["kind"] == "meter_gap"]
        if open_gaps:
            break
        await asyncio.sleep(0.05)
    assert open_gaps and open_gaps[0]["until"] is None  # visible while it lasts
    # Five minutes pass unseen; the meter comes back having counted 1 kWh meanwhile.
    s.clock.advance(5)
    await s.meters[M2].set_values({"energy_import": 2_003_000.0})
    s.meters[M2].recover()
    await s.reading(M2, 2_003_000.0)
    await s.step(M2, 5, 2_003_500.0)
    await cp.stop_transaction(1, 3510.0)
    cdr = (await backend.wait_for_async(is_cdr(sid))).payload["data"]
    assert cdr["total_energy"] == 3.5  # the counter difference: nothing lost, nothing invented
    (gap,) = [f for f in (await settlement_of(s, sid))["flags"] if f["kind"] == "meter_gap"]
    assert gap["at"] == "2026-06-03T06:10:00.000Z"  # from the last good reading ...
    assert gap["until"] == "2026-06-03T06:15:00.000Z"  # ... to the first one after it
    assert gap["detail"].startswith("meter data gap: ")
    assert "meter data gap 06:10:00-06:15:00 UTC" in cdr["remark"]


async def test_a_meter_counter_reset_is_a_marked_gap_and_costs_no_energy(
    site: Callable[..., Any], backend: BackendSimulator
) -> None:
    s: Site = await site(datetime(2026, 6, 3, 8, 0, tzinfo=UTC))
    cp = await s.charger(ChargePointSimulator, "CP-1")
    tx = await cp.start_transaction(1, "TAG-R", 0.0)
    sid = session_id_of(f"CP-1/{tx}")
    await s.step(M1, 10, 1_002_000.0)
    await s.meters[M1].reset_counters()  # a power cycle: the register restarts at 0
    await until(lambda: "energy_import" in s.ctl.site.meters[M1].problems)  # the zero is refused
    # Five minutes later the meter has counted 1 kWh from zero; the driver confirms and re-bases.
    s.clock.advance(5)
    await s.meters[M1].set_values({"energy_import": 1_003_000.0})  # shown as 1.0 kWh after the reset
    await s.reading(M1, 1_003_000.0)
    await s.step(M1, 5, 1_003_500.0)
    await cp.stop_transaction(1, 3500.0)
    cdr = (await backend.wait_for_async(is_cdr(sid))).payload["data"]
    assert cdr["total_energy"] == 3.5 and "meter data gap 08:10:00-08:15:00 UTC" in cdr["remark"]
    (gap,) = (await settlement_of(s, sid))["flags"]
    assert gap["kind"] == "meter_gap" and "zero reading ignored" in gap["detail"]


async def test_sessions_while_the_clock_is_unsynchronized_are_flagged(
    site: Callable[..., Any], backend: BackendSimulator
) -> None:
    s: Site = await site(datetime(2026, 6, 4, 6, 0, tzinfo=UTC))
    cp = await s.charger(ChargePointSimulator, "CP-1")
    tx = await cp.start_transaction(1, "TAG-C", 0.0)
    sid = session_id_of(f"CP-1/{tx}")
    await s.step(M1, 5, 1_000_500.0)
    await cp.meter_values(1, 500.0, 6000.0)
    s.sync.synchronized = False  # e.g. NTP lost after a reboot without RTC
    await s.step(M1, 5, 1_001_000.0)
    await cp.meter_values(1, 1000.0, 6000.0)
    await cp.stop_transaction(1, 1000.0)
    cdr = (await backend.wait_for_async(is_cdr(sid))).payload["data"]
    assert "system clock not synchronized" in cdr["remark"]
    kinds = [f["kind"] for f in (await settlement_of(s, sid))["flags"]]
    assert kinds == ["clock_unsynced"]

    # A session entirely under a synchronized clock carries no such flag.
    s.sync.synchronized = True
    tx2 = await cp.start_transaction(1, "TAG-C2", 1000.0)
    await s.step(M1, 5, 1_001_500.0)  # exact in the meter's float32 kWh register
    await cp.stop_transaction(1, 1500.0)
    sid2 = session_id_of(f"CP-1/{tx2}")
    cdr2 = (await backend.wait_for_async(is_cdr(sid2))).payload["data"]
    assert cdr2.get("remark") is None and (await settlement_of(s, sid2))["flags"] == []


async def test_chargers_display_the_price_and_follow_a_tariff_change(
    site: Callable[..., Any], backend: BackendSimulator
) -> None:
    s: Site = await site(datetime(2026, 6, 5, 8, 0, tzinfo=UTC))  # 10:00 local: off-peak price
    cp201 = await s.charger(ChargePointSimulator201, "CP-2")
    cp16 = await s.charger(ChargePointSimulator, "CP-1")
    off_peak = "0.61 EUR start fee (incl. VAT), 0.30 EUR/kWh incl. VAT"
    await until(lambda: 9101 in cp201.displayed and cp16.data_transfers)
    shown = cp201.displayed[9101]
    assert shown["message"] == {"format": "UTF8", "content": off_peak}
    vendor, message_id, data = cp16.data_transfers[-1]
    assert (vendor, message_id) == ("siteedge-hil", "DisplayPrice")
    assert json.loads(data or "")["text"] == off_peak and json.loads(data or "")["connectorId"] == 1

    # The backend raises the off-peak price: both displays follow, without a reboot.
    raised = json.loads(json.dumps(TOU))
    raised["elements"][1]["price_components"][1]["price"] = 0.35
    raised["last_updated"] = "2026-06-05T08:00:00Z"
    backend.publish(f"tariffs/{TOU_ID}", raised, retain=True)
    new_text = "0.61 EUR start fee (incl. VAT), 0.42 EUR/kWh incl. VAT"
    await until(lambda: cp201.displayed[9101]["message"]["content"] == new_text)
    await until(lambda: json.loads(cp16.data_transfers[-1][2] or "")["text"] == new_text)

    # Time-of-day: at 14:00 local the peak price is what a new session pays, and what is shown.
    s.clock.advance(4 * 60)
    await until(lambda: "0.48 EUR/kWh" in cp201.displayed[9101]["message"]["content"])
    await until(lambda: "0.48 EUR/kWh" in json.loads(cp16.data_transfers[-1][2] or "")["text"])
    sent = len(cp16.data_transfers)
    await asyncio.sleep(3.0)  # more than a loop round: an unchanged price is not sent again
    assert len(cp16.data_transfers) == sent

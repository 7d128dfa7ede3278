"""Technicians' work in real Chromium on a real controller: live tiles, remote start, approval, Modbus."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from hil.sim.chargepoint import ChargePointSimulator

from .harness import E2eSite, Tab

pytestmark = pytest.mark.e2e


async def test_connector_tile_follows_a_status_notification_within_2s(
    logged_in_page: Tab, e2e_site: E2eSite
) -> None:
    page = logged_in_page.page
    tile = page.get_by_test_id("tile-CP-1-1")
    await expect(tile.get_by_test_id("status")).to_have_text("Available")
    await page.evaluate("window.__sameDocument = true")

    await e2e_site.cp.status(1, "Faulted")
    await expect(tile.get_by_test_id("status")).to_have_text("Out of order", timeout=2000)
    await expect(tile).to_have_attribute("data-status", "OUTOFORDER")
    await expect(page.get_by_test_id("alarms")).to_contain_text("EVSE CP-1-1 is out of order")
    await e2e_site.cp.status(1, "Available")
    await expect(tile.get_by_test_id("status")).to_have_text("Available", timeout=2000)
    assert await page.evaluate("window.__sameDocument === true")  # updated in place, no reload
    assert logged_in_page.errors == []


async def test_remote_start_from_the_charger_page(logged_in_page: Tab, e2e_site: E2eSite) -> None:
    page = logged_in_page.page
    await page.goto(e2e_site.url + "/#/chargers/CP-1")
    await expect(page.get_by_test_id("identity")).to_contain_text("SimCharger")
    await expect(page.get_by_test_id("identity")).to_contain_text("SIM-CP-1")  # serial from the boot

    await page.get_by_test_id("action-start-CP-1-2").click()
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_be_visible()
    await page.get_by_test_id("id-tag-input").fill("TECH-CARD-7")
    await page.get_by_test_id("confirm-ok").click()

    await expect(page.get_by_role("status").filter(has_text="Start session: accepted")).to_be_visible()
    tile = page.get_by_test_id("tile-CP-1-2")
    await expect(tile.get_by_test_id("id-tag")).to_have_text("TECH-CARD-7")
    await expect(tile.get_by_test_id("status")).to_have_text("Charging")
    await expect(page.get_by_test_id("action-stop-CP-1-2")).to_be_visible()
    assert ("RemoteStartTransaction", {"idTag": "TECH-CARD-7", "connectorId": 2}) in [
        (name, {k: v for k, v in payload.items() if k in ("idTag", "connectorId")})
        for name, payload in e2e_site.cp.received
    ]
    assert logged_in_page.errors == []


async def test_approving_a_charger_that_waits_at_the_door(logged_in_page: Tab, e2e_site: E2eSite) -> None:
    newbie = ChargePointSimulator(
        "NEWBIE-9",
        f"ws://127.0.0.1:{e2e_site.ctl.ocpp_port}/ocpp",
        connectors=1,
        vendor="Acme",
        model="Wallbox X",
        serial="ACME-0042",
    )
    await newbie.connect()
    try:
        assert await newbie.boot() == "Pending"
        page = logged_in_page.page
        await page.goto(e2e_site.url + "/#/commissioning")
        card = page.get_by_test_id("pending-NEWBIE-9")
        await expect(card).to_contain_text("Acme Wallbox X")
        await expect(card).to_contain_text("ACME-0042")

        await page.get_by_test_id("approve-NEWBIE-9").click()
        await expect(page.locator("dialog#confirm")).to_contain_text("Approve NEWBIE-9")
        await page.get_by_test_id("confirm-ok").click()
        await expect(page.get_by_role("status").filter(has_text="NEWBIE-9 approved")).to_be_visible()
        await expect(card).to_be_hidden()
        assert await newbie.boot() == "Accepted"
    finally:
        await newbie.close()


async def test_test_read_of_a_modbus_meter_on_the_commissioning_page(
    logged_in_page: Tab, e2e_site: E2eSite
) -> None:
    page = logged_in_page.page
    await page.goto(e2e_site.url + "/#/commissioning")
    bus = page.get_by_test_id("bus-select")
    await expect(bus.locator(f"option[value='{e2e_site.meter_url}']")).to_have_count(1)
    await bus.select_option(e2e_site.meter_url)
    await page.get_by_test_id("model-select").select_option("eastron_sdm630")
    await page.get_by_test_id("unit-input").fill("1")
    await page.get_by_test_id("test-read").click()

    result = page.get_by_test_id("read-result")
    await expect(result.locator("[data-value='voltage_l1']")).to_contain_text("231.0 V")
    await expect(result.locator("[data-value='power']")).to_contain_text("21,500.0 W")
    await expect(page.get_by_test_id("meter-toml")).to_contain_text('model = "eastron_sdm630"')
    await expect(page.get_by_test_id("meter-toml")).to_contain_text(f'transport = "{e2e_site.meter_url}"')
    assert logged_in_page.errors == []

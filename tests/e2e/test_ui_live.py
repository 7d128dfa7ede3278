"""The technicians' page in real Chromium: renders the site, follows /api/v1/live without reload."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from local_api import LiveHub

from .harness import FakeView, serve

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/siteedge-ui.png"
SCREENSHOT_NARROW = "/tmp/siteedge-ui-360.png"


async def new_page(browser: Browser, width: int, height: int) -> tuple[BrowserContext, Page, list[str]]:
    """A fresh page with a fixed locale and zone, recording console errors and page errors."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC"
    )
    page = await context.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


async def test_page_renders_the_site_and_follows_live_updates(browser: Browser) -> None:
    view, hub = FakeView(), LiveHub()
    async with serve(view, hub) as run:
        context, page, errors = await new_page(browser, 1100, 800)
        try:
            await page.goto(run.base_url + "/")
            await expect(page.locator("#live")).to_have_text("live")
            await expect(page.locator("#version")).to_have_text("v0.1.0-e2e")
            await expect(page.locator("#site-status")).to_have_text("site degraded")
            await expect(page.locator("#uplink")).to_have_text("uplink offline · 12 queued")

            north = page.locator("[data-charger-id='CP-NORTH-01']")
            await expect(north).to_contain_text("Alfen Eve Double Pro-line")
            await expect(north).to_contain_text("OCPP 2.0.1")
            await expect(north.locator("[data-field=connected]")).to_have_text("online")
            south = page.locator("[data-charger-id='CP-SOUTH-02']")
            await expect(south.locator("[data-field=connected]")).to_have_text("offline")
            await expect(page.locator("[data-charger-id='cp-unregistered-7f3a']")).to_contain_text(
                "not configured"
            )
            badge = page.locator("[data-evse-uid='DE*ACM*E0001*1']")
            await expect(badge).to_have_text("AVAILABLE")
            await expect(page.locator("[data-evse-uid='DE*ACM*E0002*1']")).to_have_text("OUTOFORDER")

            grid = page.locator("[data-meter-id='grid-main']")
            await expect(grid.locator("[data-field=power]")).to_have_text("43.21")
            await expect(grid.locator("[data-field=energy]")).to_have_text("12,345.7")
            await expect(grid.locator("[data-field=age]")).to_have_text("0.8")
            await expect(grid.locator("[data-field=state]")).to_have_text("OK")
            await expect(page.locator("[data-meter-id='pv-roof'] [data-field=state]")).to_have_text("stale")
            await expect(page.locator("[data-meter-id='cp-south-sub'] [data-field=state]")).to_contain_text(
                "modbus timeout (unit 3)"
            )
            # The semantic structure screen readers and the tests rely on.
            await expect(page.locator("#chargers thead th")).to_have_count(3)
            await expect(page.locator("#chargers tbody th[scope=row]")).to_have_count(3)
            await expect(page.locator("header, main, footer")).to_have_count(3)

            # A marker that a reload would wipe: proves the updates below arrive in place.
            await page.evaluate("window.__sameDocument = true")
            view.state["chargers"][0]["evses"][0]["status"] = "CHARGING"
            view.state["uplink"].update(connected=True, backlog=0)
            view.state["meters"][0]["values"]["power"] = 7400.0
            hub.notify()

            await expect(badge).to_have_text("CHARGING")
            await expect(badge).to_have_attribute("data-status", "CHARGING")
            await expect(page.locator("#uplink")).to_have_text("uplink connected")
            await expect(grid.locator("[data-field=power]")).to_have_text("7.40")
            assert await page.evaluate("window.__sameDocument === true")

            await page.screenshot(path=SCREENSHOT, full_page=True)
            assert errors == []  # includes CSP violations, e.g. anything fetched off the box
        finally:
            await context.close()


async def test_page_fits_a_360px_phone_without_horizontal_scroll(browser: Browser) -> None:
    async with serve(FakeView(), LiveHub()) as run:
        context, page, errors = await new_page(browser, 360, 780)
        try:
            await page.goto(run.base_url + "/")
            await expect(page.locator("#live")).to_have_text("live")
            await expect(page.locator("[data-meter-id]")).to_have_count(3)

            scroll_width = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= 360, scroll_width
            # The tables sit in overflow containers; they must fit too, not scroll inside them.
            overflowing = await page.evaluate(
                "[...document.querySelectorAll('.table-wrap')]"
                ".filter(w => w.scrollWidth > w.clientWidth).map(w => w.firstElementChild.id)"
            )
            assert overflowing == []
            # The card layout must keep table semantics: rows, row headers, column headers.
            aria = await page.locator("#meters").aria_snapshot()
            assert '- columnheader "Power kW"' in aria, aria
            assert '- rowheader "grid-main grid"' in aria, aria
            assert '- cell "43.21"' in aria, aria  # the visual label is not read twice
            await page.screenshot(path=SCREENSHOT_NARROW, full_page=True)
            assert errors == []
        finally:
            await context.close()


async def test_page_is_keyboard_usable(browser: Browser) -> None:
    async with serve(FakeView(), LiveHub()) as run:
        context, page, _ = await new_page(browser, 1100, 800)
        try:
            await page.goto(run.base_url + "/")
            await expect(page.locator("#live")).to_have_text("live")
            await page.keyboard.press("Tab")
            await expect(page.locator("a.skip")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(page.locator("main")).to_be_focused()
            # Next stop: the charger table's region, scrollable by keyboard if it ever overflows.
            await page.keyboard.press("Tab")
            await expect(page.locator(".table-wrap").first).to_be_focused()
        finally:
            await context.close()


async def test_page_shows_disconnected_and_reconnects_after_restart(browser: Browser) -> None:
    view, hub = FakeView(), LiveHub()
    async with serve(view, hub) as run:
        port = run.port
        context, page, _ = await new_page(browser, 1100, 800)
        try:
            await page.goto(run.base_url + "/")
            await expect(page.locator("#live")).to_have_text("live")
            await page.evaluate("window.__sameDocument = true")

            await run.stop()
            await expect(page.locator("#live")).to_have_text("disconnected")

            # The box comes back (new process, new hub) with a changed site.
            view.state["chargers"][0]["evses"][0]["status"] = "CHARGING"
            async with serve(view, LiveHub(), port=port):
                await expect(page.locator("#live")).to_have_text("live", timeout=15_000)
                await expect(page.locator("[data-evse-uid='DE*ACM*E0001*1']")).to_have_text("CHARGING")
                assert await page.evaluate("window.__sameDocument === true")
        finally:
            await context.close()

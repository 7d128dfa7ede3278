"""The web UI shell in real Chromium: first-run setup, login/logout, lockout, phone width, keyboard."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from .harness import ADMIN, E2eSite, Tab, log_in, open_tab

pytestmark = pytest.mark.e2e


async def test_first_run_creates_the_admin_with_the_setup_code(browser: Browser, e2e_site: E2eSite) -> None:
    tab = await open_tab(browser, 1100, 800)
    page = tab.page
    try:
        await page.goto(e2e_site.url + "/")
        await expect(page).to_have_url(e2e_site.url + "/#/setup")
        await page.get_by_test_id("setup-code").fill(e2e_site.setup_code())
        await page.get_by_test_id("setup-username").fill(ADMIN[0])
        await page.get_by_test_id("setup-password").fill("short")
        await page.get_by_test_id("setup-password2").fill("short")
        await page.get_by_test_id("setup-submit").click()
        await expect(page.get_by_test_id("form-error")).to_contain_text("at least 10 characters")

        await page.get_by_test_id("setup-password").fill(ADMIN[1])
        await page.get_by_test_id("setup-password2").fill(ADMIN[1])
        await page.get_by_test_id("setup-submit").click()
        # Logged in at once, on the dashboard, with the live stream running.
        await expect(page).to_have_url(e2e_site.url + "/#/")
        await expect(page.get_by_test_id("user-role")).to_have_text("admin", use_inner_text=False)
        await expect(page.get_by_test_id("live")).to_have_attribute("data-state", "live")
        await expect(page.get_by_test_id("tile-CP-1-1")).to_be_visible()
        assert not (e2e_site.data_dir / "setup-code.txt").exists()  # used once, then gone
        assert tab.errors == []
    finally:
        await tab.context.close()


async def test_login_logout_and_lockout_after_wrong_passwords(
    browser: Browser, e2e_site: E2eSite, admin: tuple[str, str]
) -> None:
    tab = await open_tab(browser, 1100, 800)
    page = tab.page
    try:
        await page.goto(e2e_site.url + "/#/sessions")
        await expect(page).to_have_url(e2e_site.url + "/#/login")
        await log_in(tab, e2e_site.url, *admin)
        await expect(page.get_by_test_id("nav-commissioning")).to_be_visible()

        await page.get_by_test_id("user-button").click()
        await page.get_by_test_id("logout").click()
        await expect(page).to_have_url(e2e_site.url + "/#/login")
        await expect(page.get_by_test_id("user-button")).to_be_hidden()
        # The session cookie is gone: going back does not show the dashboard.
        await page.goto(e2e_site.url + "/#/")
        await expect(page).to_have_url(e2e_site.url + "/#/login")

        for attempt in range(5):
            await page.get_by_test_id("login-username").fill(admin[0])
            await page.get_by_test_id("login-password").fill(f"wrong password {attempt}")
            await page.get_by_test_id("login-submit").click()
            await expect(page.get_by_test_id("form-error")).to_have_text("Wrong username or password.")
            await page.get_by_test_id("form-error").evaluate("e => { e.hidden = true; }")
        # The sixth try is refused even with the right password, and says when to retry.
        await page.get_by_test_id("login-username").fill(admin[0])
        await page.get_by_test_id("login-password").fill(admin[1])
        await page.get_by_test_id("login-submit").click()
        error = page.get_by_test_id("form-error")
        await expect(error).to_contain_text("Too many failed attempts")
        await expect(error).to_contain_text("try again in 15 minutes")
        await expect(page.get_by_test_id("login-submit")).to_be_disabled()
        await expect(page).to_have_url(e2e_site.url + "/#/login")
    finally:
        await tab.context.close()


async def test_dashboard_fits_a_360px_phone(
    browser: Browser, e2e_site: E2eSite, admin: tuple[str, str]
) -> None:
    tab = await open_tab(browser, 360, 780)
    page = tab.page
    try:
        await log_in(tab, e2e_site.url, *admin)
        await expect(page.get_by_test_id("tile-CP-1-2")).to_be_visible()
        await expect(page.get_by_test_id("site-power")).to_have_text("21.5 kW")
        await expect(page.get_by_test_id("site-limit")).to_have_text("of 50.0 kW limit")
        scroll_width = await page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 360, scroll_width
        # Nothing inside sticks out of its card either (clipped content is as bad as scrolling).
        wide = await page.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 361)"
            ".map(e => e.tagName + '.' + e.className)"
        )
        assert wide == []
        assert tab.errors == []
    finally:
        await tab.context.close()


async def test_keyboard_reaches_an_action_and_enter_opens_its_confirmation(
    logged_in_page: Tab, e2e_site: E2eSite
) -> None:
    page = logged_in_page.page
    await page.goto(e2e_site.url + "/#/chargers/CP-1")
    reset = page.get_by_test_id("action-reset")
    await expect(reset).to_be_enabled()
    for _ in range(80):
        await page.keyboard.press("Tab")
        if await reset.evaluate("e => e === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Reset button")
    await page.keyboard.press("Enter")
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Reset CP-1?")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(reset).to_be_focused()  # back where the user was
    assert e2e_site.cp.received == [] or all(name != "Reset" for name, _ in e2e_site.cp.received)


async def test_live_indicator_says_reconnecting_while_offline_and_recovers(
    logged_in_page: Tab, e2e_site: E2eSite
) -> None:
    page = logged_in_page.page
    indicator = page.get_by_test_id("live")
    await expect(indicator).to_have_attribute("data-state", "live")
    await page.evaluate("window.__sameDocument = true")
    await logged_in_page.context.set_offline(True)
    await expect(indicator).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    await expect(indicator).to_have_text("reconnecting")

    await e2e_site.cp.status(2, "Faulted")  # happens while the phone has no signal
    await logged_in_page.context.set_offline(False)
    await expect(indicator).to_have_attribute("data-state", "live", timeout=15_000)
    await expect(page.get_by_test_id("tile-CP-1-2").get_by_test_id("status")).to_have_text("Out of order")
    assert await page.evaluate("window.__sameDocument === true")


async def test_an_ended_session_leads_to_login_and_back_to_the_page(
    logged_in_page: Tab, e2e_site: E2eSite, admin: tuple[str, str]
) -> None:
    page = logged_in_page.page
    await logged_in_page.context.clear_cookies()  # as if the session expired or was logged out elsewhere
    await page.goto(e2e_site.url + "/#/commissioning")
    await expect(page).to_have_url(e2e_site.url + "/#/login")
    await expect(page.get_by_role("status").filter(has_text="Your session ended")).to_be_visible()
    await page.get_by_test_id("login-username").fill(admin[0])
    await page.get_by_test_id("login-password").fill(admin[1])
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(e2e_site.url + "/#/commissioning")
    await expect(page.get_by_test_id("bus-select")).to_be_visible()


async def test_change_password_from_the_user_menu(
    logged_in_page: Tab, e2e_site: E2eSite, admin: tuple[str, str]
) -> None:
    page = logged_in_page.page
    new_password = "a much longer passphrase"
    await page.get_by_test_id("user-button").click()
    await page.get_by_role("menuitem", name="Change password").click()
    dialog = page.locator("dialog#confirm")
    await dialog.get_by_label("Current password").fill(admin[1])
    await dialog.get_by_label("New password", exact=True).fill(new_password)
    await dialog.get_by_label("New password again").fill(new_password)
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_role("status").filter(has_text="Password changed.")).to_be_visible()

    await page.get_by_test_id("user-button").click()
    await page.get_by_test_id("logout").click()
    await log_in(logged_in_page, e2e_site.url, admin[0], new_password)

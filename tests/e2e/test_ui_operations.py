"""Technicians' work in real Chromium on a real controller: live tiles, remote start, approval, Modbus."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from hil.sim.chargepoint import ChargePointSimulator
from tests.api import api_client

from .harness import E2eSite, Tab, log_in, open_tab

pytestmark = pytest.mark.e2e

KEY = "0123456789abcdef0123456789abcdef01234567"  # an OCPP 1.6 AuthorizationKey: 20 bytes as hex


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


async def test_firmware_update_and_log_upload_show_each_stage_live(
    logged_in_page: Tab, e2e_site: E2eSite
) -> None:
    page = logged_in_page.page
    await page.goto(e2e_site.url + "/#/chargers/CP-1")
    maintenance = page.get_by_test_id("maintenance")
    await expect(page.get_by_test_id("firmware-version")).to_have_text("Installed version: 1.0.0")
    await expect(page.get_by_test_id("firmware-progress")).to_contain_text("Nothing requested")

    await page.get_by_test_id("action-firmware").click()
    await page.get_by_test_id("firmware-url").fill("not a url")
    await page.get_by_test_id("confirm-ok").click()
    await expect(
        page.get_by_role("status").filter(has_text="Enter an http(s), ftp(s) or sftp URL.")
    ).to_be_visible()
    await expect(page.locator("dialog#confirm")).to_be_visible()  # still open, to correct
    e2e_site.cp.maintenance_step_s = 2.0  # stages a person (and a loaded CI machine) can watch
    await page.get_by_test_id("firmware-url").fill("https://files.example.test/ac/fw-2.1.0.bin")
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_role("status").filter(has_text="Update firmware: accepted")).to_be_visible()
    progress = page.get_by_test_id("firmware-progress")
    # The stages arrive live; a running stage is marked as the current step.
    await expect(progress.locator(".step-running")).to_have_count(1, timeout=5000)
    await expect(progress).to_have_attribute("data-state", "done", timeout=20000)
    await expect(progress.locator(".step-done")).to_have_count(4)
    await expect(progress).to_contain_text("Installed")
    # The charger rebooted into the new version and said so in its BootNotification.
    await expect(page.get_by_test_id("firmware-version")).to_have_text(
        "Installed version: 2.1.0", timeout=10000
    )
    assert e2e_site.cp.firmware == "2.1.0"
    await expect(page.get_by_test_id("security-events")).to_contain_text("FirmwareUpdated")

    await expect(page.get_by_test_id("action-logs")).to_be_enabled(timeout=10000)  # back online
    await page.get_by_test_id("action-logs").click()
    await page.get_by_test_id("logs-url").fill("ftp://10.1.2.3/uploads/")
    await page.get_by_test_id("confirm-ok").click()
    logs = page.get_by_test_id("log-progress")
    await expect(logs).to_have_attribute("data-state", "done", timeout=10000)
    await expect(logs).to_contain_text("Uploaded")
    await expect(maintenance).to_be_visible()
    assert logged_in_page.errors == []


async def test_ocpp_log_filters_by_action_and_direction(logged_in_page: Tab, e2e_site: E2eSite) -> None:
    page = logged_in_page.page
    await page.goto(e2e_site.url + "/#/chargers/CP-1")
    log = page.get_by_test_id("message-log")
    await expect(log.locator(".msg").first).to_be_visible()
    await expect(log.locator(".msg-action").filter(has_text="BootNotification")).not_to_have_count(0)
    await page.get_by_test_id("log-action").fill("StatusNotification")
    await expect(log.locator(".msg-action").filter(has_text="BootNotification")).to_have_count(0)
    actions = await log.locator(".msg-action").all_inner_texts()
    assert actions and all(a.startswith("StatusNotification") for a in actions), actions
    await page.get_by_test_id("log-direction").select_option("out")
    # siteedge's answers to the charger's StatusNotifications: results, never calls.
    await expect(log.locator(".msg[data-direction='in']")).to_have_count(0)
    await expect(log.locator(".msg[data-direction='out']").first).to_contain_text("result")
    await expect(log.locator(".msg-payload").first).to_be_visible()


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

        # Right after approving: set its credentials; the connected charger gets a generated password.
        await page.get_by_test_id("credentials-now-NEWBIE-9").click()
        await expect(page.locator("dialog#confirm")).to_contain_text("Set credentials of NEWBIE-9")
        await page.get_by_test_id("confirm-ok").click()
        toasts = page.get_by_role("status")
        await expect(toasts.filter(has_text="NEWBIE-9 accepted its new password")).to_be_visible()
        shown = page.get_by_test_id("new-charger-password")
        await expect(shown).to_have_value(newbie.password or "<no password pushed>")
        await expect(page.get_by_test_id("credentials-result")).to_contain_text("shown only once")
        await expect(page.get_by_test_id("copy-charger-password")).to_be_visible()
        pushed = {"key": "AuthorizationKey", "value": newbie.password}
        assert ("ChangeConfiguration", pushed) in newbie.received

        # Offline, from the charger's page: an entered password is stored and required at its next connection.
        await newbie.close()
        await page.goto(e2e_site.url + "/#/chargers/NEWBIE-9")
        await page.get_by_test_id("action-credentials").click()
        await page.get_by_test_id("credentials-mode").select_option("enter")
        await page.get_by_test_id("credentials-password").fill(KEY)
        await page.get_by_test_id("confirm-ok").click()
        await expect(toasts.filter(has_text="NEWBIE-9: new password stored")).to_be_visible()
        await expect(page.get_by_test_id("new-charger-password")).to_have_value(KEY)
        url = f"ws://127.0.0.1:{e2e_site.ctl.ocpp_port}/ocpp"
        async with ChargePointSimulator("NEWBIE-9", url, password=KEY) as again:
            assert await again.boot() == "Accepted"
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


async def test_scan_finds_the_meter_and_a_technician_saves_it_to_the_configuration(
    browser: Browser, e2e_site: E2eSite, admin: tuple[str, str]
) -> None:
    await e2e_site.add_user("fitter", "commissions 123", "technician")
    tab = await open_tab(browser)
    page = tab.page
    try:
        await log_in(tab, e2e_site.url, "fitter", "commissions 123")
        await expect(page.get_by_test_id("user-role")).to_have_text("technician")
        await page.goto(e2e_site.url + "/#/commissioning")
        await page.get_by_test_id("bus-select").select_option(e2e_site.meter_url)
        await page.get_by_label("Scan from").fill("1")
        await page.get_by_label("to", exact=True).fill("3")
        await page.get_by_test_id("scan").click()
        await page.get_by_test_id("confirm-ok").click()
        scan = page.get_by_test_id("scan-result")
        await expect(scan).to_contain_text("3 of 3 unit ids asked", timeout=15000)
        await expect(scan).to_contain_text("done")
        await page.get_by_test_id("unit-input").fill("")
        await page.get_by_test_id("use-unit-1").click()
        await expect(page.get_by_test_id("unit-input")).to_have_value("1")

        await page.get_by_test_id("test-read").click()
        await expect(page.get_by_test_id("read-verdict")).to_be_visible()
        # An id the site already uses is refused with the key and reason; nothing is written.
        before = e2e_site.config_path.read_text()
        taken = e2e_site.ctl.config.meters[0].id
        await page.get_by_test_id("save-id").fill(taken)
        await page.get_by_test_id("save-device").click()
        await page.get_by_test_id("confirm-ok").click()
        await expect(page.get_by_test_id("save-problems")).to_contain_text("already taken")
        await expect(page.locator(".save-outcome")).to_contain_text(f"id: duplicate meter id '{taken}'")
        assert e2e_site.config_path.read_text() == before

        await page.get_by_test_id("save-id").fill("pv-inverter")
        await page.get_by_test_id("save-role").select_option("pv")
        await expect(page.get_by_test_id("meter-toml")).to_contain_text('role = "pv"')
        await page.get_by_test_id("save-device").click()
        dialog = page.locator("dialog#confirm")
        await expect(dialog).to_contain_text('id = "pv-inverter"')  # the entry to be added
        await page.get_by_test_id("confirm-ok").click()
        await expect(page.get_by_test_id("save-done")).to_contain_text("siteedge polls pv-inverter now")
        await expect(page.get_by_test_id("restart")).to_have_count(0)  # nothing waits for a restart
        # Live: the saved meter is on the Meters page without a restart.
        await page.goto(e2e_site.url + "/#/meters")
        await expect(page.get_by_text("pv-inverter").first).to_be_visible(timeout=10000)
        saved = e2e_site.config_path.read_text()
        assert saved.startswith(before) and 'id = "pv-inverter"' in saved and 'role = "pv"' in saved, saved
        # The browser logs the refused duplicate's answer; nothing else went wrong.
        assert [e for e in tab.errors if "409 (Conflict)" not in e] == [] and len(tab.errors) == 1
    finally:
        await tab.context.close()
    async with api_client(e2e_site.ctl) as http:
        audit = (await http.get("/api/v1/audit")).json()["items"]
    saves = [a for a in audit if a["path"] == "/api/v1/modbus/devices"]
    assert [(a["user"], a["status"]) for a in saves] == [("fitter", 201), ("fitter", 409)]
    assert saves[0]["summary"].startswith("meter pv-inverter (eastron_sdm630, ")


async def test_a_viewer_sees_the_site_but_no_actions(
    browser: Browser, e2e_site: E2eSite, admin: tuple[str, str]
) -> None:
    await e2e_site.add_user("watcher", "only looking 123", "viewer")
    tab = await open_tab(browser)
    page = tab.page
    try:
        await log_in(tab, e2e_site.url, "watcher", "only looking 123")
        await expect(page.get_by_test_id("user-role")).to_have_text("viewer")
        await expect(page.get_by_test_id("tile-CP-1-1")).to_be_visible()
        await page.goto(e2e_site.url + "/#/chargers/CP-1")
        await expect(page.get_by_test_id("identity")).to_contain_text("SIM-CP-1")
        await expect(page.get_by_test_id("action-start-CP-1-1")).to_have_count(0)
        await expect(page.get_by_test_id("action-reset")).to_be_hidden()
        await page.goto(e2e_site.url + "/#/commissioning")
        await expect(page.get_by_test_id("test-read")).to_be_disabled()
        await expect(page.get_by_test_id("scan")).to_be_disabled()
        assert tab.errors == []
    finally:
        await tab.context.close()


async def test_get_configuration_shows_the_typed_answer(logged_in_page: Tab, e2e_site: E2eSite) -> None:
    page = logged_in_page.page
    await page.goto(e2e_site.url + "/#/chargers/CP-1")
    await page.get_by_test_id("action-get-config").click()
    await page.locator("dialog#confirm input[name=key]").fill("HeartbeatInterval")
    await page.get_by_test_id("confirm-ok").click()
    result = page.get_by_test_id("command-result")
    await expect(result).to_contain_text("Get configuration")
    await expect(result.locator("tbody tr")).to_have_count(1)
    await expect(result.locator("tbody tr")).to_contain_text("HeartbeatInterval")
    assert ("GetConfiguration", {"key": ["HeartbeatInterval"]}) in e2e_site.cp.received

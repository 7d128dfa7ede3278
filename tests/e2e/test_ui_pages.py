"""The meters, sessions, tokens and system pages in real Chromium against a real controller."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, FilePayload, Page, expect

from controller.app import SiteController
from tests.api import api_client

from .harness import ADMIN, E2eSite, Tab, log_in, open_tab

pytestmark = pytest.mark.e2e

PASSWORDS = {ADMIN[0]: ADMIN[1], "tim": "technician-password", "vic": "viewer-password"}


@dataclass
class PagesSite:
    """The shared e2e site (CP-1 with EVSEs CP-1-1/CP-1-2, a grid meter, run from a config file) with an
    admin, a technician and a viewer, and a way to open pages logged in as one of them."""

    e2e: E2eSite
    browser: Browser
    tabs: list[Tab]

    @property
    def ctl(self) -> SiteController:
        """The running controller."""
        controller: SiteController = self.e2e.ctl
        return controller

    @property
    def base_url(self) -> str:
        """The web UI's URL."""
        return self.e2e.url

    @property
    def path(self) -> Path:
        """The config file the controller runs from."""
        return self.e2e.config_path

    async def page(self, username: str, width: int = 1100) -> tuple[Page, list[str]]:
        """A page logged in through the login form as username, and its console/page errors."""
        tab = await open_tab(self.browser, width)
        self.tabs.append(tab)
        await log_in(tab, self.base_url, username, PASSWORDS[username])
        return tab.page, tab.errors


@pytest.fixture
async def site(e2e_site: E2eSite, admin: tuple[str, str], browser: Browser) -> AsyncIterator[PagesSite]:
    """e2e_site with its first admin, plus a technician and a viewer created through the users API."""
    assert admin == ADMIN
    for name, role in (("tim", "technician"), ("vic", "viewer")):
        await e2e_site.add_user(name, PASSWORDS[name], role)
    running = PagesSite(e2e_site, browser, [])
    try:
        yield running
    finally:
        for tab in running.tabs:
            await tab.context.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    """Poll an async condition (no wall-clock assertion: only a bound to fail instead of hanging)."""
    for _ in range(int(within / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {within} s")


async def downloaded_text(path: Path) -> str:
    """A downloaded file's text (read off the loop)."""
    return await asyncio.to_thread(path.read_text, encoding="utf-8")


async def finished_session(site: PagesSite, id_tag: str) -> dict[str, Any]:
    """Charge 2.345 kWh on CP-1 and stop; the COMPLETED session as the API lists it."""
    cp = site.e2e.cp
    await cp.start_transaction(1, id_tag, 1000.0)
    await cp.meter_values(1, 2000.0, 7000.0)
    await cp.stop_transaction(1, 3345.0)
    ctl = site.ctl
    found: dict[str, Any] = {}
    async with api_client(ctl) as http:

        async def completed() -> bool:
            items = (await http.get("/api/v1/sessions", params={"status": "COMPLETED"})).json()["items"]
            found.update(next((s for s in items if s["cdr_token"]["uid"] == id_tag), {}))
            return bool(found)

        await until(completed, "the session's completion")
    return found


async def test_sessions_export_csv_with_the_finished_session_and_show_its_detail(site: PagesSite) -> None:
    session = await finished_session(site, "TAG-CSV-1")
    page, errors = await site.page("tim")
    await page.goto(site.base_url + "/#/sessions")
    row = page.get_by_test_id(f"session-row-{session['id']}")
    await expect(row).to_contain_text("TAG-CSV-1")
    await expect(row).to_contain_text("completed")

    # The filters apply to the export too: only completed sessions of CP-1-1, charger CP-1, its partner.
    token = session["cdr_token"]
    partner = f"{token['country_code']}-{token['party_id']}"
    await page.get_by_label("Status").select_option("COMPLETED")
    await page.get_by_label("Charger", exact=True).select_option("CP-1")
    await page.get_by_label("EVSE", exact=True).select_option("CP-1-1")
    await page.get_by_label("Partner (eMSP)").fill(partner.lower())
    await page.get_by_test_id("apply-filters").click()
    await expect(row).to_be_visible()
    async with page.expect_download() as info:
        await page.get_by_test_id("export-csv").click()
    download = await info.value
    assert download.suggested_filename == "sessions.csv"
    text = await downloaded_text(await download.path())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["session_id"] for r in rows] == [session["id"]]
    assert rows[0]["status"] == "COMPLETED" and rows[0]["token_uid"] == "TAG-CSV-1"
    assert float(rows[0]["kwh"]) == pytest.approx(2.345)
    assert rows[0]["charger_id"] == "CP-1" and rows[0]["emsp"] == partner.replace("-", "*")
    await expect(page.get_by_role("status").filter(has_text="Downloaded sessions.csv")).to_be_visible()

    # Another partner's sessions: none, in the list and in the export.
    await page.get_by_label("Partner (eMSP)").fill("FR-QQQ")
    await page.get_by_test_id("apply-filters").click()
    await expect(page.get_by_test_id("session-list")).to_contain_text("No sessions match these filters.")
    async with page.expect_download() as info:
        await page.get_by_test_id("export-csv").click()
    none = await downloaded_text(await (await info.value).path())
    assert list(csv.DictReader(io.StringIO(none))) == []
    # A partner typed wrong is refused before anything is listed.
    await page.get_by_label("Partner (eMSP)").fill("NLXYZ")
    await page.get_by_test_id("apply-filters").click()
    await expect(page.get_by_role("status").filter(has_text="country code and party id")).to_be_visible()
    await page.get_by_label("Partner (eMSP)").fill("")
    await page.get_by_label("Charger", exact=True).select_option("CP-1")
    await page.get_by_label("EVSE", exact=True).select_option("CP-1-1")
    await page.get_by_test_id("apply-filters").click()
    await expect(row).to_be_visible()

    # A filter that excludes it: the list says so and the export has only the header.
    await page.get_by_label("Status").select_option("ACTIVE")
    await page.get_by_test_id("apply-filters").click()
    await expect(page.get_by_test_id("session-list")).to_contain_text("No sessions match these filters.")
    async with page.expect_download() as info:
        await page.get_by_test_id("export-csv").click()
    empty = await downloaded_text(await (await info.value).path())
    assert list(csv.DictReader(io.StringIO(empty))) == []

    # Detail: the session's fields and its CDR.
    await page.get_by_label("Status").select_option("")
    await page.get_by_test_id("apply-filters").click()
    await row.get_by_test_id("session-link").click()
    detail = page.get_by_test_id("session-detail")
    await expect(detail.get_by_test_id("session-status")).to_have_text("completed")
    await expect(detail.get_by_test_id("session-kwh")).to_have_text("2.35 kWh")
    await expect(detail).to_contain_text("TAG-CSV-1")
    await expect(detail.get_by_test_id("settlement")).to_contain_text("charge")  # the CDR row

    # A technician corrects the energy: the CDR is credited and a new one issued, both listed.
    await detail.get_by_test_id("correct-cdr").click()
    await page.get_by_label("Reason (kept with the CDR)").fill("meter replaced, charger over-counted")
    await page.get_by_label("Correct energy (kWh)").fill("2.0")
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_role("status").filter(has_text="CDR corrected")).to_be_visible()
    cdrs = detail.locator("[data-testid^=cdr-]")
    await expect(cdrs).to_have_count(3)
    await expect(detail.get_by_test_id("settlement")).to_contain_text("credit of")
    await expect(detail.get_by_test_id("settlement")).to_contain_text("2.00 kWh")
    assert errors == []


async def test_token_look_up_shows_the_decision_and_the_reason(site: PagesSite) -> None:
    async with api_client(site.ctl) as http:
        expected = (await http.get("/api/v1/tokens/04A1B2C3D4")).json()
    assert expected["decision"] and expected["reason"]
    await site.e2e.cp.authorize("04A1B2C3D4")

    page, errors = await site.page("vic", width=360)
    await page.goto(site.base_url + "/#/tokens")
    # The card presented at the charger is in the recent decisions; picking it looks it up.
    decision_row = page.get_by_test_id("decision-row").filter(has_text="04A1B2C3D4")
    await expect(decision_row).to_contain_text("CP-1")
    await page.get_by_test_id("token-uid").fill("04A1B2C3D4")
    await page.get_by_test_id("token-uid").press("Enter")
    decision = page.get_by_test_id("token-decision")
    await expect(decision).to_have_attribute("data-decision", expected["decision"])
    await expect(decision).to_contain_text("04A1B2C3D4")
    await expect(page.get_by_test_id("token-reason")).to_have_text(expected["reason"])
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 360, scroll_width
    assert errors == []


async def test_config_edit_shows_the_diff_and_an_invalid_edit_names_key_and_reason(site: PagesSite) -> None:
    original = site.path.read_text()
    assert 'name = "siteedge demo site"' in original
    page, errors = await site.page(ADMIN[0])
    await page.goto(site.base_url + "/#/system")
    await page.get_by_test_id("tab-config").click()
    editor = page.get_by_test_id("config-editor")
    await expect(editor).to_have_value(original)  # no secrets in this file: shown as it is

    # An invalid edit: every problem with its key and reason, nothing written, no apply.
    await editor.fill(original.replace("heartbeat_interval = 60", "heartbeat_interval = -5"))
    async with api_client(site.ctl) as http:
        proposed = {"toml": await editor.input_value()}
        answer = (await http.post("/api/v1/system/config/check", json=proposed)).json()
    assert answer["valid"] is False and answer["errors"]
    await page.get_by_test_id("config-check").click()
    problems = page.get_by_test_id("config-errors")
    for problem in answer["errors"]:
        item = problems.locator(f"li[data-key='{problem['key']}']")
        await expect(item).to_contain_text(problem["key"])
        await expect(item).to_contain_text(problem["reason"])
    await expect(page.get_by_test_id("config-apply")).to_be_disabled()
    assert site.path.read_text() == original

    # A valid edit: the diff first, then confirm, then "restart required".
    await editor.fill(original.replace('name = "siteedge demo site"', 'name = "Depot South"'))
    await page.get_by_test_id("config-check").click()
    diff = page.get_by_test_id("config-result").get_by_test_id("config-diff")
    await expect(diff.locator(".diff-del")).to_have_text('-name = "siteedge demo site"')
    await expect(diff.locator(".diff-add")).to_have_text('+name = "Depot South"')
    assert site.path.read_text() == original  # checking writes nothing
    await page.get_by_test_id("config-apply").click()
    await expect(page.locator("#confirm-body .diff-add")).to_have_text('+name = "Depot South"')
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_test_id("restart-required")).to_be_visible()
    await expect(page.get_by_test_id("restart")).to_be_visible()  # admins can restart from here
    assert 'name = "Depot South"' in site.path.read_text()
    assert errors == []


async def test_a_viewer_sees_no_admin_or_technician_actions(site: PagesSite) -> None:
    session = await finished_session(site, "TAG-VIEW-1")
    async with api_client(site.ctl, "technician") as http:
        reply = await http.post(
            "/api/v1/maintenance",
            json={
                "evse_uid": "CP-1-1",
                "start": "2026-01-05T08:00:00Z",
                "end": "2026-01-05T10:00:00Z",
                "kind": "maintenance",
                "note": "contactor",
            },
        )
        assert reply.status_code == 201, reply.text

    async def actions(username: str) -> dict[str, int]:
        page, errors = await site.page(username)
        await page.goto(site.base_url + "/#/system")
        await expect(page.get_by_test_id("system-version")).not_to_be_empty()
        tabs = await page.get_by_role("tab").all_inner_texts()
        await page.get_by_test_id("tab-config").click()
        shown = page.get_by_test_id("config-editor").or_(page.get_by_test_id("config-text"))
        await expect(shown).to_be_visible()
        found = {
            "admin tabs": len({"Backup", "Users", "API tokens", "Audit log"} & set(tabs)),
            "config editor": await page.get_by_test_id("config-editor").count(),
            "config check": await page.get_by_test_id("config-check").count(),
        }
        await page.goto(site.base_url + "/#/sessions")
        await page.get_by_test_id("tab-maintenance").click()
        await expect(page.get_by_test_id("maintenance-list")).to_contain_text("contactor")
        found["add window"] = await page.get_by_test_id("add-window").count()
        found["delete window"] = await page.locator("[data-testid^=delete-window-]").count()
        await page.goto(site.base_url + f"/#/sessions?id={session['id']}")
        await expect(page.get_by_test_id("session-status")).to_have_text("completed")
        await expect(page.get_by_test_id("settlement")).to_be_visible()
        found["correct cdr"] = await page.get_by_test_id("correct-cdr").count()
        assert errors == []
        return found

    operator = {"config editor": 1, "config check": 1, "add window": 1, "delete window": 1, "correct cdr": 1}
    assert await actions(ADMIN[0]) == {"admin tabs": 4, **operator}
    assert await actions("tim") == {"admin tabs": 0, **operator}
    assert await actions("vic") == {"admin tabs": 0, **{k: 0 for k in operator}}


async def test_logs_page_shows_a_recent_record_and_filters_by_level(site: PagesSite) -> None:
    marker = f"ui-pages-marker-{secrets.token_hex(4)}"
    logging.getLogger("controller.e2e").warning("%s: meter cabinet door open", marker)
    page, errors = await site.page("vic")
    await page.goto(site.base_url + "/#/system")
    await page.get_by_test_id("tab-logs").click()
    records = page.get_by_test_id("log-record")
    await expect(records.first).to_be_visible()
    await page.get_by_test_id("log-search").fill(marker)
    await page.get_by_test_id("log-search").press("Enter")
    await expect(records).to_have_count(1)
    await expect(records.first).to_contain_text(f"{marker}: meter cabinet door open")
    await expect(records.first).to_have_attribute("data-level", "WARNING")
    await page.get_by_label("Level").select_option("ERROR")
    await expect(page.get_by_test_id("log-list")).to_contain_text("No log records match.")

    # Auto-refresh brings a new record without a click.
    await page.get_by_label("Level").select_option("")
    await page.get_by_test_id("log-search").fill("ui-pages-marker")
    await page.get_by_test_id("log-search").press("Enter")
    await expect(records).to_have_count(1)
    await page.get_by_test_id("log-auto").check()
    logging.getLogger("controller.e2e").error("%s-2: second record", marker)
    await expect(records).to_have_count(2, timeout=15_000)
    await expect(records.first).to_contain_text(f"{marker}-2: second record")
    assert errors == []


async def test_meters_show_live_values_staleness_health_and_power_charts(
    site: PagesSite,
) -> None:
    meter_sim = site.e2e.meter
    await meter_sim.set_values({"power": 7400.0})
    page, errors = await site.page("vic", width=360)
    await page.goto(site.base_url + "/#/meters")
    grid = page.get_by_test_id("meter-grid")
    await expect(grid.get_by_test_id("meter-state")).to_have_text("ok")
    await expect(grid.get_by_test_id("meter-power")).to_have_text("7.40 kW")
    # Follows the meter without a reload, and charts what it has seen since the page opened.
    await page.evaluate("window.__sameDocument = true")
    await meter_sim.set_values({"power": 11000.0})
    await expect(grid.get_by_test_id("meter-power")).to_have_text("11.00 kW")
    chart = grid.get_by_test_id("meter-chart").locator("svg")
    await expect(chart).to_have_attribute("aria-label", re.compile(r"now 11\.0 kW, peak 11\.0 kW"))
    assert int(await chart.get_attribute("data-points") or 0) >= 2
    assert await page.evaluate("window.__sameDocument === true")
    # Bus health counters from the driver.
    await grid.get_by_text("All values and bus health").click()
    counters = grid.get_by_test_id("meter-counters")
    await expect(counters).to_contain_text("Good polls")
    await expect(grid).to_contain_text("eastron_sdm630")

    # A meter that stops answering: stale, no value shown (never a made-up one), the error named.
    meter_sim.fail_with_exception()
    await expect(grid.get_by_test_id("meter-state")).to_have_text(re.compile("stale|offline"))
    await expect(grid.get_by_test_id("meter-power")).to_have_text("—")
    await expect(grid.get_by_test_id("meter-error")).to_contain_text("exception")
    meter_sim.recover()
    await expect(grid.get_by_test_id("meter-power")).to_have_text("11.00 kW")

    site_chart = page.get_by_test_id("site-power").locator("svg")
    await expect(site_chart).to_have_attribute("aria-label", re.compile(r"^Site power: now"))
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 360, scroll_width
    assert errors == []


async def test_admin_manages_users_api_tokens_and_backups(site: PagesSite) -> None:
    page, errors = await site.page(ADMIN[0])
    await page.goto(site.base_url + "/#/system")
    await page.get_by_test_id("tab-users").click()
    await page.get_by_test_id("new-username").fill("otto")
    await page.get_by_test_id("new-password").fill("otto-password-1")
    await page.get_by_test_id("new-role").select_option("technician")
    await page.get_by_test_id("add-user").click()
    otto = page.get_by_test_id("user-otto")
    await expect(otto.get_by_test_id("role-otto")).to_have_value("technician")
    await otto.get_by_test_id("role-otto").select_option("viewer")
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_role("status").filter(has_text="otto is now viewer")).to_be_visible()
    async with api_client(site.ctl) as http:
        users = (await http.get("/api/v1/auth/users")).json()["items"]
    assert {"username": "otto", "role": "viewer"}.items() <= next(
        u for u in users if u["username"] == "otto"
    ).items()
    await otto.get_by_test_id("delete-user-otto").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(otto).to_have_count(0)

    # An API token is shown once, works, and stops working once revoked.
    await page.get_by_test_id("tab-api-tokens").click()
    await page.get_by_test_id("token-name").fill("prometheus")
    await page.get_by_test_id("create-token").click()
    token = await page.get_by_test_id("new-token").input_value()
    assert token.startswith("se_")
    async with httpx.AsyncClient(base_url=site.base_url, trust_env=False) as http:
        bearer = {"authorization": f"Bearer {token}"}
        assert (await http.get("/api/v1/health", headers=bearer)).status_code == 200
        await page.get_by_test_id("api-token-prometheus").get_by_role("button", name="Revoke…").click()
        await page.get_by_test_id("confirm-ok").click()
        await expect(page.get_by_test_id("api-token-prometheus")).to_have_count(0)
        assert (await http.get("/api/v1/health", headers=bearer)).status_code == 401

    await page.get_by_test_id("tab-audit").click()
    await expect(page.get_by_test_id("audit-list")).to_contain_text("DELETE /api/v1/auth/users/otto")

    # Backup: a download; a broken bundle is refused with its problems named; the real one restores.
    await page.get_by_test_id("tab-backup").click()
    async with page.expect_download() as info:
        await page.get_by_test_id("backup-download").click()
    bundle = json.loads(await downloaded_text(await (await info.value).path()))
    assert bundle["format"] == "siteedge-backup/1" and "siteedge demo site" in bundle["config_toml"]
    broken = {**bundle, "format": "something-else/9"}
    await page.get_by_test_id("restore-file").set_input_files(
        files=[
            FilePayload(name="broken.json", mimeType="application/json", buffer=json.dumps(broken).encode())
        ]
    )
    await page.get_by_test_id("restore").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_test_id("restore-errors").locator("li[data-key='format']")).to_be_visible()
    await page.get_by_test_id("restore-file").set_input_files(
        files=[FilePayload(name="good.json", mimeType="application/json", buffer=json.dumps(bundle).encode())]
    )
    await page.get_by_test_id("restore").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(page.get_by_test_id("restore-result").get_by_test_id("restart-required")).to_be_visible()
    # The refused bundle's 422 is the API doing its job (Chromium logs every 4xx); nothing else went wrong.
    assert [e for e in errors if "status of 422" not in e] == []


async def test_technician_declares_a_maintenance_window_and_reads_the_reports(site: PagesSite) -> None:
    session = await finished_session(site, "TAG-REPORT-1")
    page, errors = await site.page("tim")
    await page.goto(site.base_url + "/#/sessions")
    await page.get_by_test_id("tab-maintenance").click()
    await page.get_by_label("Port").select_option("CP-1-1")
    await page.get_by_label("From").fill("2026-01-05T08:00")
    await page.get_by_label("Until").fill("2026-01-05T10:30")
    await page.get_by_label("Note").fill("contactor replaced")
    await page.get_by_test_id("add-window").click()
    windows = page.get_by_test_id("maintenance-list")
    await expect(windows).to_contain_text("contactor replaced")
    async with api_client(site.ctl) as http:
        listed = (await http.get("/api/v1/maintenance")).json()["items"]
    assert [(w["evse_uid"], w["start"], w["end"]) for w in listed] == [
        ("CP-1-1", "2026-01-05T08:00:00Z", "2026-01-05T10:30:00Z")  # the browser runs in UTC
    ]
    await windows.get_by_role("button", name="Delete").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(windows).to_contain_text("No maintenance windows")

    await page.get_by_test_id("tab-partners").click()
    partner = page.get_by_test_id("partner-NL-SED")
    await expect(partner).to_contain_text("2.35 kWh")
    await expect(partner.locator("td").first).to_have_text("1")  # one session

    await page.get_by_test_id("tab-uptime").click()
    await expect(page.get_by_test_id("uptime-CP-1-1-month")).to_be_visible()

    await page.get_by_test_id("tab-quarterly").click()
    quarter = await page.get_by_label("Quarter", exact=True).locator("option").first.get_attribute("value")
    await page.get_by_label("Quarter", exact=True).select_option(quarter)
    async with page.expect_download() as info:
        await page.get_by_test_id("quarterly-csv").click()
    rows = list(csv.DictReader(io.StringIO(await downloaded_text(await (await info.value).path()))))
    assert [r["session_id"] for r in rows] == [session["id"]]
    assert errors == []

"""E2E harness: a real controller with simulated devices, and Chromium pages that log in like a person."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from hil.sim.chargepoint import BaseChargePointSimulator
from hil.sim.meter import MeterSimulator
from tests.api import api_client

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # loopback only; an environment proxy must not intercept it
]
ADMIN = ("admin", "correct horse battery")  # >= 10 characters, as the account rules demand
SITE_LIMIT_KW = 50.0
GRID_POWER_W = 21_500.0


@dataclass
class E2eSite:
    """A running controller on 127.0.0.1 with its simulated charger and grid meter."""

    ctl: Any  # controller.app.SiteController
    url: str
    data_dir: Path
    config_path: Path  # the TOML file it was started from (admins may edit it through the API)
    cp: BaseChargePointSimulator  # "CP-1", OCPP 1.6, two EVSEs CP-1-1 and CP-1-2, booted and Available
    meter: MeterSimulator  # the grid meter (Eastron SDM630, unit 1) at meter_url
    meter_url: str

    def setup_code(self) -> str:
        """The one-time setup code the controller wrote for the first admin (fails clearly if absent)."""
        path = self.data_dir / "setup-code.txt"
        assert path.exists(), f"{path} missing: the controller did not offer first-run setup"
        return path.read_text().strip()

    async def create_admin(self, username: str = ADMIN[0], password: str = ADMIN[1]) -> tuple[str, str]:
        """Create the first admin through the public setup endpoint, as the setup page does."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10, trust_env=False) as http:
            answer = await http.post(
                "/api/v1/auth/setup",
                json={"setup_code": self.setup_code(), "username": username, "password": password},
            )
            assert answer.status_code == 201, answer.text
        return username, password

    async def add_user(self, username: str, password: str, role: str) -> None:
        """Create an account through the users API, as an admin's API token."""
        async with api_client(self.ctl) as http:
            made = await http.post(
                "/api/v1/auth/users", json={"username": username, "password": password, "role": role}
            )
            assert made.status_code == 201, made.text


@dataclass
class Tab:
    """A browser context and page, with every console error and page error it produced."""

    context: BrowserContext
    page: Page
    errors: list[str]


async def open_tab(browser: Browser, width: int = 1280, height: int = 900) -> Tab:
    """A fresh page with a fixed locale and zone, recording console errors and page errors."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC"
    )
    page = await context.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # A 401 while logged out or a refused login is the API doing its job, not a page error.
        if msg.type == "error" and "status of 401" not in msg.text and "status of 429" not in msg.text:
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return Tab(context, page, errors)


async def log_in(tab: Tab, url: str, username: str, password: str) -> None:
    """Log in through the login form and wait for the app shell to show the user."""
    page = tab.page
    await page.goto(f"{url}/#/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("user-button")).to_be_visible()
    await expect(page.get_by_test_id("live")).to_have_attribute("data-state", "live")

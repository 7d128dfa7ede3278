"""E2E fixtures: Debian's Chromium through Playwright, a real controller with simulators, a logged-in page.

Fixtures other UI tests reuse:
- `e2e_site`: a running controller (CP-1, OCPP 1.6, EVSEs CP-1-1/CP-1-2 booted and Available; a grid
  meter; `[site] max_power_kw` = 50) with no account yet (first-run setup pending).
- `admin`: (username, password) of the first admin, created through the setup endpoint.
- `logged_in_page`: a Tab (context, page, errors) at 1280x900, logged in as that admin on the dashboard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from controller.app import SiteController, load_config
from hil.sim.meter import MeterSimulator
from hil.siteconfig import SimMeter, SiteSpec, render

from .harness import CHROMIUM, CHROMIUM_ARGS, GRID_POWER_W, SITE_LIMIT_KW, E2eSite, Tab, log_in, open_tab


@asynccontextmanager
async def bounded(what: str, seconds: float = 60.0) -> AsyncIterator[None]:
    """A teardown step that may not hang the run: on timeout, print every task's stack and fail."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
        pytest.fail(f"{what} did not finish within {seconds:g} s (task stacks on stderr)")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; missing Chromium is a failure, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the e2e tests need Debian's chromium (apt-get install -y chromium)",
            pytrace=False,
        )
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            async with bounded("browser close"):
                await launched.close()


@pytest.fixture
async def e2e_site(
    site_spec: SiteSpec,
    meter_sim: MeterSimulator,
    charge_point: Callable[..., Any],
) -> AsyncIterator[E2eSite]:
    """A real controller from a config file (so admins can edit it), with a booted 1.6 charger (two
    EVSEs) and a grid meter; no account yet."""
    await meter_sim.set_values({"power": GRID_POWER_W, "voltage_l1": 231.0, "frequency": 50.0}, strict=False)
    spec = dataclasses.replace(
        site_spec,
        meters=[SimMeter("grid", meter_sim.port, "grid")],
        max_power_kw=SITE_LIMIT_KW,
    )
    config_path = Path(spec.data_dir).parent / "site.toml"
    config_path.write_text(render(spec))
    ctl = SiteController(load_config(config_path), config_path=config_path)
    await ctl.start()
    try:
        # speed: the simulated car plugs in within a second of a remote start, not 2-8 s.
        cp = await charge_point(ctl, connectors=2, speed=10.0)
        await cp.boot()
        for connector in (1, 2):
            await cp.status(connector, "Available")
        yield E2eSite(
            ctl=ctl,
            url=f"{ctl.api_scheme}://127.0.0.1:{ctl.api_port}",
            data_dir=Path(spec.data_dir),
            config_path=config_path,
            cp=cp,
            meter=meter_sim,
            meter_url=f"tcp://127.0.0.1:{meter_sim.port}",
        )
    finally:
        async with bounded("controller stop"):
            await ctl.stop()


@pytest.fixture
async def admin(e2e_site: E2eSite) -> tuple[str, str]:
    """The first admin's (username, password), created with the one-time setup code."""
    return await e2e_site.create_admin()


@pytest.fixture
async def logged_in_page(browser: Browser, e2e_site: E2eSite, admin: tuple[str, str]) -> AsyncIterator[Tab]:
    """A 1280x900 page logged in as the admin, on the dashboard."""
    tab = await open_tab(browser)
    try:
        await log_in(tab, e2e_site.url, *admin)
        yield tab
    finally:
        async with bounded("browser context close"):
            await tab.context.close()

"""Screenshots of every web UI page, phone and desktop, from a running demo site.

    .venv/bin/python -m hil.scripts.screenshots            # starts `siteedge demo`, shoots, stops it
    .venv/bin/python -m hil.scripts.screenshots --url http://127.0.0.1:8080   # an already running UI

Writes docs/screenshots/<page>-<width>x<height>.png with Debian's Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

from hil.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
VIEWPORTS = ((390, 844), (1440, 900))
# (file name, hash route, text that shows the page has its data)
PAGES = (
    ("dashboard", "#/", "[data-testid^='tile-']"),
    ("charger", "#/chargers/CP-1", "[data-testid='identity'] dd"),
    ("commissioning", "#/commissioning", "[data-testid='modbus-devices'] :is(table, .empty)"),
    ("meters", "#/meters", "h1"),
    ("sessions", "#/sessions", "h1"),
    ("tokens", "#/tokens", "h1"),
    ("system", "#/system", "h1"),
)
DEMO_USER = ("admin", "siteedge-demo")  # the demo's published account (hil/demo.py)


def _say(text: str) -> None:
    print(f"[screenshots] {text}", flush=True)


async def _start_demo(workdir: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hil.demo",
        "--duration",
        "600",
        "--api-port",
        str(port),
        "--workdir",
        str(workdir),
        "--speed",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,  # its own process group: stopped as a whole
    )
    assert proc.stdout is not None
    url = None
    async with asyncio.timeout(90):
        while url is None:
            line = (await proc.stdout.readline()).decode(errors="replace")
            if not line:
                raise RuntimeError("the demo ended before its web UI came up")
            print(line, end="", flush=True)
            if found := re.search(r"web UI: (http://\S+?)/?$", line.strip()):
                url = found.group(1)
    # Keep draining its output so the pipe never fills and blocks the demo.
    asyncio.get_running_loop().create_task(_drain(proc))
    return proc, url


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.readline():
        pass


async def _settle(page: Page, selector: str) -> None:
    """Wait for the page's data, then a moment for live updates and the chart to draw."""
    with contextlib.suppress(Exception):
        await page.locator(selector).first.wait_for(timeout=15000)
    await page.wait_for_timeout(1500)
    await page.evaluate("document.getElementById('toasts').replaceChildren()")  # no "Welcome" over the page


async def shoot(url: str, user: str, password: str, wait_s: float) -> list[Path]:
    """Log in at url and save every page at every viewport; the written files."""
    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if wait_s > 0:
        _say(f"letting the site run {wait_s:g} s so sessions and the power chart have data")
        await asyncio.sleep(wait_s)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for width, height in VIEWPORTS:
                context = await browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=1,
                    locale="en-GB",
                    timezone_id="Europe/Amsterdam",
                )
                page = await context.new_page()
                await page.goto(f"{url}/#/login")
                await page.get_by_test_id("login-username").wait_for()
                path = OUT / f"login-{width}x{height}.png"
                await page.screenshot(path=str(path))
                written.append(path)
                await page.get_by_test_id("login-username").fill(user)
                await page.get_by_test_id("login-password").fill(password)
                await page.get_by_test_id("login-submit").click()
                await page.get_by_test_id("user-button").wait_for()
                for name, route, ready in PAGES:
                    await page.goto(f"{url}/{route}")
                    await _settle(page, ready)
                    path = OUT / f"{name}-{width}x{height}.png"
                    await page.screenshot(path=str(path), full_page=True)
                    written.append(path)
                    _say(f"wrote {path.relative_to(ROOT)}")
                await context.close()
        finally:
            await browser.close()
    return written


async def run(url: str | None, user: str, password: str, wait_s: float) -> int:
    """Start the demo unless url is given, take the screenshots, stop what was started."""
    proc = None
    with tempfile.TemporaryDirectory(prefix="siteedge-shots-") as tmp:
        try:
            if url is None:
                proc, url = await _start_demo(Path(tmp) / "demo")
            async with httpx.AsyncClient() as http:  # fail early and clearly if nothing answers
                await http.get(f"{url}/", timeout=10)
            await shoot(url, user, password, wait_s if proc is not None else 0.0)
            return 0
        finally:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    os.killpg(proc.pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and take the screenshots."""
    p = argparse.ArgumentParser(
        prog="screenshots", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", help="web UI of a running site (default: start `siteedge demo`)")
    p.add_argument("--user", default=DEMO_USER[0])
    p.add_argument("--password", default=DEMO_USER[1])
    p.add_argument("--wait", type=float, default=45.0, help="seconds to let a started demo run first")
    args = p.parse_args(argv)
    return asyncio.run(run(args.url, args.user, args.password, args.wait))


if __name__ == "__main__":
    sys.exit(main())

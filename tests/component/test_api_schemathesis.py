"""Schemathesis fuzzes every operation of a live controller's OpenAPI schema: no 500, no ignored auth."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.app import SiteController
from hil.siteconfig import SiteSpec
from tests.api import api_url

# Never fuzzed: the live stream never ends (a fuzzer would wait forever), and a bus scan or test read
# with a generated transport could open any host or serial device, outside this machine's loopback.
EXCLUDED = ("/api/v1/live", "/api/v1/modbus/scan", "/api/v1/modbus/test-read")
MAX_EXAMPLES = 10  # per operation and phase: about 1700 requests, well under a minute


def schemathesis_cli() -> str:
    """The `st` executable next to this interpreter (the dev extra installs it)."""
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    assert found is not None, "schemathesis is missing: pip install -e '.[dev]'"
    return found


async def test_fuzzed_requests_never_get_a_server_error_nor_skip_authentication(
    site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Any], tmp_path: Path
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    token = ctl.security.issue_token("schemathesis", "admin")["token"]
    args = [
        "run",
        f"{api_url(ctl)}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        # ignored_auth: every operation the schema marks as authenticated refuses a call without it.
        "not_a_server_error,ignored_auth",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",  # two cores shared with the controller under test
        "--request-timeout",
        "15",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    for path in EXCLUDED:
        args += ["--exclude-path", path]
    # A subprocess, not in-process: this test's loop must keep serving the controller meanwhile.
    proc = await asyncio.create_subprocess_exec(
        schemathesis_cli(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={"PATH": str(Path(sys.executable).parent), "NO_COLOR": "1", "HOME": str(tmp_path)},
    )
    out, _ = await proc.communicate()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert "Server error" not in report
    assert " generated, " in report and " passed" in report  # it really ran (summary line)

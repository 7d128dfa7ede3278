"""HTTP clients for tests that call a running controller's local API, and their credentials."""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Any

import httpx

from controller.core.access import Role
from controller.core.clock import Clock, SystemClock
from controller.store.accounts import SqliteAccountStore
from local_api.auth import Security


def make_security(data_dir: Path, clock: Clock | None = None) -> Security:
    """A Security over a fresh account store in data_dir (for apps built without a SiteController)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteAccountStore(data_dir / "accounts.sqlite3")
    return Security(store, clock or SystemClock(), setup_code_file=data_dir / "setup-code.txt")


def bearer(security: Security, role: Role | str = Role.ADMIN) -> dict[str, str]:
    """Authorization header of a new API token with the role, provisioned through the store directly."""
    token = security.issue_token(f"test-{Role(role).value}-{secrets.token_hex(4)}", role)["token"]
    return {"authorization": f"Bearer {token}"}


def tls_context(ctl: Any) -> ssl.SSLContext | bool:
    """What httpx should verify a controller's web API against: its own certificate under HTTPS."""
    if ctl.api_scheme != "https":
        return True
    cert = ctl.config.api.cert or str(Path(ctl.config.site.data_dir) / "tls" / "api.crt")
    return ssl.create_default_context(cafile=cert)


def api_url(ctl: Any) -> str:
    """The controller's web API base URL on 127.0.0.1."""
    return f"{ctl.api_scheme}://127.0.0.1:{ctl.api_port}"


def api_client(ctl: Any, role: Role | str = Role.ADMIN) -> httpx.AsyncClient:
    """An httpx client for the controller's API, authenticated with a bearer token of the role."""
    # trust_env=False: a proxy from the environment must never see the loopback traffic.
    return httpx.AsyncClient(
        base_url=api_url(ctl),
        timeout=10,
        headers=bearer(ctl.security, role),
        trust_env=False,
        verify=tls_context(ctl),
    )

"""Accounts and access control of the local API over real HTTP: roles, CSRF, setup, lockout, audit."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.app import SiteController
from controller.core.access import Role
from controller.core.clock import SystemClock
from hil.siteconfig import SiteSpec
from local_api.auth import CSRF_COOKIE, SESSION_COOKIE, Security
from tests.api import api_client, api_url, bearer, make_security
from tests.component.test_local_api import serve

PASSWORD = "correct horse battery"


class ManualClock:
    """Real time plus an offset the test moves forward (wall and monotonic together)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._real = SystemClock()

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> datetime:
        return self._real.now() + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return self._real.monotonic() + self.offset


def anonymous(base_url: str) -> httpx.AsyncClient:
    """A client with no credentials (it keeps the cookies a login sets)."""
    return httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False)


@asynccontextmanager
async def logged_in(
    base_url: str, username: str, password: str = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-session client, logged in through the API like the browser does."""
    async with anonymous(base_url) as http:
        r = await http.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        yield http


def csrf(http: httpx.AsyncClient) -> dict[str, str]:
    """The X-CSRF-Token header the page's script sends: the csrf cookie's value."""
    return {"x-csrf-token": http.cookies[CSRF_COOKIE]}


async def with_users(security: Security, **roles: str) -> None:
    for name, role in roles.items():
        await security.add_user(name, PASSWORD, Role(role))


# The contract's rules, written out independently of controller.core.access.
PUBLIC = {("GET", "/api/v1/auth/state"), ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/setup")}
ANY_USER = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}
ADMIN_AREAS = ("/api/v1/auth/users", "/api/v1/auth/api-tokens", "/api/v1/audit")
ADMIN_OPS = {
    ("PUT", "/api/v1/system/config"),
    ("POST", "/api/v1/system/restore"),
    ("GET", "/api/v1/system/backup"),
    ("POST", "/api/v1/system/restart"),
}


def expected_role(method: str, path: str) -> Role | None:
    if (method, path) in PUBLIC:
        return None
    if path.startswith(ADMIN_AREAS) or (method, path) in ADMIN_OPS:
        return Role.ADMIN
    if (method, path) in ANY_USER or method == "GET":
        return Role.VIEWER
    return Role.TECHNICIAN


async def test_every_endpoint_refuses_anonymous_and_underprivileged_callers(
    site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Any]
) -> None:
    ctl: SiteController = await start_controller(site_spec)
    async with api_client(ctl, "admin") as admin:
        schema = (await admin.get("/api/v1/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 30 and ("DELETE", "/api/v1/auth/users/{username}") in operations
    viewer, technician = bearer(ctl.security, "viewer"), bearer(ctl.security, "technician")
    checked = {Role.VIEWER: 0, Role.TECHNICIAN: 0, Role.ADMIN: 0}
    async with anonymous(api_url(ctl)) as http:
        for method, template in operations:
            path = template.replace("{", "x").replace("}", "")  # any value: refused before the handler
            need = expected_role(method, template)
            if need is None:
                continue
            checked[need] += 1
            r = await http.request(method, path)
            assert r.status_code == 401 and r.json()["code"] == "unauthenticated", (method, path, r.text)
            if need is not Role.VIEWER:
                r = await http.request(method, path, headers=viewer)
                assert r.status_code == 403 and r.json()["code"] == "forbidden", (method, path, r.text)
            if need is Role.ADMIN:
                r = await http.request(method, path, headers=technician)
                assert r.status_code == 403 and r.json()["code"] == "forbidden", (method, path, r.text)
        assert min(checked.values()) >= 3, checked
        # Not in the schema, same rules: Prometheus scrapes with a viewer token.
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=viewer)).status_code == 200
        assert (await http.get("/api/v1/audit/", headers=technician)).status_code == 403  # no slash trick


async def test_setup_code_creates_the_first_admin_once(
    site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ctl: SiteController = await start_controller(site_spec)
    code_file = Path(site_spec.data_dir) / "setup-code.txt"
    code = code_file.read_text().strip()
    assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records if code in r.getMessage()] == [
        f"web UI setup code: {code} (create the admin account at http://127.0.0.1:{ctl.api_port}/#/setup)"
    ]
    async with anonymous(api_url(ctl)) as http:
        assert (await http.get("/api/v1/auth/state")).json() == {"setup_required": True, "user": None}
        body = {"setup_code": "AAAA-BBBB-CCCC", "username": "chief", "password": PASSWORD}
        wrong = await http.post("/api/v1/auth/setup", json=body)
        assert wrong.status_code == 403 and wrong.json()["code"] == "bad_setup_code"
        short = await http.post("/api/v1/auth/setup", json={**body, "setup_code": code, "password": "short"})
        assert short.status_code == 422 and short.json()["errors"][0]["loc"] == "body.password"

        # Typed by a person: lower case and without dashes is fine.
        done = await http.post(
            "/api/v1/auth/setup", json={**body, "setup_code": code.replace("-", "").lower()}
        )
        assert done.status_code == 201 and done.json() == {"username": "chief", "role": "admin"}
        assert not code_file.exists()
        state = (await http.get("/api/v1/auth/state")).json()
        assert state == {"setup_required": False, "user": {"username": "chief", "role": "admin"}}
        assert (await http.get("/api/v1/auth/users")).status_code == 200  # logged in by the setup

    async with anonymous(api_url(ctl)) as other:
        again = await other.post("/api/v1/auth/setup", json={**body, "setup_code": code, "username": "evil"})
        assert again.status_code == 409 and again.json()["code"] == "conflict"
        assert (
            await other.post("/api/v1/auth/login", json={"username": "evil", "password": PASSWORD})
        ).status_code == 401
    async with logged_in(api_url(ctl), "chief") as chief:
        assert (await chief.get("/api/v1/auth/state")).json()["user"]["username"] == "chief"


async def test_login_sets_strict_cookies_and_logout_ends_the_session() -> None:
    async with serve() as run:
        await with_users(run.security, tech="technician")
        async with anonymous(run.base_url) as http:
            assert (await http.get("/api/v1/health")).status_code == 401
            bad = await http.post(
                "/api/v1/auth/login", json={"username": "tech", "password": "wrong-password"}
            )
            assert bad.status_code == 401 and bad.json()["code"] == "bad_credentials"
            nobody = await http.post("/api/v1/auth/login", json={"username": "ghost", "password": PASSWORD})
            assert nobody.status_code == 401 and nobody.json() == bad.json()  # no hint who exists

            ok = await http.post("/api/v1/auth/login", json={"username": "tech", "password": PASSWORD})
            assert ok.status_code == 200 and ok.json() == {"username": "tech", "role": "technician"}
            cookies = {c.split("=", 1)[0]: c.lower() for c in ok.headers.get_list("set-cookie")}
            assert "httponly" in cookies[SESSION_COOKIE] and "httponly" not in cookies[CSRF_COOKIE]
            for c in cookies.values():
                assert "samesite=strict" in c and "path=/" in c and "secure" not in c  # plain HTTP here
            assert (await http.get("/api/v1/health")).status_code == 200

            out = await http.post("/api/v1/auth/logout", headers=csrf(http))
            assert out.status_code == 204
            assert SESSION_COOKIE not in http.cookies
            # The old cookie is dead on the server too, not only deleted in this browser.
            stale = anonymous(run.base_url)
            stale.cookies.set(SESSION_COOKIE, cookies[SESSION_COOKIE].split("=", 1)[1].split(";")[0])
            async with stale:
                assert (await stale.get("/api/v1/health")).status_code == 401


async def test_csrf_header_required_for_cookie_sessions_not_for_tokens() -> None:
    async with serve() as run:
        await with_users(run.security, tech="technician")
        async with logged_in(run.base_url, "tech") as http:
            path = "/api/v1/auth/logout"
            missing = await http.post(path)
            assert missing.status_code == 403 and missing.json()["code"] == "csrf"
            wrong = await http.post(path, headers={"x-csrf-token": "forged-by-another-site"})
            assert wrong.status_code == 403 and wrong.json()["code"] == "csrf"
            assert (await http.get("/api/v1/health")).status_code == 200  # reads need no header
            assert (await http.post(path, headers=csrf(http))).status_code == 204
        async with anonymous(run.base_url) as token_client:
            # A bearer token involves no cookie a browser would attach by itself: no header needed.
            r = await token_client.post(path, headers=bearer(run.security, "viewer"))
            assert r.status_code == 204


async def test_five_wrong_passwords_lock_the_account_until_the_lockout_ends(tmp_path: Path) -> None:
    clock = ManualClock()
    security = make_security(tmp_path, clock)
    async with serve(security=security) as run:
        await with_users(security, tech="technician")
        async with anonymous(run.base_url) as http:
            for _ in range(5):
                r = await http.post(
                    "/api/v1/auth/login", json={"username": "tech", "password": "guess-guess"}
                )
                assert r.status_code == 401
            right = {"username": "tech", "password": PASSWORD}
            locked = await http.post("/api/v1/auth/login", json=right)
            assert locked.status_code == 429 and locked.json()["code"] == "locked_out"
            assert 14 * 60 < locked.json()["retry_after_s"] <= 15 * 60
            assert locked.headers["retry-after"] == str(locked.json()["retry_after_s"])

            clock.advance(14 * 60)
            assert (await http.post("/api/v1/auth/login", json=right)).status_code == 429
            clock.advance(61)
            assert (await http.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_twenty_failures_from_one_address_lock_that_address(tmp_path: Path) -> None:
    clock = ManualClock()
    security = make_security(tmp_path, clock)
    async with serve(security=security) as run:
        await with_users(security, tech="technician")
        async with anonymous(run.base_url) as http:
            for i in range(20):  # 4 names x 5 would lock the names; spread over 20 names
                r = await http.post(
                    "/api/v1/auth/login", json={"username": f"u{i}", "password": "guess-guess"}
                )
                assert r.status_code == 401
            r = await http.post("/api/v1/auth/login", json={"username": "tech", "password": PASSWORD})
            assert r.status_code == 429
            clock.advance(15 * 60 + 1)
            r = await http.post("/api/v1/auth/login", json={"username": "tech", "password": PASSWORD})
            assert r.status_code == 200


async def test_sessions_expire_when_idle_and_after_seven_days(tmp_path: Path) -> None:
    clock = ManualClock()
    security = make_security(tmp_path, clock)
    async with serve(security=security) as run:
        await with_users(security, tech="technician")
        async with logged_in(run.base_url, "tech") as idle:
            clock.advance(11 * 3600)
            assert (await idle.get("/api/v1/health")).status_code == 200  # used: idle time restarts
            clock.advance(11 * 3600)
            assert (await idle.get("/api/v1/health")).status_code == 200
            clock.advance(12 * 3600 + 1)
            expired = await idle.get("/api/v1/health")
            assert expired.status_code == 401 and "log in again" in expired.json()["detail"]

        async with logged_in(run.base_url, "tech") as busy:
            statuses = []
            for _ in range(16):  # used every 11 h: never idle, but 7 days (168 h) is the end
                clock.advance(11 * 3600)
                statuses.append((await busy.get("/api/v1/health")).status_code)
            assert statuses == [200] * 15 + [401]  # 165 h still fine, 176 h over


async def test_sessions_survive_a_restart_of_the_api(tmp_path: Path) -> None:
    security = make_security(tmp_path)
    await with_users(security, tech="technician")
    async with anonymous("http://127.0.0.1") as http:
        async with serve(security=security) as run:
            login = {"username": "tech", "password": PASSWORD}
            assert (await http.post(run.base_url + "/api/v1/auth/login", json=login)).status_code == 200
        async with serve(security=make_security(tmp_path)) as run2:  # as a new process would load it
            r = await http.get(run2.base_url + "/api/v1/health")
            assert r.status_code == 200


async def test_password_change_ends_other_sessions_and_renews_this_one() -> None:
    async with serve() as run:
        await with_users(run.security, tech="technician")
        async with logged_in(run.base_url, "tech") as laptop, logged_in(run.base_url, "tech") as phone:
            new = "a much better passphrase"
            body = {"current_password": "not-the-password", "new_password": new}
            wrong = await laptop.post("/api/v1/auth/password", json=body, headers=csrf(laptop))
            assert wrong.status_code == 401 and wrong.json()["code"] == "bad_credentials"
            body["current_password"] = PASSWORD
            ok = await laptop.post("/api/v1/auth/password", json=body, headers=csrf(laptop))
            assert ok.status_code == 200
            assert (await laptop.get("/api/v1/health")).status_code == 200  # renewed cookies
            assert (await phone.get("/api/v1/health")).status_code == 401
        async with anonymous(run.base_url) as http:
            old = await http.post("/api/v1/auth/login", json={"username": "tech", "password": PASSWORD})
            assert old.status_code == 401
        async with logged_in(run.base_url, "tech", new):
            pass


async def test_users_roles_and_the_last_admin() -> None:
    async with serve() as run:
        admin = bearer(run.security, "admin")
        async with anonymous(run.base_url) as http:
            r = await http.post(
                "/api/v1/auth/users",
                json={"username": "boss", "password": PASSWORD, "role": "admin"},
                headers=admin,
            )
            assert r.status_code == 201 and r.json()["role"] == "admin"
            dup = await http.post(
                "/api/v1/auth/users",
                json={"username": "boss", "password": PASSWORD, "role": "viewer"},
                headers=admin,
            )
            assert dup.status_code == 409 and dup.json()["code"] == "conflict"
            demote = await http.patch("/api/v1/auth/users/boss", json={"role": "viewer"}, headers=admin)
            assert demote.status_code == 409 and "last admin" in demote.json()["detail"]
            remove = await http.delete("/api/v1/auth/users/boss", headers=admin)
            assert remove.status_code == 409

            await http.post(
                "/api/v1/auth/users",
                json={"username": "tech", "password": PASSWORD, "role": "technician"},
                headers=admin,
            )
            async with logged_in(run.base_url, "tech") as tech:
                assert (await tech.post("/api/v1/chargers/x/approve", headers=csrf(tech))).status_code != 403
                # A new role applies to open sessions at once.
                r = await http.patch("/api/v1/auth/users/tech", json={"role": "viewer"}, headers=admin)
                assert r.status_code == 200 and r.json()["role"] == "viewer"
                refused = await tech.post("/api/v1/chargers/x/approve", headers=csrf(tech))
                assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
                assert (await tech.get("/api/v1/auth/state")).json()["user"]["role"] == "viewer"
                # Deleting the account ends its sessions.
                assert (await http.delete("/api/v1/auth/users/tech", headers=admin)).status_code == 204
                assert (await tech.get("/api/v1/health")).status_code == 401

            listed = (await http.get("/api/v1/auth/users", params={"limit": 1}, headers=admin)).json()
            assert listed == {
                "items": [{"username": "boss", "role": "admin", "created": listed["items"][0]["created"]}],
                "limit": 1,
                "offset": 0,
                "next_offset": None,
            }
            assert "password" not in json.dumps(listed)
            assert (await http.delete("/api/v1/auth/users/ghost", headers=admin)).status_code == 404


async def test_api_tokens_are_shown_once_stored_hashed_and_revocable(tmp_path: Path) -> None:
    security = make_security(tmp_path)
    async with serve(security=security) as run, anonymous(run.base_url) as http:
        admin = bearer(security, "admin")
        made = await http.post(
            "/api/v1/auth/api-tokens", json={"name": "prometheus", "role": "viewer"}, headers=admin
        )
        assert made.status_code == 201
        token = made.json()["token"]
        assert token.startswith("se_") and made.json()["role"] == "viewer"
        scraper = {"authorization": f"Bearer {token}"}
        assert (await http.get("/metrics", headers=scraper)).status_code == 200
        assert (await http.post("/api/v1/chargers/x/approve", headers=scraper)).status_code == 403

        listed = (await http.get("/api/v1/auth/api-tokens", headers=admin)).json()["items"]
        assert "prometheus" in [t["name"] for t in listed] and token not in json.dumps(listed)
        assert token.encode() not in (tmp_path / "accounts.sqlite3").read_bytes()
        dup = await http.post(
            "/api/v1/auth/api-tokens", json={"name": "prometheus", "role": "admin"}, headers=admin
        )
        assert dup.status_code == 409

        state = (await http.get("/api/v1/auth/state", headers=scraper)).json()
        assert state["user"] == {"username": "token:prometheus", "role": "viewer"}
        assert (
            await http.delete(f"/api/v1/auth/api-tokens/{made.json()['id']}", headers=admin)
        ).status_code == 204
        gone = await http.get("/metrics", headers=scraper)
        assert gone.status_code == 401 and gone.json()["code"] == "unauthenticated"
        assert (await http.get("/metrics", headers={"authorization": "Basic abc"})).status_code == 401


async def test_audit_log_records_changes_newest_first_without_secrets() -> None:
    async with serve() as run:
        await with_users(run.security, tech="technician")
        admin = bearer(run.security, "admin")
        async with anonymous(run.base_url) as http:
            await http.post("/api/v1/auth/login", json={"username": "tech", "password": "secret-guess-1"})
            await http.post("/api/v1/auth/login", json={"username": "tech", "password": PASSWORD})
            await http.post("/api/v1/chargers/CP-9/approve", headers=csrf(http))
            await http.post("/api/v1/chargers/CP-9/approve")  # no CSRF header: refused, still recorded
            await http.get("/api/v1/health")  # reads are not audited
            await http.post(
                "/api/v1/auth/users",
                json={"username": "newbie", "password": "newbie-secret-pw", "role": "viewer"},
                headers=admin,
            )
            page = (await http.get("/api/v1/audit", params={"limit": 4}, headers=admin)).json()
            rest = (await http.get("/api/v1/audit", params={"offset": 4}, headers=admin)).json()
        entries = page["items"] + rest["items"]
        assert page["next_offset"] == 4 and rest["next_offset"] is None
        got = [(e["user"], e["role"], e["method"], e["path"], e["status"]) for e in entries]
        assert [g[4] for g in got] == [201, 403, 404, 200, 401]  # newest first
        token_name = got[0][0]
        assert token_name.startswith("token:test-admin-") and got[0][1] == "admin"
        assert got[1][:2] == ("tech", "technician") and got[2][:2] == ("tech", "technician")
        assert got[3][0] == "tech" and got[4][0] == "-"  # the failed login: nobody logged in yet
        assert entries[0]["summary"] == "create user 'newbie' as viewer"
        assert entries[4]["summary"] == "login as 'tech'" and entries[4]["client"] == "127.0.0.1"
        dump = json.dumps(entries)
        for secret in ("secret-guess-1", PASSWORD, "newbie-secret-pw"):
            assert secret not in dump
        async with anonymous(run.base_url) as viewer:
            r = await viewer.get("/api/v1/audit", headers=bearer(run.security, "technician"))
            assert r.status_code == 403


async def test_live_stream_works_with_the_session_cookie() -> None:
    async with serve() as run:
        await with_users(run.security, eve="viewer")
        async with logged_in(run.base_url, "eve") as http, http.stream("GET", "/api/v1/live") as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    assert json.loads(line[5:])["version"]
                    break
        async with anonymous(run.base_url) as nobody:
            assert (await nobody.get("/api/v1/live")).status_code == 401


async def next_data_or_end(lines: AsyncIterator[str]) -> str | None:
    """The next `data:` line of an SSE stream within 5 s, None when the server ended it."""
    async with asyncio.timeout(5):
        async for line in lines:
            if line.startswith("data:"):
                return line
    return None


async def test_live_stream_ends_when_its_session_logs_out_or_its_token_is_revoked() -> None:
    async with serve() as run:
        await with_users(run.security, eve="viewer")
        async with logged_in(run.base_url, "eve") as http, http.stream("GET", "/api/v1/live") as response:
            lines = response.aiter_lines()
            assert await next_data_or_end(lines) is not None
            async with anonymous(run.base_url) as other:
                other.cookies.update(http.cookies)
                assert (await other.post("/api/v1/auth/logout", headers=csrf(http))).status_code == 204
            # The stream held by the signed-out browser must not go on showing the site.
            assert await next_data_or_end(lines) is None
        admin = bearer(run.security, "admin")
        async with anonymous(run.base_url) as http:
            made = (
                await http.post(
                    "/api/v1/auth/api-tokens", json={"name": "wall", "role": "viewer"}, headers=admin
                )
            ).json()
            wall = {"authorization": f"Bearer {made['token']}"}
            async with http.stream("GET", "/api/v1/live", headers=wall) as response:
                lines = response.aiter_lines()
                assert await next_data_or_end(lines) is not None
                run.hub.notify()
                assert await next_data_or_end(lines) is not None  # still valid: updates flow
                r = await http.delete(f"/api/v1/auth/api-tokens/{made['id']}", headers=admin)
                assert r.status_code == 204
                assert await next_data_or_end(lines) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/login", b"{not json"),
        ("POST", "/api/v1/auth/login", b'{"username": 5, "password": []}'),
        ("POST", "/api/v1/auth/login", b'["a", "b"]'),
        ("POST", "/api/v1/auth/login", json.dumps({"username": "x" * 100_000, "password": "y"}).encode()),
        ("POST", "/api/v1/auth/login", b'{"username": "a", "password": "b", "extra": 1}'),
        ("POST", "/api/v1/auth/setup", b'{"setup_code": null}'),
        (
            "POST",
            "/api/v1/auth/users",
            b'{"username": "../etc", "password": "long enough pw", "role": "viewer"}',
        ),
        ("POST", "/api/v1/auth/users", b'{"username": "ok", "password": "long enough pw", "role": "root"}'),
        ("PATCH", "/api/v1/auth/users/nobody", b'{"password": "short"}'),
        ("POST", "/api/v1/auth/api-tokens", b'{"name": "", "role": "viewer"}'),
        ("GET", "/api/v1/audit?limit=0", b""),
        ("GET", "/api/v1/audit?limit=501", b""),
        ("GET", "/api/v1/audit?offset=-1", b""),
        ("GET", "/api/v1/audit?limit=abc", b""),
        ("GET", "/api/v1/no/such/route", b""),
        ("DELETE", "/api/v1/health", b""),
        ("POST", "/api/v1/auth/users", '{"username": "\u00e9\u0000"}'.encode()),
    ],
)
async def test_malformed_requests_get_a_reasoned_4xx_never_a_500(method: str, path: str, body: bytes) -> None:
    async with serve() as run, anonymous(run.base_url) as http:
        headers = {**bearer(run.security, "admin"), "content-type": "application/json"}
        r = await http.request(method, path, content=body, headers=headers)
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        problem = r.json()
        assert problem["detail"] and problem["code"] in {"invalid", "not_found", "method_not_allowed"}, (
            problem
        )
        if r.status_code == 422:
            assert problem["errors"] and all(set(e) == {"loc", "msg"} for e in problem["errors"])
        assert "y" * 50 not in r.text and "x" * 1000 not in r.text  # inputs are not echoed back


async def test_a_users_oldest_sessions_end_beyond_twenty() -> None:
    async with serve() as run:
        await with_users(run.security, tech="technician")
        async with logged_in(run.base_url, "tech") as first:
            for _ in range(19):
                async with logged_in(run.base_url, "tech"):
                    pass
            assert (await first.get("/api/v1/health")).status_code == 200  # 20 sessions: all alive
            async with logged_in(run.base_url, "tech") as newest:
                assert (await newest.get("/api/v1/health")).status_code == 200
                assert (await first.get("/api/v1/health")).status_code == 401

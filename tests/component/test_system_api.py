"""The System page's API against real controllers started from config files on disk."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller import __version__
from controller.app import SiteController, load_config
from hil.broker import Broker, free_port
from hil.siteconfig import SimCharger, SiteSpec, render
from tests.api import api_client, bearer, make_security

CP_SECRET = "cp1-secret-0123456789"  # OCPP security profile 1 password (16-40 characters)
MQTT_USER, MQTT_SECRET = "site-1", "correct horse battery"

StartFromFile = Callable[..., Awaitable[SiteController]]


@pytest.fixture
def password_broker() -> Iterator[Broker]:
    """A broker that only lets the site in with its MQTT password."""
    with Broker(users={MQTT_USER: MQTT_SECRET}) as b:
        yield b


def write_site(tmp_path: Path, broker: Broker, ocpp_port: int = 0, api_port: int = 0) -> Path:
    """site.toml with two secrets: the MQTT password and a charger's OCPP password."""
    spec = SiteSpec(
        data_dir=str(tmp_path / "data"),
        mqtt_url=broker.url,
        chargers=[SimCharger("CP-1", evses=1, password=CP_SECRET)],
        reconnect_max=1.0,
        free_vend=True,
        name="Old Name",
        ocpp_port=ocpp_port,
        api_port=api_port,
    )
    toml = render(spec).replace(
        "[mqtt]\n", f'[mqtt]\nusername = "{MQTT_USER}"\npassword = "{MQTT_SECRET}"  # from the CPO\n', 1
    )
    path = tmp_path / "site.toml"
    path.write_text(toml)
    return path


@pytest.fixture
def site_file(tmp_path: Path, password_broker: Broker) -> Path:
    """A site config file for an in-process controller (any free ports)."""
    return write_site(tmp_path, password_broker)


@pytest.fixture
async def start_from_file() -> AsyncIterator[StartFromFile]:
    """Factory: a SiteController started from a config file, as `siteedge run` does."""
    started: list[SiteController] = []

    async def start(path: Path, **kw: Any) -> SiteController:
        ctl = SiteController(load_config(path), config_path=path, **kw)
        await ctl.start()
        started.append(ctl)
        return ctl

    yield start
    for ctl in reversed(started):
        await ctl.stop()


def backups_of(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def text(path: Path) -> str:
    """A file's text (a helper, so async tests do not do path I/O inline)."""
    return path.read_text()


def raw(path: Path) -> bytes:
    """A file's bytes."""
    return path.read_bytes()


def resolved(path: Path) -> str:
    """The absolute path as the API reports it."""
    return str(path.resolve())


def spawn_run(path: Path) -> subprocess.Popen[str]:
    """`siteedge run --config path` as a child process, output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_status_reports_version_time_sync_uplink_disk_and_listeners(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    ctl = await start_from_file(site_file)
    async with api_client(ctl, "viewer") as http:

        async def connected() -> bool:
            return bool((await http.get("/api/v1/system")).json()["uplink"]["connected"])

        await until(connected, "the uplink (with the MQTT password from the file)")
        info = (await http.get("/api/v1/system")).json()
    assert info["version"] == __version__
    assert info["uptime_s"] >= 0
    assert info["time_sync"]["source"] == "adjtimex"  # Linux: the kernel was asked
    assert isinstance(info["time_sync"]["synchronized"], bool) and info["time_sync"]["detail"]
    assert isinstance(info["uplink"]["backlog"], int)
    assert info["listeners"] == {"ocpp": ctl.ocpp_port, "ocpp_tls": None, "api": ctl.api_port}
    assert info["config_path"] == resolved(site_file)
    assert info["restart_required"] is False
    data = info["data_dir"]
    assert data["path"] == resolved(site_file.parent / "data")
    assert data["siteedge_bytes"] > 0  # the outbox and journal files are there
    assert 0 < data["fs_free_bytes"] <= data["fs_total_bytes"]


async def test_config_view_redacts_every_secret(site_file: Path, start_from_file: StartFromFile) -> None:
    ctl = await start_from_file(site_file)
    async with api_client(ctl, "viewer") as http:
        r = await http.get("/api/v1/system/config")
    assert r.status_code == 200
    shown = r.json()["toml"]
    assert CP_SECRET not in shown and MQTT_SECRET not in shown
    assert 'password = "********"  # from the CPO' in shown  # comments and layout are the file's
    doc = tomllib.loads(shown)
    assert doc["mqtt"]["password"] == "********" and doc["chargers"][0]["password"] == "********"
    assert doc["mqtt"]["username"] == MQTT_USER  # not a secret
    assert doc["site"] == tomllib.loads(text(site_file))["site"]


async def test_check_reports_every_problem_with_key_and_reason(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    ctl = await start_from_file(site_file)
    before = raw(site_file)
    async with api_client(ctl, "technician") as http:
        shown = (await http.get("/api/v1/system/config")).json()["toml"]
        bad = shown.replace("heartbeat_interval = 60", "heartbeat_interval = 1\nnmae = 'typo'")
        bad = bad.replace('[api]\nhost = "127.0.0.1"', '[api]\nhost = 8080')
        r = await http.post("/api/v1/system/config/check", json={"toml": bad})
        unparseable = await http.post("/api/v1/system/config/check", json={"toml": "[site\nname = 1"})
        huge = await http.post("/api/v1/system/config/check", json={"toml": shown + "#" * 300_000})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    errors = {e["key"]: e["reason"] for e in body["errors"]}
    assert errors.keys() == {"ocpp.heartbeat_interval", "ocpp.nmae", "api.host"}, body["errors"]
    assert errors["ocpp.nmae"].startswith("unknown key")
    assert "must be a string" in errors["api.host"]
    assert "+heartbeat_interval = 1" in body["diff"]
    assert unparseable.status_code == 200
    assert unparseable.json()["valid"] is False and unparseable.json()["diff"] == ""
    [problem] = unparseable.json()["errors"]
    assert problem["key"] == "toml" and problem["reason"].startswith("not valid TOML")
    assert huge.json()["valid"] is False and huge.json()["errors"][0]["reason"].startswith("longer than")
    assert raw(site_file) == before and backups_of(site_file) == []  # a check changes nothing


async def test_check_diff_shows_the_change_and_never_a_secret(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    ctl = await start_from_file(site_file)
    async with api_client(ctl, "technician") as http:
        shown = (await http.get("/api/v1/system/config")).json()["toml"]
        edited = shown.replace('name = "Old Name"', 'name = "New Name"')
        same = (await http.post("/api/v1/system/config/check", json={"toml": edited})).json()
        new_secret = edited.replace('password = "********"  # from', 'password = "another one"  # from')
        changed = (await http.post("/api/v1/system/config/check", json={"toml": new_secret})).json()
    assert same == {"valid": True, "errors": [], "diff": same["diff"]}
    assert '-name = "Old Name"\n' in same["diff"] and '+name = "New Name"\n' in same["diff"]
    assert "password" not in same["diff"]  # an unchanged secret is not part of the change
    assert changed["valid"] is True
    assert '+password = "******** (changed)"  # from the CPO\n' in changed["diff"]
    for secret in (CP_SECRET, MQTT_SECRET, "another one"):
        assert secret not in changed["diff"]


async def test_put_writes_atomically_keeps_backups_and_the_next_start_uses_it(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    original = text(site_file)
    ctl = await start_from_file(site_file)
    async with api_client(ctl) as http:
        shown = (await http.get("/api/v1/system/config")).json()["toml"]
        r = await http.put(
            "/api/v1/system/config", json={"toml": shown.replace('name = "Old Name"', 'name = "New Name"')}
        )
        assert r.status_code == 200, r.text
        assert r.json()["applied"] is True and r.json()["restart_required"] is True
        [backup] = backups_of(site_file)
        assert text(backup) == original
        assert r.json()["backup"] == backup.name
        assert (await http.get("/api/v1/system")).json()["restart_required"] is True
        # The written file keeps the secrets the UI never saw, and everything else it sent.
        assert text(site_file) == original.replace('name = "Old Name"', 'name = "New Name"')
        for n in range(6):  # only the newest five backups stay
            r = await http.put("/api/v1/system/config", json={"toml": shown.replace("Old Name", f"Name {n}")})
            assert r.status_code == 200
        assert len(backups_of(site_file)) == 5
        assert "Name 4" in text(backups_of(site_file)[-1])
        audit = (await http.get("/api/v1/audit")).json()["items"]
        puts = [a for a in audit if a["method"] == "PUT" and a["path"] == "/api/v1/system/config"]
        assert len(puts) == 7 and puts[0]["summary"].startswith("config file replaced (previous kept as ")
        assert all(CP_SECRET not in str(a) and MQTT_SECRET not in str(a) for a in audit)
    await ctl.stop()

    again = await start_from_file(site_file)
    async with api_client(again, "viewer") as http:
        health = (await http.get("/api/v1/health")).json()

        async def connected() -> bool:
            return bool((await http.get("/api/v1/system")).json()["uplink"]["connected"])

        await until(connected, "the uplink with the kept MQTT password")
    assert health["site"]["name"] == "Name 5"


async def test_a_placeholder_without_a_secret_to_keep_is_refused(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    ctl = await start_from_file(site_file)
    before = raw(site_file)
    async with api_client(ctl) as http:
        shown = (await http.get("/api/v1/system/config")).json()["toml"]
        # A second charger whose password was "typed" as the placeholder: there is nothing to keep.
        added = shown + '\n[[chargers]]\nid = "CP-2"\npassword = "********"\n[[chargers.evses]]\n'
        added += 'ocpp_evse = 1\nevse_uid = "CP-2-1"\n'
        check = (await http.post("/api/v1/system/config/check", json={"toml": added})).json()
        put = await http.put("/api/v1/system/config", json={"toml": added})
    assert check["valid"] is False
    assert [e["key"] for e in check["errors"]] == ["chargers[1].password"]
    assert "placeholder" in check["errors"][0]["reason"]
    assert put.status_code == 422 and put.json()["code"] == "invalid"
    assert put.json()["errors"] == check["errors"]
    assert raw(site_file) == before and backups_of(site_file) == []


async def test_backup_and_restore_round_trip(
    site_file: Path, start_from_file: StartFromFile, charge_point: Callable[..., Any]
) -> None:
    original = text(site_file)
    ctl = await start_from_file(site_file)
    newcomer = await charge_point(ctl, "CP-NEW")
    await newcomer.boot()
    async with api_client(ctl) as http:
        assert (await http.post("/api/v1/chargers/CP-NEW/approve")).status_code == 200
        r = await http.get("/api/v1/system/backup")
        assert r.status_code == 200
        assert r.headers["content-disposition"].startswith('attachment; filename="siteedge-backup-DEMO01-')
        bundle = r.json()
        assert bundle["format"] == "siteedge-backup/1" and bundle["version"] == __version__
        assert bundle["config_toml"] == original  # with its secrets: a restore must work
        [entry] = [e for e in bundle["charger_registry"] if e["id"] == "CP-NEW"]
        assert entry["registration"] == "approved"

        # Later: someone renames the site and rejects the charger; the backup brings both back.
        shown = (await http.get("/api/v1/system/config")).json()["toml"]
        await http.put("/api/v1/system/config", json={"toml": shown.replace("Old Name", "Wrong Name")})
        assert (await http.post("/api/v1/chargers/CP-NEW/reject")).status_code == 200
        r = await http.post("/api/v1/system/restore", content=json.dumps(bundle))
        assert r.status_code == 200, r.text
        assert r.json()["applied"] is True and r.json()["restart_required"] is True
    assert text(site_file) == original
    await ctl.stop()

    again = await start_from_file(site_file)
    async with api_client(again, "viewer") as http:
        registry = (await http.get("/api/v1/chargers/registry")).json()
        health = (await http.get("/api/v1/health")).json()
    assert health["site"]["name"] == "Old Name"
    assert {c["id"]: c["registration"] for c in registry}["CP-NEW"] == "approved"


async def test_a_bad_bundle_is_refused_with_reasons_and_changes_nothing(
    site_file: Path, start_from_file: StartFromFile, charge_point: Callable[..., Any]
) -> None:
    ctl = await start_from_file(site_file)
    newcomer = await charge_point(ctl, "CP-NEW")
    await newcomer.boot()
    async with api_client(ctl) as http:
        good = (await http.get("/api/v1/system/backup")).json()
        before_file = raw(site_file)
        before_registry = (await http.get("/api/v1/chargers/registry")).json()
        cases: list[tuple[Any, int, set[str]]] = [
            ([1, 2], 422, {"bundle"}),
            ({**good, "format": "something-else/9"}, 422, {"format"}),
            ({**good, "config_toml": good["config_toml"].replace("port = 0", "port = 'x'", 1)}, 422,
             {"config_toml.ocpp.port"}),
            ({**good, "charger_registry": [{"id": "CP-NEW", "registration": "maybe"}, "x"]}, 422,
             {"charger_registry[0].registration", "charger_registry[1]"}),
            ({**good, "config_toml": "[site\n", "extra": 1}, 422, {"extra", "config_toml.toml"}),
        ]
        for bundle, status, keys in cases:
            r = await http.post("/api/v1/system/restore", content=json.dumps(bundle))
            assert r.status_code == status, (bundle, r.text)
            assert r.json()["code"] == "invalid" and r.json()["detail"]
            assert {e["key"] for e in r.json()["errors"]} == keys, r.json()
        not_json = await http.post("/api/v1/system/restore", content=b"{not json")
        assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
        assert (await http.get("/api/v1/chargers/registry")).json() == before_registry
    assert raw(site_file) == before_file and backups_of(site_file) == []


async def test_logs_newest_first_with_level_text_and_paging(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    ctl = await start_from_file(site_file)
    test_log = logging.getLogger("siteedge.test.system")
    test_log.warning("marker-7f3 first")
    test_log.error("marker-7f3 second")
    async with api_client(ctl, "viewer") as http:
        page = (await http.get("/api/v1/system/logs", params={"q": "MARKER-7F3"})).json()
        marker: dict[str, Any] = {"q": "marker-7f3"}
        errors_only = (await http.get("/api/v1/system/logs", params={**marker, "level": "error"})).json()
        first = (await http.get("/api/v1/system/logs", params={**marker, "limit": 1})).json()
        second = (await http.get("/api/v1/system/logs", params={**marker, "limit": 1, "offset": 1})).json()
        by_logger = (await http.get("/api/v1/system/logs", params={"q": "siteedge.test.system"})).json()
        bad_level = await http.get("/api/v1/system/logs", params={"level": "loud"})
        bad_limit = await http.get("/api/v1/system/logs", params={"limit": 0})
    assert [i["message"] for i in page["items"]] == ["marker-7f3 second", "marker-7f3 first"]
    assert page["items"][0]["level"] == "ERROR" and page["items"][0]["logger"] == "siteedge.test.system"
    assert page["next_offset"] is None and page["limit"] == 50 and page["offset"] == 0
    assert [i["message"] for i in errors_only["items"]] == ["marker-7f3 second"]
    assert [i["message"] for i in first["items"]] == ["marker-7f3 second"] and first["next_offset"] == 1
    assert [i["message"] for i in second["items"]] == ["marker-7f3 first"] and second["next_offset"] is None
    assert len(by_logger["items"]) == 2
    assert bad_level.status_code == 422 and "level must be one of" in bad_level.json()["detail"]
    assert bad_limit.status_code == 422 and bad_limit.json()["code"] == "invalid"


async def test_malformed_bodies_get_4xx_never_500(site_file: Path, start_from_file: StartFromFile) -> None:
    ctl = await start_from_file(site_file)
    before = raw(site_file)
    async with api_client(ctl) as http:
        attempts: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/api/v1/system/config/check", {"content": b"not json"}),
            ("POST", "/api/v1/system/config/check", {"json": {}}),
            ("POST", "/api/v1/system/config/check", {"json": {"toml": 5}}),
            ("POST", "/api/v1/system/config/check", {"json": ["toml"]}),
            ("POST", "/api/v1/system/config/check", {"json": {"toml": "x" * 1_000_001}}),
            ("PUT", "/api/v1/system/config", {"json": {"toml": None}}),
            ("PUT", "/api/v1/system/config", {"json": {"toml": "\x00\x01 = ["}}),
            ("PUT", "/api/v1/system/config", {"json": {"toml": ""}}),
            ("PUT", "/api/v1/system/config", {"json": {"toml": "a = {b = [[[[[[[]]]]]]]}"}}),
            ("PUT", "/api/v1/system/config", {"json": {"toml": "a = " + "[" * 600 + "]" * 600}}),
            ("PUT", "/api/v1/system/config", {"json": {"toml": "a" + ".b" * 200 + " = 1"}}),
            ("POST", "/api/v1/system/restore", {"content": b""}),
            ("POST", "/api/v1/system/restore", {"content": b"[" * 100_000}),
            ("POST", "/api/v1/system/restore", {"json": {"format": "siteedge-backup/1"}}),
        ]
        for method, path, kw in attempts:
            r = await http.request(method, path, **kw)
            assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:200])
            assert r.json()["code"] == "invalid", r.text[:200]
    assert raw(site_file) == before and backups_of(site_file) == []


async def test_without_a_config_file_editing_and_restart_answer_409(
    site_spec: SiteSpec, start_controller: Callable[[SiteSpec], Awaitable[SiteController]]
) -> None:
    ctl = await start_controller(site_spec)  # built from a Config, as most tests do: no file
    async with api_client(ctl) as http:
        info = (await http.get("/api/v1/system")).json()
        answers = [
            await http.get("/api/v1/system/config"),
            await http.post("/api/v1/system/config/check", json={"toml": ""}),
            await http.put("/api/v1/system/config", json={"toml": ""}),
            await http.get("/api/v1/system/backup"),
            await http.post("/api/v1/system/restore", json={}),
            await http.post("/api/v1/system/restart"),
        ]
    assert info["config_path"] is None and info["restart_required"] is False
    for r in answers:
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "conflict"
    assert "config file" in answers[0].json()["detail"]
    assert "siteedge run" in answers[-1].json()["detail"]


async def test_restart_asks_the_runner_after_answering(
    site_file: Path, start_from_file: StartFromFile
) -> None:
    asked = asyncio.Event()
    ctl = await start_from_file(site_file, on_restart=asked.set)
    async with api_client(ctl) as http:
        r = await http.post("/api/v1/system/restart")
        again = await http.post("/api/v1/system/restart")
    assert r.status_code == 202 and r.json() == {"restarting": True}
    assert again.status_code == 202
    await asyncio.wait_for(asked.wait(), 10)


async def test_restart_re_executes_siteedge_run_which_reads_the_new_config(
    tmp_path: Path, password_broker: Broker
) -> None:
    api_port = free_port()
    path = write_site(tmp_path, password_broker, ocpp_port=free_port(), api_port=api_port)
    # An admin token provisioned in the data dir before the first start (no ctl object to ask).
    headers = bearer(make_security(tmp_path / "data"), "admin")
    proc = spawn_run(path)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=10, trust_env=False
        ) as http:

            async def serving(name: str) -> bool:
                try:
                    r = await http.get("/api/v1/health")
                except httpx.HTTPError:
                    return False
                return r.status_code == 200 and r.json()["site"]["name"] == name

            await until(lambda: serving("Old Name"), "siteedge run to serve", within=30)
            before = (await http.get("/api/v1/system")).json()
            shown = (await http.get("/api/v1/system/config")).json()["toml"]
            renamed = shown.replace("Old Name", "New Name")
            put = await http.put("/api/v1/system/config", json={"toml": renamed})
            assert put.status_code == 200, put.text
            r = await http.post("/api/v1/system/restart")
            assert r.status_code == 202, r.text
            await until(lambda: serving("New Name"), "the restarted siteedge with the new config", within=30)
            after = (await http.get("/api/v1/system")).json()

            async def connected() -> bool:
                return bool((await http.get("/api/v1/system")).json()["uplink"]["connected"])

            await until(connected, "the uplink after the restart (MQTT password kept)")
        assert before["pid"] == after["pid"] == proc.pid and proc.poll() is None  # same process, re-executed
        assert after["started"] > before["started"] and after["restart_required"] is False
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        assert "restart requested; shutting down" in output and "restarting:" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

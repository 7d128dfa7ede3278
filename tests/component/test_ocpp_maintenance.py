"""Firmware updates and log uploads from the API, with the charger's progress in the site's health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.app import SiteController
from controller.core.events import ChargerReported
from controller.core.maintenance import SECURITY_EVENTS_KEPT
from hil.siteconfig import SiteSpec
from tests.api import api_client
from tests.component.test_ocpp_commands import until

Booted = Callable[..., Awaitable[tuple[SiteController, Any]]]


@pytest.fixture
def boot(site_spec: SiteSpec, start_controller: Any, charge_point: Any) -> Booted:
    """Factory: a controller with CP-1 (two connectors, 1.6 unless `version`) connected and booted."""

    async def start(version: str = "1.6", **kw: Any) -> tuple[SiteController, Any]:
        ctl: SiteController = await start_controller(site_spec)
        cp = await charge_point(ctl, version=version, connectors=2, **kw)
        await cp.boot()
        return ctl, cp

    return start


def charger_of(ctl: SiteController, charger_id: str = "CP-1") -> dict[str, Any]:
    return next(c for c in ctl.site.health()["chargers"] if c["id"] == charger_id)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_technician_updates_firmware_and_sees_each_stage_until_the_new_version_boots(
    boot: Booted, version: str
) -> None:
    ctl, cp = await boot(version, reconnect=True)
    seen: list[str] = []  # every firmware status the charger reported, in order
    ctl.bus.subscribe(
        ChargerReported,
        lambda e: seen.append(e.data["status"]) if e.message == "FirmwareStatusNotification" else None,
    )
    async with api_client(ctl, "technician") as http:
        r = await http.post(
            "/api/v1/chargers/CP-1/firmware", json={"location": "https://fw.example.test/ac/fw-2.1.0.bin"}
        )
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
        await until(lambda: (charger_of(ctl).get("firmware_update") or {}).get("status") == "Installed")
        final = (await http.get("/api/v1/health")).json()
    [me] = [c for c in final["chargers"] if c["id"] == "CP-1"]
    assert me["firmware"] == "2.1.0"  # from the BootNotification after the reboot
    progress = me["firmware_update"]
    assert (progress["state"], progress["step"], progress["steps"][progress["step"]]) == (
        "done",
        3,
        "installed",
    )
    expected = ["Downloading", "Downloaded", "Installing", "Installed"]
    if version == "2.0.1":
        expected.insert(3, "InstallRebooting")
        # The request id siteedge chose travels with every status note.
        [(_, sent)] = [c for c in cp.received if c[0] == "UpdateFirmware"]
        assert progress["request_id"] == sent["requestId"]
        assert (
            sent["firmware"]["location"].endswith("fw-2.1.0.bin") and "retrieveDateTime" in sent["firmware"]
        )
    else:
        [(_, sent)] = [c for c in cp.received if c[0] == "UpdateFirmware"]
        assert "retrieveDate" in sent and progress["request_id"] is None
    assert seen == expected


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_failed_download_and_a_failed_upload_are_shown_as_failed(boot: Booted, version: str) -> None:
    ctl, cp = await boot(version)
    cp.firmware_fails, cp.log_upload_fails = "DownloadFailed", True
    async with api_client(ctl, "technician") as http:
        location = "ftp://fitter:s3cret-pw@10.0.0.9/fw.bin"  # credentials in the address
        r = await http.post("/api/v1/chargers/CP-1/firmware", json={"location": location})
        assert r.json()["status"] == "accepted"
        await until(lambda: (charger_of(ctl).get("firmware_update") or {}).get("state") == "failed")
        r = await http.post("/api/v1/chargers/CP-1/logs", json={"location": "ftp://10.0.0.9/logs/"})
        assert r.json()["status"] == "accepted"
        await until(lambda: (charger_of(ctl).get("log_upload") or {}).get("state") == "failed")
        # The OCPP log shows the address without its password; the charger got it whole.
        await asyncio.to_thread(ctl.message_log.flush)
        logged = (
            await http.get("/api/v1/chargers/CP-1/messages", params={"action": "UpdateFirmware"})
        ).json()
    assert "s3cret-pw" not in str(logged["items"])
    sent = [m for m in logged["items"] if m["direction"] == "out"]
    wire = sent[0]["payload"]
    assert (wire.get("location") or wire["firmware"]["location"]) == "ftp://***@10.0.0.9/fw.bin"
    assert location in str(cp.received)
    me = charger_of(ctl)
    assert me["firmware_update"]["status"] == "DownloadFailed" and me["firmware_update"]["step"] == 0
    assert me["firmware"] == "1.0.0"  # nothing was installed
    assert me["log_upload"]["status"] == ("UploadFailed" if version == "1.6" else "UploadFailure")
    # 1.6 asks with GetDiagnostics, 2.0.1 with GetLog for the diagnostics log.
    asked = [c for c in cp.received if c[0] in ("GetDiagnostics", "GetLog")]
    assert [c[0] for c in asked] == ["GetDiagnostics" if version == "1.6" else "GetLog"]
    if version == "2.0.1":
        assert asked[0][1]["logType"] == "DiagnosticsLog"
        assert asked[0][1]["log"]["remoteLocation"] == "ftp://10.0.0.9/logs/"


async def test_a_log_upload_reports_uploaded(boot: Booted) -> None:
    ctl, _cp = await boot()
    async with api_client(ctl, "technician") as http:
        r = await http.post("/api/v1/chargers/CP-1/logs", json={"location": "https://logs.example.test/up"})
        assert r.json()["status"] == "accepted"
    await until(lambda: (charger_of(ctl).get("log_upload") or {}).get("state") == "done")
    assert charger_of(ctl)["log_upload"]["status"] == "Uploaded"


async def test_a_16_charger_without_diagnostics_says_so_instead_of_leaving_the_upload_pending(
    boot: Booted,
) -> None:
    ctl, cp = await boot()
    cp.has_diagnostics = False
    async with api_client(ctl, "technician") as http:
        r = await http.post("/api/v1/chargers/CP-1/logs", json={"location": "https://logs.example.test/up"})
    assert r.status_code == 200
    assert r.json()["status"] == "rejected" and "no diagnostics" in r.json()["detail"]


async def test_bad_firmware_and_log_requests_are_refused_with_the_reason_and_nothing_is_sent(
    boot: Booted,
) -> None:
    ctl, cp = await boot()
    async with api_client(ctl, "technician") as http:
        for body in (
            {"location": "file:///etc/passwd"},
            {"location": "fw.bin"},
            {"location": "https://x.test/fw.bin", "retries": -1},
            {"location": "https://x.test/fw.bin", "retrieve_at": "2026-01-01T00:00:00"},  # no offset
            {"location": "https://x.test/fw.bin", "colour": "red"},
            {},
        ):
            r = await http.post("/api/v1/chargers/CP-1/firmware", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["errors"] and all(e["loc"] and e["msg"] for e in r.json()["errors"]), r.json()
        r = await http.post("/api/v1/chargers/CP-1/logs", json={"location": "gopher://x.test/"})
        assert r.status_code == 422
        assert "must be an absolute http, https, ftp, ftps, sftp URL" in r.json()["detail"]
        r = await http.post("/api/v1/chargers/CP-9/firmware", json={"location": "https://x.test/fw.bin"})
        assert r.status_code == 200 and r.json()["status"] == "offline"
    async with api_client(ctl, "viewer") as http:
        r = await http.post("/api/v1/chargers/CP-1/logs", json={"location": "https://x.test/"})
        assert r.status_code == 403
    assert not [c for c in cp.received if c[0] in ("UpdateFirmware", "GetDiagnostics")]


async def test_a_scheduled_update_waits_for_its_time_and_a_201_station_says_download_scheduled(
    boot: Booted,
) -> None:
    ctl, _cp = await boot("2.0.1", reconnect=True)
    reports: list[tuple[str, datetime]] = []  # (status, when siteedge heard it)
    ctl.bus.subscribe(
        ChargerReported,
        lambda e: (
            reports.append((e.data["status"], e.at)) if e.message == "FirmwareStatusNotification" else None
        ),
    )
    at = datetime.now(UTC) + timedelta(seconds=4)
    async with api_client(ctl, "technician") as http:
        body = {"location": "https://fw.example.test/fw-3.0.bin", "retrieve_at": at.isoformat()}
        assert (await http.post("/api/v1/chargers/CP-1/firmware", json=body)).json()["status"] == "accepted"
    await until(
        lambda: (charger_of(ctl).get("firmware_update") or {}).get("status") == "Installed", within=30
    )
    assert charger_of(ctl)["firmware"] == "3.0"
    statuses = [status for status, _ in reports]
    assert statuses[:2] == ["DownloadScheduled", "Downloading"] and statuses[-1] == "Installed"
    # Scheduled at once; the download itself waited for the requested time.
    assert reports[0][1] < at <= reports[1][1]
    # A station that updated itself says so as a security event (OCPP 2.0.1 FirmwareUpdated).
    await until(lambda: bool(charger_of(ctl)["security_events"]))
    assert charger_of(ctl)["security_events"][0]["type"] == "FirmwareUpdated"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_security_events_are_kept_newest_first_and_bounded(boot: Booted, version: str) -> None:
    ctl, cp = await boot(version)
    await cp.security_event("TamperDetectionActivated", "lid opened")
    for n in range(SECURITY_EVENTS_KEPT):
        await cp.security_event("InvalidMessages", f"burst {n}")
    await until(lambda: len(charger_of(ctl)["security_events"]) == SECURITY_EVENTS_KEPT)
    await until(
        lambda: charger_of(ctl)["security_events"][0]["tech_info"] == f"burst {SECURITY_EVENTS_KEPT - 1}"
    )
    events = charger_of(ctl)["security_events"]
    assert [e["type"] for e in events] == ["InvalidMessages"] * SECURITY_EVENTS_KEPT  # the oldest fell out
    assert events[0]["at"].endswith("Z") and events[0]["received"].endswith("Z")
    # Every one of them stays in the persisted OCPP message log.
    async with api_client(ctl, "viewer") as http:
        for _ in range(100):  # the log commits in groups: give it a moment
            r = await http.get(
                "/api/v1/chargers/CP-1/messages", params={"action": "SecurityEventNotification"}
            )
            logged = [m for m in r.json()["items"] if m["direction"] == "in"]
            if len(logged) > SECURITY_EVENTS_KEPT:
                break
            await asyncio.sleep(0.1)
    assert len(logged) == SECURITY_EVENTS_KEPT + 1


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_an_accepted_request_shows_requested_and_a_late_note_of_another_request_is_ignored(
    boot: Booted, version: str
) -> None:
    ctl, cp = await boot(version)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()  # nothing is fetched before then
    async with api_client(ctl, "technician") as http:
        body = {"location": "https://fw.example.test/fw-4.0.bin", "retrieve_at": later}
        assert (await http.post("/api/v1/chargers/CP-1/firmware", json=body)).json()["status"] == "accepted"
    [(_, sent)] = [c for c in cp.received if c[0] == "UpdateFirmware"]
    request_id = sent.get("requestId")
    if version == "1.6":
        # A 1.6 charger says nothing until the fetch time: the site shows what it asked for.
        progress = charger_of(ctl)["firmware_update"]
        assert (progress["status"], progress["state"], progress["request_id"]) == (
            "Requested",
            "requested",
            None,
        )
        return
    # A 2.0.1 station answers DownloadScheduled for our request; a note about another (older) request
    # that arrives late must not replace it.
    await until(lambda: charger_of(ctl)["firmware_update"]["status"] == "DownloadScheduled")
    assert charger_of(ctl)["firmware_update"]["request_id"] == request_id
    await cp._notify(cp._firmware_status("InstallationFailed", request_id - 1))
    await cp.heartbeat()  # handled after the note: the note was processed by now
    assert charger_of(ctl)["firmware_update"]["status"] == "DownloadScheduled"

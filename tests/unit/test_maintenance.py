"""Firmware and log progress from both OCPP versions' status words."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.core.maintenance import progress_of
from controller.core.ports import CommandStatus
from controller.ocpp.commands import _status_of

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def stage(message: str, status: str, **more: object) -> tuple[str, int, str]:
    p = progress_of(message, {"status": status, **more}, AT)
    assert p is not None
    j = p.as_json()
    return j["steps"][j["step"]], j["step"], j["state"]


def test_firmware_words_of_both_versions_map_to_one_progress() -> None:
    assert stage("FirmwareStatusNotification", "Downloading") == ("download", 0, "running")
    assert stage("FirmwareStatusNotification", "DownloadFailed") == ("download", 0, "failed")
    assert stage("FirmwareStatusNotification", "SignatureVerified") == ("verify", 1, "running")
    assert stage("SignedFirmwareStatusNotification", "InvalidSignature") == ("verify", 1, "failed")
    assert stage("FirmwareStatusNotification", "InstallRebooting") == ("install", 2, "running")
    assert stage("FirmwareStatusNotification", "InstallationFailed") == ("install", 2, "failed")
    assert stage("FirmwareStatusNotification", "Installed") == ("installed", 3, "done")
    assert stage("FirmwareStatusNotification", "Idle")[2] == "idle"


def test_log_words_of_both_versions_and_request_ids() -> None:
    assert stage("DiagnosticsStatusNotification", "UploadFailed") == ("upload", 0, "failed")
    assert stage("LogStatusNotification", "UploadFailure") == ("upload", 0, "failed")
    assert stage("LogStatusNotification", "Uploaded") == ("uploaded", 1, "done")
    p = progress_of("LogStatusNotification", {"status": "Uploading", "request_id": 42}, AT)
    assert p is not None and p.as_json()["request_id"] == 42 and p.kind == "logs"


def test_other_notifications_and_odd_payloads_are_not_progress() -> None:
    assert progress_of("SecurityEventNotification", {"status": "x"}, AT) is None
    assert progress_of("FirmwareStatusNotification", {}, AT) is None
    odd = progress_of("FirmwareStatusNotification", {"status": "VendorSpecificThing", "request_id": True}, AT)
    assert odd is not None and odd.as_json()["state"] == "running" and odd.request_id is None


def test_a_201_reply_accepted_canceled_counts_as_accepted_not_rejected() -> None:
    # UpdateFirmware / GetLog: "AcceptedCanceled" = accepted, and the earlier request was cancelled.
    assert _status_of("UpdateFirmware", {"status": "AcceptedCanceled"}) is CommandStatus.ACCEPTED
    assert _status_of("GetLog", {"status": "Rejected"}) is CommandStatus.REJECTED

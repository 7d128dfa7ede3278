"""Firmware updates, log uploads and security events as the chargers report them, in both versions (pure).

OCPP 1.6 FirmwareStatusNotification / DiagnosticsStatusNotification and 2.0.1 (and the 1.6
security extension's) FirmwareStatusNotification / LogStatusNotification use different words for
the same stages; the technician sees one progress: a step of a fixed list and a state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core.clock import rfc3339
from controller.core.events import ChargerReported

FIRMWARE_STEPS = ("download", "verify", "install", "installed")
LOG_STEPS = ("upload", "uploaded")

REQUESTED = "Requested"  # siteedge's own word: accepted by the charger, no note from it yet

# status -> (step index, state); state is requested | running | done | failed | idle
_FIRMWARE: dict[str, tuple[int, str]] = {
    REQUESTED: (0, "requested"),
    "Idle": (0, "idle"),
    "DownloadScheduled": (0, "running"),
    "Downloading": (0, "running"),
    "DownloadPaused": (0, "running"),
    "DownloadFailed": (0, "failed"),
    "Downloaded": (1, "running"),
    "SignatureVerified": (1, "running"),
    "InvalidSignature": (1, "failed"),
    "InstallVerificationFailed": (1, "failed"),
    "InstallScheduled": (2, "running"),
    "Installing": (2, "running"),
    "InstallRebooting": (2, "running"),
    "InstallationFailed": (2, "failed"),
    "Installed": (3, "done"),
}
_LOG: dict[str, tuple[int, str]] = {
    REQUESTED: (0, "requested"),
    "Idle": (0, "idle"),
    "Uploading": (0, "running"),
    "Uploaded": (1, "done"),
    "UploadFailed": (0, "failed"),  # 1.6
    "UploadFailure": (0, "failed"),  # 2.0.1
    "BadMessage": (0, "failed"),
    "NotSupportedOperation": (0, "failed"),
    "PermissionDenied": (0, "failed"),
    "AcceptedCanceled": (0, "idle"),  # a newer request replaced this one
}
FIRMWARE_MESSAGES = frozenset({"FirmwareStatusNotification", "SignedFirmwareStatusNotification"})
LOG_MESSAGES = frozenset({"DiagnosticsStatusNotification", "LogStatusNotification"})
# The ChargerReported messages the site keeps (the rest, DataTransfer, NotifyEvent, ..., change no state).
KEPT_MESSAGES = FIRMWARE_MESSAGES | LOG_MESSAGES | {"SecurityEventNotification"}


@dataclass(frozen=True, slots=True)
class Progress:
    """The latest reported stage of a firmware update or log upload of one charger."""

    kind: str  # firmware | logs
    status: str  # the charger's own word
    at: datetime
    request_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """{"kind", "status", "at", "request_id", "step", "steps", "state"} for the API and UI."""
        steps = FIRMWARE_STEPS if self.kind == "firmware" else LOG_STEPS
        table = _FIRMWARE if self.kind == "firmware" else _LOG
        # A word outside the spec (a vendor's own) is shown as it came, neither done nor failed.
        step, state = table.get(self.status, (0, "running"))
        return {
            "kind": self.kind,
            "status": self.status,
            "at": rfc3339(self.at),
            "request_id": self.request_id,
            "step": step,
            "steps": list(steps),
            "state": state,
        }


def follows(current: Progress | None, note: Progress) -> bool:
    """Does a status note belong to the operation shown? A 2.0.1 note of another request does not."""
    return current is None or current.request_id is None or note.request_id in (None, current.request_id)


def progress_of(message: str, data: dict[str, Any], at: datetime) -> Progress | None:
    """The progress a charger notification reports, None if it is not about firmware or logs."""
    if message in FIRMWARE_MESSAGES:
        kind = "firmware"
    elif message in LOG_MESSAGES:
        kind = "logs"
    else:
        return None
    status = data.get("status")
    if not isinstance(status, str):
        return None
    rid = data.get("request_id")
    return Progress(kind, status, at, rid if isinstance(rid, int) and not isinstance(rid, bool) else None)


SECURITY_EVENTS_KEPT = 10  # per charger, in memory: the page shows the recent ones, the message log has all


def security_event(event: ChargerReported) -> dict[str, Any]:
    """A SecurityEventNotification as {"type", "at", "tech_info", "received"} (the charger's time in "at")."""
    data = event.data
    kind, at, info = data.get("type"), data.get("timestamp"), data.get("tech_info")
    # The schema bounds type (50) and techInfo (255) but not the timestamp's length: cap it.
    return {
        "type": kind[:50] if isinstance(kind, str) else "unknown",
        "at": at if isinstance(at, str) and len(at) <= 40 else rfc3339(event.at),
        "tech_info": info[:255] if isinstance(info, str) else None,
        "received": rfc3339(event.at),
    }

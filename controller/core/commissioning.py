"""Commissioning decisions: what a booting charger is told."""

from __future__ import annotations

from enum import StrEnum


class BootAnswer(StrEnum):
    """RegistrationStatus, identical in OCPP 1.6 and 2.0.1."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


def boot_answer(configured: bool, unknown_policy: str) -> BootAnswer:
    """A configured charger is Accepted; an unknown one Pending (awaits approval) or Rejected."""
    if configured:
        return BootAnswer.ACCEPTED
    return BootAnswer.REJECTED if unknown_policy == "rejected" else BootAnswer.PENDING


class Registration(StrEnum):
    """A charger's standing in the registry."""

    APPROVED = "approved"  # configured, or approved by a technician
    WAITING = "waiting"  # seen booting, waits for a technician's approval
    REJECTED = "rejected"  # refused by a technician


def decide_boot(registration: Registration | None, unknown_policy: str) -> BootAnswer:
    """The BootNotification answer for a charger's registration (None: never seen)."""
    if registration is Registration.APPROVED:
        return BootAnswer.ACCEPTED
    if registration is Registration.REJECTED:
        return BootAnswer.REJECTED
    return boot_answer(False, unknown_policy)


def may_send(registration: Registration | None, last_answer: str | None) -> bool:
    """May the charger send calls other than BootNotification?

    OCPP chargers boot after a power-up, not after every reconnect, so the last boot answer is
    remembered across connections and restarts: an approved charger whose last boot was Accepted
    goes on talking; one that never booted, or was last told Pending or Rejected, must boot first
    (2.0.1 B02.FR / B03.FR: anything else gets CALLERROR SecurityError).
    """
    return registration is Registration.APPROVED and last_answer == BootAnswer.ACCEPTED.value

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

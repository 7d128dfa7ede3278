"""What an OCPP session needs from the rest of siteedge: where to send events, what time it is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from controller.core.clock import Clock
from controller.core.commissioning import BootAnswer, boot_answer
from controller.core.config import ChargerSettings, Config
from controller.core.msglog import OcppFrame
from controller.core.ports import MessageLog, TransactionJournal
from controller.core.registry import ChargerRegistry
from controller.core.stats import OcppStats
from controller.core.tokens import Authorizer
from controller.core.transactions import MemoryJournal
from controller.ocpp.sessions import Sessions


class FrameLog(MessageLog, Protocol):
    """The message log as the OCPP server writes it: also the text of well-formed frames."""

    def record_text(
        self,
        charger_id: str,
        at: datetime,
        direction: str,
        message_type: int,
        unique_id: str,
        action: str | None,
        text: str,
    ) -> None:
        """Queue a well-formed frame's text as it went over the wire; the log redacts secrets."""
        ...


@dataclass(frozen=True, slots=True)
class OcppContext:
    """Shared by every charger connection: configuration, clock, event sink, registry, log."""

    config: Config
    clock: Clock
    emit: Callable[[object], None]
    registry: ChargerRegistry | None = None  # None: only configured chargers are approved
    message_log: FrameLog | None = None  # None: frames are not logged
    # Restored after an accidental overwrite (connection-level engineer); check against the original.
    journal: TransactionJournal = field(default_factory=MemoryJournal)
    sessions: Sessions = field(default_factory=Sessions)
    authorizer: Authorizer | None = None  # None: every token is accepted (free vend)
    stats: OcppStats = field(default_factory=OcppStats)  # traffic counters and latencies (/metrics)

    def charger(self, charger_id: str) -> ChargerSettings | None:
        """The charger's configuration, None if it is not configured."""
        return next((c for c in self.config.chargers if c.id == charger_id), None)

    def is_configured(self, charger_id: str) -> bool:
        """True if the charger is approved: configured, or approved in the registry."""
        if self.registry is not None:
            return self.registry.is_approved(charger_id)
        return self.charger(charger_id) is not None

    def boot_answer(self, charger_id: str) -> BootAnswer:
        """What the charger is told when it boots (registration and the unknown-charger policy)."""
        if self.registry is not None:
            return self.registry.boot_answer(charger_id)
        return boot_answer(self.is_configured(charger_id), self.config.ocpp.unknown_chargers)

    def may_send(self, charger_id: str) -> bool:
        """May the charger send calls other than BootNotification (its last boot was Accepted)?"""
        return self.registry.may_send(charger_id) if self.registry is not None else True

    def record_boot(self, charger_id: str, answer: str, boot: Mapping[str, Any]) -> None:
        """Remember a boot and the answer it got."""
        if self.registry is not None:
            self.registry.record_boot(charger_id, answer, boot)

    def log_frame(self, frame: OcppFrame) -> None:
        """Hand a redacted frame to the message log, if there is one."""
        if self.message_log is not None:
            self.message_log.record(frame)

    def log_text(
        self, charger_id: str, direction: str, kind: int, uid: str, action: str | None, text: str
    ) -> None:
        """Hand a well-formed frame's text to the message log (which redacts), if there is one."""
        if self.message_log is not None:
            self.message_log.record_text(charger_id, self.clock.now(), direction, kind, uid, action, text)

    def password_of(self, charger_id: str) -> str | None:
        """The charger's security-profile-1 password, None if it has none."""
        c = self.charger(charger_id)
        return c.password if c is not None else None

    def evse_uid(self, charger_id: str, ocpp_evse: int | None) -> str | None:
        """The OCPI evse_uid of a charger's OCPP EVSE/connector number, None if not mapped."""
        c = self.charger(charger_id)
        if c is None or ocpp_evse is None:
            return None
        return next((e.evse_uid for e in c.evses if e.ocpp_evse == ocpp_evse), None)

    def security_profile(self, charger_id: str) -> int:
        """The charger's configured security profile, else its registry credential's (0: none)."""
        c = self.charger(charger_id)
        if c is not None:
            return c.security_profile
        return self.registry.security_profile(charger_id) if self.registry is not None else 0

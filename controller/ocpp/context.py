"""What an OCPP session needs from the rest of siteedge: where to send events, what time it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.core.clock import Clock
from controller.core.config import Config


@dataclass(frozen=True, slots=True)
class OcppContext:
    """Shared by every charger connection: configuration, clock and the event sink."""

    config: Config
    clock: Clock
    emit: Callable[[object], None]

    def is_configured(self, charger_id: str) -> bool:
        """True if the charger is in the site configuration (its boot is Accepted)."""
        return any(c.id == charger_id for c in self.config.chargers)

    def password_of(self, charger_id: str) -> str | None:
        """The charger's security-profile-1 password, None if it has none."""
        return next((c.password for c in self.config.chargers if c.id == charger_id), None)

"""What the web API needs from the rest of the box: a read-only view of the site."""

from __future__ import annotations

from typing import Any, Protocol


class SiteView(Protocol):
    """Read access to the site's state; controller.core.site.Site satisfies it structurally."""

    def health(self) -> dict[str, Any]:
        """The site at a glance as JSON-ready data; called on the asyncio loop thread."""
        ...


class AuthorizationView(Protocol):
    """Token decisions as a technician asks about them ("why was this card rejected?")."""

    def recent_decisions(self, limit: int) -> list[dict[str, Any]]:
        """The newest authorization decisions with their reasons, newest first."""
        ...

    async def explain_uid(self, uid: str) -> dict[str, Any]:
        """What the site would decide for a card right now and why, without asking anyone."""
        ...


class SystemConflict(Exception):
    """A system action cannot be done in this controller's situation (HTTP 409), with the reason."""


class SystemAdmin(Protocol):
    """The box itself: status, the config file (view, check, edit), backup/restore, restart, logs.

    Config problems raise controller.core.config.ConfigError (every problem with key and reason);
    SystemConflict when the action is impossible here (no config file known, no runner to restart).
    """

    async def info(self) -> dict[str, Any]:
        """Version, uptime, time sync, uplink, data dir usage, listeners, config path."""
        ...

    async def config_text(self) -> str:
        """The running config file's TOML with secrets redacted."""
        ...

    async def check_config(self, toml: str) -> dict[str, Any]:
        """{"valid", "errors": [{"key", "reason"}], "diff"} for a proposed config; changes nothing."""
        ...

    async def apply_config(self, toml: str) -> dict[str, Any]:
        """Validate and write the config (previous file kept as a backup); effective at restart."""
        ...

    async def append_entry(self, array: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one checked [[array]] table to the file (rest kept as written); `active` if it runs now."""
        ...

    async def backup(self) -> tuple[dict[str, Any], str]:
        """The backup bundle (config with secrets, charger registry) and its download file name."""
        ...

    async def restore(self, bundle: Any) -> dict[str, Any]:
        """Validate a whole bundle, then write its config and charger registry; effective at restart."""
        ...

    def restart(self) -> dict[str, Any]:
        """Schedule a graceful restart (after the answer has left)."""
        ...

    def logs(self, limit: int, offset: int, min_level: int, text: str | None) -> list[dict[str, Any]]:
        """Newest log records first: up to limit of those at or above min_level containing text."""
        ...

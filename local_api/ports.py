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

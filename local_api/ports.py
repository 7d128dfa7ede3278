"""What the web API needs from the rest of the box: a read-only view of the site."""

from __future__ import annotations

from typing import Any, Protocol


class SiteView(Protocol):
    """Read access to the site's state; controller.core.site.Site satisfies it structurally."""

    def health(self) -> dict[str, Any]:
        """The site at a glance as JSON-ready data; called on the asyncio loop thread."""
        ...

"""The live charger links by charge point id, for the command service."""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from websockets.protocol import State


class Link(Protocol):
    """A connected charger as the command service uses it (an `ocpp` ChargePoint)."""

    id: str
    ocpp_version: str

    async def call(self, payload: Any, suppress: bool = True) -> Any:
        """Send a CALL and wait for its reply."""
        ...


class Sessions:
    """Who is connected now: a handler registers itself; the newest connection of an id wins."""

    def __init__(self) -> None:
        # Weak: a handler the server has let go of must not be kept alive (or reachable) here.
        self._links: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def add(self, link: Link) -> None:
        """Make link the charger's current connection (a reconnect replaces the previous one)."""
        self._links[link.id] = link

    def get(self, charger_id: str) -> Link | None:
        """The charger's open connection, None if it has none."""
        link = self._links.get(charger_id)
        if link is None:
            return None
        state = getattr(getattr(link, "_connection", None), "state", State.OPEN)
        return link if state is State.OPEN else None

    def ids(self) -> list[str]:
        """Every charger with an open connection."""
        return [cp_id for cp_id in list(self._links) if self.get(cp_id) is not None]

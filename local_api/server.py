"""Serving the app: a uvicorn.Server whose shutdown cannot hang on open live streams."""

from __future__ import annotations

import socket

import uvicorn

from local_api.live import LiveHub


class LocalApiServer(uvicorn.Server):
    """uvicorn.Server that closes the LiveHub first when shutting down."""

    def __init__(self, config: uvicorn.Config, hub: LiveHub) -> None:
        super().__init__(config)
        self._hub = hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the hub, then shut down as uvicorn does."""
        # uvicorn waits for every open response to finish before it runs the lifespan shutdown,
        # and an SSE response never finishes by itself; so the streams must end before that wait.
        self._hub.close()
        await super().shutdown(sockets)

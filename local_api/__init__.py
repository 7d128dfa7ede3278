"""The box's local web API and technicians' UI: health JSON, a live SSE stream, static pages.

Wiring (the composition root's job): build a LiveHub, call hub.notify() on the loop thread
whenever the site changed, create_app(site, hub, version), and serve it with LocalApiServer
(or call hub.close() yourself before stopping any other uvicorn.Server).
"""

from local_api.app import create_app
from local_api.live import LiveHub, LiveHubFull
from local_api.ports import SiteView
from local_api.server import LocalApiServer

__all__ = ["LiveHub", "LiveHubFull", "LocalApiServer", "SiteView", "create_app"]

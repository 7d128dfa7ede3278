"""Web UI accounts and access control: the Security service, the ASGI gate, the auth routes."""

from local_api.auth.middleware import CSRF_COOKIE, SESSION_COOKIE, AccessControl
from local_api.auth.routes import auth_router
from local_api.auth.service import Principal, Security

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "AccessControl", "Principal", "Security", "auth_router"]

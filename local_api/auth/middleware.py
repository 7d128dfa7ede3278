"""One gate in front of every route: who is calling, may they, did a cookie caller prove origin, audit.

Pure ASGI (not BaseHTTPMiddleware): the live SSE stream passes through untouched and unbuffered.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.core.access import READ_METHODS, allows, needs_csrf, required_role
from local_api.auth.service import Principal, Security
from local_api.errors import problem

SESSION_COOKIE = "siteedge_session"
CSRF_COOKIE = "siteedge_csrf"
CSRF_HEADER = b"x-csrf-token"
PRINCIPAL = "siteedge.principal"  # scope key: the authenticated caller, or None
AUDIT = "siteedge.audit"  # scope key: an endpoint's short summary for the audit log


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    raw = _header(scope, b"cookie")
    return cookie_parser(raw) if raw else {}


def client_of(scope: Scope) -> str:
    """The peer address of a request ("-" if unknown)."""
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _csrf_ok(scope: Scope, principal: Principal) -> bool:
    """Double submit: the header equals the cookie, and both equal the session's own token."""
    sent = _header(scope, CSRF_HEADER) or ""
    cookie = _cookies(scope).get(CSRF_COOKIE) or ""
    want = principal.csrf or ""
    return bool(sent) and hmac.compare_digest(sent, cookie) and hmac.compare_digest(sent, want)


class AccessControl:
    """ASGI middleware enforcing controller.core.access.required_role on every HTTP request."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self._app = app
        self._security = security

    def _authenticate(self, scope: Scope) -> tuple[Principal | None, str | None]:
        """(principal, why not) from the bearer token or else the session cookie."""
        auth = _header(scope, b"authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None, "the Authorization header must be 'Bearer <API token>'"
            found = self._security.from_token(token.strip())
            return found, None if found else "unknown or revoked API token"
        session_id = _cookies(scope).get(SESSION_COOKIE)
        if session_id is None:
            return None, "log in first (or send an API token)"
        found = self._security.from_session(session_id)
        return found, None if found else "the session has expired or ended; log in again"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        principal, why = self._authenticate(scope)
        scope[PRINCIPAL] = principal
        if principal is not None and principal.stale:
            await self._security.touch(principal)
        status: dict[str, int] = {"code": 500}

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        refusal = self._refusal(scope, method, path, principal, why)
        try:
            if refusal is not None:
                await refusal(scope, receive, send_tracked)
            else:
                await self._app(scope, receive, send_tracked)
        finally:
            if method not in READ_METHODS and method != "OPTIONS":
                # After the endpoint ran: it may have put who logged in and a summary in the scope.
                who = scope.get(PRINCIPAL)
                summary = str(scope.get(AUDIT) or "")
                await self._security.record(
                    who if isinstance(who, Principal) else None,
                    method,
                    path,
                    status["code"],
                    client_of(scope),
                    summary,
                )

    @staticmethod
    def _refusal(scope: Scope, method: str, path: str, principal: Principal | None, why: str | None) -> Any:
        """The error response for a request that may not pass, None if it may."""
        need = required_role(method, path)
        if need is None:
            return None
        if principal is None:
            return problem(
                401, why or "log in first", "unauthenticated", headers={"www-authenticate": "Bearer"}
            )
        if not allows(principal.role, need):
            why_not = f"this needs the {need.value} role (you are {principal.role.value})"
            return problem(403, why_not, "forbidden")
        if principal.kind == "session" and needs_csrf(method) and not _csrf_ok(scope, principal):
            return problem(403, "missing or wrong X-CSRF-Token header (reload the page)", "csrf")
        return None

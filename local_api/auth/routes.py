"""REST for logging in, first setup, accounts, API tokens and the audit log (/api/v1/auth, /api/v1/audit)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from controller.core.access import MAX_PASSWORD, MIN_PASSWORD, SESSION_ABSOLUTE, Role
from local_api.auth.middleware import AUDIT, CSRF_COOKIE, PRINCIPAL, SESSION_COOKIE, client_of
from local_api.auth.service import NewSession, Principal, Security
from local_api.errors import ApiError
from local_api.pagination import Page, page_from_top, page_of

_USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)]
AnyPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
Username = Annotated[str, Field(min_length=1, max_length=64)]
NewUsername = Annotated[str, Field(pattern=_USERNAME)]
UsernamePath = Annotated[str, Path(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    """POST /api/v1/auth/login."""

    username: Username
    password: AnyPassword


class SetupBody(_Body):
    """POST /api/v1/auth/setup: the code from the log or setup-code.txt, and the first admin."""

    setup_code: Annotated[str, Field(min_length=1, max_length=64)]
    username: NewUsername
    password: NewPassword


class PasswordBody(_Body):
    """POST /api/v1/auth/password: change one's own password."""

    current_password: AnyPassword
    new_password: NewPassword


class NewUserBody(_Body):
    """POST /api/v1/auth/users."""

    username: NewUsername
    password: NewPassword
    role: Role


class UserPatch(_Body):
    """PATCH /api/v1/auth/users/{username}: either or both."""

    role: Role | None = None
    password: NewPassword | None = None


class NewTokenBody(_Body):
    """POST /api/v1/auth/api-tokens."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role


def _caller(request: Request) -> Principal:
    found = request.scope.get(PRINCIPAL)
    if not isinstance(found, Principal):  # the gate lets no one through here without one
        raise ApiError(401, "log in first", "unauthenticated")
    return found


def _note(request: Request, summary: str) -> None:
    request.scope[AUDIT] = summary


def _with_cookies(request: Request, response: Response, opened: NewSession) -> Response:
    secure = request.url.scheme == "https"
    max_age = int(SESSION_ABSOLUTE.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        opened.session_id,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    # Readable by the page's script: it echoes the value in X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE, opened.csrf, max_age=max_age, path="/", secure=secure, httponly=False, samesite="strict"
    )
    request.scope[PRINCIPAL] = opened.principal  # the audit entry names who logged in
    return response


def auth_router(security: Security) -> APIRouter:
    """The account, token and audit routes; access rules come from the gate (AccessControl)."""
    router = APIRouter(prefix="/api/v1")

    @router.get("/auth/state")
    async def state(request: Request) -> dict[str, Any]:
        """Public: is first setup pending, and who is calling (null when not logged in)."""
        who = request.scope.get(PRINCIPAL)
        user = who.as_json() if isinstance(who, Principal) else None
        return {"setup_required": security.setup_required, "user": user}

    @router.post("/auth/login")
    async def login(body: LoginBody, request: Request) -> Response:
        """Log in: sets the session and CSRF cookies; 401 bad_credentials, 429 locked_out."""
        _note(request, f"login as {body.username!r}")
        opened = await security.login(body.username, body.password, client_of(request.scope))
        return _with_cookies(request, JSONResponse(opened.principal.as_json()), opened)

    @router.post("/auth/setup", status_code=201)
    async def setup(body: SetupBody, request: Request) -> Response:
        """Create the first admin with the one-time setup code, and log it in."""
        _note(request, f"first setup: admin {body.username!r}")
        opened = await security.setup(body.setup_code, body.username, body.password, client_of(request.scope))
        return _with_cookies(request, JSONResponse(opened.principal.as_json(), status_code=201), opened)

    @router.post("/auth/logout", status_code=204)
    async def logout(request: Request) -> Response:
        """End this session and clear the cookies."""
        await security.logout(_caller(request))
        _note(request, "logout")
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @router.post("/auth/password")
    async def change_password(body: PasswordBody, request: Request) -> Response:
        """Change one's own password; other sessions of the account end, this one is renewed."""
        _note(request, "password change")
        who = _caller(request)
        opened = await security.change_own_password(
            who, body.current_password, body.new_password, client_of(request.scope)
        )
        return _with_cookies(request, JSONResponse(opened.principal.as_json()), opened)

    @router.get("/auth/users")
    async def users(page: Page) -> dict[str, Any]:
        """Accounts (admin), by username."""
        return page_from_top(security.users()[: page.through], page)

    @router.post("/auth/users", status_code=201)
    async def add_user(body: NewUserBody, request: Request) -> dict[str, str]:
        """Create an account (admin)."""
        _note(request, f"create user {body.username!r} as {body.role.value}")
        return await security.add_user(body.username, body.password, body.role)

    @router.patch("/auth/users/{username}")
    async def update_user(username: UsernamePath, body: UserPatch, request: Request) -> dict[str, str]:
        """Change an account's role and/or password (admin); the last admin stays admin (409)."""
        changes = [f"role {body.role.value}"] if body.role else []
        changes += ["password"] if body.password is not None else []
        _note(request, f"update user {username!r}: {', '.join(changes) or 'nothing'}")
        return await security.update_user(username, body.role, body.password)

    @router.delete("/auth/users/{username}", status_code=204)
    async def remove_user(username: UsernamePath, request: Request) -> Response:
        """Delete an account and end its sessions (admin); the last admin cannot go (409)."""
        _note(request, f"delete user {username!r}")
        await security.remove_user(username)
        return Response(status_code=204)

    @router.get("/auth/api-tokens")
    async def tokens(page: Page) -> dict[str, Any]:
        """API tokens without their secrets (admin)."""
        return page_from_top(security.tokens()[: page.through], page)

    @router.post("/auth/api-tokens", status_code=201)
    async def issue_token(body: NewTokenBody, request: Request) -> dict[str, str]:
        """Create an API token (admin); the response is the only time the secret is shown."""
        _note(request, f"create API token {body.name!r} as {body.role.value}")
        return security.issue_token(body.name, body.role)

    @router.delete("/auth/api-tokens/{token_id}", status_code=204)
    async def revoke_token(token_id: Annotated[str, Path(max_length=64)], request: Request) -> Response:
        """Revoke an API token (admin)."""
        _note(request, f"revoke API token {token_id}")
        await security.revoke_token(token_id)
        return Response(status_code=204)

    @router.get("/audit")
    async def audit(page: Page) -> dict[str, Any]:
        """Every change request (who, what, outcome), newest first (admin)."""
        return page_of(await security.audit(page.probe, page.offset), page)

    return router

"""Token look-up and the authorization audit: GET /api/v1/tokens/{uid}, GET /api/v1/authorizations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from local_api.ports import AuthorizationView


def tokens_router(auth: AuthorizationView) -> APIRouter:
    """Routes over the site's authorizer."""
    router = APIRouter()

    @router.get("/api/v1/tokens/{uid}")
    async def token(uid: str) -> dict[str, Any]:
        """The decision siteedge would make for this card now, the reason, and the cached token."""
        return await auth.explain_uid(uid)

    @router.get("/api/v1/authorizations")
    async def authorizations(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """The newest decisions (who, where, outcome, reason), newest first."""
        return {"decisions": auth.recent_decisions(limit)}

    return router

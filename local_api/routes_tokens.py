"""Token look-up and the authorization audit: GET /api/v1/tokens/{uid}, GET /api/v1/authorizations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from local_api.pagination import Page, page_from_top
from local_api.ports import AuthorizationView


def tokens_router(auth: AuthorizationView) -> APIRouter:
    """Routes over the site's authorizer."""
    router = APIRouter()

    @router.get("/api/v1/tokens/{uid}")
    async def token(uid: Annotated[str, Path(min_length=1, max_length=255)]) -> dict[str, Any]:
        """The decision siteedge would make for this card now, the reason, and the cached token."""
        return await auth.explain_uid(uid)

    @router.get("/api/v1/authorizations")
    async def authorizations(page: Page) -> dict[str, Any]:
        """The newest decisions (who, where, outcome, reason), newest first; paged."""
        return page_from_top(auth.recent_decisions(page.through), page)

    return router

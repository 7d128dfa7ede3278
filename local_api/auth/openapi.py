"""The OpenAPI schema says how to authenticate: bearer API token or session cookie, per the access policy."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from controller.core.access import required_role
from local_api.auth.middleware import SESSION_COOKIE

SCHEMES = {
    "apiToken": {"type": "http", "scheme": "bearer", "description": "an API token (se_...) of a role"},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "browser session from POST /api/v1/auth/login (changes also need X-CSRF-Token)",
    },
}


def document_security(app: FastAPI) -> None:
    """Make app.openapi() declare the schemes, and mark each operation public or not and its role."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
        doc.setdefault("components", {})["securitySchemes"] = SCHEMES
        doc["security"] = [{"apiToken": []}, {"session": []}]
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                role = required_role(method, path)
                if role is None:
                    operation["security"] = []  # public
                else:
                    operation["x-siteedge-role"] = role.value
        app.openapi_schema = doc
        return doc

    app.openapi = schema  # type: ignore[method-assign]

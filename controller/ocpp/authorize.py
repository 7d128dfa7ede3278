"""Turn the site's authorization decision into OCPP IdTagInfo / IdTokenInfo."""

from __future__ import annotations

from typing import Any

from controller.core.tokens import Decision, ocpp_status
from controller.ocpp.context import OcppContext

# A StartTransaction right after its Authorize reuses that decision instead of asking again.
REUSE_S = 300.0
PARENT_ID_TAG_MAX = 20  # OCPP 1.6 IdToken is CiString20


async def decide(
    ctx: OcppContext, charger_id: str, id_tag: str, ocpp_evse: int | None = None, *, reuse: bool = False
) -> Decision | None:
    """The site's decision for an id tag; None when siteedge runs without an authorizer."""
    if ctx.authorizer is None:
        return None
    return await ctx.authorizer.authorize(
        id_tag,
        charger_id=charger_id,
        evse_uid=ctx.evse_uid(charger_id, ocpp_evse),
        reuse_s=REUSE_S if reuse else 0.0,
    )


def recent(ctx: OcppContext, id_tag: str) -> Decision | None:
    """The site's recent decision for an id tag, without asking anyone (for StopTransaction)."""
    return ctx.authorizer.recent(id_tag, REUSE_S) if ctx.authorizer is not None else None


def id_tag_info_16(decision: Decision | None) -> dict[str, Any]:
    """OCPP 1.6 IdTagInfo; the token's OCPI group_id becomes parentIdTag."""
    if decision is None:
        return {"status": "Accepted"}
    info: dict[str, Any] = {"status": ocpp_status(decision, "1.6")}
    group = decision.token.group_id if decision.token is not None else None
    if group and len(group) <= PARENT_ID_TAG_MAX:
        info["parent_id_tag"] = group
    return info


def id_token_info_201(decision: Decision | None) -> dict[str, Any]:
    """OCPP 2.0.1 IdTokenInfo; the token's OCPI group_id becomes groupIdToken."""
    if decision is None:
        return {"status": "Accepted"}
    info: dict[str, Any] = {"status": ocpp_status(decision, "2.0.1")}
    group = decision.token.group_id if decision.token is not None else None
    if group:
        info["group_id_token"] = {"id_token": group, "type": "Central"}
    return info

"""The one way a transaction message is handled: commit the fact, then announce it, then reply."""

from __future__ import annotations

import asyncio
import logging

from controller.core.transactions import Decision, Outcome, TransactionFact, events_of
from controller.ocpp.context import OcppContext

log = logging.getLogger(__name__)


async def commit(ctx: OcppContext, fact: TransactionFact) -> Decision:
    """Record fact durably (the caller replies only after this returns), then emit its events."""
    # Durability contract: the CALLRESULT for a transaction message leaves only after the commit.
    decision = await asyncio.wrap_future(ctx.journal.record(fact))
    if decision.outcome in (Outcome.DUPLICATE, Outcome.ALREADY_ENDED):
        log.info("charger %s: %s %s message answered again", fact.charger_id, decision.outcome, fact.kind)
    for note in decision.notes:
        log.warning("charger %s: %s", fact.charger_id, note)
    for event in events_of(decision, fact):
        try:
            ctx.emit(event)
        except Exception:  # the fact is committed; a subscriber's bug must not refuse it
            log.exception("charger %s: a subscriber failed on %s", fact.charger_id, type(event).__name__)
    return decision

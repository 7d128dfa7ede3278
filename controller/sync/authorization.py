"""Token authorization: cache lookup, the core's OCPI rules, real-time asks over the uplink."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from controller.core.clock import Clock, rfc3339
from controller.core.envelope import Outgoing, Topics, uuid7
from controller.core.reports import AuditEntry, AuthAuditLog
from controller.core.token_sync import TokenCache, pick
from controller.core.tokens import (
    BackendAnswer,
    Decision,
    Outcome,
    SitePolicy,
    Token,
    decide,
    decide_after,
    normalize_uid,
)
from controller.core.uplink import auth_request_message
from controller.sync.downlink import Downlink, Rejected

log = logging.getLogger(__name__)

AUDIT_SIZE = 1000
RECENT_SIZE = 10_000
_ANSWERS = {a.value for a in BackendAnswer} - {BackendAnswer.NO_ANSWER.value}


def answer_of(payload: Any) -> BackendAnswer:
    """An eMSP reply (OCPI AuthorizationInfo, or an OCPI 2004 'unknown token') as one answer."""
    if not isinstance(payload, dict):
        raise Rejected("authorization response: must be a JSON object")
    if payload.get("status_code") == 2004:
        return BackendAnswer.UNKNOWN
    allowed = payload.get("allowed")
    if allowed not in _ANSWERS:
        raise Rejected(f"authorization response: allowed must be one of {sorted(_ANSWERS)}")
    return BackendAnswer(allowed)


class RealtimeAuthorizer:
    """Implements the core's Authorizer port for the OCPP handlers."""

    def __init__(
        self,
        cache: TokenCache,
        policy: SitePolicy,
        topics: Topics,
        location_id: str,
        clock: Clock,
        send: Callable[[Sequence[Outgoing]], object],
        uplink_up: Callable[[], bool],
        audit_log: AuthAuditLog | None = None,
    ) -> None:
        self._cache = cache
        self._policy = policy
        self._topics = topics
        self._location_id = location_id
        self._clock = clock
        self._send = send
        self._uplink_up = uplink_up
        self._waiting: dict[str, asyncio.Future[BackendAnswer]] = {}
        # The newest decisions in memory (the API and auth_method read them on the loop); every
        # decision also goes to the durable log, which refills this after a restart.
        self._log = audit_log
        self.audit: deque[AuditEntry] = deque(
            reversed(audit_log.recent(AUDIT_SIZE)) if audit_log is not None else (), maxlen=AUDIT_SIZE
        )
        self._recent: dict[str, tuple[float, Decision]] = {}

    def register(self, downlink: Downlink) -> None:
        """Route auth/responses/{request_id} to the waiting request."""
        downlink.route(
            "auth/responses/+", r"auth/responses/([A-Za-z0-9._\-]{1,64})", self._on_response, immediate=True
        )

    async def authorize(
        self, uid: str, *, charger_id: str, evse_uid: str | None, reuse_s: float = 0.0
    ) -> Decision:
        """The decision for a presented token, recorded with its reason.

        reuse_s > 0 reuses this site's own decision for the same uid if it is that recent: a
        StartTransaction right after an Authorize must not ask the eMSP (and wait) a second time.
        """
        key = normalize_uid(uid)
        reused = self.recent(uid, reuse_s) if reuse_s > 0 else None
        if reused is not None:
            return reused
        decision = await self._decide(uid, evse_uid)
        if decision.accepted and decision.token is not None:
            # Charger local lists favour tokens drivers actually use at this site.
            await asyncio.to_thread(self._cache.touch, decision.token.uid, rfc3339(self._clock.now()))
        if len(self._recent) >= RECENT_SIZE:
            self._recent.clear()  # crude bound; reuse is an optimisation, never a correctness need
        self._recent[key] = (self._clock.monotonic(), decision)
        self._record(uid, charger_id, evse_uid, decision)
        return decision

    def grant(self, token: Token, why: str) -> None:
        """Record that the eMSP authorized this token by command: the charger's start is accepted.

        OCPI: tokens in START_SESSION / RESERVE_NOW are authorized already; asking again in real
        time would only add latency (and a NEVER token could even be refused by a slow eMSP).
        """
        decision = Decision(Outcome.ACCEPT, why, token, by_command=True)
        self._recent[normalize_uid(token.uid)] = (self._clock.monotonic(), decision)
        self._record(token.uid, "-", None, decision)

    def recent(self, uid: str, within_s: float) -> Decision | None:
        """This site's own decision for the uid if it is at most within_s old, else None."""
        found = self._recent.get(normalize_uid(uid))
        if found is None or self._clock.monotonic() - found[0] > within_s:
            return None
        return found[1]

    async def _decide(self, uid: str, evse_uid: str | None) -> Decision:
        token = pick(await asyncio.to_thread(self._cache.lookup, uid))
        decision = decide(token, uplink_up=self._uplink_up(), policy=self._policy)
        if decision.outcome is Outcome.ASK:
            answer = await self._ask(uid, token, evse_uid)
            decision = decide_after(token, answer, policy=self._policy)
        return decision

    def recent_decisions(self, limit: int) -> list[dict[str, Any]]:
        """The newest decisions with their reasons, newest first (for the API)."""
        return [e.as_json() for e in list(self.audit)[::-1][:limit]]

    async def explain_uid(self, uid: str) -> dict[str, Any]:
        """explain() for a uid as read from a card, looked up in the cache off the loop."""
        return self.explain(uid, pick(await asyncio.to_thread(self._cache.lookup, uid)))

    def explain(self, uid: str, token: Token | None) -> dict[str, Any]:
        """What siteedge would decide for uid right now, without asking anyone (for the UI/API)."""
        first = decide(token, uplink_up=self._uplink_up(), policy=self._policy)
        out: dict[str, Any] = {
            "uid": uid,
            "known": token is not None,
            "decision": first.outcome.value,
            "reason": first.reason,
        }
        if token is not None:
            out["token"] = dict(token.raw)
        if first.outcome is Outcome.ASK:
            silent = decide_after(token, BackendAnswer.NO_ANSWER, policy=self._policy)
            out["if_emsp_silent"] = {"decision": silent.outcome.value, "reason": silent.reason}
        return out

    async def _ask(self, uid: str, token: Token | None, evse_uid: str | None) -> BackendAnswer:
        request_id = uuid7()
        future: asyncio.Future[BackendAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        token_type = token.type if token is not None else "RFID"
        self._send(
            [auth_request_message(request_id, uid, token_type, evse_uid, self._location_id, self._topics)]
        )
        try:
            return await asyncio.wait_for(future, self._policy.realtime_timeout_s)
        except TimeoutError:
            log.info(
                "authorization %s: no answer from the eMSP within %.1f s",
                request_id,
                self._policy.realtime_timeout_s,
            )
            return BackendAnswer.NO_ANSWER
        finally:
            self._waiting.pop(request_id, None)

    async def _on_response(self, match: re.Match[str], payload: Any) -> None:
        answer = answer_of(payload)
        future = self._waiting.get(match.group(1))
        if future is None:
            log.info("authorization response %s arrived after its timeout; ignored", match.group(1))
            return
        if not future.done():
            future.set_result(answer)

    def _record(self, uid: str, charger_id: str, evse_uid: str | None, d: Decision) -> None:
        key = "*".join(d.token.key) if d.token is not None else None
        entry = AuditEntry(self._clock.now(), uid, charger_id, evse_uid, d.outcome.value, d.reason, key)
        self.audit.append(entry)
        if self._log is not None:
            self._log.append(entry)
        log.info("authorization %s at %s/%s: %s (%s)", uid, charger_id, evse_uid, d.outcome.value, d.reason)

"""OCPI 2.2.1 Tokens: parsing with reasons, uid matching rules, and the whitelist decision."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Whitelist(StrEnum):
    """OCPI WhitelistType: how far the CPO may decide without asking the eMSP."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


TOKEN_TYPES = ("AD_HOC_USER", "APP_USER", "OTHER", "RFID")


class TokenError(ValueError):
    """A token object is malformed; the message names the field and the reason."""


@dataclass(frozen=True, slots=True)
class Token:
    """One OCPI Token as the cache keeps it; `raw` is the object exactly as received."""

    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str
    issuer: str
    valid: bool
    whitelist: Whitelist
    group_id: str | None
    last_updated: str
    raw: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        """The OCPI identity of a token: (country_code, party_id, uid)."""
        return (self.country_code, self.party_id, self.uid)


def normalize_uid(uid: str) -> str:
    """The form a uid is matched in: OCPI uids are CiString, so case-insensitive.

    Readers differ in how they print an RFID UID (upper/lower hex, sometimes with separators);
    case is folded here, separators are not guessed away, since "04:A2" and "04A2" may be
    different cards for a reader that prints decimal.
    """
    return uid.strip().upper()


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def _field(obj: Mapping[str, Any], name: str, kind: type, max_len: int | None = None) -> Any:
    if name not in obj or obj[name] is None:
        raise TokenError(f"{name}: required field is missing")
    value = obj[name]
    if kind is bool and not isinstance(value, bool):
        raise TokenError(f"{name}: must be a boolean")
    if kind is str and not isinstance(value, str):
        raise TokenError(f"{name}: must be a string")
    if max_len is not None and len(value) > max_len:
        raise TokenError(f"{name}: longer than {max_len} characters")
    return value


def parse_token(obj: Any) -> Token:
    """Validate one OCPI Token object; TokenError says which field is wrong and why."""
    if not isinstance(obj, Mapping):
        raise TokenError("token: must be an object")
    cc = _field(obj, "country_code", str, 2)
    party = _field(obj, "party_id", str, 3)
    uid = _field(obj, "uid", str, 36)
    if not uid.strip():
        raise TokenError("uid: must not be empty")
    type_ = _field(obj, "type", str)
    if type_ not in TOKEN_TYPES:
        raise TokenError(f"type: must be one of {', '.join(TOKEN_TYPES)}, got {type_!r}")
    whitelist = _field(obj, "whitelist", str)
    if whitelist not in Whitelist.__members__:
        raise TokenError(f"whitelist: must be one of {', '.join(Whitelist)}, got {whitelist!r}")
    last_updated = _field(obj, "last_updated", str)
    if not _DATETIME.fullmatch(last_updated):
        raise TokenError(f"last_updated: not an RFC 3339 date-time: {last_updated!r}")
    group_id = obj.get("group_id")
    if group_id is not None and (not isinstance(group_id, str) or len(group_id) > 36):
        raise TokenError("group_id: must be a string of at most 36 characters")
    return Token(
        country_code=cc.upper(),
        party_id=party.upper(),
        uid=uid,
        type=type_,
        contract_id=_field(obj, "contract_id", str, 36),
        issuer=_field(obj, "issuer", str, 64),
        valid=_field(obj, "valid", bool),
        whitelist=Whitelist(whitelist),
        group_id=group_id,
        last_updated=last_updated,
        raw=dict(obj),
    )


# --- the decision -------------------------------------------------------------------------


class Outcome(StrEnum):
    """What to do with a presented token."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    ASK = "ASK"  # ask the eMSP in real time over the uplink, then decide_after()


class BackendAnswer(StrEnum):
    """How a real-time authorization request ended."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"
    UNKNOWN = "UNKNOWN"  # the eMSP does not know the token (OCPI 2004)
    NO_ANSWER = "NO_ANSWER"  # timed out or the uplink is down


@dataclass(frozen=True, slots=True)
class SitePolicy:
    """Site choices where OCPI leaves room: unknown tokens while offline, real-time timeout."""

    accept_unknown_offline: bool = False
    realtime_timeout_s: float = 2.0
    free_vend: bool = False  # private or free sites: every token charges, nobody is asked


class Code(StrEnum):
    """Why, as a machine reads it: what the charger is told and what reports count."""

    ACCEPTED = "ACCEPTED"
    EMSP_BLOCKED = "EMSP_BLOCKED"
    EMSP_EXPIRED = "EMSP_EXPIRED"
    EMSP_NO_CREDIT = "EMSP_NO_CREDIT"
    EMSP_NOT_ALLOWED = "EMSP_NOT_ALLOWED"
    EMSP_UNKNOWN = "EMSP_UNKNOWN"
    NOT_VALID = "NOT_VALID"  # the cached token says valid=false
    EXPIRED = "EXPIRED"  # a cached authorization ran out
    UNKNOWN_OFFLINE = "UNKNOWN_OFFLINE"  # unknown token and the eMSP cannot be asked
    NEEDS_EMSP = "NEEDS_EMSP"  # NEVER token and the eMSP did not answer
    ASK = "ASK"


_EMSP_CODES = {
    BackendAnswer.BLOCKED: Code.EMSP_BLOCKED,
    BackendAnswer.EXPIRED: Code.EMSP_EXPIRED,
    BackendAnswer.NO_CREDIT: Code.EMSP_NO_CREDIT,
    BackendAnswer.NOT_ALLOWED: Code.EMSP_NOT_ALLOWED,
    BackendAnswer.UNKNOWN: Code.EMSP_UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome and the reason a technician reads when asking "why was this card rejected?"."""

    outcome: Outcome
    reason: str
    token: Token | None = None
    code: Code = Code.ACCEPTED
    by_emsp: bool = False  # the eMSP's real-time answer decided (OCPI auth_method AUTH_REQUEST)
    by_command: bool = False  # the eMSP started or reserved it by command (OCPI auth_method COMMAND)

    @property
    def accepted(self) -> bool:
        """True if the driver may charge."""
        return self.outcome is Outcome.ACCEPT


def decide(
    token: Token | None,
    *,
    uplink_up: bool,
    now: datetime | None = None,
    expires_at: datetime | None = None,
    policy: SitePolicy = SitePolicy(),
) -> Decision:
    """First step: decide locally, or say ASK to get the eMSP's answer in real time.

    `token` is the cached OCPI Token for the uid as read (None if unknown); `expires_at` is the
    end of a cached real-time answer, if the token is known only from one.
    """
    if policy.free_vend:
        return Decision(Outcome.ACCEPT, "free vend: this site accepts every token", token)
    if token is None:
        if uplink_up:
            return Decision(Outcome.ASK, "unknown token: asking the eMSP in real time", code=Code.ASK)
        return _unknown_offline(policy)
    expired = expires_at is not None and now is not None and now >= expires_at
    match token.whitelist:
        case Whitelist.ALWAYS:
            # OCPI: ALWAYS forbids real-time authorization; the cache is the whole truth.
            return _local(token, expired, "whitelist ALWAYS")
        case Whitelist.ALLOWED:
            return _local(token, expired, "whitelist ALLOWED, token in the local whitelist")
        case Whitelist.ALLOWED_OFFLINE | Whitelist.NEVER:
            if uplink_up:
                return Decision(
                    Outcome.ASK, f"whitelist {token.whitelist}: asking the eMSP in real time", token
                )
            return decide_after(token, BackendAnswer.NO_ANSWER, policy=policy, now=now, expires_at=expires_at)
    raise AssertionError(f"unhandled whitelist {token.whitelist}")  # pragma: no cover


def decide_after(
    token: Token | None,
    answer: BackendAnswer,
    *,
    policy: SitePolicy = SitePolicy(),
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> Decision:
    """Second step, after asking: the eMSP's answer wins; without one, fall back by whitelist."""
    if answer is BackendAnswer.ALLOWED:
        return Decision(Outcome.ACCEPT, "allowed by the eMSP in real time", token, by_emsp=True)
    if answer is not BackendAnswer.NO_ANSWER:
        return Decision(Outcome.REJECT, f"eMSP answered {answer.value}", token, _EMSP_CODES[answer], True)
    if token is None:
        return _unknown_offline(policy)
    expired = expires_at is not None and now is not None and now >= expires_at
    if token.whitelist is Whitelist.NEVER:
        return Decision(Outcome.REJECT, "whitelist NEVER and the eMSP did not answer", token, Code.NEEDS_EMSP)
    # ALLOWED_OFFLINE: OCPI says the CPO shall accept when the eMSP is unreachable.
    return _local(token, expired, f"whitelist {token.whitelist} and the eMSP did not answer")


def _local(token: Token, expired: bool, why: str) -> Decision:
    if not token.valid:
        return Decision(Outcome.REJECT, f"{why}; token is not valid", token, Code.NOT_VALID)
    if expired:
        return Decision(Outcome.REJECT, f"{why}; cached authorization expired", token, Code.EXPIRED)
    return Decision(Outcome.ACCEPT, why, token)


def _unknown_offline(policy: SitePolicy) -> Decision:
    if policy.accept_unknown_offline:
        return Decision(
            Outcome.ACCEPT, "unknown token, eMSP unreachable: site policy accepts unknown tokens offline"
        )
    return Decision(
        Outcome.REJECT,
        "unknown token and the eMSP cannot be asked (site policy: reject)",
        code=Code.UNKNOWN_OFFLINE,
    )


# OCPP AuthorizationStatus per version: 1.6 has no NoCredit/Unknown/NotAllowed, 2.0.1 does.
_OCPP16 = {
    Code.ACCEPTED: "Accepted",
    Code.EMSP_BLOCKED: "Blocked",
    Code.EMSP_EXPIRED: "Expired",
    Code.EXPIRED: "Expired",
    Code.NOT_VALID: "Blocked",
}
_OCPP201 = {
    Code.ACCEPTED: "Accepted",
    Code.EMSP_BLOCKED: "Blocked",
    Code.EMSP_EXPIRED: "Expired",
    Code.EXPIRED: "Expired",
    Code.NOT_VALID: "Blocked",
    Code.EMSP_NO_CREDIT: "NoCredit",
    Code.EMSP_NOT_ALLOWED: "NotAtThisLocation",
    Code.EMSP_UNKNOWN: "Unknown",
    Code.UNKNOWN_OFFLINE: "Unknown",
}


def ocpp_status(decision: Decision, ocpp_version: str) -> str:
    """The AuthorizationStatus a charger is told for a decision (Invalid where nothing fits)."""
    if decision.outcome is Outcome.ACCEPT:
        return "Accepted"
    table = _OCPP16 if ocpp_version.startswith("1.6") else _OCPP201
    return table.get(decision.code, "Invalid")


class Authorizer(Protocol):
    """Answers "may this token charge here?" the OCPI way; the OCPP handlers' one question."""

    async def authorize(
        self, uid: str, *, charger_id: str, evse_uid: str | None, reuse_s: float = 0.0
    ) -> Decision:
        """Decide for a token as read by a charger, asking the eMSP in real time if the rules say so.

        reuse_s > 0 allows answering from this site's own decision for the uid if it is that recent.
        """
        ...

    def recent(self, uid: str, within_s: float) -> Decision | None:
        """This site's own decision for the uid if it is at most within_s old, else None."""
        ...

    def grant(self, token: Token, why: str) -> None:
        """Record that the eMSP authorized this token by command (START_SESSION, RESERVE_NOW)."""
        ...

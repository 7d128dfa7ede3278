"""The OCPI whitelist decision, as a matrix: whitelist x valid x expired x uplink x eMSP answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.core.tokens import (
    BackendAnswer,
    Decision,
    Outcome,
    SitePolicy,
    Token,
    TokenError,
    Whitelist,
    decide,
    decide_after,
    parse_token,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
A, R = Outcome.ACCEPT, Outcome.REJECT
DEFAULT = SitePolicy()
UP, DOWN = True, False
OK, BLOCKED, SILENT = BackendAnswer.ALLOWED, BackendAnswer.BLOCKED, BackendAnswer.NO_ANSWER


def token(whitelist: str, valid: bool = True) -> Token:
    return parse_token(
        {
            "country_code": "DE",
            "party_id": "ABC",
            "uid": "04A2B3C4",
            "type": "RFID",
            "contract_id": "DE-ABC-C12345678-X",
            "issuer": "ABC Mobility",
            "valid": valid,
            "whitelist": whitelist,
            "last_updated": "2026-11-01T00:00:00Z",
        }
    )


def flow(
    tok: Token | None,
    uplink: bool,
    answer: BackendAnswer,
    *,
    expired: bool = False,
    policy: SitePolicy = DEFAULT,
) -> Decision:
    """What the adapter does: decide; if ASK, the eMSP's answer (or its silence) decides."""
    expires = NOW - timedelta(seconds=1) if expired else None
    first = decide(tok, uplink_up=uplink, now=NOW, expires_at=expires, policy=policy)
    if first.outcome is not Outcome.ASK:
        return first
    assert uplink, "never ask the eMSP while the uplink is down"
    return decide_after(tok, answer, now=NOW, expires_at=expires, policy=policy)


# A valid, unexpired token. Columns: uplink up + eMSP allows / blocks / is silent; uplink down.
MATRIX = {
    "ALWAYS": (A, A, A, A),  # never asks: the local whitelist is the whole truth
    "ALLOWED": (A, A, A, A),  # in the local list: decided locally
    "ALLOWED_OFFLINE": (A, R, A, A),  # asks; accepted locally only when the eMSP cannot answer
    "NEVER": (A, R, R, R),  # only ever the eMSP's word
}


@pytest.mark.parametrize("whitelist", list(MATRIX))
@pytest.mark.parametrize(
    ("column", "uplink", "answer"), [(0, UP, OK), (1, UP, BLOCKED), (2, UP, SILENT), (3, DOWN, SILENT)]
)
def test_matrix_valid_token(whitelist: str, column: int, uplink: bool, answer: BackendAnswer) -> None:
    d = flow(token(whitelist), uplink, answer)
    assert d.outcome is MATRIX[whitelist][column], d.reason
    assert d.reason


@pytest.mark.parametrize("whitelist", ["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE"])
@pytest.mark.parametrize(("uplink", "answer"), [(UP, SILENT), (DOWN, SILENT)])
def test_invalid_token_is_rejected_whenever_decided_locally(
    whitelist: str, uplink: bool, answer: BackendAnswer
) -> None:
    d = flow(token(whitelist, valid=False), uplink, answer)
    assert d.outcome is R and "not valid" in d.reason


@pytest.mark.parametrize("whitelist", ["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE"])
def test_expired_cached_authorization_is_rejected_locally(whitelist: str) -> None:
    d = flow(token(whitelist), DOWN, SILENT, expired=True)
    assert d.outcome is R and "expired" in d.reason


def test_valid_flag_does_not_override_real_time_whitelists() -> None:
    # OCPI: for NEVER / ALLOWED_OFFLINE the eMSP's real-time answer wins over the cached flag.
    assert flow(token("NEVER", valid=False), UP, OK).outcome is A
    assert flow(token("ALLOWED_OFFLINE", valid=False), UP, OK).outcome is A


def test_always_never_asks_even_when_online() -> None:
    assert decide(token("ALWAYS"), uplink_up=True).outcome is A


@pytest.mark.parametrize(
    ("uplink", "answer", "policy_accepts", "expected"),
    [
        (UP, OK, False, A),
        (UP, BackendAnswer.UNKNOWN, False, R),
        (UP, BLOCKED, True, R),  # the eMSP's "no" beats a lenient site policy
        (UP, SILENT, False, R),
        (UP, SILENT, True, A),
        (DOWN, SILENT, False, R),
        (DOWN, SILENT, True, A),
    ],
)
def test_unknown_token(uplink: bool, answer: BackendAnswer, policy_accepts: bool, expected: Outcome) -> None:
    d = flow(None, uplink, answer, policy=SitePolicy(accept_unknown_offline=policy_accepts))
    assert d.outcome is expected, d.reason
    assert "unknown" in d.reason or "eMSP" in d.reason


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"whitelist": "SOMETIMES"}, "whitelist"),
        ({"type": "CARD"}, "type"),
        ({"valid": "yes"}, "valid"),
        ({"uid": "x" * 37}, "uid"),
        ({"last_updated": "yesterday"}, "last_updated"),
        ({"contract_id": None}, "contract_id"),
    ],
)
def test_malformed_tokens_are_refused_with_the_field(change: dict, message: str) -> None:
    raw = dict(token("ALWAYS").raw) | change
    with pytest.raises(TokenError, match=message):
        parse_token(raw)


def test_whitelist_values() -> None:
    assert [w.value for w in Whitelist] == ["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"]

"""The web UI access policy (pure): who may call what, login throttling, credentials rules."""

from __future__ import annotations

import pytest

from controller.core.access import (
    LoginThrottle,
    Role,
    ThrottleRules,
    allows,
    format_setup_code,
    needs_csrf,
    normalise_setup_code,
    password_problem,
    required_role,
    token_name_problem,
    username_problem,
)

V, T, A = Role.VIEWER, Role.TECHNICIAN, Role.ADMIN


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/", None),
        ("GET", "/static/js/main.js", None),
        ("POST", "/static/js/main.js", T),  # static files are read-only, not a public write path
        ("GET", "/api/v1/auth/state", None),
        ("POST", "/api/v1/auth/login", None),
        ("POST", "/api/v1/auth/setup", None),
        ("GET", "/api/v1/auth/login", V),
        ("POST", "/api/v1/auth/logout", V),
        ("POST", "/api/v1/auth/password", V),
        ("GET", "/api/v1/health", V),
        ("HEAD", "/api/v1/health", V),
        ("GET", "/metrics", V),
        ("GET", "/api/v1/openapi.json", V),
        ("GET", "/api/v1/nonexistent", V),
        ("POST", "/api/v1/chargers/CP-1/approve", T),
        ("DELETE", "/api/v1/maintenance/7", T),
        ("OPTIONS", "/api/v1/health", T),
        ("GET", "/api/v1/auth/users", A),
        ("PATCH", "/api/v1/auth/users/bob", A),
        ("GET", "/api/v1/auth/api-tokens", A),
        ("GET", "/api/v1/audit", A),
        ("GET", "/api/v1/audit/", A),
        ("GET", "/api/v1/auditx", V),  # a prefix match is per path segment
        ("GET", "/api/v1/system/config", V),
        ("POST", "/api/v1/system/config/check", T),
        ("PUT", "/api/v1/system/config", A),
        ("get", "/api/v1/system/backup", A),
        ("POST", "/api/v1/system/restore", A),
        ("POST", "/api/v1/system/restart", A),
    ],
)
def test_required_role(method: str, path: str, role: Role | None) -> None:
    assert required_role(method, path) == role


def test_roles_include_the_ones_below() -> None:
    assert allows(A, T) and allows(A, V) and allows(T, V) and allows(V, V)
    assert not allows(V, T) and not allows(T, A) and not allows(V, A)


def test_changing_methods_need_csrf() -> None:
    assert [m for m in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE") if needs_csrf(m)] == [
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    ]


def test_five_failures_lock_a_username_for_the_lockout_not_longer() -> None:
    throttle = LoginThrottle()
    for t in range(4):
        throttle.failed("Bob", "10.0.0.1", float(t))
    assert throttle.retry_after("bob", "10.0.0.9", 4.0) is None
    throttle.failed("bob", "10.0.0.2", 4.0)  # the 5th, from elsewhere and spelled otherwise
    assert throttle.retry_after("BOB", "10.0.0.9", 4.0) == pytest.approx(900.0)
    assert throttle.retry_after("alice", "10.0.0.9", 4.0) is None
    assert throttle.retry_after("bob", "10.0.0.9", 903.9) == pytest.approx(0.1)
    assert throttle.retry_after("bob", "10.0.0.9", 904.0) is None


def test_failures_outside_the_window_do_not_count() -> None:
    throttle = LoginThrottle(ThrottleRules(window_s=60.0))
    for t in (0.0, 10.0, 20.0, 30.0):
        throttle.failed("bob", "c", t)
    throttle.failed("bob", "c", 65.0)  # the first two are older than 60 s by now
    assert throttle.retry_after("bob", "c", 65.0) is None


def test_success_forgets_the_username_failures_not_the_address() -> None:
    throttle = LoginThrottle(ThrottleRules(per_user=3, per_client=4))
    throttle.failed("bob", "c", 0.0)
    throttle.failed("bob", "c", 1.0)
    throttle.succeeded("bob")
    throttle.failed("bob", "c", 2.0)
    assert throttle.retry_after("bob", "other", 2.0) is None  # 1 failure since the success
    throttle.failed("alice", "c", 3.0)  # the address's 4th
    assert throttle.retry_after("carol", "c", 3.0) == pytest.approx(900.0)


def test_memory_stays_bounded_under_a_flood_of_names() -> None:
    throttle = LoginThrottle(ThrottleRules(max_keys=100, per_client=10**9))
    for i in range(10_000):
        throttle.failed(f"user{i}", "c", float(i) / 1000)
    assert len(throttle._failures) <= 100


@pytest.mark.parametrize(
    ("password", "ok"), [("", False), ("123456789", False), ("1234567890", True), ("x" * 1025, False)]
)
def test_password_rule(password: str, ok: bool) -> None:
    assert (password_problem(password) is None) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("admin", True), ("j.doe@site-1", True), ("", False), ("-x", False), ("a b", False), ("x" * 65, False)],
)
def test_username_rule(name: str, ok: bool) -> None:
    assert (username_problem(name) is None) is ok


def test_token_names_allow_spaces_but_not_control_characters() -> None:
    assert token_name_problem("prometheus scraper") is None
    assert token_name_problem("bad\nname") is not None and token_name_problem("") is not None


def test_setup_code_is_typed_forgivingly() -> None:
    code = format_setup_code("ABCDEFGHJKLM")
    assert code == "ABCD-EFGH-JKLM"
    assert normalise_setup_code("abcd efgh-jklm") == normalise_setup_code(code) == "ABCDEFGHJKLM"

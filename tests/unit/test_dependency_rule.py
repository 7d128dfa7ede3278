"""The core stays pure: no I/O library, standard or third-party, is imported by controller/core."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).parents[2] / "controller" / "core"
# import-linter checks third-party and project packages; this covers the standard library's I/O.
FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "sqlite3",
    "subprocess",
    "selectors",
    "http",
    "urllib.request",
    "threading",
    "multiprocessing",
    "shutil",
    "tempfile",
    "io",
    "pathlib",
    "logging",
    "ocpp",
    "pymodbus",
    "paho",
    "tinydb",
    "fastapi",
    "starlette",
    "uvicorn",
    "websockets",
    "serial",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_core_imports_no_io_library() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in CORE.rglob("*.py")
        for module in imported_modules(path)
        if is_forbidden(module)
    }
    assert not offenders, f"controller/core must stay pure; found {sorted(offenders)}"


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom asyncio import sleep\nfrom urllib.parse import urlsplit\n")
    assert {m for m in imported_modules(bad) if is_forbidden(m)} == {"sqlite3", "asyncio"}

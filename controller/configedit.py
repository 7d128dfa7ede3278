"""Config TOML for people: secrets redacted for display, placeholders kept on edit, redacted diffs.

Works on the text (tomlkit keeps comments and layout), so what a technician sees and edits is the
operator's file, not a re-rendering of it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, String

from controller.core.config import Problem

PLACEHOLDER = "********"
CHANGED = PLACEHOLDER + " (changed)"
# Conservative on purpose: a key that merely sounds secret is hidden too.
_SECRET_KEY = re.compile(r"password|passwd|secret|token", re.IGNORECASE)
# The password part of scheme://user:password@host, should a URL carry credentials.
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)([^/@\s]+)(@)")

Segment = str | int | tuple[str, str]  # table key, array index, or ("id", value) in an array of tables
_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Leaf:
    parent: Any  # tomlkit container (dict-like) or array (list-like)
    slot: str | int  # key or index in parent
    value: Any
    path: tuple[Segment, ...]  # stable identity across edits (array tables by their id)
    key: str  # dotted display key, e.g. "chargers[1].password"
    secret: bool  # under a secret-named key


def is_secret_key(key: str) -> bool:
    """Whether a key's value is hidden from display (its name says password/secret/token)."""
    return bool(_SECRET_KEY.search(key))


def _leaves(
    node: Any, path: tuple[Segment, ...] = (), key: str = "", secret: bool = False
) -> Iterator[_Leaf]:
    """Every scalar in a parsed tomlkit document, depth first, in document order."""
    if isinstance(node, dict):
        items: Iterator[tuple[str | int, Segment, str, bool]] = (
            (k, str(k), f"{key}.{k}" if key else str(k), secret or is_secret_key(str(k))) for k in node
        )
    elif isinstance(node, list):
        items = (
            (
                i,
                ("id", v["id"]) if isinstance(v, dict) and isinstance(v.get("id"), str) else i,
                f"{key}[{i}]",
                secret,
            )
            for i, v in enumerate(node)
        )
    else:
        return
    for slot, segment, child_key, child_secret in list(items):
        child = node[slot]
        if isinstance(child, dict | list):
            yield from _leaves(child, (*path, segment), child_key, child_secret)
        else:
            yield _Leaf(node, slot, child, (*path, segment), child_key, child_secret)


def _plain(value: Any) -> Any:
    """A tomlkit item as a plain Python value."""
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _restored(old: Any, placeholder: Any) -> Any:
    """The old value, written in its old quoting style, where the placeholder stood (with its comment)."""
    if isinstance(old, String) and isinstance(placeholder, String):
        quote = len(old.type.value)  # the delimiter: ' " ''' or """
        return String(old.type, str(old), old.as_string()[quote:-quote], placeholder.trivia)
    return _plain(old)


def _redacted(value: Any, secret: bool) -> Any:
    """What a scalar shows as: the placeholder for secrets, a URL without its password."""
    if secret:
        return PLACEHOLDER
    if isinstance(value, str):
        m = _URL_PASSWORD.match(value)
        if m:
            return m.group(1) + PLACEHOLDER + m.group(3) + value[m.end() :]
    return _plain(value)


def parse(text: str) -> tomlkit.TOMLDocument:
    """The style-preserving document; ValueError when tomlkit cannot read it."""
    try:
        return tomlkit.parse(text)
    except (TOMLKitError, ValueError, TypeError) as exc:
        raise ValueError(f"not valid TOML: {exc}") from exc


def _redact_in_place(doc: tomlkit.TOMLDocument, before: dict[tuple[Segment, ...], Any] | None = None) -> str:
    """Replace the document's secrets by the placeholder and render it.

    With `before` (the current file's values by path), a secret that differs from the current one
    at the same place shows as "******** (changed)", so a diff still tells that it changed.
    """
    for leaf in _leaves(doc):
        shown = _redacted(leaf.value, leaf.secret)
        if shown == _plain(leaf.value):
            continue
        if leaf.secret and before is not None and before.get(leaf.path, _MISSING) != _plain(leaf.value):
            shown = CHANGED
        leaf.parent[leaf.slot] = shown
    return tomlkit.dumps(doc)


def redact(text: str) -> str:
    """The TOML text with secrets replaced by the placeholder; ValueError if it cannot be read."""
    return _redact_in_place(parse(text))


@dataclass(frozen=True, slots=True)
class Edit:
    """A proposed file prepared against the current one."""

    text: str  # what would be written: placeholders replaced by the kept secrets
    problems: list[Problem]  # placeholders with no secret to keep
    diff: str  # unified diff, both sides redacted


def prepare_edit(submitted: str, current: str, name: str) -> Edit:
    """Keep the current secrets where the submitted text has their placeholders, and diff it.

    A value equal to what the current value at the same place shows as (redacted) means "keep
    it"; a placeholder with nothing to keep is a problem (the user must type the secret). Text
    with nothing to replace is kept byte for byte. Each text is parsed once (tomlkit is slow).
    """
    new_doc, cur_doc = parse(submitted), parse(current)
    known = {leaf.path: leaf for leaf in _leaves(cur_doc)}
    problems: list[Problem] = []
    replaced = False
    for leaf in _leaves(new_doc):
        value = _plain(leaf.value)
        if not isinstance(value, str) or PLACEHOLDER not in value:
            continue
        old = known.get(leaf.path)
        if old is not None and _redacted(old.value, old.secret) == value:
            leaf.parent[leaf.slot] = _restored(old.value, leaf.value)
            replaced = True
        else:
            problems.append(
                Problem(
                    leaf.key,
                    "is the redacted placeholder but the current configuration has no secret here "
                    "to keep; type the value",
                )
            )
    text = tomlkit.dumps(new_doc) if replaced else submitted
    before = {path: _plain(leaf.value) for path, leaf in known.items()}
    old_lines = _redact_in_place(cur_doc).splitlines(keepends=True)
    new_lines = _redact_in_place(new_doc, before).splitlines(keepends=True)
    lines = difflib.unified_diff(old_lines, new_lines, f"{name} (current)", f"{name} (new)")
    # A last line without newline would glue onto the next diff line.
    diff = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return Edit(text, problems, diff)


def append_table(text: str, array: str, entry: dict[str, Any]) -> tuple[str, int]:
    """The TOML text with `entry` appended to the array of tables `array`, and the entry's index.

    Everything else (comments, secrets, layout) is kept as written; ValueError when the file cannot
    be read or `array` is not an array there.
    """
    doc = parse(text)
    existing = doc.get(array)
    if existing is None:
        doc.append(array, tomlkit.aot())
        existing = doc[array]
    if not isinstance(existing, list):
        raise ValueError(f"{array} is not an array in the configuration file")
    index = len(existing)
    if isinstance(existing, AoT):
        table = tomlkit.table()
        table.update(entry)
        table.add(tomlkit.nl())  # a blank line before whatever follows, as people write it
        existing.append(table)
    else:  # written inline as `meters = [{...}]`: stay inline
        inline = tomlkit.inline_table()
        inline.update(entry)
        existing.append(inline)
    return tomlkit.dumps(doc), index

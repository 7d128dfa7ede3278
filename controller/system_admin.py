"""The box itself for the web UI's System page: status, config edit, backup/restore, restart, logs.

Implements local_api.ports.SystemAdmin. Config writes go through store/atomic.replace_file with the
previous file kept as `<name>.bak-<UTC timestamp>` (newest KEEP_BACKUPS kept); a new config takes
effect at the next start, which `restart` triggers (see controller/cli.py: re-exec).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import threading
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controller.configedit import append_table, prepare_edit, redact
from controller.core.clock import Clock, rfc3339
from controller.core.clocksync import ClockSync
from controller.core.commissioning import Registration
from controller.core.config import Config, ConfigError, Problem
from controller.core.ports import DocumentStore
from controller.core.registry import TABLE as REGISTRY_TABLE
from controller.logring import LogRing
from controller.store.atomic import replace_file
from local_api.ports import SystemConflict

log = logging.getLogger(__name__)

BACKUP_FORMAT = "siteedge-backup/1"
KEEP_BACKUPS = 5
# A site config is a few kB (hundreds of chargers: ~100 kB); tomlkit needs ~1 s per 100 kB.
MAX_CONFIG_CHARS = 256 * 1024
RESTART_DELAY_S = 0.5  # lets the HTTP answer leave before the listeners close
_BUNDLE_KEYS = {"format", "created", "version", "config_toml", "charger_registry"}
_ENTRY_TEXT = ("first_seen", "boot_at", "last_answer")  # optional strings of a registry entry
_NO_FILE = (
    "this controller was started without a config file (not by `siteedge run --config FILE`), "
    "so there is no file to show or edit"
)


def _stamp(clock: Clock) -> str:
    """A UTC timestamp for file names that sorts in time order."""
    return clock.now().strftime("%Y%m%dT%H%M%S.%fZ")


class SystemService:
    """SystemAdmin over the config file, the charger registry documents and the log ring."""

    def __init__(
        self,
        *,
        config_path: Path | None,
        data_dir: Path,
        site_id: str,
        version: str,
        parse: Callable[[str, str], Config],
        health: Callable[[], Mapping[str, Any]],
        listeners: Callable[[], Mapping[str, int | None]],
        registry_docs: DocumentStore,
        log_ring: LogRing,
        clock: Clock,
        clock_sync: ClockSync,
        restart: Callable[[], None] | None,
        apply_live: Callable[[str, Mapping[str, Any], Config], bool] | None = None,
    ) -> None:
        self._path = config_path.resolve() if config_path is not None else None
        self._data_dir = data_dir
        self._site_id = site_id
        self._version = version
        self._parse = parse
        self._health = health
        self._listeners = listeners
        self._registry = registry_docs
        self._ring = log_ring
        self._clock = clock
        self._clock_sync = clock_sync
        self._restart = restart
        self._apply_live = apply_live  # takes an appended entry into the running site, if it can
        self._restarting = False
        self._started = clock.now()
        self._started_mono = clock.monotonic()
        self._write_lock = threading.Lock()  # one config write (read, back up, replace) at a time
        self._running_text = self._read_or_none()  # what this process started with

    # -- status ---------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        """Version, uptime, time sync, uplink, data dir usage, listeners, config path."""
        uplink = dict(self._health().get("uplink", {}))
        disk, on_disk = await asyncio.to_thread(lambda: (self._disk_usage(), self._read_or_none()))
        return {
            "version": self._version,
            "started": rfc3339(self._started),
            "uptime_s": round(self._clock.monotonic() - self._started_mono, 1),
            "time": rfc3339(self._clock.now()),
            "time_sync": self._time_sync(),
            "uplink": {
                k: uplink.get(k)
                for k in ("connected", "backlog", "since", "detail", "near_limit", "dropped_telemetry")
            },
            "data_dir": disk,
            "listeners": dict(self._listeners()),
            "config_path": str(self._path) if self._path else None,
            # The file on disk is not what runs (edited, not yet restarted): the UI offers a restart.
            "restart_required": self._path is not None and on_disk != self._running_text,
            "pid": os.getpid(),
            "python": platform.python_version(),
        }

    def _time_sync(self) -> dict[str, Any]:
        """Whether the wall clock is NTP-synchronized, and how that is known."""
        state = self._clock_sync.state()
        return {
            "synchronized": state.synchronized is True,
            "source": "adjtimex" if state.synchronized is not None else "unknown",
            "detail": state.detail,
        }

    def _disk_usage(self) -> dict[str, Any]:
        """The data dir's own size and its file system's capacity."""
        used_by_us = 0
        for root, _dirs, files in os.walk(self._data_dir):
            for name in files:
                try:
                    used_by_us += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    continue  # a temp file that vanished while we looked
        fs = shutil.disk_usage(self._data_dir)
        return {
            "path": str(self._data_dir.resolve()),
            "siteedge_bytes": used_by_us,
            "fs_total_bytes": fs.total,
            "fs_free_bytes": fs.free,
            "fs_used_percent": round(100.0 * (fs.total - fs.free) / fs.total, 1) if fs.total else None,
        }

    # -- config ---------------------------------------------------------------------------

    def _require_path(self) -> Path:
        if self._path is None:
            raise SystemConflict(_NO_FILE)
        return self._path

    def _read_or_none(self) -> str | None:
        if self._path is None:
            return None
        try:
            return self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _read_current(self) -> str:
        path = self._require_path()
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemConflict(f"the config file {path} cannot be read: {exc}") from exc

    async def config_text(self) -> str:
        """The running config file's TOML with secrets redacted."""
        current = await asyncio.to_thread(self._read_current)
        try:
            return redact(current)
        except ValueError as exc:
            raise SystemConflict(f"the config file {self._path} cannot be shown: {exc}") from exc

    def _evaluate(self, submitted: str, current: str) -> tuple[str, list[Problem], str]:
        """The text that would be written, every problem with it, and the redacted diff."""
        if len(submitted) > MAX_CONFIG_CHARS:
            return submitted, [Problem("toml", f"longer than {MAX_CONFIG_CHARS} characters")], ""
        try:
            tomllib.loads(submitted)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
            # No diff: the unchanged context lines of a text we cannot parse could show secrets.
            return submitted, [Problem("toml", f"not valid TOML: {exc}")], ""
        try:
            edit = prepare_edit(submitted, current, self._require_path().name)
        except ValueError as exc:
            return submitted, [Problem("toml", str(exc))], ""
        except RecursionError:
            return submitted, [Problem("toml", "nested too deeply")], ""
        problems = list(edit.problems)
        try:
            self._parse(edit.text, "toml")
        except ConfigError as exc:
            reported = {p.key for p in problems}  # a kept placeholder's own problem says enough
            problems += [p for p in exc.problems if p.key not in reported]
        return edit.text, problems, edit.diff

    async def check_config(self, toml: str) -> dict[str, Any]:
        """{"valid", "errors": [{"key", "reason"}], "diff"} for a proposed config; changes nothing."""
        # Off the loop: tomlkit is pure Python, and a large file must not stall the chargers' traffic.
        _text, problems, diff = await asyncio.to_thread(lambda: self._evaluate(toml, self._read_current()))
        return {
            "valid": not problems,
            "errors": [{"key": p.key, "reason": p.reason} for p in problems],
            "diff": diff,
        }

    async def apply_config(self, toml: str) -> dict[str, Any]:
        """Validate and write the config (previous file kept as a backup); effective at restart."""
        return await asyncio.to_thread(self._apply, toml)

    async def append_entry(self, array: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one [[array]] table to the config file by the same checked, backed-up write as PUT.

        The rest of the file (comments, secrets) is kept as written; problems of the new entry are
        keyed by its own keys ("id", not "meters[3].id"). `active`: the running site took it in
        too (apply_live); else it is effective at restart.
        """
        where: list[str] = []
        texts: list[str] = []  # the file before and after

        def build(current: str) -> str:
            try:
                text, index = append_table(current, array, entry)
            except ValueError as exc:
                raise ConfigError([Problem(array, str(exc))]) from exc
            where.append(f"{array}[{index}].")
            texts[:] = [current, text]
            return text

        try:
            result = await asyncio.to_thread(self._apply, build)
        except ConfigError as exc:
            if not where:  # the file itself could not take an entry
                raise
            own = [Problem(p.key.removeprefix(where[0]), p.reason) for p in exc.problems]
            raise ConfigError(own) from exc
        before, after = texts
        active = False
        if self._apply_live is not None:
            # Parsed off the loop (TOML and the device library); it was just checked, so it parses.
            written = await asyncio.to_thread(self._parse, after, "toml")
            active = self._apply_live(array, entry, written)
        if active and before == self._running_text:
            # Nothing else was waiting for a restart: what runs is now exactly the file.
            self._running_text = after
        return {**result, "active": active, "restart_required": after != self._running_text}

    def _apply(
        self,
        toml: str | Callable[[str], str] | None,
        key_prefix: str = "",
        found: list[Problem] | None = None,
        after: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Check and write under the write lock; nothing is written unless everything is valid.

        `toml` may be a function of the current text (an edit that must not race another write);
        `found`: problems the caller already found (reported together with the config's own);
        `after` runs once the config is written (still under the lock).
        """
        with self._write_lock:
            current = self._read_current()
            problems = list(found or [])
            text = current
            if callable(toml):
                toml = toml(current)
            if toml is not None:
                text, own, _diff = self._evaluate(toml, current)
                problems += [Problem(key_prefix + p.key, p.reason) for p in own]
            if problems:
                raise ConfigError(problems)
            try:
                backup = self._write_with_backup(current, text)
                if after is not None:
                    after()
            except OSError as exc:  # read-only file system, full disk: say so, never a 500
                raise SystemConflict(f"cannot write next to {self._path}: {exc.strerror or exc}") from exc
        log.warning("config file %s replaced via the web API (previous kept as %s)", self._path, backup)
        return {"applied": True, "restart_required": text != self._running_text, "backup": backup}

    def _write_with_backup(self, current: str, text: str) -> str:
        """Keep the current file as <name>.bak-<timestamp>, write the new one, prune old backups."""
        path = self._require_path()
        backup = path.with_name(f"{path.name}.bak-{_stamp(self._clock)}")
        replace_file(backup, current.encode("utf-8"))
        replace_file(path, text.encode("utf-8"))
        backups = sorted(path.parent.glob(f"{path.name}.bak-*"))
        for old in backups[:-KEEP_BACKUPS]:
            old.unlink(missing_ok=True)
        return backup.name

    # -- backup / restore -----------------------------------------------------------------

    async def backup(self) -> tuple[dict[str, Any], str]:
        """The backup bundle (config with secrets, charger registry) and its download file name."""
        current = await asyncio.to_thread(self._read_current)
        docs = await asyncio.to_thread(self._registry.all, REGISTRY_TABLE)
        bundle = {
            "format": BACKUP_FORMAT,
            "created": rfc3339(self._clock.now()),
            "version": self._version,
            # Secrets included: a restore must bring back a working site. Admin-only download.
            "config_toml": current,
            "charger_registry": [{"id": key, **doc} for key, doc in sorted(docs.items())],
        }
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%SZ")
        return bundle, f"siteedge-backup-{self._site_id}-{stamp}.json"

    async def restore(self, bundle: Any) -> dict[str, Any]:
        """Validate a whole bundle, then write its config and charger registry; effective at restart."""
        self._require_path()
        problems, entries = _check_bundle(bundle)
        toml = bundle.get("config_toml") if isinstance(bundle, dict) else None
        result = await asyncio.to_thread(
            self._apply,
            toml if isinstance(toml, str) else None,
            "config_toml.",
            problems,
            lambda: self._replace_registry(entries),
        )
        return {**result, "restart_required": True, "chargers": len(entries)}

    def _replace_registry(self, entries: list[dict[str, Any]]) -> None:
        """Make the registry documents exactly the bundle's (the running registry reads them at start)."""
        wanted = {e["id"]: {k: v for k, v in e.items() if k != "id"} for e in entries}
        for key in set(self._registry.all(REGISTRY_TABLE)) - set(wanted):
            self._registry.delete(REGISTRY_TABLE, key)
        for key, doc in wanted.items():
            self._registry.put(REGISTRY_TABLE, key, doc)

    # -- restart and logs -----------------------------------------------------------------

    def restart(self) -> dict[str, Any]:
        """Schedule a graceful restart (after the answer has left)."""
        if self._restart is None:
            raise SystemConflict(
                "this controller cannot restart itself: it was not started by `siteedge run`"
            )
        if not self._restarting:
            self._restarting = True
            log.warning("restart requested via the web API")
            asyncio.get_running_loop().call_later(RESTART_DELAY_S, self._restart)
        return {"restarting": True}

    def logs(self, limit: int, offset: int, min_level: int, text: str | None) -> list[dict[str, Any]]:
        """Newest log records first: up to limit of those at or above min_level containing text."""
        return [e.as_json() for e in self._ring.query(limit, offset, min_level, text)]


def _check_bundle(bundle: Any) -> tuple[list[Problem], list[dict[str, Any]]]:
    """Every problem of a backup bundle's shape (the config itself is checked when applied)."""
    if not isinstance(bundle, dict):
        return [Problem("bundle", "must be a JSON object (a siteedge backup file)")], []
    problems = [Problem(k, "unknown key") for k in sorted(set(bundle) - _BUNDLE_KEYS)]
    if bundle.get("format") != BACKUP_FORMAT:
        problems.append(Problem("format", f"must be {BACKUP_FORMAT!r}, got {bundle.get('format')!r}"))
    for key in ("created", "version", "config_toml"):
        if not isinstance(bundle.get(key), str):
            problems.append(Problem(key, "required string is missing"))
    raw = bundle.get("charger_registry")
    if not isinstance(raw, list):
        problems.append(Problem("charger_registry", "must be a list"))
        return problems, []
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    states = {r.value for r in Registration}
    for i, entry in enumerate(raw):
        key = f"charger_registry[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(key, "must be an object"))
            continue
        cp_id = entry.get("id")
        if not isinstance(cp_id, str) or not cp_id or "/" in cp_id or len(cp_id) > 64:
            problems.append(Problem(f"{key}.id", "must be a charger id (1-64 characters, no '/')"))
        elif cp_id in seen:
            problems.append(Problem(f"{key}.id", f"duplicate charger id {cp_id!r}"))
        else:
            seen.add(cp_id)
        if entry.get("registration") not in states:
            problems.append(Problem(f"{key}.registration", f"must be one of {', '.join(sorted(states))}"))
        for field in _ENTRY_TEXT:
            if not isinstance(entry.get(field), str | None):
                problems.append(Problem(f"{key}.{field}", "must be a string or null"))
        if not isinstance(entry.get("boot"), dict | None):
            problems.append(Problem(f"{key}.boot", "must be an object or null"))
        for extra in sorted(set(entry) - {"id", "registration", "boot", *_ENTRY_TEXT}):
            problems.append(Problem(f"{key}.{extra}", "unknown key"))
        entries.append(entry)
    return problems, entries

"""A TinyDB storage that replaces its JSON file atomically, so a crash never leaves it torn."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

_TMP_MARK = ".tmp-"


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may be a reused pid; that only keeps a file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable: the new directory entry must reach the disk too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, tmp: Path | None = None) -> None:
    """Replace path's content with data durably: temp file, fsync, rename, fsync the directory.

    A crash leaves the old or the new content, never a torn file. The new file keeps the old one's
    permissions (it may hold secrets); a file that did not exist starts private (0600).
    """
    tmp = tmp or path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)  # atomic on POSIX: old or new, never half
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)  # without this a power cut can undo the rename


class AtomicJSONStorage(Storage):
    """JSON file storage: write temp file, fsync, rename over the target, fsync the directory."""

    def __init__(self, path: str | os.PathLike[str], create_dirs: bool = False) -> None:
        super().__init__()
        self._path = Path(path)
        if create_dirs:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        # One temp name per process: two processes never scribble over each other's temp file.
        self._tmp = self._path.with_name(f".{self._path.name}{_TMP_MARK}{os.getpid()}")
        self._lock = threading.Lock()  # one temp file per process, so writers take turns
        self._remove_stale_temps()

    @property
    def path(self) -> Path:
        """The JSON file this storage owns."""
        return self._path

    def _remove_stale_temps(self) -> None:
        """Delete temp files left by writers that died mid-write; the target is still intact."""
        prefix = f".{self._path.name}{_TMP_MARK}"
        for candidate in self._path.parent.glob(f"{prefix}*"):
            suffix = candidate.name[len(prefix) :]
            if not suffix.isdigit():
                continue
            pid = int(suffix)
            # Our own pid can only name a leftover of an earlier process that had the same pid.
            if pid == os.getpid() or not _pid_alive(pid):
                candidate.unlink(missing_ok=True)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The whole database, or None when the file is missing or empty."""
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        # A parse error propagates on purpose: silently starting empty would lose configuration.
        data: dict[str, dict[str, Any]] = json.loads(text)
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace the file with `data`; on return the new content is durable."""
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with self._lock:
            replace_file(self._path, encoded, self._tmp)

    def close(self) -> None:
        """Nothing stays open between writes."""

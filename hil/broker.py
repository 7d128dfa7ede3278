"""A private Mosquitto broker on 127.0.0.1 for tests and demos, restartable on the same port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """TLS for the listener: CA (to check client certificates), server certificate and key."""

    ca: Path
    cert: Path
    key: Path
    require_client_cert: bool = False


class BrokerError(RuntimeError):
    """The broker could not be found, started or stopped; the message says why."""


def find_mosquitto() -> str:
    """Path of the mosquitto binary; BrokerError with the install hint if there is none."""
    for path in MOSQUITTO_PATHS:
        if Path(path).is_file():
            return path
    found = shutil.which("mosquitto")
    if found:
        return found
    raise BrokerError("mosquitto not found: apt-get install mosquitto")


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and that this process never handed out.

    Never twice: a client of an earlier test that still retries its broker's port (a process that
    outlived its test, a reconnect loop) must not reach a later test's broker on the same port.
    """
    with _handed_out_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((HOST, 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                break
        _handed_out.add(port)
        return port


def accepts(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port right now."""
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """One mosquitto process with a generated config; stop() and start() keep the port."""

    host = HOST

    def __init__(
        self,
        port: int = 0,
        *,
        start_timeout: float = 5.0,
        tls: BrokerTls | None = None,
        users: Mapping[str, str] | None = None,
        persistent: bool = False,
    ) -> None:
        self._binary = find_mosquitto()
        self._tls = tls
        self._users = dict(users or {})
        self._persistent = persistent  # keep sessions and queued messages across a clean restart
        self._port = port or free_port()
        self._start_timeout = start_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="siteedge-broker-")
        self.dir = Path(self._tmp.name)
        self.log_path = self.dir / "mosquitto.log"
        self.conf_path = self.dir / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_conf()

    @property
    def port(self) -> int:
        """The TCP port the broker listens on; fixed for the life of this object."""
        return self._port

    @property
    def url(self) -> str:
        """mqtt://127.0.0.1:PORT, the form siteedge's config and the backend CLI take."""
        return f"{'mqtts' if self._tls else 'mqtt'}://{HOST}:{self._port}"

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _write_conf(self) -> None:
        lines = [f"listener {self._port} {HOST}"]
        if os.getuid() == 0:
            # As root, mosquitto drops to user "mosquitto", which cannot read our 0700 temp dir
            # (password file, keys): stay the user that made the files.
            lines.append("user root")
        if self._tls is not None:
            lines += [
                f"cafile {self._tls.ca}",
                f"certfile {self._tls.cert}",
                f"keyfile {self._tls.key}",
                f"require_certificate {'true' if self._tls.require_client_cert else 'false'}",
            ]
        if self._users:
            passwd = self.dir / "passwd"
            passwd.touch(mode=0o600)
            for user, password in self._users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.conf_path.write_text(
            "\n".join(
                (
                    *lines,
                    # By default no persistence: a restart is a clean outage and the client side
                    # must re-deliver; a persistent broker keeps subscribers' sessions (stop()).
                    *(
                        ("persistence true", f"persistence_location {self.dir}/", "autosave_interval 1")
                        if self._persistent
                        else ("persistence false",)
                    ),
                    f"log_dest file {self.log_path}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                    "",
                )
            )
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker log, for error messages and failing tests."""
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> Broker:
        """Start mosquitto and return once it accepts TCP connections; BrokerError if it does not."""
        if self.running:
            return self
        self._proc = subprocess.Popen(
            [self._binary, "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                # Usually the port is still held (by another process, or TIME_WAIT on restart).
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(f"mosquitto exited with {code} on port {self._port}:\n{self.log_tail()}")
            if accepts(self._port):
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not accept connections on port {self._port} in time")

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate mosquitto (SIGTERM, then SIGKILL after timeout) and reap it; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the broker: a crash, with no clean disconnects sent to clients."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def freeze(self) -> None:
        """SIGSTOP the broker: connections stay open but nothing is read or acknowledged."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen broker."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def restart(self) -> Broker:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the broker and delete its temp directory."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Broker({self.url}, running={self.running})"

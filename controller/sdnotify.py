"""systemd's notify protocol over its datagram socket: READY, STATUS, WATCHDOG and STOPPING messages."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """sd_notify(3) without libsystemd: a no-op unless systemd started us with NOTIFY_SOCKET."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # "@name" is Linux's abstract namespace, spelled with a leading NUL on the wire.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process systemd watches; a child that inherited the variables is not it.
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s: float | None = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test standing in for it) listens."""
        return bool(self._address)

    def send(self, *fields: str) -> bool:
        """Send KEY=VALUE lines in one datagram; False (logged once per failure) if it could not."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", fields[0] if fields else "", exc)
            return False
        return True

    async def keep_alive(self) -> None:
        """Ping the watchdog at half its period until cancelled; pings stop if the event loop hangs."""
        if self.watchdog_s is None:
            return
        # Sent from the loop itself: a blocked loop (the failure that matters) stops the pings and
        # systemd restarts the service; a thread would keep pinging for a dead controller.
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_s / 2)

"""The Linux ClockSync adapter: the kernel's NTP discipline state via adjtimex(2) (read only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

from controller.core.clocksync import ClockState, from_adjtimex

log = logging.getLogger(__name__)


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (glibc and musl agree on this layout)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


class LinuxClockSync:
    """Asks the kernel with adjtimex(modes=0), which changes nothing and needs no privilege."""

    def __init__(self) -> None:
        self._adjtimex = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                self._adjtimex = libc.adjtimex
            except (OSError, AttributeError) as exc:
                log.warning("clock sync state unknown: no adjtimex in libc (%s)", exc)

    def state(self) -> ClockState:
        """The kernel's answer now; unknown (None) off Linux or if the call fails."""
        if self._adjtimex is None:
            return ClockState(None, "adjtimex not available on this platform")
        tx = _Timex()  # modes = 0: read only
        result = int(self._adjtimex(ctypes.byref(tx)))
        if result < 0:
            return ClockState(None, f"adjtimex failed: errno {ctypes.get_errno()}")
        return from_adjtimex(result, int(tx.status), int(tx.maxerror))

"""Modbus links from configured transports: TCP, RTU on a serial port, RTU through a TCP gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from controller.core.config import TransportSettings

# pymodbus closes a TCP connection after retries+3 unanswered requests; on a gateway with one
# dead unit that would cut off every other device, so siteedge decides when to reconnect.
_NEVER = 1 << 30

# pymodbus logs every unanswered request as an ERROR with a frame dump; siteedge reports each
# failure itself (per device, once per outage), so keep pymodbus quiet unless configured otherwise.
_PYMODBUS_LOG = logging.getLogger("pymodbus")
if _PYMODBUS_LOG.level == logging.NOTSET:
    _PYMODBUS_LOG.setLevel(logging.CRITICAL)


T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout_s: float) -> T:
    """Await a pymodbus call for at most timeout_s (TimeoutError), re-raising a cancellation it swallowed."""
    # pymodbus awaits connects and replies with 3.11's asyncio.wait_for, which returns the result
    # instead of raising when the cancellation lands just as the result arrives (gh-86296). The
    # task then runs on as if never cancelled, and the controller's shutdown waits for it forever;
    # only its cancelling() count still tells. asyncio.timeout takes back its own cancellation on
    # exit, so a count above the one at entry is a cancellation from outside.
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    async with asyncio.timeout(timeout_s):
        result = await awaitable
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result


class RequestFailed(Exception):
    """One request failed; kind is timeout, crc, exception, bad_reply or connection."""

    def __init__(self, kind: str, detail: str, code: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.code = code


def make_client(t: TransportSettings, timeout_s: float, trace_pdu: Any = None) -> Any:
    """A pymodbus async client; retries=0 because siteedge retries itself (pymodbus default ~12 s)."""
    if t.kind == "tcp":
        return AsyncModbusTcpClient(
            t.host or "127.0.0.1",
            port=t.port or 502,
            timeout=timeout_s,
            retries=0,
            reconnect_delay=0.1,
            reconnect_delay_max=10.0,
            trace_pdu=trace_pdu,
        )
    # pyserial opens "socket://host:port" as a serial port: RTU framing through a TCP gateway.
    port = (t.device or "") if t.kind == "rtu" else f"socket://{t.host}:{t.port}"
    return AsyncModbusSerialClient(
        port,
        framer=FramerType.RTU,
        baudrate=t.baudrate,
        bytesize=t.bytesize,
        parity=t.parity,
        stopbits=t.stopbits,
        timeout=timeout_s,
        retries=0,
        reconnect_delay=0.1,
        reconnect_delay_max=10.0,
        trace_pdu=trace_pdu,
    )


class Link:
    """One pymodbus client plus what siteedge needs: per-request timeouts, CRC and late-reply counts."""

    def __init__(self, t: TransportSettings, timeout_s: float) -> None:
        self.rtu_framing = t.kind in ("rtu", "rtutcp")
        self.crc_errors = 0
        self.late_replies = 0
        self._in_flight = False
        # pymodbus' own timeout is only a backstop; each request gets its own below.
        self._client: Any = make_client(t, max(timeout_s * 4, 2.0), trace_pdu=self._trace_pdu)
        self._client.set_max_no_responses(_NEVER)
        if self.rtu_framing:
            self._hook_crc()

    def _hook_crc(self) -> None:
        # pymodbus 3.16 drops a frame with a bad CRC silently (it looks like a timeout); the RTU
        # framer's decode returns (consumed, 0, 0, b"") exactly then, so count those.
        framer = getattr(getattr(self._client, "ctx", None), "framer", None)
        decode = getattr(framer, "decode", None)
        if framer is None or decode is None:
            return

        def counting(data: bytes) -> tuple[int, int, int, bytes]:
            used, dev_id, tid, frame = decode(data)
            if used and not frame and not dev_id:
                self.crc_errors += 1
            return used, dev_id, tid, frame

        framer.decode = counting

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending and not self._in_flight:
            # A reply nobody waits for: the answer to a request that already timed out.
            self.late_replies += 1
        return pdu

    @property
    def connected(self) -> bool:
        """True while the port or socket is open."""
        return bool(self._client.connected)

    async def connect(self, timeout_s: float) -> None:
        """Open the port or socket; RequestFailed(connection) if that fails in time."""
        try:
            ok = await within(self._client.connect(), timeout_s)
        except (TimeoutError, OSError, ModbusException) as exc:
            raise RequestFailed("connection", f"cannot connect: {exc or type(exc).__name__}") from exc
        if not ok or not self._client.connected:
            raise RequestFailed("connection", "cannot connect")

    def close(self) -> None:
        """Close the port or socket (the next request reconnects)."""
        with contextlib.suppress(Exception):
            self._client.close()

    async def read(self, function: int, address: int, count: int, unit: int, timeout_s: float) -> list[int]:
        """Read count registers (FC3/FC4) or coils (FC1, a word per bit); exactly count or RequestFailed."""
        fn = {
            1: self._client.read_coils,
            4: self._client.read_input_registers,
        }.get(function, self._client.read_holding_registers)
        rr = await self._request(lambda: fn(address, count=count, device_id=unit), timeout_s)
        if function == 1:
            return [int(b) for b in list(getattr(rr, "bits", []))[:count]]
        regs = list(getattr(rr, "registers", []))
        # RTU replies carry no transaction id: a late answer to an earlier request usually has
        # another length, and must never be taken for this one.
        if len(regs) != count:
            raise RequestFailed("bad_reply", f"expected {count} registers, got {len(regs)}")
        return regs

    async def write(self, function: int, address: int, words: list[int], unit: int, timeout_s: float) -> None:
        """Write with FC5 (one coil), FC6 (one register) or FC16 (several); RequestFailed on any failure."""
        client = self._client
        call: Callable[[], Any]
        if function == 5:
            call = lambda: client.write_coil(address, bool(words[0]), device_id=unit)  # noqa: E731
        elif function == 6:
            if len(words) != 1:
                raise ValueError("FC6 writes exactly one register")
            call = lambda: client.write_register(address, words[0], device_id=unit)  # noqa: E731
        elif function == 16:
            call = lambda: client.write_registers(address, words, device_id=unit)  # noqa: E731
        else:
            raise ValueError(f"not a write function code: {function}")
        rr = await self._request(call, timeout_s)
        # The echo of FC6/FC16 names the address written; a reply for another address is a stale one.
        echoed = getattr(rr, "address", address)
        if isinstance(echoed, int) and echoed != address:
            raise RequestFailed("bad_reply", f"write echo for address {echoed}, expected {address}")

    async def _request(self, call: Callable[[], Any], timeout_s: float) -> Any:
        """Send one pymodbus request and await it with its own timeout; the reply or RequestFailed."""
        crc_before = self.crc_errors
        self._in_flight = True
        try:
            rr = await within(call(), timeout_s)
        except TimeoutError as exc:
            if self.crc_errors != crc_before:
                raise RequestFailed("crc", "reply failed its CRC check") from exc
            raise RequestFailed("timeout", f"no reply within {timeout_s:.3f} s") from exc
        except ConnectionException as exc:
            raise RequestFailed("connection", str(exc)) from exc
        except ModbusIOException as exc:
            raise RequestFailed("bad_reply", str(exc)) from exc
        except (ModbusException, OSError) as exc:
            raise RequestFailed("connection", str(exc) or type(exc).__name__) from exc
        finally:
            self._in_flight = False
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            raise RequestFailed("exception", f"exception response {code}", code)
        return rr

"""Modbus clients from configured transports: TCP, or RTU over a serial line via pyserial."""

from __future__ import annotations

from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from controller.core.config import TransportSettings


def make_client(t: TransportSettings, timeout: float) -> Any:
    """A pymodbus async client; retries=0 because siteedge retries itself (pymodbus default ~12 s)."""
    if t.kind == "tcp":
        return AsyncModbusTcpClient(
            t.host or "127.0.0.1",
            port=t.port or 502,
            timeout=timeout,
            retries=0,
            reconnect_delay=0.1,
            reconnect_delay_max=10.0,
        )
    return AsyncModbusSerialClient(
        t.device or "",
        framer=FramerType.RTU,
        baudrate=t.baudrate,
        bytesize=t.bytesize,
        parity=t.parity,
        stopbits=t.stopbits,
        timeout=timeout,
        retries=0,
        reconnect_delay=0.1,
        reconnect_delay_max=10.0,
    )

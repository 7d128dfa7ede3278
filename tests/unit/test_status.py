"""OCPP -> OCPI status mapping (both protocol versions) and multi-connector EVSEs."""

from __future__ import annotations

import pytest

from controller.core.status import EvseStatus, combine, ocpi_status


@pytest.mark.parametrize(
    ("ocpp", "ocpi"),
    [
        ("Available", "AVAILABLE"),
        ("Preparing", "CHARGING"),
        ("Charging", "CHARGING"),
        ("SuspendedEV", "CHARGING"),
        ("SuspendedEVSE", "CHARGING"),
        ("Finishing", "CHARGING"),
        ("Reserved", "RESERVED"),
        ("Unavailable", "INOPERATIVE"),
        ("Faulted", "OUTOFORDER"),
        ("Bogus", "UNKNOWN"),
    ],
)
def test_ocpp16_mapping(ocpp: str, ocpi: str) -> None:
    assert ocpi_status("1.6", ocpp) == ocpi


@pytest.mark.parametrize(
    ("ocpp", "ocpi"),
    [
        ("Available", "AVAILABLE"),
        ("Occupied", "CHARGING"),
        ("Reserved", "RESERVED"),
        ("Unavailable", "INOPERATIVE"),
        ("Faulted", "OUTOFORDER"),
        ("Charging", "UNKNOWN"),
    ],
)
def test_ocpp201_mapping(ocpp: str, ocpi: str) -> None:
    assert ocpi_status("2.0.1", ocpp) == ocpi


def test_evse_is_busy_if_any_connector_is_in_use() -> None:
    assert combine([EvseStatus.AVAILABLE, EvseStatus.CHARGING]) is EvseStatus.CHARGING
    assert combine([EvseStatus.OUTOFORDER, EvseStatus.AVAILABLE]) is EvseStatus.AVAILABLE
    assert combine([EvseStatus.OUTOFORDER, EvseStatus.INOPERATIVE]) is EvseStatus.INOPERATIVE
    assert combine([]) is EvseStatus.UNKNOWN

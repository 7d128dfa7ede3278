"""The OCPI 2.2.1 Location of this site, built from configuration and the live EVSE state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.core.clock import rfc3339
from controller.core.config import Config
from controller.core.sessions import tariff_ids_for
from controller.core.status import EvseStatus

# OCPI 1.x chargers expose each connector as an EVSE; each EVSE here has one connector, id "1".
CONNECTOR_ID = "1"


def static_part(config: Config) -> dict[str, Any]:
    """The Location fields that only change when the configuration changes."""
    s = config.site
    return {
        "country_code": s.country_code,
        "party_id": s.party_id,
        "id": s.location_id,
        "publish": True,
        "name": s.name or None,
        "address": s.address,
        "city": s.city,
        "postal_code": s.postal_code or None,
        "country": s.country,
        "coordinates": {"latitude": s.latitude, "longitude": s.longitude},
        "time_zone": s.time_zone,
        "evses": [
            {
                "uid": e.evse_uid,
                "evse_id": e.evse_id,
                "capabilities": ["REMOTE_START_STOP_CAPABLE", "RFID_READER"],
                "connectors": [
                    {
                        "id": CONNECTOR_ID,
                        "standard": e.standard,
                        "format": e.format,
                        "power_type": e.power_type,
                        "max_voltage": e.max_voltage,
                        "max_amperage": e.max_amperage,
                        "max_electric_power": e.max_electric_power,
                        # The tariffs that apply here (the site default if the EVSE has none).
                        "tariff_ids": tariff_ids_for(config, e.evse_uid) or None,
                    }
                ],
            }
            for c in config.chargers
            for e in c.evses
        ],
    }


def fingerprint(static: Mapping[str, Any]) -> str:
    """A stable digest of the static part: a changed digest means a new last_updated."""
    return hashlib.sha256(json.dumps(static, sort_keys=True).encode()).hexdigest()


def location_document(
    static: Mapping[str, Any],
    static_updated: datetime,
    statuses: Mapping[str, tuple[EvseStatus, datetime | None]],
) -> dict[str, Any]:
    """The full OCPI Location: static data stamped with its change time, EVSE status filled in.

    An EVSE's or connector's last_updated is the later of its static change and its status change,
    and the Location's is the latest of all, as OCPI requires a child change to bump its parents.
    """
    evses = []
    newest = static_updated
    for evse in static["evses"]:
        status, changed = statuses.get(evse["uid"], (EvseStatus.UNKNOWN, None))
        stamp = max(static_updated, changed) if changed else static_updated
        newest = max(newest, stamp)
        connectors = [_drop_none({**c, "last_updated": rfc3339(static_updated)}) for c in evse["connectors"]]
        evses.append(
            _drop_none(
                {**evse, "status": status.value, "connectors": connectors, "last_updated": rfc3339(stamp)}
            )
        )
    return _drop_none({**static, "evses": evses, "last_updated": rfc3339(newest)})


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    # OCPI: optional fields are omitted rather than sent as null.
    return {k: v for k, v in d.items() if v is not None}

"""Prometheus text exposition of the site's health snapshot (GET /metrics)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

EVSE_STATUSES = (
    "AVAILABLE",
    "BLOCKED",
    "CHARGING",
    "INOPERATIVE",
    "OUTOFORDER",
    "PLANNED",
    "REMOVED",
    "RESERVED",
    "UNKNOWN",
)


def _label(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _number(value: float | int | bool) -> str:
    """A sample value in full: counters pass a million within days, and `:g` keeps 6 digits."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 2**53):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # the shortest form that reads back exactly


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f"{k}={_label(v)}" for k, v in labels.items()) + "}" if labels else ""


class _Family:
    """One metric family: HELP, TYPE and its samples."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, value: float | int | bool | None, suffix: str = "", **labels: Any) -> None:
        if value is None:
            return  # unknown is absent, never zero
        self.lines.append(f"{self.name}{suffix}{_labels(**labels)} {_number(value)}")

    def histogram(self, snap: Mapping[str, Any], **labels: Any) -> None:
        """The _bucket, _sum and _count samples of a Histogram.snapshot()."""
        for le, count in snap["buckets"]:
            self.add(count, "_bucket", **labels, le=le if isinstance(le, str) else f"{le:g}")
        self.add(snap["sum"], "_sum", **labels)
        self.add(snap["count"], "_count", **labels)


def render(health: dict[str, Any], stats: Mapping[str, Any] | None = None) -> str:
    """The health snapshot and the traffic stats (SiteController._stats) as Prometheus text 0.0.4."""
    fams: list[_Family] = []

    def family(name: str, kind: str, help_text: str) -> _Family:
        fam = _Family(name, kind, help_text)
        fams.append(fam)
        return fam

    uplink = health.get("uplink", {})
    family("siteedge_uplink_connected", "gauge", "1 while the MQTT uplink is connected.").add(
        uplink.get("connected")
    )
    family("siteedge_outbox_backlog", "gauge", "Messages waiting in the durable outbox.").add(
        uplink.get("backlog")
    )
    family(
        "siteedge_outbox_near_limit", "gauge", "1 when the outbox is close to its disk bound (alarm)."
    ).add(uplink.get("near_limit"))
    family("siteedge_telemetry_dropped_total", "counter", "Telemetry dropped to stay within the bound.").add(
        uplink.get("dropped_telemetry")
    )

    connected = family(
        "siteedge_charger_connected", "gauge", "1 while the charger's OCPP connection is open."
    )
    evse = family("siteedge_evse_status", "gauge", "1 for the EVSE's current OCPI status, 0 for the others.")
    charging = family("siteedge_evse_transaction_active", "gauge", "1 while a transaction runs on the EVSE.")
    for ch in health.get("chargers", []):
        connected.add(ch.get("connected"), charger=ch["id"])
        for e in ch.get("evses", []):
            for status in EVSE_STATUSES:
                evse.add(e.get("status") == status, charger=ch["id"], evse_uid=e["evse_uid"], status=status)
            charging.add(e.get("transaction") is not None, evse_uid=e["evse_uid"])

    meter_ok = family("siteedge_meter_ok", "gauge", "1 while the meter's readings are fresh and trusted.")
    age = family("siteedge_meter_reading_age_seconds", "gauge", "Age of the meter's last good reading.")
    value = family(
        "siteedge_meter_value", "gauge", "Latest trusted meter value in SI units (W, Wh, V, A, Hz)."
    )
    counters: dict[str, _Family] = {}
    for m in health.get("meters", []):
        meter_ok.add(m.get("ok"), meter=m["id"], role=m.get("role"))
        age.add(m.get("last_reading_age_s"), meter=m["id"])
        for name, v in (m.get("values") or {}).items():
            value.add(v, meter=m["id"], quantity=name)
        for name, count in _counts(m.get("modbus")):
            fam = counters.get(name)
            if fam is None:
                fam = counters[name] = family(
                    f"siteedge_modbus_{name}_total", "counter", f"Modbus {name.replace('_', ' ')} per device."
                )
            fam.add(count, meter=m["id"])
    _traffic(family, stats or {})
    return "\n".join(line for fam in fams for line in fam.lines) + "\n"


def _counts(device: dict[str, Any] | None) -> Iterable[tuple[str, int]]:
    """The integer health counters of a Modbus device report (polls, timeouts, crc_errors, ...)."""
    if not device:
        return []
    return [(k, v) for k, v in sorted(device.items()) if isinstance(v, int) and not isinstance(v, bool)]


def _traffic(family: Any, stats: Mapping[str, Any]) -> None:
    """OCPP calls both ways with latencies, Modbus request latency per bus, uplink ack latency."""
    ocpp = stats.get("ocpp")
    if ocpp:
        received = family(
            "siteedge_ocpp_calls_received_total", "counter", "Calls from chargers by action and answer."
        )
        for action, outcome, n in ocpp["received"]:
            received.add(n, action=action, outcome=outcome)
        sent = family("siteedge_ocpp_calls_sent_total", "counter", "Calls to chargers by action and outcome.")
        for action, outcome, n in ocpp["sent"]:
            sent.add(n, action=action, outcome=outcome)
        family("siteedge_ocpp_malformed_frames_total", "counter", "Frames that were not OCPP-J.").add(
            ocpp["malformed"]
        )
        family("siteedge_ocpp_connections_total", "counter", "Charger connections accepted.").add(
            ocpp["connections"]
        )
        family(
            "siteedge_ocpp_call_handling_seconds",
            "histogram",
            "A charger's call received to our answer sent.",
        ).histogram(ocpp["handle_seconds"])
        family(
            "siteedge_ocpp_call_roundtrip_seconds",
            "histogram",
            "Our call to the charger's answer, including waiting behind its previous call.",
        ).histogram(ocpp["roundtrip_seconds"])
    buses = stats.get("modbus") or []
    if buses:
        latency = family(
            "siteedge_modbus_request_seconds",
            "histogram",
            "Answered Modbus requests, sent to decoded, per bus.",
        )
        for bus in buses:
            latency.histogram(bus["latency"], transport=bus["transport"])
    if "uplink_ack" in stats:
        family(
            "siteedge_uplink_ack_seconds", "histogram", "MQTT publish to the broker's acknowledgement."
        ).histogram(stats["uplink_ack"])

"""Builds siteedge TOML configurations for simulated sites (tests, demo, rigs)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SimCharger:
    """A simulated charge point: its id, protocol and number of EVSEs."""

    id: str
    ocpp_version: str = "1.6"
    evses: int = 1
    password: str | None = None
    price_display: str | None = None  # none | ocpp201 | datatransfer:<vendorId>:<messageId>

    def evse_uid(self, n: int) -> str:
        """The OCPI EVSE uid of EVSE n (1-based)."""
        return f"{self.id}-{n}"


@dataclass(frozen=True, slots=True)
class SimMeter:
    """A simulated Modbus meter: TCP on 127.0.0.1:port, or the transport URL given (an RTU pty)."""

    id: str
    port: int
    role: str
    model: str = "eastron_sdm630"
    unit: int = 1
    transport: str | None = None  # e.g. "rtu:///dev/pts/5?baud=19200"; None: tcp://127.0.0.1:port

    @property
    def url(self) -> str:
        """The transport URL siteedge is configured with."""
        return self.transport or f"tcp://127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class SimModbusCharger:
    """A simulated charger siteedge controls over Modbus ([[modbus_chargers]])."""

    id: str
    model: str
    transport: str
    unit: int
    evse_uid: str | None = None
    failsafe_current: float = 6.0
    max_current: float = 32.0


@dataclass(slots=True)
class SiteSpec:
    """Everything needed to write a config for a simulated site."""

    data_dir: str
    mqtt_url: str
    ocpp_port: int = 0
    api_port: int = 0
    api_tls: bool = False  # HTTPS with a self-signed certificate made at first start
    chargers: list[SimCharger] = field(default_factory=list)
    meters: list[SimMeter] = field(default_factory=list)
    modbus_chargers: list[SimModbusCharger] = field(default_factory=list)
    name: str = "siteedge demo site"
    location_id: str = "DEMO01"
    reconnect_max: float = 2.0
    telemetry_interval: float = 1.0
    poll_interval: float = 0.5
    log_level: str = "INFO"
    free_vend: bool = False  # tests that are not about authorization switch roaming checks off
    auth_timeout: float = 2.0
    max_power_kw: float | None = None  # [site] max_power_kw: the limit the dashboard draws
    default_tariff_id: str | None = None  # [site] default_tariff_id: the tariff EVSEs without their own offer


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(spec: SiteSpec) -> str:
    """The TOML text of a valid siteedge configuration for spec."""
    lines = [
        "[site]",
        'country_code = "NL"',
        'party_id = "SED"',
        f"location_id = {_q(spec.location_id)}",
        f"data_dir = {_q(spec.data_dir)}",
        f"name = {_q(spec.name)}",
        'time_zone = "Europe/Amsterdam"',
        'address = "Simulatorweg 1"',
        'city = "Utrecht"',
        'postal_code = "3511AA"',
        'country = "NLD"',
        'latitude = "52.090700"',
        'longitude = "5.121400"',
        *([f"max_power_kw = {spec.max_power_kw}"] if spec.max_power_kw is not None else []),
        *([f"default_tariff_id = {_q(spec.default_tariff_id)}"] if spec.default_tariff_id else []),
        "",
        "[ocpp]",
        'host = "127.0.0.1"',
        f"port = {spec.ocpp_port}",
        "heartbeat_interval = 60",
        "",
        "[api]",
        'host = "127.0.0.1"',
        f"port = {spec.api_port}",
        f"tls = {'true' if spec.api_tls else 'false'}",
        "",
        "[mqtt]",
        f"url = {_q(spec.mqtt_url)}",
        "reconnect_min = 0.1",
        f"reconnect_max = {spec.reconnect_max}",
        f"telemetry_interval = {spec.telemetry_interval}",
        "",
        "[logging]",
        f"level = {_q(spec.log_level)}",
        "",
        "[auth]",
        f"free_vend = {'true' if spec.free_vend else 'false'}",
        f"realtime_timeout = {spec.auth_timeout}",
        "",
    ]
    for c in spec.chargers:
        lines += ["[[chargers]]", f"id = {_q(c.id)}"]
        if c.password:
            lines.append(f"password = {_q(c.password)}")
        if c.price_display:
            lines.append(f"price_display = {_q(c.price_display)}")
        for n in range(1, c.evses + 1):
            lines += [
                "[[chargers.evses]]",
                f"ocpp_evse = {n}",
                f"evse_uid = {_q(c.evse_uid(n))}",
                f'evse_id = "NL*SED*E{c.id.replace("-", "")}*{n}"',
                "max_electric_power = 22000",
            ]
        lines.append("")
    for m in spec.meters:
        lines += [
            "[[meters]]",
            f"id = {_q(m.id)}",
            f"model = {_q(m.model)}",
            f"transport = {_q(m.url)}",
            f"unit = {m.unit}",
            f"role = {_q(m.role)}",
            f"poll_interval = {spec.poll_interval}",
            "timeout = 0.5",
            "",
        ]
    for mc in spec.modbus_chargers:
        lines += [
            "[[modbus_chargers]]",
            f"id = {_q(mc.id)}",
            f"model = {_q(mc.model)}",
            f"transport = {_q(mc.transport)}",
            f"unit = {mc.unit}",
            *([f"evse_uid = {_q(mc.evse_uid)}"] if mc.evse_uid else []),
            f"failsafe_current = {mc.failsafe_current}",
            f"max_current = {mc.max_current}",
            f"poll_interval = {spec.poll_interval}",
            "",
        ]
    return "\n".join(lines)

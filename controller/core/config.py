"""Site configuration: validate a parsed TOML document into typed, immutable settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a configuration is refused: the dotted key and what is wrong with it."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class ConfigError(ValueError):
    """A configuration was refused; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """[site]: who owns the location and where siteedge keeps its files."""

    country_code: str
    party_id: str
    location_id: str
    data_dir: str
    name: str
    time_zone: str
    address: str
    city: str
    postal_code: str
    country: str
    latitude: str
    longitude: str
    currency: str = "EUR"  # ISO 4217; of sessions at EVSEs without a tariff
    default_tariff_id: str | None = None  # for EVSEs without their own tariff_ids
    max_power_kw: float | None = None  # the site's grid connection limit, shown against site power


@dataclass(frozen=True, slots=True)
class OcppSettings:
    """[ocpp]: the WebSocket endpoint chargers connect to."""

    host: str
    port: int
    heartbeat_interval: int
    unknown_chargers: str
    max_frame_bytes: int = 65536
    ping_interval: float = 30.0
    ping_timeout: float = 25.0
    tls_port: int = 9443
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """[api]: the web UI and REST API listener."""

    host: str
    port: int
    tls: bool = True  # HTTPS; without cert/key a self-signed pair is made in {data_dir}/tls
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """[mqtt]: the uplink broker, credentials and delivery tuning."""

    url: str
    host: str
    port: int
    tls: bool
    topic_root: str
    client_id: str
    protocol: str
    keepalive: int
    username: str | None
    password: str | None = field(repr=False)
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    reconnect_min: float
    reconnect_max: float
    max_inflight: int
    telemetry_interval: float
    outbox_max_bytes: int
    session_update_interval: float = 30.0  # at most one Session update per session this often


@dataclass(frozen=True, slots=True)
class EvseSettings:
    """One OCPP EVSE (1.6: one connector) and its OCPI identity and connector data."""

    ocpp_evse: int
    evse_uid: str
    evse_id: str | None
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None
    tariff_ids: tuple[str, ...] = ()  # OCPI Connector tariff_ids, first valid one applies
    # Settlement: which register the CDR bills ("charger", "meter"; None: the bound meter if any)
    # and how far charger and meter may disagree before an alarm (the larger of the two bounds).
    energy_source: str | None = None
    energy_tolerance_pct: float = 1.0
    energy_tolerance_kwh: float = 0.1


@dataclass(frozen=True, slots=True)
class ChargerSettings:
    """[[chargers]]: a charge point known to the site."""

    id: str
    password: str | None = field(repr=False)
    evses: tuple[EvseSettings, ...]
    security_profile: int = 0  # OCPP security profile 0-3 (1: Basic, 2: TLS + Basic, 3: mutual TLS)
    price_display: str = "ocpp201"  # none | ocpp201 | datatransfer:<vendorId>:<messageId>


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """A parsed Modbus transport URL."""

    kind: str  # "tcp", "rtu" (serial port) or "rtutcp" (RTU frames through a serial gateway)
    host: str | None
    port: int | None
    device: str | None
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int


@dataclass(frozen=True, slots=True)
class MeterSettings:
    """[[meters]]: a Modbus energy meter and what it measures."""

    id: str
    model: str
    transport: TransportSettings
    transport_url: str
    unit: int
    role: str
    poll_interval: float
    timeout: float
    slow_interval: float = 10.0  # energy counters ("slow" registers); never faster than poll_interval


@dataclass(frozen=True, slots=True)
class ModbusChargerSettings:
    """[[modbus_chargers]]: a charger controlled over Modbus: status, current setpoint, its watchdog."""

    id: str
    model: str
    transport: TransportSettings
    transport_url: str
    unit: int | None  # None: the model's default unit id (KEBA, Webasto: 255)
    evse_uid: str | None  # the OCPI EVSE this charger feeds, if any
    failsafe_current: float  # A the charger falls back to when siteedge stops (where it can be programmed)
    max_current: float  # A; requests above are clamped
    poll_interval: float = 1.0
    timeout: float = 0.5


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """[auth]: how roaming tokens are authorized where OCPI leaves the CPO a choice."""

    realtime_timeout: float = 2.0
    accept_unknown_offline: bool = False
    free_vend: bool = False
    local_list_partners: tuple[tuple[str, str], ...] = ()
    local_list_recent_days: int = 90


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    site: SiteSettings
    ocpp: OcppSettings
    api: ApiSettings
    mqtt: MqttSettings
    chargers: tuple[ChargerSettings, ...]
    meters: tuple[MeterSettings, ...]
    log_level: str
    auth: AuthSettings = AuthSettings()
    modbus_chargers: tuple[ModbusChargerSettings, ...] = ()

    def evse_uids(self) -> list[str]:
        """Every configured OCPI EVSE uid, in configuration order."""
        return [e.evse_uid for c in self.chargers for e in c.evses]


# --- field specs -------------------------------------------------------------------------

Check = Callable[[Any], str | None]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Field:
    type: type | tuple[type, ...]
    default: Any = _MISSING
    check: Check | None = None


def _pattern(rx: str, what: str) -> Check:
    compiled = re.compile(rx)
    return lambda v: None if compiled.fullmatch(v) else f"must be {what}, got {v!r}"


def _range(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}, got {v}"


def _one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"


_PORT = _range(0, 65535)
_CI36 = _pattern(r"[A-Za-z0-9._\-]{1,36}", "1-36 letters, digits, '.', '_' or '-'")
# OCPI GeoLocation: decimal degrees as strings with 5-7 fraction digits.
_LAT = _pattern(r"-?[0-9]{1,2}\.[0-9]{5,7}", "a latitude such as 52.37890 (5-7 fraction digits)")
_LON = _pattern(r"-?[0-9]{1,3}\.[0-9]{5,7}", "a longitude such as 4.90030 (5-7 fraction digits)")
_CONNECTOR_STANDARDS = (
    "CHADEMO",
    "CHAOJI",
    "DOMESTIC_A",
    "DOMESTIC_B",
    "DOMESTIC_C",
    "DOMESTIC_D",
    "DOMESTIC_E",
    "DOMESTIC_F",
    "DOMESTIC_G",
    "DOMESTIC_H",
    "DOMESTIC_I",
    "DOMESTIC_J",
    "DOMESTIC_K",
    "DOMESTIC_L",
    "DOMESTIC_M",
    "DOMESTIC_N",
    "DOMESTIC_O",
    "GBT_AC",
    "GBT_DC",
    "IEC_60309_2_single_16",
    "IEC_60309_2_three_16",
    "IEC_60309_2_three_32",
    "IEC_60309_2_three_64",
    "IEC_62196_T1",
    "IEC_62196_T1_COMBO",
    "IEC_62196_T2",
    "IEC_62196_T2_COMBO",
    "IEC_62196_T3A",
    "IEC_62196_T3C",
    "NEMA_5_20",
    "NEMA_6_30",
    "NEMA_6_50",
    "NEMA_10_30",
    "NEMA_10_50",
    "NEMA_14_30",
    "NEMA_14_50",
    "PANTOGRAPH_BOTTOM_UP",
    "PANTOGRAPH_TOP_DOWN",
    "TESLA_R",
    "TESLA_S",
)

_SITE: dict[str, _Field] = {
    "country_code": _Field(str, check=_pattern(r"[A-Z]{2}", "an ISO 3166 alpha-2 code")),
    "party_id": _Field(str, check=_pattern(r"[A-Z0-9]{3}", "3 upper-case letters or digits")),
    "location_id": _Field(str, check=_CI36),
    "data_dir": _Field(str),
    "name": _Field(str, ""),
    "time_zone": _Field(str, "UTC", _pattern(r"[A-Za-z_]+(/[A-Za-z0-9_+\-]+)*", "an IANA zone")),
    "address": _Field(str, "unknown"),
    "city": _Field(str, "unknown"),
    "postal_code": _Field(str, ""),
    "country": _Field(str, check=_pattern(r"[A-Z]{3}", "an ISO 3166 alpha-3 code")),
    "latitude": _Field(str, "0.000000", _LAT),
    "longitude": _Field(str, "0.000000", _LON),
    "currency": _Field(str, "EUR", _pattern(r"[A-Z]{3}", "an ISO 4217 currency code such as EUR")),
    "default_tariff_id": _Field(str, None, _CI36),
    "max_power_kw": _Field(
        (int, float), None, lambda v: None if 0 < v <= 100_000 else f"must be > 0 and <= 100000 kW, got {v}"
    ),
}
_OCPP: dict[str, _Field] = {
    "host": _Field(str, "0.0.0.0"),
    "port": _Field(int, 9000, _PORT),
    "heartbeat_interval": _Field(int, 300, _range(10, 86400)),
    "unknown_chargers": _Field(str, "pending", _one_of("pending", "rejected")),
    "max_frame_bytes": _Field(int, 65536, _range(1024, 16 * 1024 * 1024)),
    "ping_interval": _Field((int, float), 30.0, _range(1, 3600)),
    "ping_timeout": _Field((int, float), 25.0, _range(1, 3600)),
    "tls_port": _Field(int, 9443, _PORT),
    "tls_cert": _Field(str, None),
    "tls_key": _Field(str, None),
    "tls_ca": _Field(str, None),
}
_API: dict[str, _Field] = {
    "host": _Field(str, "0.0.0.0"),
    "port": _Field(int, 8080, _PORT),
    "tls": _Field(bool, True),
    "cert": _Field(str, None),
    "key": _Field(str, None),
}
_MQTT: dict[str, _Field] = {
    "url": _Field(str, check=_pattern(r"mqtts?://[^/:]+(:[0-9]{1,5})?/?", "mqtt://host:port")),
    "topic_root": _Field(str, "siteedge/v1/{country_code}/{party_id}/{location_id}"),
    "client_id": _Field(str, ""),
    "protocol": _Field(str, "5", _one_of("5", "3.1.1")),
    "keepalive": _Field(int, 30, _range(5, 3600)),
    "username": _Field(str, None),
    "password": _Field(str, None),
    "ca_file": _Field(str, None),
    "cert_file": _Field(str, None),
    "key_file": _Field(str, None),
    "reconnect_min": _Field((int, float), 0.5, _range(0.05, 60)),
    "reconnect_max": _Field((int, float), 60.0, _range(0.1, 3600)),
    "max_inflight": _Field(int, 100, _range(1, 1000)),
    "telemetry_interval": _Field((int, float), 5.0, _range(0.0, 3600)),
    "outbox_max_bytes": _Field(int, 256 * 1024 * 1024, _range(1024 * 1024, 64 * 1024**3)),
    "session_update_interval": _Field((int, float), 30.0, _range(0.0, 3600)),
}
_CHARGER: dict[str, _Field] = {
    "id": _Field(str, check=_pattern(r"[A-Za-z0-9*\-_=:+|@.]{1,48}", "an OCPP identity (1-48 chars)")),
    "password": _Field(str, None, _pattern(r".{16,40}", "16 to 40 characters (OCPP AuthorizationKey)")),
    "evses": _Field(list),
    "security_profile": _Field(int, None, _range(0, 3)),
    "price_display": _Field(
        str,
        "ocpp201",
        _pattern(
            r"none|ocpp201|datatransfer:[^:\s]{1,255}:[^:\s]{1,50}",
            "none, ocpp201 or datatransfer:<vendorId>:<messageId>",
        ),
    ),
}
_EVSE: dict[str, _Field] = {
    "ocpp_evse": _Field(int, check=_range(1, 99)),
    "evse_uid": _Field(str, check=_CI36),
    "evse_id": _Field(str, None, _pattern(r"[A-Za-z0-9*\-]{1,48}", "an eMI3 EVSE id")),
    "standard": _Field(str, "IEC_62196_T2", _one_of(*_CONNECTOR_STANDARDS)),
    "format": _Field(str, "SOCKET", _one_of("SOCKET", "CABLE")),
    "power_type": _Field(
        str, "AC_3_PHASE", _one_of("AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC")
    ),
    "max_voltage": _Field(int, 400, _range(1, 2000)),
    "max_amperage": _Field(int, 32, _range(1, 1000)),
    "max_electric_power": _Field(int, None, _range(1, 2_000_000)),
    "tariff_ids": _Field(list, (), lambda v: _tariff_ids(v)),  # defined below
    "energy_source": _Field(str, None, _one_of("charger", "meter")),
    "energy_tolerance_pct": _Field((int, float), 1.0, _range(0, 100)),
    "energy_tolerance_kwh": _Field((int, float), 0.1, _range(0, 1000)),
}


def _tariff_ids(value: list[Any]) -> str | None:
    bad = [v for v in value if not isinstance(v, str) or _CI36(v) is not None]
    if not bad:
        return None
    return f"must be a list of OCPI tariff ids (1-36 letters, digits, '.', '_' or '-'), got {bad!r}"


_METER: dict[str, _Field] = {
    "id": _Field(str, check=_CI36),
    "model": _Field(str, check=_pattern(r"[a-z0-9_]+", "a device-library name such as eastron_sdm630")),
    "transport": _Field(str),
    "unit": _Field(int, 1, _range(1, 247)),
    "role": _Field(
        str,
        check=_pattern(
            r"grid|pv|building|evse:[A-Za-z0-9._\-]{1,36}", "grid, pv, building or evse:<evse_uid>"
        ),
    ),
    "poll_interval": _Field((int, float), 1.0, _range(0.05, 3600)),
    "timeout": _Field((int, float), 0.5, _range(0.05, 10)),
    "slow_interval": _Field((int, float), 10.0, _range(0.05, 3600)),
}
_MODBUS_CHARGER: dict[str, _Field] = {
    "id": _Field(str, check=_CI36),
    "model": _Field(str, check=_pattern(r"[a-z0-9_]+", "a device-library charger such as alfen_ng9xx")),
    "transport": _Field(str),
    "unit": _Field(int, None, _range(0, 255)),
    "evse_uid": _Field(str, None, _CI36),
    # IEC 61851: below 6 A a car cannot charge, so a failsafe is 0 (stop) or at least 6 A.
    "failsafe_current": _Field(
        (int, float), 6.0, lambda v: None if v == 0 or 6 <= v <= 80 else f"must be 0 or 6..80 A, got {v}"
    ),
    "max_current": _Field((int, float), 32.0, _range(6, 80)),
    "poll_interval": _Field((int, float), 1.0, _range(0.05, 3600)),
    "timeout": _Field((int, float), 0.5, _range(0.05, 10)),
}
_AUTH: dict[str, _Field] = {
    "realtime_timeout": _Field((int, float), 2.0, _range(0.1, 30.0)),
    "accept_unknown_offline": _Field(bool, False),
    "free_vend": _Field(bool, False),
    "local_list_partners": _Field(list, []),
    "local_list_recent_days": _Field(int, 90, _range(1, 3650)),
}
_TOP = {"site", "ocpp", "api", "mqtt", "chargers", "meters", "logging", "auth", "modbus_chargers"}
_LOGGING: dict[str, _Field] = {
    "level": _Field(str, "INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR")),
}


def _typename(t: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "a boolean"}
    if isinstance(t, tuple):
        return "a number" if float in t else " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


def _section(raw: Any, spec: Mapping[str, _Field], prefix: str, problems: list[Problem]) -> dict[str, Any]:
    """Validate one table against its spec; unknown keys, missing keys and bad values are problems."""
    if not isinstance(raw, Mapping):
        problems.append(Problem(prefix, "must be a table"))
        return {}
    out: dict[str, Any] = {}
    for key in raw:
        if key not in spec:
            problems.append(Problem(f"{prefix}.{key}", f"unknown key (allowed: {', '.join(spec)})"))
    for key, f in spec.items():
        where = f"{prefix}.{key}"
        if key not in raw:
            if f.default is _MISSING:
                problems.append(Problem(where, "required key is missing"))
            else:
                out[key] = f.default
            continue
        value = raw[key]
        # bool is an int subclass in Python, but `port = true` is a typo, not a port.
        if (isinstance(value, bool) and f.type is not bool) or not isinstance(value, f.type):
            problems.append(Problem(where, f"must be {_typename(f.type)}, got {type(value).__name__}"))
            continue
        if f.check is not None and (why := f.check(value)) is not None:
            problems.append(Problem(where, why))
            continue
        out[key] = value
    return out


def parse_transport(url: str) -> TransportSettings:
    """Parse tcp://host:port, rtu:///dev/ttyX?baud=9600&parity=N&stopbits=1 or rtutcp://host:port."""
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        if not parts.hostname:
            raise ValueError("tcp transport needs a host: tcp://host:port")
        return TransportSettings("tcp", parts.hostname, parts.port or 502, None, 0, "N", 1, 8)
    if parts.scheme == "rtu":
        if not parts.path:
            raise ValueError("rtu transport needs a device: rtu:///dev/ttyUSB0?baud=9600")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"baud", "parity", "stopbits", "bytesize"}
        if unknown:
            raise ValueError(f"unknown rtu option(s): {', '.join(sorted(unknown))}")
        baud = int(query.get("baud", "9600"))
        parity = query.get("parity", "N").upper()
        stopbits = int(query.get("stopbits", "1"))
        bytesize = int(query.get("bytesize", "8"))
        if baud not in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
            raise ValueError(f"unsupported baud rate {baud}")
        if parity not in ("N", "E", "O") or stopbits not in (1, 2) or bytesize not in (7, 8):
            raise ValueError("parity must be N/E/O, stopbits 1/2, bytesize 7/8")
        return TransportSettings("rtu", None, None, parts.path, baud, parity, stopbits, bytesize)
    if parts.scheme == "rtutcp":
        # RTU frames through a serial gateway; the serial options describe the gateway's line,
        # which sets the timing (gaps, wire time) the bus scheduler plans with.
        if not parts.hostname:
            raise ValueError("rtutcp transport needs a host: rtutcp://host:port?baud=9600")
        line = _serial_options(parts.query, "rtutcp")
        return TransportSettings("rtutcp", parts.hostname, parts.port or 502, None, *line)
    raise ValueError(f"scheme must be tcp://, rtu:// or rtutcp://, got {parts.scheme or 'none'}://")


def _serial_options(query_text: str, scheme: str) -> tuple[int, str, int, int]:
    """(baud, parity, stopbits, bytesize) from a transport URL query; ValueError if bad."""
    query = {k: v[-1] for k, v in parse_qs(query_text).items()}
    unknown = set(query) - {"baud", "parity", "stopbits", "bytesize"}
    if unknown:
        raise ValueError(f"unknown {scheme} option(s): {', '.join(sorted(unknown))}")
    baud = int(query.get("baud", "9600"))
    parity = query.get("parity", "N").upper()
    stopbits = int(query.get("stopbits", "1"))
    bytesize = int(query.get("bytesize", "8"))
    if baud not in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
        raise ValueError(f"unsupported baud rate {baud}")
    if parity not in ("N", "E", "O") or stopbits not in (1, 2) or bytesize not in (7, 8):
        raise ValueError("parity must be N/E/O, stopbits 1/2, bytesize 7/8")
    return baud, parity, stopbits, bytesize


def _evses(raw: Any, prefix: str, problems: list[Problem]) -> tuple[EvseSettings, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(prefix, "must be a non-empty list of [[chargers.evses]] tables"))
        return ()
    out = []
    for i, item in enumerate(raw):
        v = _section(item, _EVSE, f"{prefix}[{i}]", problems)
        if len(v) == len(_EVSE):
            out.append(
                EvseSettings(
                    **{
                        **v,
                        "tariff_ids": tuple(v["tariff_ids"]),
                        "energy_tolerance_pct": float(v["energy_tolerance_pct"]),
                        "energy_tolerance_kwh": float(v["energy_tolerance_kwh"]),
                    }
                )
            )
    return tuple(out)


def _mqtt(raw: Any, site: dict[str, Any], problems: list[Problem]) -> MqttSettings | None:
    v = _section(raw, _MQTT, "mqtt", problems)
    if len(v) != len(_MQTT):
        return None
    parts = urlsplit(v["url"])
    tls = parts.scheme == "mqtts"
    if v["reconnect_max"] < v["reconnect_min"]:
        problems.append(Problem("mqtt.reconnect_max", "must not be smaller than mqtt.reconnect_min"))
    if (v["cert_file"] is None) != (v["key_file"] is None):
        problems.append(Problem("mqtt.cert_file", "cert_file and key_file go together"))
    if not tls and (v["ca_file"] or v["cert_file"]):
        problems.append(Problem("mqtt.url", "TLS files are set but the url is not mqtts://"))
    try:
        root = v["topic_root"].format(
            **{k: site.get(k, "") for k in ("country_code", "party_id", "location_id")}
        )
    except (KeyError, IndexError, ValueError) as exc:
        problems.append(Problem("mqtt.topic_root", f"bad placeholder: {exc}"))
        return None
    if any(c in root for c in "#+") or root.startswith("/") or root.endswith("/"):
        problems.append(Problem("mqtt.topic_root", "must not contain wildcards or leading/trailing '/'"))
    client_id = (
        v["client_id"]
        or f"siteedge-{site.get('country_code', '')}-{site.get('party_id', '')}-{site.get('location_id', '')}"
    )
    return MqttSettings(
        url=v["url"],
        host=parts.hostname or "",
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        topic_root=root,
        client_id=client_id,
        protocol=v["protocol"],
        keepalive=v["keepalive"],
        username=v["username"],
        password=v["password"],
        ca_file=v["ca_file"],
        cert_file=v["cert_file"],
        key_file=v["key_file"],
        reconnect_min=float(v["reconnect_min"]),
        reconnect_max=float(v["reconnect_max"]),
        max_inflight=v["max_inflight"],
        telemetry_interval=float(v["telemetry_interval"]),
        outbox_max_bytes=v["outbox_max_bytes"],
        session_update_interval=float(v["session_update_interval"]),
    )


def _array(raw: Any, key: str, problems: list[Problem]) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem(key, f"must be an array of tables ([[{key}]])"))
        return []
    return raw


def _security_profile(
    charger: Mapping[str, Any], ocpp: Mapping[str, Any], prefix: str, problems: list[Problem]
) -> int:
    """The charger's security profile (default: 1 with a password, else 0) and its prerequisites."""
    profile: int = charger["security_profile"]
    if profile is None:
        return 1 if charger["password"] else 0
    if profile in (1, 2) and not charger["password"]:
        problems.append(Problem(f"{prefix}.password", f"security profile {profile} needs a password"))
    if profile == 0 and charger["password"]:
        problems.append(Problem(f"{prefix}.security_profile", "profile 0 takes no password (use 1)"))
    if profile >= 2 and not (ocpp.get("tls_cert") and ocpp.get("tls_key")):
        problems.append(
            Problem(f"{prefix}.security_profile", f"profile {profile} needs ocpp.tls_cert and ocpp.tls_key")
        )
    if profile == 3 and not ocpp.get("tls_ca"):
        problems.append(Problem(f"{prefix}.security_profile", "profile 3 needs ocpp.tls_ca (the client CA)"))
    return profile


def _partners(raw: list[Any], problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    """["DE*ABC", ...] as (country_code, party_id) pairs."""
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not re.fullmatch(r"[A-Z]{2}\*[A-Z0-9]{3}", item):
            problems.append(Problem(f"auth.local_list_partners[{i}]", "must be COUNTRY*PARTY, e.g. DE*ABC"))
            continue
        cc, party = item.split("*")
        out.append((cc, party))
    return tuple(out)


def _float_or_none(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def validate(doc: Mapping[str, Any]) -> Config:
    """Turn a parsed TOML document into a Config, or raise ConfigError listing every problem."""
    problems: list[Problem] = []
    for key in doc:
        if key not in _TOP:
            problems.append(Problem(key, f"unknown section (allowed: {', '.join(sorted(_TOP))})"))
    site = _section(doc.get("site", {}), _SITE, "site", problems)
    ocpp = _section(doc.get("ocpp", {}), _OCPP, "ocpp", problems)
    if (ocpp.get("tls_cert") is None) != (ocpp.get("tls_key") is None):
        problems.append(Problem("ocpp.tls_cert", "tls_cert and tls_key go together"))
    api = _section(doc.get("api", {}), _API, "api", problems)
    if (api.get("cert") is None) != (api.get("key") is None):
        problems.append(Problem("api.cert", "cert and key go together"))
    if api.get("cert") is not None and api.get("tls") is False:
        problems.append(Problem("api.cert", "a certificate is set but api.tls is false"))
    logging = _section(doc.get("logging", {}), _LOGGING, "logging", problems)
    auth = _section(doc.get("auth", {}), _AUTH, "auth", problems)
    partners = _partners(auth.get("local_list_partners", []), problems)
    mqtt = _mqtt(doc.get("mqtt", {}), site, problems)

    chargers: list[ChargerSettings] = []
    seen_uids: set[str] = set()
    for i, raw in enumerate(_array(doc.get("chargers"), "chargers", problems)):
        v = _section(raw, _CHARGER, f"chargers[{i}]", problems)
        if len(v) != len(_CHARGER):
            continue
        evses = _evses(v["evses"], f"chargers[{i}].evses", problems)
        for j, e in enumerate(evses):
            if e.evse_uid in seen_uids:
                problems.append(
                    Problem(f"chargers[{i}].evses[{j}].evse_uid", f"duplicate evse_uid {e.evse_uid!r}")
                )
            seen_uids.add(e.evse_uid)
        if len({e.ocpp_evse for e in evses}) != len(evses):
            problems.append(Problem(f"chargers[{i}].evses", "ocpp_evse numbers must be unique per charger"))
        if any(c.id == v["id"] for c in chargers):
            problems.append(Problem(f"chargers[{i}].id", f"duplicate charger id {v['id']!r}"))
        profile = _security_profile(v, ocpp, f"chargers[{i}]", problems)
        chargers.append(
            ChargerSettings(
                id=v["id"],
                password=v["password"],
                evses=evses,
                security_profile=profile,
                price_display=v["price_display"],
            )
        )

    meters: list[MeterSettings] = []
    for i, raw in enumerate(_array(doc.get("meters"), "meters", problems)):
        v = _section(raw, _METER, f"meters[{i}]", problems)
        if len(v) != len(_METER):
            continue
        try:
            transport = parse_transport(v["transport"])
        except ValueError as exc:
            problems.append(Problem(f"meters[{i}].transport", str(exc)))
            continue
        if v["role"].startswith("evse:") and v["role"][5:] not in seen_uids:
            problems.append(Problem(f"meters[{i}].role", f"no EVSE with evse_uid {v['role'][5:]!r}"))
        if any(m.id == v["id"] for m in meters):
            problems.append(Problem(f"meters[{i}].id", f"duplicate meter id {v['id']!r}"))
        meters.append(
            MeterSettings(
                id=v["id"],
                model=v["model"],
                transport=transport,
                transport_url=v["transport"],
                unit=v["unit"],
                role=v["role"],
                poll_interval=float(v["poll_interval"]),
                timeout=float(v["timeout"]),
                # An EVSE meter's counter is what a CDR may bill: read it every poll unless told.
                slow_interval=max(
                    float(v["slow_interval"])
                    if "slow_interval" in raw or not v["role"].startswith("evse:")
                    else float(v["poll_interval"]),
                    float(v["poll_interval"]),
                ),
            )
        )

    modbus_chargers = _modbus_chargers(doc.get("modbus_chargers"), seen_uids, meters, problems)
    _check_energy_sources(chargers, meters, problems)

    if problems or mqtt is None:
        raise ConfigError(problems or [Problem("mqtt", "invalid")])
    return Config(
        site=SiteSettings(**{**site, "max_power_kw": _float_or_none(site["max_power_kw"])}),
        ocpp=OcppSettings(**ocpp),
        api=ApiSettings(**api),
        mqtt=mqtt,
        chargers=tuple(chargers),
        meters=tuple(meters),
        log_level=logging["level"],
        modbus_chargers=modbus_chargers,
        auth=AuthSettings(
            float(auth["realtime_timeout"]),
            auth["accept_unknown_offline"],
            auth["free_vend"],
            partners,
            auth["local_list_recent_days"],
        ),
    )


def _check_energy_sources(
    chargers: list[ChargerSettings], meters: list[MeterSettings], problems: list[Problem]
) -> None:
    """energy_source = "meter" needs a meter bound to that EVSE (role evse:<uid>)."""
    bound = {m.role[5:] for m in meters if m.role.startswith("evse:")}
    for i, c in enumerate(chargers):
        for j, e in enumerate(c.evses):
            if e.energy_source == "meter" and e.evse_uid not in bound:
                problems.append(
                    Problem(
                        f"chargers[{i}].evses[{j}].energy_source",
                        f"is meter but no [[meters]] entry has role evse:{e.evse_uid}",
                    )
                )


def _modbus_chargers(
    raw: Any, evse_uids: set[str], meters: list[MeterSettings], problems: list[Problem]
) -> tuple[ModbusChargerSettings, ...]:
    """[[modbus_chargers]] tables into settings; problems for bad keys, unknown EVSEs, duplicate ids."""
    out: list[ModbusChargerSettings] = []
    for i, item in enumerate(_array(raw, "modbus_chargers", problems)):
        where = f"modbus_chargers[{i}]"
        v = _section(item, _MODBUS_CHARGER, where, problems)
        if len(v) != len(_MODBUS_CHARGER):
            continue
        try:
            transport = parse_transport(v["transport"])
        except ValueError as exc:
            problems.append(Problem(f"{where}.transport", str(exc)))
            continue
        if v["evse_uid"] is not None and v["evse_uid"] not in evse_uids:
            problems.append(Problem(f"{where}.evse_uid", f"no EVSE with evse_uid {v['evse_uid']!r}"))
        # Meters and Modbus chargers share one id space: the Modbus API and health name devices by it.
        if any(c.id == v["id"] for c in out) or any(m.id == v["id"] for m in meters):
            problems.append(Problem(f"{where}.id", f"duplicate Modbus device id {v['id']!r}"))
        if v["failsafe_current"] > v["max_current"]:
            problems.append(Problem(f"{where}.failsafe_current", "must not exceed max_current"))
        out.append(
            ModbusChargerSettings(
                id=v["id"],
                model=v["model"],
                transport=transport,
                transport_url=v["transport"],
                unit=v["unit"],
                evse_uid=v["evse_uid"],
                failsafe_current=float(v["failsafe_current"]),
                max_current=float(v["max_current"]),
                poll_interval=float(v["poll_interval"]),
                timeout=float(v["timeout"]),
            )
        )
    return tuple(out)

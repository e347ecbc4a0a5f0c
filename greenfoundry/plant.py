"""The plant configuration: loaded and validated once, at start.

An invalid file stops with one message that names the key, the value and what is allowed
(`ConfigError`). Secrets never live in the YAML: a password or token is given as `password_env` /
`token_env` (the name of an environment variable) or `password_file` / `token_file` (a path), and a
literal `password:` or `token:` key is refused. See `config/plants/demo-dip/plant.yaml` for every key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from greenfoundry import glossary
from greenfoundry.errors import ConfigError
from greenfoundry.ingest import units

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")
FURNACE_KINDS = glossary.FURNACE_KINDS
PRODUCTS = glossary.PRODUCTS
CAPACITY_UNITS = glossary.CAPACITY_UNITS
WATER_ROLES = glossary.WATER_ROLES
POLLUTANTS = glossary.POLLUTANTS


@dataclass(frozen=True)
class Secret:
    """A secret resolved from the environment or a file. Its repr never shows the value."""

    source: str  # "env:NAME" or "file:PATH" or "stack.json"
    value: str = field(repr=False)

    def __str__(self) -> str:  # pragma: no cover - a guard against printing it by accident
        return f"<secret from {self.source}>"


@dataclass(frozen=True)
class PlantInfo:
    id: str
    name: str
    timezone: str
    residential_within_1200m: bool
    annual_mean_air_temp_c: float | None


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    username: str | None
    password: Secret | None
    client_id: str
    session_expiry_s: int
    share_group: str | None
    topic_root: str
    keepalive_s: int
    subscribe: tuple[str, ...]  # topic filters; `$share/<group>/` is prefixed when shared


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    database: str
    retention_policy: str | None
    username: str | None
    password: Secret | None
    token: Secret | None
    timeout_s: float


@dataclass(frozen=True)
class IngestConfig:
    batch_max_readings: int
    batch_max_age_ms: int
    spool_dir: Path
    deadletter_file: Path
    max_payload_bytes: int
    max_batch_readings: int
    max_future_s: float
    max_past_days: float
    self_metrics_interval_s: float
    queue_budget_mb: int


@dataclass(frozen=True)
class Furnace:
    id: str
    kind: str
    capacity: float
    capacity_unit: str
    product: str
    dn_min: int | None
    dn_max: int | None


@dataclass(frozen=True)
class Stack:
    id: str
    source: str
    limits_mg_m3: dict[str, float]


@dataclass(frozen=True)
class WaterMeter:
    id: str
    role: str


@dataclass(frozen=True)
class SignalRoute:
    """One topic of the plant mapped to a canonical signal."""

    area: str
    device: str
    name: str  # last topic level, as the device publishes it
    signal: str  # canonical signal name (greenfoundry.glossary.SIGNALS)
    unit: str | None  # source unit assumed when a payload carries none
    tags: tuple[tuple[str, str], ...]  # extra tags (pollutant, role …), sorted

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.area, self.device, self.name)


@dataclass(frozen=True)
class PlantConfig:
    path: Path
    plant: PlantInfo
    mqtt: MqttConfig
    influxdb: InfluxConfig
    ingest: IngestConfig
    furnaces: tuple[Furnace, ...]
    stacks: tuple[Stack, ...]
    water_meters: tuple[WaterMeter, ...]
    routes: dict[tuple[str, str, str], SignalRoute]

    def topic_for(self, route: SignalRoute) -> str:
        return "/".join((self.mqtt.topic_root, self.plant.id, route.area, route.device, route.name))


# --------------------------------------------------------------------------------------------
# Validation helpers. Each takes the dotted key path so the message can name it.


class _Node:
    """A mapping under validation: remembers its key path and which keys were read."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, dict):
            raise ConfigError(f"{path or '<top>'}: expected a mapping, got {_show(data)}")
        self.data = data
        self.path = path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any = ..., *, required: bool = False) -> Any:
        self.seen.add(name)
        if name in self.data and self.data[name] is not None:
            return self.data[name]
        if required or default is ...:
            raise ConfigError(f"{self.key(name)}: missing; this key is required")
        return default

    def child(self, name: str, *, required: bool = True) -> _Node:
        value = self.get(name, None if not required else ..., required=required)
        return _Node({} if value is None else value, self.key(name))

    def done(self) -> None:
        for name in self.data:
            if name in ("password", "token"):
                raise ConfigError(
                    f"{self.key(name)}: secrets are not read from the YAML; give "
                    f"{name}_env (an environment variable name) or {name}_file (a path)"
                )
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(
                f"{self.key(unknown[0])}: unknown key; allowed here: {', '.join(sorted(self.seen))}"
            )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _str(node: _Node, name: str, default: Any = ..., *, pattern: re.Pattern | None = None) -> Any:
    value = node.get(name, default)
    if value is None or (value is default and default is not ...):
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{node.key(name)}: {_show(value)} is not allowed; expected a text")
    if pattern and not pattern.match(value):
        raise ConfigError(
            f"{node.key(name)}: {_show(value)} is not allowed; expected lower-case letters, "
            "digits, '-' or '_' (at most 63 characters)"
        )
    return value


def _num(
    node: _Node,
    name: str,
    default: Any = ...,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> Any:
    value = node.get(name, default)
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or not math.isfinite(value):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{node.key(name)}: {_show(value)} is not allowed; expected {kind}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(
            f"{node.key(name)}: {_show(value)} is not allowed; expected between {low} and {high}"
        )
    return value


def _choice(node: _Node, name: str, allowed: tuple[str, ...], default: Any = ...) -> Any:
    value = node.get(name, default)
    if value not in allowed:
        raise ConfigError(
            f"{node.key(name)}: {_show(value)} is not allowed; expected one of {', '.join(allowed)}"
        )
    return value


def _bool(node: _Node, name: str, default: Any = ...) -> bool:
    value = node.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{node.key(name)}: {_show(value)} is not allowed; expected true or false"
        )
    return value


def _list(node: _Node, name: str) -> list[Any]:
    value = node.get(name, [])
    if not isinstance(value, list):
        raise ConfigError(f"{node.key(name)}: expected a list, got {_show(value)}")
    return value


def _secret(node: _Node, name: str, env: dict[str, str] | None) -> Secret | None:
    """`<name>_env` or `<name>_file`; at most one of them. With `env` None the keys are
    checked but not resolved (the credentials will come from elsewhere, e.g. a local stack)."""
    env_name = _str(node, f"{name}_env", None)
    file_name = _str(node, f"{name}_file", None)
    if env_name and file_name:
        raise ConfigError(f"{node.key(name + '_env')}: give {name}_env or {name}_file, not both")
    if env is None:
        return None
    if env_name:
        if env_name not in env:
            raise ConfigError(
                f"{node.key(name + '_env')}: environment variable {env_name} is not set"
            )
        return Secret(f"env:{env_name}", env[env_name])
    if file_name:
        path = Path(file_name).expanduser()
        try:
            return Secret(f"file:{path}", path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(
                f"{node.key(name + '_file')}: cannot read {path}: {exc.strerror}"
            ) from None
    return None


# --------------------------------------------------------------------------------------------


def load(
    path: str | os.PathLike, env: dict[str, str] | None = None, *, resolve_secrets: bool = True
) -> PlantConfig:
    """Load and validate a plant config. Relative paths inside it are relative to the file.
    Secrets are read from `env` (default: the process environment) or their files, unless
    `resolve_secrets` is false (the caller supplies credentials, as `--stack` does)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        if not resolve_secrets:
            env = None
        elif env is None:
            env = dict(os.environ)
        return parse(raw, base=path.parent, env=env, path=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(
    raw: Any, *, base: Path, env: dict[str, str], path: Path = Path("<memory>")
) -> PlantConfig:
    top = _Node(raw, "")
    version = top.get("version")
    if version != 1:
        raise ConfigError(f"version: {_show(version)} is not allowed; expected 1")

    p = top.child("plant")
    site = p.child("site", required=False)
    tz = _str(p, "timezone")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"plant.timezone: {_show(tz)} is not allowed; expected an IANA zone such as Asia/Shanghai"
        ) from None
    plant = PlantInfo(
        id=_str(p, "id", pattern=ID_RE),
        name=_str(p, "name", ""),
        timezone=tz,
        residential_within_1200m=_bool(site, "residential_within_1200m", False),
        annual_mean_air_temp_c=_num(site, "annual_mean_air_temp_c", None, low=-60, high=60),
    )
    site.done()
    p.done()

    m = top.child("mqtt")
    mqtt = MqttConfig(
        host=_str(m, "host", "127.0.0.1"),
        port=_num(m, "port", 1883, low=1, high=65535, integer=True),
        username=_str(m, "username", None),
        password=_secret(m, "password", env),
        client_id=_str(m, "client_id", f"gf-ingest-{plant.id}"),
        session_expiry_s=_num(
            m, "session_expiry_s", 7 * 86400, low=60, high=2**32 - 1, integer=True
        ),
        share_group=_str(m, "share_group", None, pattern=ID_RE),
        topic_root=_str(m, "topic_root", "gf/v1"),
        keepalive_s=_num(m, "keepalive_s", 30, low=5, high=3600, integer=True),
        subscribe=(),
    )
    filters = m.get("subscribe", None)
    if filters is None:
        filters = [f"{mqtt.topic_root}/{plant.id}/#"]
    if (
        not isinstance(filters, list)
        or not filters
        or not all(isinstance(f, str) and f and not f.startswith("$") for f in filters)
    ):
        raise ConfigError(
            f"mqtt.subscribe: {_show(filters)} is not allowed; expected a list of MQTT topic "
            "filters such as gf/v1/<plant>/# ($share is added from share_group)"
        )
    mqtt = dataclasses.replace(mqtt, subscribe=tuple(filters))
    m.done()

    i = top.child("influxdb")
    influx = InfluxConfig(
        url=_str(i, "url", "http://127.0.0.1:8086").rstrip("/"),
        database=_str(i, "database", "greenfoundry"),
        retention_policy=_str(i, "retention_policy", None),
        username=_str(i, "username", None),
        password=_secret(i, "password", env),
        token=_secret(i, "token", env),
        timeout_s=_num(i, "timeout_s", 10.0, low=0.1, high=300),
    )
    if "@" in influx.url.split("//", 1)[-1].split("/", 1)[0]:
        raise ConfigError(
            "influxdb.url: credentials in the URL are not allowed (they would reach logs); "
            "give username with password_env/password_file, or token_env/token_file"
        )
    if not influx.url.startswith(("http://", "https://")):
        raise ConfigError(f"influxdb.url: {_show(influx.url)} is not allowed; expected http(s)://…")
    i.done()

    g = top.child("ingest", required=False)
    ingest = IngestConfig(
        batch_max_readings=_num(g, "batch_max_readings", 5000, low=1, high=1_000_000, integer=True),
        batch_max_age_ms=_num(g, "batch_max_age_ms", 200, low=1, high=60_000, integer=True),
        spool_dir=(base / _str(g, "spool_dir", "var/spool")).resolve(),
        deadletter_file=(base / _str(g, "deadletter_file", "var/deadletter.jsonl")).resolve(),
        max_payload_bytes=_num(
            g, "max_payload_bytes", 64 * 1024, low=64, high=64 * 2**20, integer=True
        ),
        max_batch_readings=_num(g, "max_batch_readings", 5000, low=1, high=1_000_000, integer=True),
        max_future_s=_num(g, "max_future_s", 300, low=0, high=86400 * 365),
        max_past_days=_num(g, "max_past_days", 400, low=0, high=36500),
        self_metrics_interval_s=_num(g, "self_metrics_interval_s", 10, low=0.1, high=3600),
        queue_budget_mb=_num(g, "queue_budget_mb", 256, low=16, high=65536, integer=True),
    )
    g.done()

    furnaces = []
    for n, item in enumerate(_list(top, "furnaces")):
        f = _Node(item, f"furnaces[{n}]")
        kind = _choice(f, "kind", FURNACE_KINDS)
        cap = f.child("capacity")
        capacity = _num(cap, "value", low=0, high=1000)
        cap_unit = _choice(cap, "unit", (CAPACITY_UNITS[kind],))
        cap.done()
        dn = f.get("dn_range", None)
        dn_min = dn_max = None
        if dn is not None:
            if (
                not isinstance(dn, list)
                or len(dn) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in dn)
                or not 0 < dn[0] <= dn[1]
            ):
                raise ConfigError(
                    f"{f.key('dn_range')}: {_show(dn)} is not allowed; expected [DN_MIN, DN_MAX], "
                    "whole numbers, DN_MIN ≤ DN_MAX"
                )
            dn_min, dn_max = dn
        product = _choice(f, "product", PRODUCTS)
        if product == "ductile" and dn is None:
            raise ConfigError(f"{f.key('dn_range')}: missing; ductile pipe needs its DN range")
        furnaces.append(
            Furnace(
                _str(f, "id", pattern=ID_RE),
                kind,
                float(capacity),
                cap_unit,
                product,
                dn_min,
                dn_max,
            )
        )
        f.done()
    _unique(furnaces, "furnaces")

    stacks = []
    for n, item in enumerate(_list(top, "stacks")):
        s = _Node(item, f"stacks[{n}]")
        pol = s.child("pollutants")
        limits = {}
        for name in list(pol.data):
            if name not in POLLUTANTS:
                raise ConfigError(
                    f"{pol.key(name)}: unknown pollutant; expected one of {', '.join(POLLUTANTS)}"
                )
            entry = pol.child(name)
            limits[name] = float(_num(entry, "limit_mg_m3", low=1e-6, high=1e6))
            entry.done()
        pol.done()
        stacks.append(Stack(_str(s, "id", pattern=ID_RE), _str(s, "source", ""), limits))
        s.done()
    _unique(stacks, "stacks")

    meters = []
    for n, item in enumerate(_list(top, "water_meters")):
        w = _Node(item, f"water_meters[{n}]")
        meters.append(WaterMeter(_str(w, "id", pattern=ID_RE), _choice(w, "role", WATER_ROLES)))
        w.done()
    _unique(meters, "water_meters")

    routes: dict[tuple[str, str, str], SignalRoute] = {}
    for n, item in enumerate(_list(top, "signals")):
        r = _Node(item, f"signals[{n}]")
        topic = _str(r, "topic")
        parts = topic.split("/")
        if len(parts) == 3 and parts[2] == "_batch":
            raise ConfigError(f"{r.key('topic')}: '_batch' is reserved for batch messages")
        if len(parts) != 3 or not all(ID_RE.match(x) for x in parts):
            raise ConfigError(
                f"{r.key('topic')}: {_show(topic)} is not allowed; expected AREA/DEVICE/SIGNAL "
                "(relative to <topic_root>/<plant>/), each level lower-case letters, digits, - or _"
            )
        sig = _choice(r, "signal", tuple(glossary.SIGNALS))
        canonical = glossary.SIGNALS[sig].unit
        unit = _str(r, "unit", None)
        if unit is not None and units.conversion(unit, canonical) is None:
            allowed = ", ".join(units.CONVERSIONS.get(canonical, {}))
            raise ConfigError(
                f"{r.key('unit')}: {_show(unit)} is not allowed for {sig}; expected one of {allowed}"
            )
        tags_node = r.child("tags", required=False)
        tags = {}
        for k in list(tags_node.data):
            v = tags_node.get(k)
            if (
                not ID_RE.match(str(k))
                or k in ("plant", "area", "device")
                or not isinstance(v, str)
            ):
                raise ConfigError(
                    f"{tags_node.key(str(k))}: {_show(v)} is not allowed; expected a text value "
                    "under a lower-case tag name other than plant, area, device"
                )
            tags[k] = v
        tags_node.done()
        if sig == "stack_conc_mg_m3" and tags.get("pollutant") not in POLLUTANTS:
            raise ConfigError(
                f"{r.key('tags')}.pollutant: {_show(tags.get('pollutant'))} is not allowed; "
                f"expected one of {', '.join(POLLUTANTS)}"
            )
        route = SignalRoute(parts[0], parts[1], parts[2], sig, unit, tuple(sorted(tags.items())))
        if route.key in routes:
            raise ConfigError(f"{r.key('topic')}: {topic} is mapped twice")
        routes[route.key] = route
        r.done()

    top.done()
    return PlantConfig(
        path, plant, mqtt, influx, ingest, tuple(furnaces), tuple(stacks), tuple(meters), routes
    )


def _unique(items: list[Any], key: str) -> None:
    seen: set[str] = set()
    for n, item in enumerate(items):
        if item.id in seen:
            raise ConfigError(f"{key}[{n}].id: {item.id!r} is used twice")
        seen.add(item.id)

"""The plant configuration: the one place for a plant's facts, loaded and validated once, at start.

`config/plants/<plant>/plant.yaml` says what the plant is (product, furnaces with their kind,
capacity and DN range, stacks with their pollutants and limits, water meters, the site's time
zone, whether a residential area lies within 1200 m, the configured annual mean air
temperature, who declared these facts and when) and how it is reached (MQTT, InfluxDB, the
ingest's limits, the topic → signal table). The ingest, the simulator and the scorer all read
their plant facts from here; nothing else declares them again.

An invalid file stops with one message that names the file, the key, the value and what is
allowed (`ConfigError`, in the style of `greenfoundry.inputs`). Secrets never live in the YAML: a
password or token is given as `password_env` / `token_env` (the name of an environment variable)
or `password_file` / `token_file` (a path), and a literal `password:` or `token:` key is refused.
See `config/plants/demo-dip/plant.yaml` for every key.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import re
import ssl
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenfoundry import glossary, inputs
from greenfoundry.errors import ConfigError
from greenfoundry.ingest import units

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")
ID_RULE = "lower-case letters, digits, '-' or '_' (at most 63 characters)"


@dataclass(frozen=True)
class Secret:
    """A secret resolved from the environment or a file. Its repr never shows the value."""

    source: str  # "env:NAME" or "file:PATH" or "stack.json"
    value: str = field(repr=False)

    def __str__(self) -> str:  # pragma: no cover - a guard against printing it by accident
        return f"<secret from {self.source}>"


@dataclass(frozen=True)
class PlantInfo:
    """The plant's own facts (`plant:`), its site's included (`plant.site`)."""

    id: str
    name: str
    timezone: str
    product: str  # gray | ductile (glossary.PRODUCTS)
    iron_source: str | None  # gray pipe: where its iron comes from (glossary.IRON_SOURCES)
    residential_within_1200m: bool  # Table 6 noise tiers
    annual_mean_air_temp_c: float | None  # the latest calendar year's, configured; Table C.1 note 4
    # Who vouches for these facts (against the permit and the plant list), and for how long.
    declared_by: str | None = None
    declared_on: dt.date | None = None
    valid_until: dt.date | None = None  # the last day the declaration holds
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class MqttTls:
    """MQTT over TLS (`mqtt.tls`). Paths are relative to the working directory, as
    `password_file` is."""

    ca_file: Path | None  # the CA that signed the broker's certificate; the system's CAs if None
    cert_file: Path | None  # a client certificate, for a broker that asks for one …
    key_file: Path | None  # … and its private key
    server_name: str | None  # the name in the broker's certificate, when it is not `host`


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
    # Scale-out without `$share`: ingest instance name → the part of the topic tree it takes.
    instances: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # With `share_group`: the instance names allowed to join it (each `<client_id>-<name>`).
    share_members: tuple[str, ...] = ()
    tls: MqttTls | None = None
    # The ingest's MQTT client library: "paho" (paho-mqtt), or "gmqtt" for a faster receive path
    # with the same acknowledgement rules (greenfoundry/mqtt_gmqtt.py, ingest/README.md).
    client: str = "paho"

    def instance_names(self) -> tuple[str, ...]:
        """The declared ingest instances (`instances` or `share_members`); () when one process
        takes everything."""
        return tuple(self.instances) or self.share_members


# The components that reach InfluxDB, each with its own user (`influxdb.users.<role>`): the
# ingest writes readings (a write-only user), the metrics read them and write rollups (read and
# write), readers (status, dashboards, the demo) only read.
INFLUX_ROLES = ("ingest", "metrics", "reader")

# The energy carriers `metrics.made_on_site` may name: the metered utilities of Table 5's
# carriers (metrics.rollups.CARRIERS); electricity, gas and coke are bought in.
MADE_ON_SITE_CARRIERS = ("oxygen",)

# The largest `ingest.max_payload_bytes` with `mqtt.client: gmqtt` (see `parse`): 1 MiB holds
# a batch of about 12,000 readings.
GMQTT_MAX_PAYLOAD_BYTES = 2**20


@dataclass(frozen=True)
class InfluxUser:
    """One role's InfluxDB credentials: a 1.x user with its password, or a 2.x/3.x token."""

    username: str | None
    password: Secret | None
    token: Secret | None


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    database: str
    retention_policy: str | None
    username: str | None  # with password/token: the user of every role not in `users`
    password: Secret | None
    token: Secret | None
    timeout_s: float
    users: dict[str, InfluxUser] = field(default_factory=dict)  # role → its own user

    def user(self, role: str | None) -> InfluxUser:
        """The credentials `role` connects with: its own user, else the shared one. None asks
        for the shared one (a caller that does not name its role)."""
        if role is not None and role not in INFLUX_ROLES:
            raise ValueError(f"unknown InfluxDB role {role!r}; expected one of {INFLUX_ROLES}")
        if role in self.users:
            return self.users[role]
        if self.username is None and self.token is None and self.users:
            raise ConfigError(
                f"influxdb.users.{role or '<role>'}: missing; give this component's user "
                f"(roles: {', '.join(INFLUX_ROLES)}) or influxdb.username for every role"
            )
        return InfluxUser(self.username, self.password, self.token)


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
    """A melting furnace. Its iron is the plant's product (`plant.product`)."""

    id: str
    kind: str  # glossary.FURNACE_KINDS
    capacity: float  # in capacity_unit
    capacity_unit: str  # glossary.CAPACITY_UNITS[kind]: t/h for a cupola, t for induction
    dn_min: int | None  # the DN range its iron is cast into (required for ductile pipe)
    dn_max: int | None

    @property
    def dn_range(self) -> tuple[int, int] | None:
        return None if self.dn_min is None else (self.dn_min, self.dn_max)


@dataclass(frozen=True)
class Stack:
    id: str
    source: str
    limits_mg_m3: dict[str, float]


@dataclass(frozen=True)
class Outfall:
    """A wastewater outfall (`outfalls:`) with its limits D per pollutant, mg/L (Table 6, note
    2: GB 8978, CJ 3082, GB 18918 or a stricter industry, local or group standard), and where
    they come from (`standard`, free text: the permit or standard and its grade)."""

    id: str
    standard: str
    limits_mg_l: dict[str, float]


# GB 12348-2008, Table 1: boundary noise limits, dB(A), (day, night) per acoustic class of the
# area outside the boundary (0: convalescence; 1: residential; 2: mixed; 3: industrial; 4:
# beside traffic arteries). As published; not checked here against the text.
GB12348_LIMITS_DBA = {0: (50.0, 40.0), 1: (55.0, 45.0), 2: (60.0, 50.0), 3: (65.0, 55.0),
                      4: (70.0, 55.0)}  # fmt: skip


@dataclass(frozen=True)
class BoundaryNoise:
    """Boundary noise (`boundary_noise:`, Table 6 note 3): the GB 12348 class of the plant's
    boundary, the limits E by day and by night in dB(A) (the class's, or stricter), and the
    plant-local hours the day starts and the night starts (GB 12348-2008, terms: day
    06:00-22:00, night 22:00-06:00, unless the local government sets other hours). The
    boundary points are the devices of the `noise_leq_dba` signals."""

    gb12348_class: int
    day_limit_dba: float
    night_limit_dba: float
    day_start_h: int = 6
    night_start_h: int = 22


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
class MetricsConfig:
    """The rollup engine (`metrics:`): where it keeps its state, how often and how far back it
    looks, the plant's shifts, and the rules and overrides its indicators take."""

    state_dir: Path  # the engine's local state (SQLite) and its lock
    interval_s: int  # the current hour, shift and day are recomputed this often
    lookback_h: int  # every run re-checks this many recent hours for late data …
    sweep_h: int  # … and this many hours of older history (a rolling sweep)
    history_days: int  # how far back the sweep and the start-up reconcile reach
    shifts: tuple[tuple[str, str], ...]  # (name, local start HH:MM), on whole hours
    min_valid_minutes: int  # HJ 75: a stack's hourly mean needs this many valid minutes
    min_coverage: float  # below this share of its window a value is flagged low_coverage
    table6_rule: str  # a window's multiple of C: "max" (strict) or "mean" of its valid hours
    o2_ref_pct: dict[str, float]  # stack id → reference O2 (% by volume) where the permit asks
    rollover_modulus: dict[str, float]  # meter (device) id → the counter's rollover modulus
    factors: dict[str, float]  # overrides for metrics.factors (name → number)
    ambient_hold_minutes: int = 0  # an ambient_temp_c reading also stands for this many minutes
    water_min_valid_samples: int = 12  # an outfall's daily mean needs this many valid samples
    noise_min_valid_minutes: int = 45  # a boundary point's hourly Leq needs this many minutes
    # Energy carriers the plant makes itself (oxygen from its own air separation unit), whose
    # electricity is already on the site meter: Table 5 and CO2 leave them out, saying so.
    made_on_site: tuple[str, ...] = ()


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
    metrics: MetricsConfig | None = None  # `metrics:`; parse() always fills it
    alerts: Any = None  # `alerts:` (greenfoundry.alerts.config.AlertsConfig); parse() fills it
    report: Any = None  # `report:` (greenfoundry.grade.config.ReportConfig); parse() fills it
    outfalls: tuple[Outfall, ...] = ()  # `outfalls:` (Table 6, water)
    boundary_noise: BoundaryNoise | None = None  # `boundary_noise:` (Table 6, noise)

    def topic_for(self, route: SignalRoute) -> str:
        return "/".join((self.mqtt.topic_root, self.plant.id, route.area, route.device, route.name))

    @property
    def dn_ranges(self) -> tuple[tuple[int, int], ...]:
        """The DN ranges the plant casts: its furnaces' DN ranges, overlaps merged, smallest
        first (the demo plant: DN80–300 and DN350–1000)."""
        merged: list[list[int]] = []
        for low, high in sorted(f.dn_range for f in self.furnaces if f.dn_range):
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        return tuple((low, high) for low, high in merged)


# --------------------------------------------------------------------------------------------


class _ConfigNode(inputs.Node):
    """A node of the plant config: `inputs.Node`, and a literal secret is refused with a hint."""

    def done(self) -> None:
        for name in self.data:
            if name in ("password", "token"):
                self.fail(
                    f"secrets are not read from the YAML; give {name}_env (an environment "
                    f"variable name) or {name}_file (a path)",
                    name,
                )
        super().done()


def _id(node: inputs.Node, name: str = "id", default: Any = inputs.MISSING) -> Any:
    return node.text(name, default, pattern=ID_RE, expected=ID_RULE)


class ScopedEnv(dict):
    """The environment a command resolves its secrets from, limited to the secrets it uses:
    `only` holds key paths (`mqtt.password`, `influxdb.users.reader`, `alerts.channels.mail`),
    and a secret is resolved when its key is one of them or lies below one. Every other
    secret's keys are still checked, but its variable or file is not read, so a container
    need not hold (nor be given a stand-in for) a secret of another component."""

    def __init__(self, env: dict[str, str], only: tuple[str, ...]):
        super().__init__(env)
        self.only = only

    def wants(self, key: str) -> bool:
        return any(key == k or key.startswith(f"{k}.") for k in self.only)


def _secret(node: inputs.Node, name: str, env: dict[str, str] | None) -> Secret | None:
    """`<name>_env` or `<name>_file`; at most one of them. With `env` None, or a `ScopedEnv`
    that does not want `<node>.<name>`, the keys are checked but not resolved (the
    credentials will come from elsewhere, e.g. a local stack, or belong to another command)."""
    env_name = node.text(f"{name}_env", None)
    file_name = node.text(f"{name}_file", None)
    if env_name and file_name:
        node.fail(f"give {name}_env or {name}_file, not both", f"{name}_env")
    if env is None or (isinstance(env, ScopedEnv) and not env.wants(node.key(name))):
        return None
    if env_name:
        if env_name not in env:
            node.fail(f"environment variable {env_name} is not set", f"{name}_env")
        return Secret(f"env:{env_name}", env[env_name])
    if file_name:
        path = Path(file_name).expanduser()
        try:
            return Secret(f"file:{path}", path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            node.fail(f"cannot read {path}: {exc.strerror}", f"{name}_file")
    return None


# --------------------------------------------------------------------------------------------


def load(
    path: str | os.PathLike,
    env: dict[str, str] | None = None,
    *,
    resolve_secrets: bool = True,
    only: Any = None,
) -> PlantConfig:
    """Load and validate a plant config. Relative paths inside it are relative to the file.
    Secrets are read from `env` (default: the process environment) or their files, unless
    `resolve_secrets` is false (the caller supplies credentials, as `--stack` does, or needs
    none, as the scorer).

    `only` resolves just the secrets of those key paths (`ScopedEnv`): a command's own, so a
    secret of another component may be unset where this one runs, while a missing secret the
    command needs still stops it here naming its key. It may be a function of the config read
    without secrets that returns the key paths, for a command whose secrets depend on the
    config (the alert channels its rules name); None resolves every secret."""
    path = Path(path)
    raw, _ = inputs.read(path, "the plant config", ConfigError)
    if not resolve_secrets:
        env = None
    elif env is None:
        env = dict(os.environ)
    if env is not None and only is not None:
        if callable(only):
            only = only(parse(copy.deepcopy(raw), base=path.parent, env=None, path=path))
        env = ScopedEnv(env, tuple(only))
    return parse(raw, base=path.parent, env=env, path=path)


def influx_secret_keys(cfg: PlantConfig, role: str) -> tuple[str, ...]:
    """The key paths of the secrets InfluxDB `role` connects with (`InfluxConfig.user`): its
    own user's, or the shared `influxdb.password`/`token` a role without one falls back to."""
    if role not in INFLUX_ROLES:
        raise ValueError(f"unknown InfluxDB role {role!r}; expected one of {INFLUX_ROLES}")
    if role in cfg.influxdb.users:
        return (f"influxdb.users.{role}",)
    return ("influxdb.password", "influxdb.token")


def parse(
    raw: Any, *, base: Path, env: dict[str, str] | None, path: Path | None = None
) -> PlantConfig:
    """Validate a parsed plant config. Messages name `path` when it is given."""
    file = inputs.display(path) if path is not None else None
    top = _ConfigNode(raw, "", file=file, error=ConfigError)
    top.choice("version", (1,))

    plant = _plant(top)
    config = PlantConfig(
        path or Path("<memory>"),
        plant,
        _mqtt(top, plant, env),
        _influxdb(top, env),
        _ingest(top, base),
        _furnaces(top, plant),
        _stacks(top),
        _water_meters(top),
        _signals(top),
    )
    if config.mqtt.client == "gmqtt" and config.ingest.max_payload_bytes > GMQTT_MAX_PAYLOAD_BYTES:
        # gmqtt's reader grows its buffer by concatenation, so a message costs CPU with the
        # square of its size (32 MiB: 2.35 s of CPU against paho's 0.29 s, measured 2026-12-01).
        top.fail(
            f"{config.ingest.max_payload_bytes} bytes with mqtt.client gmqtt: at most "
            f"{GMQTT_MAX_PAYLOAD_BYTES} (gmqtt reads a large message in time that grows with the "
            "square of its size); use mqtt.client paho for larger messages",
            at="ingest.max_payload_bytes",
        )
    config = dataclasses.replace(
        config, outfalls=_outfalls(top), boundary_noise=_boundary_noise(top)
    )
    _check_table6_routes(top, config)
    config = dataclasses.replace(config, metrics=_metrics(top, config, base))
    # The alerts and the grade's sections are parsed by their own packages, which know their
    # rules and channels; they see the config built so far (stacks, furnaces, metrics).
    from greenfoundry.alerts.config import parse_alerts
    from greenfoundry.grade.config import parse_report

    alerts = parse_alerts(top.child("alerts", required=False), config, base, env)
    config = dataclasses.replace(config, alerts=alerts)
    report = parse_report(top.child("report", required=False), config, base, env)
    config = dataclasses.replace(config, report=report)
    top.done()
    return config


# Each section of the file has its own function, in the file's order; each reads only its keys.


def _plant(top: inputs.Node) -> PlantInfo:
    p = top.child("plant")
    site = p.child("site", required=False)
    tz = p.text("timezone")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        p.refuse("timezone", tz, "an IANA zone such as Asia/Shanghai")
    declared_on = p.date("declared_on", None)
    valid_until = p.date("valid_until", None)
    if valid_until is not None and declared_on is None:
        p.fail("missing; valid_until needs the day the facts were declared", "declared_on")
    if valid_until is not None and valid_until < declared_on:
        p.refuse("valid_until", valid_until, f"a date on or after declared_on ({declared_on})")
    plant = PlantInfo(
        id=_id(p),
        name=p.text("name", ""),
        timezone=tz,
        product=p.choice("product", glossary.PRODUCTS),
        iron_source=p.choice("iron_source", glossary.IRON_SOURCES, None),
        residential_within_1200m=site.boolean("residential_within_1200m", False),
        annual_mean_air_temp_c=_plausible(site, "annual_mean_air_temp_c", None),
        declared_by=p.text("declared_by", None),
        declared_on=declared_on,
        valid_until=valid_until,
        references=p.texts("references"),
    )
    site.done()
    p.done()
    return plant


def _mqtt(top: inputs.Node, plant: PlantInfo, env: dict[str, str] | None) -> MqttConfig:
    m = top.child("mqtt")
    mqtt = MqttConfig(
        host=m.text("host", "127.0.0.1"),
        port=m.number("port", 1883, low=1, high=65535, integer=True),
        username=m.text("username", None),
        password=_secret(m, "password", env),
        client_id=m.text("client_id", f"gf-ingest-{plant.id}"),
        session_expiry_s=m.number(
            "session_expiry_s", 7 * 86400, low=60, high=2**32 - 1, integer=True
        ),
        share_group=_id(m, "share_group", None),
        topic_root=m.text("topic_root", "gf/v1"),
        keepalive_s=m.number("keepalive_s", 30, low=5, high=3600, integer=True),
        subscribe=(),
    )
    expected = "a list of MQTT topic filters such as gf/v1/<plant>/#"
    filters = m.get("subscribe", None)
    if filters is None:
        filters = [f"{mqtt.topic_root}/{plant.id}/#"]
    if not _filters_ok(filters):
        m.refuse("subscribe", filters, expected + " ($share is added from share_group)")
    instances: dict[str, tuple[str, ...]] = {}
    raw_instances = m.get("instances", None)
    if raw_instances is not None:
        if m.has("subscribe") or mqtt.share_group:
            m.fail(
                "give instances (each ingest process its own part of the topic tree) or "
                "subscribe/share_group, not both",
                "instances",
            )
        inst = m.child("instances")
        if not raw_instances:
            m.refuse("instances", raw_instances, "a mapping: instance name → topic filters")
        owner: dict[str, str] = {}
        for name in raw_instances:
            if not isinstance(name, str) or not ID_RE.match(name):
                m.refuse("instances", name, f"instance names of {ID_RULE}")
            fs = inst.get(name)
            if not _filters_ok(fs):
                inst.refuse(name, fs, expected)
            for f in fs:  # one filter, one instance: else both would write (and dead-letter) it
                if f in owner:
                    inst.fail(f"{f!r} is already taken by instance {owner[f]!r}", name)
                owner[f] = name
            instances[name] = tuple(fs)
        inst.done()
    members = m.get("share_members", None)
    if mqtt.share_group and members is None:
        m.fail(
            "missing; a share group's members must be declared (a list of instance names), so "
            "that nothing is queued for a member that does not exist",
            "share_members",
        )
    if members is not None:
        if not mqtt.share_group:
            m.fail("share_members needs share_group", "share_members")
        if (
            not isinstance(members, list)
            or not members
            or not all(isinstance(n, str) and ID_RE.match(n) for n in members)
            or len(set(members)) != len(members)
        ):
            m.refuse("share_members", members, f"a list of distinct instance names of {ID_RULE}")
    mqtt = dataclasses.replace(
        mqtt,
        subscribe=tuple(filters),
        instances=instances,
        share_members=tuple(members or ()),
        tls=_mqtt_tls(m),
        client=m.choice("client", ("paho", "gmqtt"), "paho"),
    )
    m.done()
    return mqtt


def _filters_ok(filters: Any) -> bool:
    return (
        isinstance(filters, list)
        and bool(filters)
        and all(isinstance(f, str) and f and not f.startswith("$") for f in filters)
    )


def _mqtt_tls(m: inputs.Node) -> MqttTls | None:
    if not m.has("tls"):
        m.get("tls", None)
        return None
    t = m.child("tls")

    def path(name: str) -> Path | None:
        value = t.text(name, None)
        if value is None:
            return None
        p = Path(value).expanduser()
        if not os.access(p, os.R_OK) or not p.is_file():
            t.fail(f"cannot read the file {p}", name)
        return p

    tls = MqttTls(path("ca_file"), path("cert_file"), path("key_file"), t.text("server_name", None))
    if (tls.cert_file is None) != (tls.key_file is None):
        t.fail("give cert_file and key_file together", "cert_file")
    # A readable file that holds no certificate (or a key that is not the certificate's) would
    # otherwise surface as an ssl.SSLError traceback when the ingest builds its TLS context.
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is not None:
        try:
            probe.load_verify_locations(cafile=str(tls.ca_file))
        except (ssl.SSLError, ValueError) as exc:
            t.fail(f"{tls.ca_file} holds no usable PEM certificate ({exc.__class__.__name__})",
                   "ca_file")  # fmt: skip
    if tls.cert_file is not None:
        try:
            probe.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        except (ssl.SSLError, ValueError) as exc:
            t.fail(f"{tls.cert_file} and {tls.key_file} are not a PEM certificate and its own "
                   f"unencrypted key ({exc.__class__.__name__})", "cert_file")  # fmt: skip
    t.done()
    return tls


def _influxdb(top: inputs.Node, env: dict[str, str] | None) -> InfluxConfig:
    i = top.child("influxdb")
    influx = InfluxConfig(
        url=i.text("url", "http://127.0.0.1:8086").rstrip("/"),
        database=i.text("database", "greenfoundry"),
        retention_policy=i.text("retention_policy", None),
        username=i.text("username", None),
        password=_secret(i, "password", env),
        token=_secret(i, "token", env),
        timeout_s=i.number("timeout_s", 10.0, low=0.1, high=300, unit="s"),
        users=_influx_users(i, env),
    )
    if "@" in influx.url.split("//", 1)[-1].split("/", 1)[0]:
        i.fail(
            "credentials in the URL are not allowed (they would reach logs); give username "
            "with password_env/password_file, or token_env/token_file",
            "url",
        )
    if not influx.url.startswith(("http://", "https://")):
        i.refuse("url", influx.url, "http(s)://…")
    i.done()
    return influx


def _influx_users(i: inputs.Node, env: dict[str, str] | None) -> dict[str, InfluxUser]:
    """`influxdb.users`: per role, `username` with `password_env`/`password_file`, or
    `token_env`/`token_file`. A role left out uses `influxdb.username` (or its token)."""
    users = {}
    node = i.child("users", required=False)
    for role in node.data:
        if role not in INFLUX_ROLES:
            node.fail(f"not a role; expected {', '.join(INFLUX_ROLES)}", str(role))
    for role in INFLUX_ROLES:
        if not node.has(role):
            continue
        u = node.child(role)
        user = InfluxUser(u.text("username", None), _secret(u, "password", env), None)
        user = dataclasses.replace(user, token=_secret(u, "token", env))
        if user.username is None and not u.has("token_env") and not u.has("token_file"):
            u.fail(
                "missing; give username (with password_env or password_file) or token_env",
                "username",
            )
        u.done()
        users[role] = user
    node.done()
    return users


def _ingest(top: inputs.Node, base: Path) -> IngestConfig:
    g = top.child("ingest", required=False)
    ingest = IngestConfig(
        batch_max_readings=g.number(
            "batch_max_readings", 5000, low=1, high=1_000_000, integer=True
        ),
        batch_max_age_ms=g.number("batch_max_age_ms", 200, low=1, high=60_000, integer=True),
        spool_dir=(base / g.text("spool_dir", "var/spool")).resolve(),
        deadletter_file=(base / g.text("deadletter_file", "var/deadletter.jsonl")).resolve(),
        max_payload_bytes=g.number(
            "max_payload_bytes", 128 * 1024, low=64, high=64 * 2**20, integer=True
        ),
        # Agrees with the payload limit: 1000 readings with seq are about 85 KB of JSON.
        max_batch_readings=g.number(
            "max_batch_readings", 1000, low=1, high=1_000_000, integer=True
        ),
        max_future_s=g.number("max_future_s", 300, low=0, high=86400 * 365),
        max_past_days=g.number("max_past_days", 400, low=0, high=36500),
        self_metrics_interval_s=g.number("self_metrics_interval_s", 10, low=0.1, high=3600),
        queue_budget_mb=g.number("queue_budget_mb", 256, low=16, high=65536, integer=True),
    )
    g.done()
    return ingest


def _plausible(
    node: inputs.Node,
    name: str,
    default: Any = inputs.MISSING,
    *,
    key: str | None = None,
    furnace_kind: str | None = None,
) -> Any:
    """A number within the glossary's plausible range of context key `key` (default `name`):
    one source for the config and the scorer (`glossary.PLAUSIBLE_BY_KEY`). None of these
    ranges is open at the top, which `inputs.Node.number` could not say."""
    r = glossary.plausible_for_key(key or name, furnace_kind)
    assert not r.high_open, r
    return node.number(
        name,
        default,
        low=None if r.low_open else r.low,
        above=r.low if r.low_open else None,
        high=r.high,
        unit=r.unit,
    )


def _furnaces(top: inputs.Node, plant: PlantInfo) -> tuple[Furnace, ...]:
    furnaces = []
    for where, item in top.items("furnaces"):
        f = top.node(item, where)
        kind = f.choice("kind", glossary.FURNACE_KINDS)
        cap = f.child("capacity")
        capacity = _plausible(cap, "value", key="furnace_capacity", furnace_kind=kind)
        cap_unit = cap.choice("unit", (glossary.CAPACITY_UNITS[kind],))
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
                f.refuse("dn_range", dn, "[DN_MIN, DN_MAX], whole numbers, DN_MIN ≤ DN_MAX")
            dn_min, dn_max = dn
        elif plant.product == "ductile":
            f.fail(
                "missing; ductile pipe needs the DN range this furnace's iron is cast into "
                "(Table C.1's tapping temperature depends on it)",
                "dn_range",
            )
        furnaces.append(Furnace(_id(f), kind, float(capacity), cap_unit, dn_min, dn_max))
        f.done()
    _unique(top, furnaces, "furnaces")
    return tuple(furnaces)


def _stacks(top: inputs.Node) -> tuple[Stack, ...]:
    stacks = []
    for where, item in top.items("stacks"):
        s = top.node(item, where)
        pol = s.child("pollutants")
        limits = {}
        for name in list(pol.data):
            if name not in glossary.POLLUTANTS:
                pol.fail(
                    f"unknown pollutant; expected one of {', '.join(glossary.POLLUTANTS)}", name
                )
            entry = pol.child(name)
            limits[name] = float(entry.number("limit_mg_m3", low=1e-6, high=1e6, unit="mg/m³"))
            entry.done()
        pol.done()
        stacks.append(Stack(_id(s), s.text("source", ""), limits))
        s.done()
    _unique(top, stacks, "stacks")
    return tuple(stacks)


def _outfalls(top: inputs.Node) -> tuple[Outfall, ...]:
    outfalls = []
    for where, item in top.items("outfalls"):
        o = top.node(item, where)
        pol = o.child("pollutants")
        limits = {}
        for name in list(pol.data):
            if name not in glossary.WATER_POLLUTANTS:
                pol.fail(
                    f"unknown pollutant; expected one of {', '.join(glossary.WATER_POLLUTANTS)} "
                    "(pH has a range, not a limit D: it has no multiple of D)",
                    name,
                )
            entry = pol.child(name)
            limits[name] = float(entry.number("limit_mg_l", low=1e-6, high=1e5, unit="mg/L"))
            entry.done()
        pol.done()
        outfalls.append(Outfall(_id(o), o.text("standard", ""), limits))
        o.done()
    _unique(top, outfalls, "outfalls")
    return tuple(outfalls)


def _boundary_noise(top: inputs.Node) -> BoundaryNoise | None:
    """`boundary_noise:`: a limit above its class's is refused (note 3: E meets GB 12348 or a
    stricter standard, never a laxer one)."""
    if top.get("boundary_noise", None) is None:
        return None
    # The variant of Table 6's noise row, and so every hour's band, follows this key: left out,
    # it would read as false and grade the plant on the laxer tiers (0.9/0.95 E, not 0.6/0.8 E)
    # without anyone having said there is no residential area within 1200 m.
    raw_plant = top.data.get("plant")
    site = raw_plant.get("site") if isinstance(raw_plant, dict) else None
    if not (isinstance(site, dict) and "residential_within_1200m" in site):
        top.fail(
            "missing; boundary_noise is scored on the Table 6 variant it picks (true: a "
            "residential area within 1200 m, tiers 0.6/0.8/1 E; false: 0.9/0.95/1 E)",
            at="plant.site.residential_within_1200m",
        )
    b = top.child("boundary_noise")
    cls = b.number("gb12348_class", low=0, high=4, integer=True)
    day_max, night_max = GB12348_LIMITS_DBA[int(cls)]
    day = float(b.number("day_limit_dba", day_max, low=20, high=day_max, unit="dB(A)"))
    night = float(b.number("night_limit_dba", night_max, low=20, high=night_max, unit="dB(A)"))
    hours = []
    for key, default in (("day_start", "06:00"), ("night_start", "22:00")):
        text = b.text(key, default)
        if not _SHIFT_RE.match(text):
            b.refuse(key, text, "a plant-local time on a whole hour, HH:00 (hours are the periods)")
        hours.append(int(text[:2]))
    if hours[0] == hours[1]:
        b.refuse("night_start", f"{hours[1]:02d}:00", "a time other than day_start")
    b.done()
    return BoundaryNoise(int(cls), day, night, hours[0], hours[1])


def _check_table6_routes(top: inputs.Node, cfg: PlantConfig) -> None:
    """A discharge signal belongs to a configured outfall and one of its pollutants, a noise
    signal needs `boundary_noise`, a noise monitor's status a point that reads noise: otherwise
    its readings would be stored and never scored."""
    outfalls = {o.id: o for o in cfg.outfalls}
    noise_points = {r.device for r in cfg.routes.values() if r.signal == "noise_leq_dba"}
    for n, r in enumerate(cfg.routes.values()):
        at = f"signals[{n}]"
        if r.signal in ("discharge_conc_mg_l", "discharge_analyser_status"):
            o = outfalls.get(r.device)
            if o is None:
                top.fail(
                    f"{r.signal} of device {r.device!r}: not an outfall of this plant; expected "
                    f"one of {', '.join(sorted(outfalls)) or '(none: add it under outfalls)'}",
                    at=f"{at}.topic",
                )
            pol = dict(r.tags).get("pollutant")
            if r.signal == "discharge_conc_mg_l" and pol not in o.limits_mg_l:
                top.fail(
                    f"pollutant {pol!r} has no limit D at outfall {o.id}; expected one of "
                    f"{', '.join(sorted(o.limits_mg_l))}",
                    at=f"{at}.tags.pollutant",
                )
        if r.signal in ("noise_leq_dba", "noise_monitor_status") and cfg.boundary_noise is None:
            top.fail(
                f"{r.signal} needs boundary_noise (the GB 12348 class and limits E)",
                at=f"{at}.signal",
            )
        if r.signal == "noise_monitor_status" and r.device not in noise_points:
            # A status of a monitor that reads no Leq would flag nothing: a typo in the device.
            top.fail(
                f"noise_monitor_status of device {r.device!r}: no noise_leq_dba of that device; "
                f"expected one of {', '.join(sorted(noise_points)) or '(none)'}",
                at=f"{at}.topic",
            )


def _water_meters(top: inputs.Node) -> tuple[WaterMeter, ...]:
    meters = []
    for where, item in top.items("water_meters"):
        w = top.node(item, where)
        meters.append(WaterMeter(_id(w), w.choice("role", glossary.WATER_ROLES)))
        w.done()
    _unique(top, meters, "water_meters")
    return tuple(meters)


def _signals(top: inputs.Node) -> dict[tuple[str, str, str], SignalRoute]:
    routes: dict[tuple[str, str, str], SignalRoute] = {}
    for where, item in top.items("signals"):
        r = top.node(item, where)
        topic = r.text("topic")
        parts = topic.split("/")
        if len(parts) == 3 and parts[2] == "_batch":
            r.fail("'_batch' is reserved for batch messages", "topic")
        if len(parts) != 3 or not all(ID_RE.match(x) for x in parts):
            r.refuse(
                "topic",
                topic,
                "AREA/DEVICE/SIGNAL (relative to <topic_root>/<plant>/), each level lower-case "
                "letters, digits, - or _",
            )
        sig = r.choice("signal", tuple(glossary.SIGNALS))
        canonical = glossary.SIGNALS[sig].unit
        unit = r.text("unit", None)
        if unit is not None and units.conversion(unit, canonical) is None:
            allowed = ", ".join(units.CONVERSIONS.get(canonical, {}))
            r.fail(
                f"{inputs.show(unit)} is not allowed for {sig}; expected one of {allowed}", "unit"
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
                tags_node.refuse(
                    str(k),
                    v,
                    "a text value under a lower-case tag name other than plant, area, device",
                )
            tags[k] = v
        tags_node.done()
        if sig == "stack_conc_mg_m3" and tags.get("pollutant") not in glossary.POLLUTANTS:
            tags_node.refuse(
                "pollutant", tags.get("pollutant"), "one of " + ", ".join(glossary.POLLUTANTS)
            )
        route = SignalRoute(parts[0], parts[1], parts[2], sig, unit, tuple(sorted(tags.items())))
        if route.key in routes:
            r.fail(f"{topic} is mapped twice", "topic")
        routes[route.key] = route
        r.done()
    return routes


def _unique(top: inputs.Node, items: list[Any], key: str) -> None:
    seen: set[str] = set()
    for n, item in enumerate(items):
        if item.id in seen:
            top.fail(f"{item.id!r} is used twice; expected each id once", at=f"{key}[{n}].id")
        seen.add(item.id)


_SHIFT_RE = re.compile(r"([01]\d|2[0-3]):00\Z")
DEFAULT_SHIFTS = (("00:00", "00:00"), ("08:00", "08:00"), ("16:00", "16:00"))


def _metrics(top: inputs.Node, cfg: PlantConfig, base: Path) -> MetricsConfig:
    """`metrics:` (every key optional). Shifts start on whole local hours, because shifts are
    composed exactly from the hourly rollups (metrics/README.md)."""
    m = top.child("metrics", required=False)
    raw_shifts = m.get("shifts", None)
    if raw_shifts is None:
        shifts = DEFAULT_SHIFTS
    elif isinstance(raw_shifts, list) and raw_shifts:
        shifts = tuple((str(s), s) for s in raw_shifts)
    elif isinstance(raw_shifts, dict) and raw_shifts:
        shifts = tuple((str(k), v) for k, v in raw_shifts.items())
    else:
        m.refuse(
            "shifts", raw_shifts, "a list of local start times [HH:00, …] or a mapping name → HH:00"
        )
    starts = set()
    for name, start in shifts:
        if not isinstance(start, str) or not _SHIFT_RE.match(start):
            m.refuse(
                "shifts",
                start,
                "local start times on a whole hour, HH:00 (shifts are composed from hours)",
            )
        if not ID_RE.match(name.replace(":", "")):
            m.refuse("shifts", name, f"shift names of {ID_RULE}")
        if start in starts:
            m.refuse("shifts", start, "each start time once")
        starts.add(start)
    stack_ids = {s.id for s in cfg.stacks}
    o2 = {}
    o2_node = m.child("o2_ref_pct", required=False)
    for sid in list(o2_node.data):
        if sid not in stack_ids:
            o2_node.fail(
                f"not a stack of this plant; expected one of {', '.join(sorted(stack_ids))}",
                str(sid),
            )
        o2[sid] = float(o2_node.number(sid, low=0, high=20.9, unit="% O2"))
        if not any(r.signal == "stack_o2_pct" and r.device == sid for r in cfg.routes.values()):
            o2_node.fail(
                "needs the stack's O2 readings: map a stack_o2_pct signal of this stack", str(sid)
            )
    o2_node.done()
    meters = {r.device for r in cfg.routes.values() if glossary.SIGNALS[r.signal].kind == "counter"}
    roll = {}
    roll_node = m.child("rollover_modulus", required=False)
    for mid in list(roll_node.data):
        if mid not in meters:
            roll_node.fail(
                f"not a meter of this plant; expected one of {', '.join(sorted(meters))}", str(mid)
            )
        roll[mid] = float(roll_node.number(mid, above=0, unit="the counter's unit"))
    roll_node.done()
    # Overrides of the standard-coal and CO2 factors, `<table>.<carrier>: number`: checked by
    # metrics.factors itself (known factor, a number inside its plausible range), so a wrong
    # name or a value in the wrong unit stops the start naming metrics.factors.<key>.
    from greenfoundry.metrics.factors import load_factors

    f_node = m.child("factors", required=False)
    factors = {str(k): v for k, v in f_node.data.items()}
    try:
        load_factors(factors)
    except ConfigError as exc:
        f_node.fail(str(exc).split(": ", 1)[1], at=str(exc).split(": ", 1)[0])
    factors = {k: float(v) for k, v in factors.items()}
    f_node.seen.update(f_node.data)
    f_node.done()
    # GB/T 2589 counts a utility (耗能工质) made on site through the energy that made it, so
    # counting its own factor too would count it twice; only the metered utilities qualify.
    made_on_site = m.get("made_on_site", [])
    if not isinstance(made_on_site, list) or not all(
        isinstance(c, str) and c in MADE_ON_SITE_CARRIERS for c in made_on_site
    ):
        m.refuse("made_on_site", made_on_site, f"a list of {', '.join(MADE_ON_SITE_CARRIERS)}")
    if len(set(made_on_site)) != len(made_on_site):
        m.refuse("made_on_site", made_on_site, "each carrier once")
    lookback_h = m.number("lookback_h", 48, low=2, high=24 * 31, integer=True, unit="h")
    metrics = MetricsConfig(
        state_dir=(base / m.text("state_dir", "var/metrics")).resolve(),
        interval_s=m.number("interval_s", 60, low=5, high=3600, integer=True, unit="s"),
        lookback_h=lookback_h,
        sweep_h=m.number("sweep_h", 168, low=1, high=24 * 366, integer=True, unit="h"),
        history_days=m.number("history_days", 400, low=1, high=3660, integer=True, unit="days"),
        shifts=tuple((n, s) for n, s in shifts),
        min_valid_minutes=m.number("min_valid_minutes", 45, low=1, high=60, integer=True),
        min_coverage=float(m.number("min_coverage", 0.9, low=0, high=1)),
        table6_rule=m.choice("table6_rule", ("max", "mean"), "max"),
        o2_ref_pct=o2,
        rollover_modulus=roll,
        factors=factors,
        ambient_hold_minutes=m.number("ambient_hold_minutes", 0, low=0, high=59, integer=True),
        made_on_site=tuple(made_on_site),
        water_min_valid_samples=m.number(
            "water_min_valid_samples", 12, low=1, high=1440, integer=True
        ),
        noise_min_valid_minutes=m.number(
            "noise_min_valid_minutes", 45, low=1, high=60, integer=True
        ),
    )
    m.done()
    return metrics

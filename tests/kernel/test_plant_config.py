"""The plant config: the example is valid and holds the plant's facts; every invalid value stops
with a message that names the key, the value and what is allowed; secrets never come from the
YAML."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.config import plant_file
from greenfoundry.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load(plant_file().read_text())
ENV = {"GF_MQTT_PASSWORD": "mqtt-secret", "GF_INFLUX_PASSWORD": "influx-secret"}


def _parse(raw):
    return plant.parse(raw, base=plant_file().parent, env=ENV)


def test_the_example_config_is_valid():
    cfg = plant.load(plant_file(), env=ENV)
    assert cfg.plant.id == "demo-dip"
    assert cfg.mqtt.subscribe == ("gf/v1/demo-dip/#",)
    assert cfg.mqtt.password.value == "mqtt-secret"
    assert cfg.routes[("env", "melt-stack", "dust")].tags == (("pollutant", "particulate"),)
    assert cfg.topic_for(cfg.routes[("melt", "if1", "energy")]) == "gf/v1/demo-dip/melt/if1/energy"
    assert cfg.furnaces[0].dn_min == 80 and cfg.furnaces[1].dn_max == 1000


def test_the_example_holds_the_plants_facts():
    # As written in config/plants/demo-dip/plant.yaml: a ductile-pipe plant, two 12 t induction
    # furnaces feeding DN80–300 and DN350–1000, declared by its energy manager on 2026-01-12.
    cfg = plant.load(plant_file(), resolve_secrets=False)
    p = cfg.plant
    assert (p.product, p.iron_source, p.residential_within_1200m) == ("ductile", None, False)
    assert p.annual_mean_air_temp_c == 16.2
    assert (p.declared_by, p.declared_on.isoformat()) == (
        "Wang Fang (energy manager)",
        "2026-01-12",
    )
    assert p.references[0] == "pollutant discharge permit 91320000MA1X0001"
    assert [(f.id, f.kind, f.capacity, f.capacity_unit) for f in cfg.furnaces] == [
        ("if1", "induction", 12.0, "t"),
        ("if2", "induction", 12.0, "t"),
    ]
    assert cfg.dn_ranges == ((80, 300), (350, 1000))


def test_the_dn_ranges_cast_are_the_furnaces_merged():
    # [80, 300] and [200, 600] overlap: one range DN80–600; [700, 1000] stays apart.
    raw = copy.deepcopy(EXAMPLE)
    raw["furnaces"][0]["dn_range"] = [200, 600]
    raw["furnaces"].append({**raw["furnaces"][1], "id": "if3", "dn_range": [80, 300]})
    raw["furnaces"][1]["dn_range"] = [700, 1000]
    assert _parse(raw).dn_ranges == ((80, 600), (700, 1000))


def test_a_gray_plant_needs_no_dn_range():
    raw = _with("plant.product", "gray")
    for f in raw["furnaces"]:
        del f["dn_range"]
    cfg = _parse(raw)
    assert cfg.dn_ranges == () and cfg.furnaces[0].dn_range is None


def _with(path: str, value):
    raw = copy.deepcopy(EXAMPLE)
    node = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return raw


_DELETE = object()

# (dotted path to change, new value, the key the message must name, a piece of the message)
BAD = [
    ("version", 2, "version", "expected 1"),
    ("plant.id", "Demo Plant", "plant.id", "lower-case"),
    ("plant.timezone", "China/Beijing", "plant.timezone", "IANA"),
    (
        "plant.site.annual_mean_air_temp_c",
        "warm",
        "plant.site.annual_mean_air_temp_c",
        "expected a number",
    ),
    (
        "plant.site.residential_within_1200m",
        "yes",
        "plant.site.residential_within_1200m",
        "true or false",
    ),
    ("plant.colour", "green", "plant.colour", "unknown key"),
    (
        "plant.product",
        "steel",
        "plant.product",
        "'steel' is not allowed; expected one of gray, ductile",
    ),
    ("plant.product", _DELETE, "plant.product", "missing; this key is required"),
    ("plant.iron_source", "scrap", "plant.iron_source", "expected one of blast_furnace_or_cupola"),
    ("plant.declared_on", "12/01/2026", "plant.declared_on", "expected a date YYYY-MM-DD"),
    ("plant.declared_on", "2026-02-30", "plant.declared_on", "day is out of range for month"),
    ("plant.valid_until", "2025-12-31", "plant.valid_until", "on or after declared_on"),
    ("plant.declared_by", "", "plant.declared_by", "'' is not allowed; expected a text"),
    ("plant.references", [3], "plant.references", "expected a list of texts"),
    ("mqtt.port", 70000, "mqtt.port", "between 1 and 65535"),
    ("mqtt.password", "hunter2", "mqtt.password", "not read from the YAML"),
    ("mqtt.password_env", "GF_NOT_SET", "mqtt.password_env", "is not set"),
    ("mqtt.subscribe", "gf/v1/#", "mqtt.subscribe", "list of MQTT topic filters"),
    ("influxdb.token", "abc", "influxdb.token", "not read from the YAML"),
    ("influxdb.url", "127.0.0.1:8086", "influxdb.url", "http(s)://"),
    ("influxdb.url", "http://gf:hunter2@influx:8086", "influxdb.url", "credentials in the URL"),
    ("influxdb.timeout_s", float("nan"), "influxdb.timeout_s", "expected a number"),
    ("mqtt.session_expiry_s", 0, "mqtt.session_expiry_s", "between 60"),
    ("ingest.queue_budget_mb", 1, "ingest.queue_budget_mb", "between 16"),
    ("ingest.batch_max_readings", 0, "ingest.batch_max_readings", "between 1"),
    ("ingest.batch_max_age_ms", 0.5, "ingest.batch_max_age_ms", "whole number"),
    ("furnaces.0.kind", "arc", "furnaces[0].kind", "cupola, induction"),
    (
        "furnaces.0.capacity",
        {"value": 12, "unit": "t/h"},
        "furnaces[0].capacity.unit",
        "'t/h' is not allowed; expected t",
    ),
    ("furnaces.0.dn_range", [300, 80], "furnaces[0].dn_range", "DN_MIN ≤ DN_MAX"),
    ("furnaces.0.dn_range", _DELETE, "furnaces[0].dn_range", "ductile pipe needs"),
    (
        "furnaces.0.capacity",
        {"value": -1, "unit": "t"},
        "furnaces[0].capacity.value",
        "-1 is not allowed; expected a number above 0 t",
    ),
    # A furnace's iron is the plant's product: it is not declared again per furnace.
    ("furnaces.0.product", "ductile", "furnaces[0].product", "unknown key"),
    ("furnaces.1.id", "if1", "furnaces[1].id", "used twice"),
    (
        "stacks.0.pollutants",
        {"dust": {"limit_mg_m3": 30}},
        "stacks[0].pollutants.dust",
        "unknown pollutant",
    ),
    (
        "stacks.0.pollutants",
        {"particulate": {"limit_mg_m3": -1}},
        "stacks[0].pollutants.particulate.limit_mg_m3",
        "between",
    ),
    ("water_meters.0.role", "cooling", "water_meters[0].role", "cooling_circulating"),
    ("signals.0.topic", "melt/if1", "signals[0].topic", "AREA/DEVICE/SIGNAL"),
    ("signals.0.topic", "melt/if1/_batch", "signals[0].topic", "reserved"),
    ("signals.0.signal", "energy", "signals[0].signal", "furnace_energy_kwh"),
    ("signals.0.unit", "kcal", "signals[0].unit", "not allowed for furnace_energy_kwh"),
    ("signals.1.topic", "melt/if1/energy", "signals[1].topic", "mapped twice"),
    ("signals.8.tags", {"pollutant": "dust"}, "signals[8].tags.pollutant", "particulate"),
]


@pytest.mark.parametrize(
    ("path", "value", "key", "message"), BAD, ids=[f"{p}={v!r}"[:60] for p, v, _, _ in BAD]
)
def test_an_invalid_value_names_the_key(path, value, key, message):
    with pytest.raises(ConfigError) as err:
        _parse(_with(path, value))
    text = str(err.value)
    assert text.startswith(key + ":"), text
    assert message in text, text


def test_secrets_never_appear_in_messages_or_reprs(tmp_path):
    cfg = _parse(EXAMPLE)
    assert "mqtt-secret" not in repr(cfg) and "influx-secret" not in repr(cfg)
    with pytest.raises(ConfigError) as err:
        _parse(_with("mqtt.password", "hunter2"))
    assert "hunter2" not in str(err.value)


def test_a_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "influx.secret"
    secret.write_text("from-a-file\n")
    raw = _with("influxdb.password_env", _DELETE)
    raw["influxdb"]["password_file"] = str(secret)
    assert _parse(raw).influxdb.password.value == "from-a-file"
    raw["influxdb"]["password_file"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"^influxdb.password_file: cannot read"):
        _parse(raw)


def test_load_names_the_file_and_rejects_bad_yaml(tmp_path):
    bad = tmp_path / "plant.yaml"
    bad.write_text("version: 1\nplant: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        plant.load(bad, env=ENV)
    bad.write_text(yaml.safe_dump(_with("mqtt.port", "x")))
    with pytest.raises(ConfigError, match=r"plant.yaml: mqtt.port: 'x' is not allowed"):
        plant.load(bad, env=ENV)


def test_with_a_stack_the_config_secrets_are_checked_but_not_read(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(EXAMPLE))
    cfg = plant.load(path, env={}, resolve_secrets=False)  # GF_*_PASSWORD unset: no error
    assert cfg.mqtt.password is None
    path.write_text(yaml.safe_dump(_with("mqtt.password", "hunter2")))
    with pytest.raises(ConfigError, match="not read from the YAML"):
        plant.load(path, env={}, resolve_secrets=False)


def test_the_cli_turns_a_config_error_into_one_line(tmp_path, capsys, monkeypatch):
    from greenfoundry.cli import main

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    bad = tmp_path / "plant.yaml"
    bad.write_text(yaml.safe_dump(_with("furnaces.0.kind", "arc")))
    assert main(["ingest", "--config", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "furnaces[0].kind" in err[0]


# ---- mqtt: scale-out by declared instances, share-group members, TLS (issue 8) ------------


def test_the_example_takes_the_plant_with_a_plain_subscription():
    # A share group by default let a member that is gone keep receiving its share into a
    # queue nobody reads (issue 8): the example declares none.
    cfg = plant.load(plant_file(), resolve_secrets=False)
    assert cfg.mqtt.share_group is None and cfg.mqtt.instance_names() == ()
    assert cfg.mqtt.tls is None


def _mqtt_with(**keys):
    raw = copy.deepcopy(EXAMPLE)
    raw["mqtt"].update(keys)
    return raw


def test_instances_each_take_their_own_topics():
    cfg = _parse(_mqtt_with(instances={"melt": ["gf/v1/demo-dip/melt/#"], "rest": ["a/#", "b/#"]}))
    assert cfg.mqtt.instances == {"melt": ("gf/v1/demo-dip/melt/#",), "rest": ("a/#", "b/#")}
    assert cfg.mqtt.instance_names() == ("melt", "rest")


@pytest.mark.parametrize(
    ("keys", "key", "message"),
    [
        ({"instances": {"a": ["x/#"], "b": ["x/#"]}}, "mqtt.instances.b", "already taken by"),
        ({"instances": {"A": ["x/#"]}}, "mqtt.instances", "instance names of lower-case"),
        ({"instances": {"a": []}}, "mqtt.instances.a", "list of MQTT topic filters"),
        ({"instances": {"a": ["$share/g/x"]}}, "mqtt.instances.a", "list of MQTT topic filters"),
        ({"instances": {"a": ["x/#"]}, "subscribe": ["y/#"]}, "mqtt.instances", "not both"),
        ({"instances": {"a": ["x/#"]}, "share_group": "g"}, "mqtt.instances", "not both"),
        ({"share_group": "ingest"}, "mqtt.share_members", "must be declared"),
        ({"share_members": ["a"]}, "mqtt.share_members", "needs share_group"),
        ({"share_group": "g", "share_members": ["a", "a"]}, "mqtt.share_members", "distinct"),
        ({"tls": {"ca_file": "/nonexistent/ca.pem"}}, "mqtt.tls.ca_file", "cannot read"),
        ({"tls": {"server_name": "x", "verify": False}}, "mqtt.tls.verify", "unknown key"),
    ],
)
def test_a_bad_scale_out_or_tls_setting_names_the_key(keys, key, message):
    with pytest.raises(ConfigError) as err:
        _parse(_mqtt_with(**keys))
    text = str(err.value)
    assert text.startswith(key + ":"), text
    assert message in text, text


def test_tls_files_are_read_at_start(tmp_path):
    from greenfoundry.stack import make_certificates

    make_certificates(tmp_path)  # real PEM files: their contents are checked at start too
    ca, crt, key = tmp_path / "ca.crt", tmp_path / "client.crt", tmp_path / "client.key"
    tls = {"ca_file": str(ca), "cert_file": str(crt)}
    with pytest.raises(ConfigError, match=r"mqtt\.tls\.cert_file: give cert_file and key_file"):
        _parse(_mqtt_with(tls=tls))
    tls["key_file"] = str(key)
    tls["server_name"] = "broker.plant.example"
    cfg = _parse(_mqtt_with(tls=tls))
    assert cfg.mqtt.tls == plant.MqttTls(ca, crt, key, "broker.plant.example")


# ---- metrics: (the rollup engine's section)


def test_the_metrics_section_has_its_defaults():
    m = _parse(copy.deepcopy(EXAMPLE)).metrics
    assert (m.interval_s, m.lookback_h, m.min_valid_minutes, m.min_coverage) == (60, 48, 45, 0.9)
    assert [s for _, s in m.shifts] == ["00:00", "08:00", "16:00"]
    assert m.table6_rule == "max" and m.state_dir.name == "metrics"
    raw = copy.deepcopy(EXAMPLE)
    del raw["metrics"]
    assert _parse(raw).metrics.interval_s == 60  # every key optional


def test_metrics_take_named_shifts_rollovers_and_factors():
    raw = copy.deepcopy(EXAMPLE)
    raw["metrics"].update(
        shifts={"day": "06:00", "night": "18:00"},
        rollover_modulus={"if1": 1e6},
        factors={"standard_coal.coke": 0.95},
    )
    m = _parse(raw).metrics
    assert m.shifts == (("day", "06:00"), ("night", "18:00"))
    assert m.rollover_modulus == {"if1": 1e6} and m.factors == {"standard_coal.coke": 0.95}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("interval_s", 1, "between 5 and 3600"),
        ("lookback_h", "48h", "a whole number"),
        ("min_valid_minutes", 61, "between 1 and 60"),
        ("min_coverage", 1.5, "between 0 and 1"),
        ("table6_rule", "p95", "one of max, mean"),
        ("shifts", ["08:30", "20:30"], "whole hour"),
        ("shifts", ["08:00", "08:00"], "each start time once"),
        ("shifts", [], "a list of local start times"),
        ("o2_ref_pct", {"no-such-stack": 18}, "not a stack of this plant"),
        ("o2_ref_pct", {"melt-stack": 18}, "needs the stack's O2 readings"),
        ("rollover_modulus", {"if9": 1000}, "not a meter of this plant"),
        ("rollover_modulus", {"if1": 0}, "above 0"),
        ("factors", {"standard_coal.coke": "high"}, "not a number"),
        ("factors", {"coke_kgce_per_kg": 0.95}, "metrics.factors.coke_kgce_per_kg: unknown factor"),
        # 0.5306 is the CO2 factor of electricity in kgCO2/kWh: as kgce/kWh it is above the
        # plausible range of factors.yaml (0.1229 to 0.40), a value in the wrong unit.
        (
            "factors",
            {"standard_coal.electricity": 0.5306},
            "metrics.factors.standard_coal.electricity: 0.5306 kgce/kWh is not plausible",
        ),
        ("factors", {"co2.steam": 1.0}, "metrics.factors.co2.steam: unknown carrier"),
        ("factors", [1, 2], "a mapping"),
        ("state_dirr", "x", "unknown key"),
    ],
)
def test_a_bad_metrics_value_names_the_key(key, value, message):
    raw = copy.deepcopy(EXAMPLE)
    raw["metrics"][key] = value
    # The O2 correction needs the stack's O2 readings: without their route it is refused.
    raw["signals"] = [s for s in raw["signals"] if s["signal"] != "stack_o2_pct"]
    with pytest.raises(ConfigError, match=message) as exc:
        _parse(raw)
    assert "metrics." in str(exc.value)


def _with_users(users: dict, *, shared: bool = True) -> dict:
    raw = copy.deepcopy(EXAMPLE)
    raw["influxdb"]["users"] = users
    if not shared:
        for key in ("username", "password_env"):
            raw["influxdb"].pop(key, None)
    return raw


def test_each_influxdb_role_takes_its_own_user_or_the_shared_one():
    from greenfoundry.store import InfluxStore

    env = dict(ENV, GF_INGEST_PW="ingest-secret", GF_READER_PW="reader-secret")
    raw = _with_users(
        {
            "ingest": {"username": "gf-ingest", "password_env": "GF_INGEST_PW"},
            "reader": {"username": "gf-reader", "password_env": "GF_READER_PW"},
        }
    )
    cfg = plant.parse(raw, base=plant_file().parent, env=env)
    # The example's shared user is "greenfoundry" with GF_INFLUX_PASSWORD ("influx-secret").
    got = {
        role: (s.settings.username, s.settings.password)
        for role in ("ingest", "metrics", "reader", None)
        for s in [InfluxStore.from_config(cfg.influxdb, role=role)]
    }
    assert got == {
        "ingest": ("gf-ingest", "ingest-secret"),
        "metrics": ("greenfoundry", "influx-secret"),  # not listed: the shared user
        "reader": ("gf-reader", "reader-secret"),
        None: ("greenfoundry", "influx-secret"),
    }
    assert "ingest-secret" not in repr(cfg)


def test_without_a_shared_user_every_component_must_have_its_own():
    raw = _with_users(
        {"ingest": {"username": "gf-ingest", "password_env": "GF_MQTT_PASSWORD"}}, shared=False
    )
    cfg = _parse(raw)
    assert cfg.influxdb.user("ingest").username == "gf-ingest"
    with pytest.raises(ConfigError, match=r"^influxdb.users.reader: missing"):
        cfg.influxdb.user("reader")


@pytest.mark.parametrize(
    "users, key, message",
    [
        ({"writer": {"username": "x"}}, "influxdb.users.writer", "not a role"),
        ({"ingest": {"password_env": "GF_MQTT_PASSWORD"}}, "influxdb.users.ingest.username", ""),
        (
            {"ingest": {"username": "x", "password": "hunter2"}},
            "influxdb.users.ingest.password",
            "",
        ),
        ({"ingest": {"username": "x", "host": "y"}}, "influxdb.users.ingest.host", "unknown key"),
        ({"ingest": "gf-ingest"}, "influxdb.users.ingest", ""),
    ],
)
def test_a_bad_influxdb_user_names_the_key(users, key, message):
    with pytest.raises(ConfigError) as err:
        _parse(_with_users(users))
    assert str(err.value).startswith(key + ":"), str(err.value)
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)

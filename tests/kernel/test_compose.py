"""docker-compose.yml, config/compose/, .env.example and docker/mosquitto/*: the deployment.

There is no Docker engine here: `docker-compose config` (Debian's docker-compose 1.29, installed
by scripts/setup.sh) validates the file and its secret substitution from a .env file made from
.env.example. The commands the services run are parsed by the CLI's own parser and compared with
the local stack's; the config example is parsed by the plant config parser with each
container's own environment; the health checks of the broker, the ingest and the metrics are run
as written against the real local stack; the broker's config is compared with the one
`greenfoundry stack` writes, and the account file's writer is run.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from greenfoundry import plant as plant_config
from greenfoundry.cli import build_parser
from greenfoundry.dashboards import build as dashboards_build
from greenfoundry.errors import ConfigError
from greenfoundry.ingest.cli import INGEST_SECRETS, READER_SECRETS, TOOL_SECRETS, secret_keys
from greenfoundry.metrics.cli import RUN_SECRETS
from greenfoundry.stack import TOPIC_ROOT, LocalStack, free_port
from greenfoundry.store import line
from tests.plant import store, wait_for

REPO = Path(__file__).resolve().parents[2]
COMPOSE_PLANT = REPO / "config" / "compose" / "plant.yaml"
CONFIG_IN_CONTAINER = "/etc/greenfoundry/plant.yaml"
SECRETS = {
    "GF_PLANTS": "demo-dip other-plant",
    "GF_MQTT_ADMIN_PASSWORD": "mqtt-admin-secret",
    "GF_MQTT_INGEST_PASSWORD": "mqtt-ingest-secret",
    "GF_MQTT_ALERTS_PASSWORD": "mqtt-alerts-secret",
    "GF_MQTT_DEVICE_PASSWORD": "mqtt-device-secret",
    "GF_INFLUX_ADMIN_PASSWORD": "influx-admin-secret",
    "GF_INFLUX_INGEST_PASSWORD": "influx-ingest-secret",
    "GF_INFLUX_METRICS_PASSWORD": "influx-metrics-secret",
    "GF_INFLUX_READER_PASSWORD": "influx-reader-secret",
    "GF_GRAFANA_ADMIN_PASSWORD": "grafana-admin-secret",
    "GF_SMTP_PASSWORD": "smtp-secret",
    "GF_ALERT_WEBHOOK_URL": "https://hooks.example/webhook-url-secret",
    "GF_ALERT_WEBHOOK_AUTH": "Bearer webhook-auth-secret",
    "GF_WECOM_URL": "https://qyapi.example/?key=wecom-secret",
    "GF_DINGTALK_URL": "https://oapi.example/?access_token=dingtalk-secret",
    "GF_DINGTALK_SECRET": "SECdingtalk-signing-secret",
}
# The variables of .env.example that are settings, not secrets; every other one is a secret.
SETTINGS = {"GF_PLANTS", "GF_GRAFANA_BIND", "GF_GRAFANA_PORT", "GF_IMAGE_TAG"}
# Each long-running service: the secrets it is given, and no other (not even empty: each
# command resolves only its own role's secrets). The ingest reads as the reader for its health
# check; the metrics service's CLI views (alerts list, grade) do too.
OWN_SECRETS = {
    "ingest": {"GF_MQTT_INGEST_PASSWORD", "GF_INFLUX_INGEST_PASSWORD", "GF_INFLUX_READER_PASSWORD"},
    "metrics": {
        "GF_INFLUX_METRICS_PASSWORD",
        "GF_INFLUX_READER_PASSWORD",
        "GF_MQTT_ALERTS_PASSWORD",
    }
    | {
        "GF_SMTP_PASSWORD",
        "GF_ALERT_WEBHOOK_URL",
        "GF_ALERT_WEBHOOK_AUTH",
        "GF_WECOM_URL",
        "GF_DINGTALK_URL",
        "GF_DINGTALK_SECRET",
    },
}
# The secrets of the alert channels the config example does not turn on: optional.
CHANNEL_SECRETS = {
    "GF_SMTP_PASSWORD",
    "GF_ALERT_WEBHOOK_URL",
    "GF_ALERT_WEBHOOK_AUTH",
    "GF_WECOM_URL",
    "GF_DINGTALK_URL",
    "GF_DINGTALK_SECRET",
}
# The same programs as the local stack runs them: README.md's command table documents each
# with `--stack DIR`; the compose file runs them with the config's endpoints instead.
LOCAL_COMMANDS = {
    "ingest": "greenfoundry ingest --config FILE --stack DIR",
    "metrics": "greenfoundry metrics run --config FILE --stack DIR",
}
LOCAL_HEALTH = {
    "ingest": "greenfoundry status --config FILE --stack DIR --check",
    "metrics": "greenfoundry metrics status --config FILE --stack DIR --check",
}
# What each container's commands resolve (greenfoundry.ingest.cli.secret_keys): the service's
# own, its health check's, and for the metrics the CLI tools run beside it.
CONTAINER_SECRETS = {
    "ingest": INGEST_SECRETS + READER_SECRETS,
    "metrics": RUN_SECRETS + TOOL_SECRETS,
}
# The broker settings that make the delivery guarantee and least privilege; compose and the
# local stack must agree on each.
SHARED = (
    "allow_anonymous",
    "persistence",
    "autosave_interval",
    "autosave_on_changes",
    "max_queued_messages",
    "max_queued_bytes",
    "message_size_limit",
    "max_packet_size",
    "max_inflight_messages",
)

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose)",
)


def _env_example() -> list[str]:
    """The variable names of .env.example, in order; every value there is empty."""
    names = []
    for raw in (REPO / ".env.example").read_text().splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            name, sep, value = raw.partition("=")
            assert sep and value == "", f".env.example: {raw!r} is not an empty NAME="
            names.append(name)
    return names


def _compose(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess:
    """`docker-compose config` with a .env made from .env.example, `values` filled in (the
    others left empty, as a user who skips them would), and no GF_ variable of ours around."""
    text = (REPO / ".env.example").read_text()
    for name, value in values.items():
        text, n = re.subn(rf"^{name}=$", f"{name}={value}", text, flags=re.M)
        assert n == 1, f"{name} is not in .env.example"
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GF_")}
    return subprocess.run(
        [
            "docker-compose",
            "--project-directory",
            str(REPO),
            "--env-file",
            str(env_file),
            "-f",
            str(REPO / "docker-compose.yml"),
            "config",
        ],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> dict:
    proc = _compose(tmp_path_factory.mktemp("compose"), SECRETS)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["services"]


def _health_shell(service: dict) -> str:
    """The health check's shell line as the container's shell gets it (`$$` is compose's `$`)."""
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", test
    return test[1].replace("$$", "$")


def _health_argv(service: dict) -> list[str]:
    """The health check's command, run without a shell."""
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return list(test[1:])


def _load_as(path: Path, env: dict[str, str], secrets: tuple[str, ...]):
    """The plant config as a container's command loads it: only `secrets` resolved."""
    return plant_config.load(path, env=env, only=lambda c: secret_keys(c, secrets))


def _mounts(service: dict) -> dict[str, str]:
    """target → source of a service's volumes (`source:target[:mode]`)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        out[target] = source
    return out


@needs_compose
def test_docker_compose_config_accepts_a_full_env_file(services):
    assert set(services) == {"broker-init", "mosquitto", "influxdb", "ingest", "metrics", "grafana"}
    influx = services["influxdb"]["environment"]
    assert (influx["INFLUXDB_WRITE_USER"], influx["INFLUXDB_WRITE_USER_PASSWORD"]) == (
        "gf-ingest",
        "influx-ingest-secret",
    )
    assert (influx["INFLUXDB_USER"], influx["INFLUXDB_USER_PASSWORD"]) == (
        "gf-metrics",
        "influx-metrics-secret",
    )
    assert influx["INFLUXDB_READ_USER"] == "gf-reader"
    assert influx["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    # Each component is given its own secrets only: no other, not even empty.
    secret_names = set(_env_example()) - SETTINGS
    for name, own in OWN_SECRETS.items():
        env = services[name]["environment"]
        assert set(env) & secret_names == own, name
        assert all(env[k] == SECRETS[k] for k in own), name
    assert "GF_INFLUX_ADMIN_PASSWORD" not in json.dumps(
        {k: v for k, v in services.items() if k != "influxdb"}
    )
    mounts = _mounts(services["mosquitto"])
    assert mounts["/mosquitto/config/mosquitto.conf"].endswith("docker/mosquitto/mosquitto.conf")


@needs_compose
def test_the_optional_variables_may_be_left_empty(tmp_path):
    proc = _compose(tmp_path, {k: v for k, v in SECRETS.items() if k not in CHANNEL_SECRETS})
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert services["metrics"]["environment"]["GF_SMTP_PASSWORD"] == ""
    # The defaults of the empty settings: Grafana on the loopback only, the image tag latest.
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000/tcp"]
    assert services["ingest"]["image"] == "greenfoundry:latest"


@needs_compose
@pytest.mark.parametrize(
    "missing",
    [
        "GF_PLANTS",
        "GF_MQTT_INGEST_PASSWORD",
        "GF_MQTT_ALERTS_PASSWORD",
        "GF_INFLUX_METRICS_PASSWORD",
        "GF_INFLUX_READER_PASSWORD",
        "GF_GRAFANA_ADMIN_PASSWORD",
    ],
)
def test_docker_compose_config_names_a_missing_variable(tmp_path, missing):
    proc = _compose(tmp_path, {k: v for k, v in SECRETS.items() if k != missing})
    assert proc.returncode != 0
    assert f"set {missing} in .env" in proc.stderr


def test_env_example_lists_every_variable_the_compose_file_reads_and_no_other():
    names = _env_example()
    assert len(names) == len(set(names)), names
    text = (REPO / "docker-compose.yml").read_text()
    read = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert set(names) == read
    assert set(SECRETS) | SETTINGS == read
    # .env stays out of git and out of the image.
    assert ".env" in (REPO / ".gitignore").read_text().split()
    assert ".env" in (REPO / ".dockerignore").read_text().split()


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))
    else:
        yield path, node


def test_no_secret_literal_in_the_compose_file_or_the_config_example():
    secret_names = set(_env_example()) - SETTINGS
    substitution = re.compile(r"^\$\{(\w+)(:\?set \1 in \.env|:-)\}$")
    raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    checked = 0
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key in secret_names or re.search("PASSWORD|SECRET|TOKEN|_AUTH$", key):
                checked += 1
                m = substitution.match(str(value))
                assert m and m.group(1) in secret_names, (name, key)
    assert checked >= 20
    example = yaml.safe_load(COMPOSE_PLANT.read_text())
    env_keys = 0
    for path, value in _walk(example):
        assert path[-1] not in ("password", "token", "secret"), path
        if path[-1].endswith("_env"):
            env_keys += 1
            assert value in secret_names, (path, value)
    assert env_keys == 5  # three InfluxDB users, the ingest's and the alerts' MQTT accounts
    # Every secret of the alert channels the example shows commented out is a .env name too.
    for name in re.findall(r"\b(\w+)_env: (\w+)", COMPOSE_PLANT.read_text()):
        assert name[1] in secret_names, name


@needs_compose
def test_every_command_is_the_local_stacks_with_the_same_options(services):
    parser = build_parser()
    readme = (REPO / "README.md").read_text()
    for name, local in LOCAL_COMMANDS.items():
        command = services[name]["command"]
        assert command[0] == "greenfoundry", command
        ours = vars(parser.parse_args(command[1:]))
        theirs = vars(parser.parse_args(shlex.split(local)[1:]))
        assert ours.pop("config") == CONFIG_IN_CONTAINER
        assert ours.pop("stack") is None and theirs.pop("stack") == "DIR"
        theirs.pop("config")
        assert ours == theirs, name  # the same subcommand and function, no option of its own
        assert f"| `{local.replace(' --stack DIR', ' [--stack DIR]')}" in readme, local
    for name, local in LOCAL_HEALTH.items():
        argv = _health_argv(services[name])
        assert argv[0] == "greenfoundry", argv
        ours = vars(parser.parse_args(argv[1:]))
        theirs = vars(parser.parse_args(shlex.split(local)[1:]))
        assert ours.pop("config") == CONFIG_IN_CONTAINER
        assert ours.pop("stack") is None and theirs.pop("stack") == "DIR"
        theirs.pop("config")
        assert ours == theirs and ours["check"] is True, name
        # The README's row of the command, with --check among its options.
        head = local.replace(" --stack DIR --check", " [--stack DIR]")
        (row,) = [r for r in readme.splitlines() if r.startswith(f"| `{head}")]
        assert "[--check]" in row.split("` |")[0], row


@needs_compose
def test_health_checks_and_start_order(services):
    for name in ("mosquitto", "influxdb", "ingest", "metrics", "grafana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 1, name
    assert services["mosquitto"]["depends_on"] == {
        "broker-init": {"condition": "service_completed_successfully"}
    }
    healthy = {"condition": "service_healthy"}
    assert services["ingest"]["depends_on"] == {"mosquitto": healthy, "influxdb": healthy}
    assert services["metrics"]["depends_on"] == {"mosquitto": healthy, "influxdb": healthy}
    assert services["grafana"]["depends_on"] == {"influxdb": healthy}
    assert "curl" in services["influxdb"]["healthcheck"]["test"]
    assert services["influxdb"]["healthcheck"]["test"][-1].endswith(":8086/ping")


@needs_compose
def test_grafana_runs_the_dashboards_version_with_the_provisioning_read_only(services):
    grafana = services["grafana"]
    readme = (REPO / "dashboards" / "README.md").read_text()
    version = re.search(r"for \*\*Grafana (\d+\.\d+)\*\*", readme).group(1)
    image, tag = grafana["image"].split(":")
    assert image == "grafana/grafana-oss" and tag.startswith(f"{version}.")
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GF_GRAFANA_ADMIN_PASSWORD"]
    assert env["GF_INFLUX_READER_PASSWORD"] == SECRETS["GF_INFLUX_READER_PASSWORD"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000/tcp"]
    # Every ${VAR} of the data source file is set, and the user is the reader InfluxDB makes.
    datasource = REPO / "dashboards" / "provisioning" / "datasources" / "influxdb-1x.yaml"
    provisioned = [r for r in datasource.read_text().splitlines() if not r.startswith("#")]
    wanted = set(re.findall(r"\$\{(\w+)\}", "\n".join(provisioned)))
    assert wanted and wanted <= set(env), wanted - set(env)
    assert env["GF_INFLUX_READER_USER"] == services["influxdb"]["environment"]["INFLUXDB_READ_USER"]
    assert env["GF_INFLUX_DATABASE"] == services["influxdb"]["environment"]["INFLUXDB_DB"]
    assert urlsplit(env["GF_INFLUX_URL"]).hostname == "influxdb"
    provider = yaml.safe_load(
        (REPO / "dashboards" / "provisioning" / "dashboards" / "greenfoundry.yaml").read_text()
    )
    dashboards_path = provider["providers"][0]["options"]["path"]
    volumes = {str(v).split(":")[1]: str(v) for v in grafana["volumes"]}
    # The plant's dashboards are mounted one by one, every one the code generates for a plant,
    # and no park dashboard (it needs the park's reader, which a plant's Grafana lacks).
    mounted = {t.rsplit("/", 1)[1] for t in volumes if t.startswith(f"{dashboards_path}/")}
    assert mounted == set(dashboards_build.DASHBOARDS)
    for name in mounted:
        target = f"{dashboards_path}/{name}"
        assert volumes[target] == f"{REPO}/dashboards/json/{name}:{target}:ro"
    provider_file = REPO / "dashboards" / "provisioning" / "dashboards" / "greenfoundry.yaml"
    for kind, src in (("datasources", datasource), ("dashboards", provider_file)):
        target = f"/etc/grafana/provisioning/{kind}/{src.name}"
        assert volumes[target] == f"{src}:{target}:ro"
    assert "grafana-data" in volumes["/var/lib/grafana"]


def _container_env(services: dict, name: str) -> dict[str, str]:
    return {k: str(v) for k, v in services[name]["environment"].items()}


@needs_compose
def test_the_config_example_parses_in_each_container_and_its_paths_are_in_volumes(services):
    compose_raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    influx_env = services["influxdb"]["environment"]
    paths = {}
    for name in ("ingest", "metrics"):
        mounts = _mounts(services[name])
        assert mounts[CONFIG_IN_CONTAINER] == str(COMPOSE_PLANT)
        # The container's own environment is enough for its commands: the config names no
        # secret they use that it lacks.
        cfg = _load_as(COMPOSE_PLANT, _container_env(services, name), CONTAINER_SECRETS[name])
        volumes = [PurePosixPath(t) for t, s in mounts.items() if s in compose_raw["volumes"]]
        paths[name] = (cfg, volumes)
    cfg, ingest_volumes = paths["ingest"]
    for path in (cfg.ingest.spool_dir, cfg.ingest.deadletter_file):
        assert any(PurePosixPath(path).is_relative_to(v) for v in ingest_volumes), path
    cfg, metrics_volumes = paths["metrics"]
    journal = cfg.alerts.channels["journal"]
    for path in (cfg.metrics.state_dir, cfg.alerts.state_dir, cfg.report.dir, journal.path):
        assert any(PurePosixPath(path).is_relative_to(v) for v in metrics_volumes), path
    # A volume of its own for each kind of state, none shared between the two containers.
    assert len(set(map(str, metrics_volumes))) == 3 and not set(ingest_volumes) & set(
        metrics_volumes
    )
    # The image makes each mount point its user's (Docker copies owner and mode into a new
    # named volume from the image's folder).
    dockerfile = (REPO / "Dockerfile").read_text()
    made = re.search(r"for d in ([\w ]+); do mkdir -p \"/var/lib/greenfoundry/\$d\"", dockerfile)
    assert made, "the Dockerfile makes the volumes' folders"
    for v in ingest_volumes + metrics_volumes:
        assert v.parent == PurePosixPath("/var/lib/greenfoundry") and v.name in made.group(1)
    # Endpoints are the compose services; the users are the ones InfluxDB and broker-init make.
    assert cfg.mqtt.host == "mosquitto" and cfg.mqtt.port == 1883
    assert cfg.mqtt.username == "gf-ingest" and cfg.mqtt.topic_root == TOPIC_ROOT
    assert urlsplit(cfg.influxdb.url).hostname == "influxdb"
    assert cfg.influxdb.database == influx_env["INFLUXDB_DB"]
    assert {r: cfg.influxdb.users[r].username for r in ("ingest", "metrics", "reader")} == {
        "ingest": influx_env["INFLUXDB_WRITE_USER"],
        "metrics": influx_env["INFLUXDB_USER"],
        "reader": influx_env["INFLUXDB_READ_USER"],
    }
    broker = cfg.alerts.channels["broker"]
    assert (broker.type, broker.username) == ("mqtt", "gf-alerts")
    assert cfg.plant.id in SECRETS["GF_PLANTS"].split()


EVERY_CHANNEL = ("log", "journal", "broker", "mail", "ops-hook", "wecom-ops", "ding-ops")


def _with_every_channel(tmp_path: Path) -> Path:
    """The config example with the channels it shows commented out turned on: declared, and
    named by the default rules."""
    text = COMPOSE_PLANT.read_text()
    start, end = text.index("    # mail:"), text.index("\nreport:")
    block = "\n".join(r.replace("    # ", "    ", 1) for r in text[start:end].splitlines())
    text = text[:start] + block + text[end:]
    text, n = re.subn(
        r"default_channels: \[log, journal, broker\]",
        f"default_channels: [{', '.join(EVERY_CHANNEL)}]",
        text,
    )
    assert n == 1
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    return path


@needs_compose
def test_the_example_with_every_channel_turned_on_starts_in_each_container(services, tmp_path):
    path = _with_every_channel(tmp_path)
    for name in ("ingest", "metrics"):
        cfg = _load_as(path, _container_env(services, name), CONTAINER_SECRETS[name])
        assert set(cfg.alerts.channels) == set(EVERY_CHANNEL)
    # The ingest holds none of the channels' secrets, the metrics service each one.
    assert not CHANNEL_SECRETS & set(services["ingest"]["environment"])
    cfg = _load_as(path, _container_env(services, "metrics"), RUN_SECRETS)
    assert cfg.alerts.channels["ding-ops"]._url.value == SECRETS["GF_DINGTALK_URL"]
    # A channel turned on with its variable left empty stops the metrics service at start,
    # naming the key.
    env = {**_container_env(services, "metrics"), "GF_DINGTALK_URL": ""}
    with pytest.raises(ConfigError, match=r"ding-ops\.url_env"):
        _load_as(path, env, RUN_SECRETS)


def _health_config(tmp_path: Path, stack, plant_id: str) -> tuple[Path, dict[str, str]]:
    """config/compose/plant.yaml pointed at the local stack (its InfluxDB, its users' names),
    the container paths moved under tmp_path, and the env the containers get (the stack's
    passwords for the roles, the rest as compose sets them)."""
    raw = yaml.safe_load(COMPOSE_PLANT.read_text())
    raw = copy.deepcopy(raw)
    raw["plant"]["id"] = plant_id
    raw["influxdb"]["url"] = stack.influx_url
    raw["influxdb"]["database"] = stack.influx_database
    for role in ("ingest", "metrics", "reader"):
        raw["influxdb"]["users"][role]["username"] = stack.influx_account(role).username
    raw["ingest"]["spool_dir"] = str(tmp_path / "ingest" / "spool")
    raw["ingest"]["deadletter_file"] = str(tmp_path / "ingest" / "deadletter.jsonl")
    raw["metrics"].update(state_dir=str(tmp_path / "metrics"))
    raw["alerts"]["state_dir"] = str(tmp_path / "alerts")
    raw["alerts"]["channels"]["journal"]["path"] = str(tmp_path / "alerts" / "journal.jsonl")
    raw["report"]["dir"] = str(tmp_path / "reports")
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    env = {name: "" for name in _env_example()}
    env.update(
        GF_INFLUX_INGEST_PASSWORD=stack.influx_account("ingest").password,
        GF_INFLUX_METRICS_PASSWORD=stack.influx_account("metrics").password,
        GF_INFLUX_READER_PASSWORD=stack.influx_account("reader").password,
    )
    return path, env


def _run_health(argv: list[str], config: Path, env: dict[str, str]) -> tuple[int, str]:
    """The check's exit status and its output, run as the container runs it: no shell, the
    container's environment only."""
    assert argv.count(CONFIG_IN_CONTAINER) == 1, argv
    argv = [str(config) if a == CONFIG_IN_CONTAINER else a for a in argv]
    bin_dir = str(Path(sys.executable).parent)  # where the venv's `greenfoundry` script is
    proc = subprocess.run(
        argv,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(config.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _one_line(out: str) -> str:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.servers
@needs_compose
def test_the_ingest_health_check_fails_without_fresh_self_metrics(services, stack, tmp_path):
    plant_id = "compose-health-ingest"
    config, env = _health_config(tmp_path, stack, plant_id)
    argv = _health_argv(services["ingest"])
    env = {k: v for k, v in env.items() if k in services["ingest"]["environment"]}
    rc, out = _run_health(argv, config, env)
    assert rc == 1 and "no self-metrics" in _one_line(out), out  # nothing written yet
    st = store(stack)
    # The ingest's self-metrics carry its client id as the instance (no instances declared).
    client_id = yaml.safe_load(config.read_text())["mqtt"]["client_id"]
    tags = {"plant": plant_id, "instance": client_id}
    fields = {"received": 1, "written": 1}  # integers, as the ingest writes them
    # self_metrics_interval_s is 10: a point 31 s old is older than three intervals.
    st.write_lines([line("gf_ingest", tags, fields, time.time_ns() - 31 * 10**9)])
    rc, out = _run_health(argv, config, env)
    assert rc == 1 and _one_line(out).startswith("unhealthy: ") and "STALE" in out, out
    # Another instance's fresh point (an old client id) does not make this one healthy.
    other = {"plant": plant_id, "instance": "gf-ingest-renamed"}
    st.write_lines([line("gf_ingest", other, fields, time.time_ns())])
    rc, out = _run_health(argv, config, env)
    assert rc == 1 and "STALE" in out, out
    st.write_lines([line("gf_ingest", tags, fields, time.time_ns())])
    rc, out = _run_health(argv, config, env)
    assert rc == 0 and _one_line(out).startswith("ok: ") and client_id in out, out
    # InfluxDB refusing the reader (a wrong password): the check fails, in one line, and the
    # password is not in it.
    rc, out = _run_health(argv, config, {**env, "GF_INFLUX_READER_PASSWORD": "wrong-secret"})
    assert rc == 1 and "refused" in _one_line(out) and "wrong-secret" not in out, out
    # InfluxDB not answering (nothing listens on the port).
    raw = yaml.safe_load(config.read_text())
    raw["influxdb"]["url"] = f"http://127.0.0.1:{free_port()}"
    raw["influxdb"]["timeout_s"] = 2
    config.write_text(yaml.safe_dump(raw))
    rc, out = _run_health(argv, config, env)
    assert rc == 1 and "does not answer" in _one_line(out), out


@pytest.mark.servers
@needs_compose
def test_the_metrics_health_check_follows_the_engines_last_run(services, stack, tmp_path):
    from greenfoundry.metrics.engine import Engine
    from greenfoundry.metrics.state import State

    plant_id = "compose-health-metrics"
    config, env = _health_config(tmp_path, stack, plant_id)
    env = {k: v for k, v in env.items() if k in services["metrics"]["environment"]}
    argv = _health_argv(services["metrics"])
    # The check reads no secret: it runs without any.
    rc, out = _run_health(argv, config, {})
    assert rc == 1 and "no run yet" in _one_line(out), out
    cfg = _load_as(config, env, RUN_SECRETS)
    state = State(cfg.metrics.state_dir)
    # A run an hour ago (the engine's clock): older than 3 × interval_s (60 s), STALE.
    engine = Engine(cfg, state=state, clock=lambda: time.time() - 3600)
    engine.run_once()
    rc, out = _run_health(argv, config, {})
    assert rc == 1 and "STALE" in _one_line(out), out
    engine.run_once(now=time.time())
    rc, out = _run_health(argv, config, {})
    assert rc == 0 and _one_line(out).startswith("ok: ") and "last run" in out, out
    engine.close()


@pytest.mark.servers
@needs_compose
def test_the_broker_health_check_reads_sys_as_the_ingest(services, stack):
    shell = _health_shell(services["mosquitto"])
    account = stack.mqtt_account("ingest")
    assert "-p 1883" in shell and f"-u {account.username}" in shell
    shell = shell.replace("-p 1883", f"-p {stack.mqtt_port}")

    def run(password: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["sh", "-c", shell],
            env={"PATH": "/usr/bin:/bin", "GF_MQTT_INGEST_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=30,
        )

    ok = run(account.password)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("seconds"), ok.stdout + ok.stderr
    assert run("wrong").returncode != 0


def _settings(text: str) -> dict[str, str]:
    out = {}
    for raw in text.splitlines():
        raw = raw.strip()
        if raw and not raw.startswith("#"):
            key, _, value = raw.partition(" ")
            out.setdefault(key, value)
    return out


def test_the_compose_broker_has_the_local_stacks_limits_and_plugin(tmp_path):
    compose = _settings((REPO / "docker" / "mosquitto" / "mosquitto.conf").read_text())
    local = _settings(LocalStack(tmp_path / "stack").mosquitto_conf())
    assert {k: compose.get(k) for k in SHARED} == {k: local.get(k) for k in SHARED}
    assert Path(compose["plugin"]).name == Path(local["plugin"]).name
    assert compose["allow_anonymous"] == "false"
    # The ingest's payload limit of the config example fits the broker's packet cap.
    cfg = plant_config.load(COMPOSE_PLANT, resolve_secrets=False)
    assert int(compose["max_packet_size"]) == cfg.ingest.max_payload_bytes + 16 * 1024


def test_the_compose_account_file_binds_each_device_to_its_plant(tmp_path):
    target = tmp_path / "config" / "dynsec.json"
    env = {
        **os.environ,
        **SECRETS,
        "GF_DYNSEC_FILE": str(target),
        "GF_DYNSEC_UID": str(os.getuid()),
    }
    script = REPO / "docker" / "mosquitto" / "init_dynsec.py"
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not any(v in proc.stdout + proc.stderr for v in SECRETS.values() if "secret" in v)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    config = json.loads(target.read_text())
    clients = {c["username"]: c for c in config["clients"]}
    assert set(clients) == {"gf-admin", "gf-ingest", "gf-alerts", "dev-demo-dip", "dev-other-plant"}
    assert clients["dev-demo-dip"]["clientid"] == "dev-demo-dip"
    assert "clientid" not in clients["gf-ingest"]
    assert [r["rolename"] for r in clients["gf-alerts"]["roles"]] == ["alerts"]
    roles = {r["rolename"]: r["acls"] for r in config["roles"]}
    # The plugin checks a role's ACLs from the highest priority down; the first that matches
    # decides: the deny of the plant's `_alerts` (priority 1) before the allow of the plant (0).
    acls = sorted(roles["plant-demo-dip"], key=lambda a: -a["priority"])
    assert [(a["acltype"], a["topic"], a["allow"]) for a in acls] == [
        ("publishClientSend", "gf/v1/demo-dip/_alerts/#", False),
        ("publishClientSend", "gf/v1/demo-dip/#", True),
    ]
    assert {(a["acltype"], a["topic"]) for a in roles["alerts"] if a["allow"]} == {
        ("publishClientSend", "gf/v1/+/_alerts/#"),
        ("subscribePattern", "gf/v1/+/_alerts/#"),
        ("publishClientReceive", "gf/v1/+/_alerts/#"),
    }
    assert "operator" not in roles
    assert not any(a["acltype"] == "publishClientSend" for a in roles["ingest"])
    assert config["defaultACLAccess"]["subscribe"] is False
    # The accounts the config example uses are the ones written here.
    cfg = plant_config.load(COMPOSE_PLANT, resolve_secrets=False)
    assert cfg.mqtt.username in clients and cfg.alerts.channels["broker"].username in clients
    # Run again: the broker owns the file now; it is left as it is.
    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and json.loads(target.read_text()) == config


def _acl_sets(config: dict) -> dict[str, set]:
    return {
        r["rolename"]: {(a["acltype"], a["topic"], a["priority"], a["allow"]) for a in r["acls"]}
        for r in config["roles"]
    }


@pytest.mark.servers
def test_the_compose_broker_has_the_acl_the_local_stacks_broker_holds(stack, tmp_path):
    """The roles and accounts of the file broker-init writes equal what the running local
    stack's Mosquitto holds (its plugin's own file) once a device of the plant has connected,
    but for the operator account, which compose does not make."""
    plant_id = "compose-acl"
    stack.device_account(plant_id)  # the local stack makes the plant's role at the broker
    local_file = stack.dir / "mosquitto" / "dynsec.json"

    def local() -> dict:
        return json.loads(local_file.read_text())

    wait_for(lambda: f"plant-{plant_id}" in _acl_sets(local()), what="the plant's role saved")
    target = tmp_path / "dynsec.json"
    env = {**os.environ, **SECRETS, "GF_PLANTS": plant_id, "GF_DYNSEC_FILE": str(target)}
    env["GF_DYNSEC_UID"] = str(os.getuid())
    script = REPO / "docker" / "mosquitto" / "init_dynsec.py"
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ours, theirs = json.loads(target.read_text()), local()
    mine, held = _acl_sets(ours), _acl_sets(theirs)
    shared = {"admin", "ingest", "alerts", f"plant-{plant_id}"}
    assert set(mine) == shared and shared | {"operator"} <= set(held)
    assert {r: mine[r] for r in shared} == {r: held[r] for r in shared}
    assert ours["defaultACLAccess"] == theirs["defaultACLAccess"]

    def accounts(config: dict, names: set) -> dict:
        return {
            c["username"]: (c.get("clientid"), [r["rolename"] for r in c["roles"]])
            for c in config["clients"]
            if c["username"] in names
        }

    names = {"gf-admin", "gf-ingest", "gf-alerts", f"dev-{plant_id}"}
    assert accounts(ours, names) == accounts(theirs, names)
    assert len(accounts(ours, names)) == 4

"""docker-compose.yml and docker/mosquitto/*: the local stack's accounts, ACL and limits.

There is no Docker engine here: `docker-compose config` (Debian's docker-compose, installed by
scripts/setup.sh) validates the file and its secret substitution; the broker's config is
compared with the one `greenfoundry stack` writes, and the account file's writer is run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenfoundry.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]
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


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GF_")}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(REPO), "-f", "docker-compose.yml", "config"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_compose
def test_docker_compose_config_accepts_the_file_with_its_secrets():
    proc = _compose(SECRETS)
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert set(services) == {"broker-init", "mosquitto", "influxdb", "ingest"}
    influx = services["influxdb"]["environment"]
    assert (influx["INFLUXDB_WRITE_USER"], influx["INFLUXDB_WRITE_USER_PASSWORD"]) == (
        "gf-ingest",
        "influx-ingest-secret",
    )
    assert influx["INFLUXDB_READ_USER"] == "gf-reader"
    assert influx["INFLUXDB_USER"] == "gf-metrics"
    # The ingest gets its own secrets only: not the admin's, not the metrics'.
    ingest_env = services["ingest"]["environment"]
    assert set(ingest_env) == {
        "GF_MQTT_PASSWORD",
        "GF_INFLUX_INGEST_PASSWORD",
        "GF_INFLUX_READER_PASSWORD",
    }
    assert ingest_env["GF_MQTT_PASSWORD"] == "mqtt-ingest-secret"
    mounts = [str(v) for v in services["mosquitto"]["volumes"]]
    assert any("docker/mosquitto/mosquitto.conf" in m for m in mounts), mounts


@needs_compose
@pytest.mark.parametrize(
    "missing", ["GF_MQTT_INGEST_PASSWORD", "GF_MQTT_ALERTS_PASSWORD", "GF_INFLUX_READER_PASSWORD"]
)
def test_docker_compose_config_names_a_missing_secret(missing):
    proc = _compose({k: v for k, v in SECRETS.items() if k != missing})
    assert proc.returncode != 0
    assert f"set {missing} in .env" in proc.stderr


def _settings(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, value)
    return out


def test_the_compose_broker_has_the_local_stacks_limits_and_plugin(tmp_path):
    compose = _settings((REPO / "docker" / "mosquitto" / "mosquitto.conf").read_text())
    local = _settings(LocalStack(tmp_path / "stack").mosquitto_conf())
    assert {k: compose.get(k) for k in SHARED} == {k: local.get(k) for k in SHARED}
    assert Path(compose["plugin"]).name == Path(local["plugin"]).name
    assert compose["allow_anonymous"] == "false"


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
    # Run again: the broker owns the file now; it is left as it is.
    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and json.loads(target.read_text()) == config

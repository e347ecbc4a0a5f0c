"""Each command resolves only the secrets of its own role (greenfoundry.ingest.cli.secret_keys,
greenfoundry.plant.ScopedEnv): a secret another component uses may be unset where this one
runs, a secret this one needs stops it at start naming the key, and no secret reaches its
output. Against the real stack, with config/compose/plant.yaml (every role its own user, and
alert channels whose secrets only the metrics service needs)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenfoundry import plant as plant_config
from greenfoundry.cli import main
from greenfoundry.errors import ConfigError
from greenfoundry.ingest.cli import INGEST_SECRETS, dispatched_channels, secret_keys
from greenfoundry.metrics.cli import RUN_SECRETS
from tests.plant import wait_for

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]
COMPOSE_PLANT = REPO / "config" / "compose" / "plant.yaml"
# Every variable the config below names, and the values no command may print.
ROLE_VARS = {
    "ingest": ("GF_MQTT_INGEST_PASSWORD", "GF_INFLUX_INGEST_PASSWORD"),
    "reader": ("GF_INFLUX_READER_PASSWORD",),
    "metrics": ("GF_INFLUX_METRICS_PASSWORD", "GF_MQTT_ALERTS_PASSWORD", "GF_ALERT_WEBHOOK_URL"),
}
UNUSED_CHANNEL_VAR = "GF_SMTP_PASSWORD"  # of a channel no rule sends to


def _config(tmp_path: Path, stack, plant_id: str) -> tuple[Path, dict[str, str]]:
    """config/compose/plant.yaml on the local stack, its paths under tmp_path, with a webhook
    channel the default rules send to and a mail channel nothing sends to; and every secret's
    variable with its value."""
    raw = copy.deepcopy(yaml.safe_load(COMPOSE_PLANT.read_text()))
    raw["plant"]["id"] = plant_id
    raw["mqtt"].update(
        host=stack.mqtt_host,
        port=stack.mqtt_port,
        username=stack.mqtt_account("ingest").username,
        client_id=f"gf-ingest-{plant_id}",
    )
    raw["influxdb"].update(url=stack.influx_url, database=stack.influx_database)
    for role in ("ingest", "metrics", "reader"):
        raw["influxdb"]["users"][role]["username"] = stack.influx_account(role).username
    raw["ingest"].update(
        spool_dir=str(tmp_path / "spool"),
        deadletter_file=str(tmp_path / "deadletter.jsonl"),
        self_metrics_interval_s=0.5,
    )
    raw["metrics"]["state_dir"] = str(tmp_path / "metrics")
    raw["alerts"]["state_dir"] = str(tmp_path / "alerts")
    raw["alerts"]["channels"]["journal"]["path"] = str(tmp_path / "alerts" / "journal.jsonl")
    raw["alerts"]["channels"]["broker"]["username"] = stack.mqtt_account("alerts").username
    raw["alerts"]["channels"]["ops-hook"] = {"type": "webhook", "url_env": "GF_ALERT_WEBHOOK_URL"}
    raw["alerts"]["channels"]["mail"] = {
        "type": "smtp",
        "host": "smtp.plant.example",
        "username": "gf-alerts@plant.example",
        "password_env": UNUSED_CHANNEL_VAR,
        "from": "gf-alerts@plant.example",
        "to": ["ehs@plant.example"],
    }
    raw["alerts"]["default_channels"] = ["log", "journal", "broker", "ops-hook"]
    raw["report"]["dir"] = str(tmp_path / "reports")
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    env = {
        "GF_MQTT_INGEST_PASSWORD": stack.mqtt_account("ingest").password,
        "GF_INFLUX_INGEST_PASSWORD": stack.influx_account("ingest").password,
        "GF_INFLUX_READER_PASSWORD": stack.influx_account("reader").password,
        "GF_INFLUX_METRICS_PASSWORD": stack.influx_account("metrics").password,
        "GF_MQTT_ALERTS_PASSWORD": stack.mqtt_account("alerts").password,
        "GF_ALERT_WEBHOOK_URL": "https://hooks.plant.example/gf?token=webhook-token-e10",
        UNUSED_CHANNEL_VAR: "smtp-password-e10",
    }
    return path, env


def _only(env: dict[str, str], *roles: str) -> dict[str, str]:
    """The environment of a container of `roles`: those roles' variables and no other GF_."""
    names = {n for r in roles for n in ROLE_VARS[r]}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GF_")}
    return {**clean, **{k: env[k] for k in names}}


def _leaks(text: str, env: dict[str, str]) -> list[str]:
    return [name for name, value in env.items() if value in text]


def test_the_ingest_and_the_metrics_run_with_only_their_own_secrets(stack, tmp_path):
    """Both services started as their containers start them, each with its own role's
    variables only (the metrics service's the webhook URL its rules send to, not the mail
    channel's password nobody sends to), both health checks with theirs (the ingest's reads
    as the reader, the metrics' reads no secret); debug logging, the most they ever write,
    and no secret in any of it."""
    plant_id = "e10-role-run"
    path, env = _config(tmp_path, stack, plant_id)
    cli = str(Path(sys.executable).parent / "greenfoundry")

    def start(*argv: str, roles: tuple[str, ...]) -> subprocess.Popen:
        return subprocess.Popen(
            [cli, "--log-level", "DEBUG", *argv, "--config", str(path)],
            env=_only(env, *roles),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def healthy(proc: subprocess.Popen, *argv: str, roles: tuple[str, ...]) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{argv} exited: {proc.stdout.read()}")
        check = subprocess.run(
            [cli, *argv, "--check", "--config", str(path)],
            env=_only(env, *roles),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not _leaks(check.stdout + check.stderr, env)
        assert check.stdout.startswith(("ok: ", "unhealthy: ")), check
        return check.returncode == 0

    procs = [start("ingest", roles=("ingest",)), start("metrics", "run", roles=("metrics",))]
    try:
        wait_for(lambda: healthy(procs[0], "status", roles=("reader",)), 60, "a healthy ingest")
        wait_for(lambda: healthy(procs[1], "metrics", "status", roles=()), 90, "a metrics run")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        outs = [proc.communicate(timeout=120)[0] for proc in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out
        assert "DEBUG" in out and not _leaks(out, env), _leaks(out, env)


@pytest.mark.parametrize(
    ("argv", "roles", "unset", "key"),
    [
        (["ingest"], ("ingest",), "GF_INFLUX_INGEST_PASSWORD", "influxdb.users.ingest.password_env"),
        (["ingest"], ("ingest",), "GF_MQTT_INGEST_PASSWORD", "mqtt.password_env"),
        (["status"], ("reader",), "GF_INFLUX_READER_PASSWORD", "influxdb.users.reader.password_env"),
        (["metrics", "backfill", "--from", "2026-11-01", "--to", "2026-11-02"], ("metrics",),
         "GF_INFLUX_METRICS_PASSWORD", "influxdb.users.metrics.password_env"),
    ],
)  # fmt: skip
def test_a_secret_the_command_needs_unset_stops_it_naming_the_key(
    stack, tmp_path, monkeypatch, capsys, argv, roles, unset, key
):
    path, env = _config(tmp_path, stack, "e10-role-missing")
    for name in [k for k in os.environ if k.startswith("GF_")]:
        monkeypatch.delenv(name)
    for name, value in _only(env, *roles).items():
        if name.startswith("GF_") and name != unset:
            monkeypatch.setenv(name, value)
    assert main([*argv, "--config", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    (message,) = out.err.strip().splitlines()
    assert message.startswith("error: ") and f"{key}: environment variable {unset} is not set" in (
        message
    ), message
    assert not _leaks(message, env)


def test_metrics_run_resolves_the_metrics_user_and_the_channels_it_sends_to(stack, tmp_path):
    path, env = _config(tmp_path, stack, "e10-role-metrics")
    unresolved = plant_config.load(path, resolve_secrets=False)
    # By hand: the default rules send to default_channels, the monthly report to `journal`.
    assert dispatched_channels(unresolved) == ("broker", "journal", "log", "ops-hook")
    only = {k: v for k, v in env.items() if k in ROLE_VARS["metrics"]}
    cfg = plant_config.load(path, env=only, only=lambda c: secret_keys(c, RUN_SECRETS))
    assert cfg.influxdb.users["metrics"].password.value == env["GF_INFLUX_METRICS_PASSWORD"]
    assert cfg.alerts.channels["ops-hook"]._url == env["GF_ALERT_WEBHOOK_URL"]
    # Not this command's: the ingest's and the reader's users, the MQTT account of the
    # ingest, the mail channel no rule sends to.
    for role in ("ingest", "reader"):
        assert cfg.influxdb.users[role].password is None
    assert cfg.mqtt.password is None
    assert cfg.alerts.channels["mail"]._password is None
    # A channel a rule sends to, unset: the start stops naming its key.
    del only["GF_ALERT_WEBHOOK_URL"]
    with pytest.raises(ConfigError, match=r"alerts\.channels\.ops-hook\.url_env: .*not set"):
        plant_config.load(path, env=only, only=lambda c: secret_keys(c, RUN_SECRETS))
    # The ingest's scope resolves neither the metrics' user nor any channel.
    cfg = plant_config.load(
        path, env=_only(env, "ingest"), only=lambda c: secret_keys(c, INGEST_SECRETS)
    )
    assert cfg.influxdb.users["ingest"].password.value == env["GF_INFLUX_INGEST_PASSWORD"]
    assert cfg.influxdb.users["metrics"].password is None
    assert cfg.alerts.channels["ops-hook"]._url is None

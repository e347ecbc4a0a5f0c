"""MQTT over TLS against a real Mosquitto TLS listener with certificates the stack makes
(openssl: a CA, a server certificate for 127.0.0.1 and localhost, a client certificate).

The ingest is configured as a deployment would be (`mqtt.tls` in the plant config, secrets from
files) and gets readings through; with another CA it stops at start with one clear line.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.ingest.service import Ingest
from greenfoundry.stack import LocalStack, make_certificates
from tests.plant import EXAMPLE, Publisher, count, energy_stream, energy_values, store, wait_for

pytestmark = pytest.mark.servers

T0_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z


@pytest.fixture
def tls_stack(tmp_path):
    stack = LocalStack(tmp_path / "stack", tls=True)
    stack.up()
    yield stack
    stack.down()


def _secret_file(path, value: str) -> str:
    path.write_text(value)
    path.chmod(0o600)
    return str(path)


def _config(tmp_path, info, plant_id: str, ca_file) -> tuple:
    """A plant config file reaching the stack's TLS listener with the ingest's account and a
    client certificate; InfluxDB as the ingest's and the reader's users. No `--stack`."""
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = plant_id
    ingest = info.mqtt_account("ingest")
    raw["mqtt"] = {
        "host": "127.0.0.1",
        "port": info.mqtt_tls_port,
        "username": ingest.username,
        "password_file": _secret_file(tmp_path / "mqtt.pw", ingest.password),
        "client_id": f"gf-ingest-{plant_id}",
        "topic_root": "gf/v1",
        "tls": {
            "ca_file": str(ca_file),
            "cert_file": str(info.tls_dir / "client.crt"),
            "key_file": str(info.tls_dir / "client.key"),
            "server_name": "localhost",  # the server certificate's DNS name, not the IP
        },
    }
    users = {}
    for role in ("ingest", "metrics", "reader"):
        acc = info.influx_account(role)
        users[role] = {
            "username": acc.username,
            "password_file": _secret_file(tmp_path / f"influx-{role}.pw", acc.password),
        }
    raw["influxdb"] = {"url": info.influx_url, "database": info.influx_database, "users": users}
    raw["ingest"].update({"spool_dir": "spool", "deadletter_file": "deadletter.jsonl"})
    path = tmp_path / f"{plant_id}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, plant.load(path, env={})


def test_the_ingest_gets_readings_over_tls_with_a_client_certificate(tmp_path, tls_stack):
    info = tls_stack.info
    assert info.mqtt_tls_port and info.mqtt_tls_port != info.mqtt_port
    _, cfg = _config(tmp_path, info, "tls-ok", info.tls_dir / "ca.crt")
    svc = Ingest(cfg)
    svc.start()
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    pub = Publisher(info, "tls-ok-dev", plant="tls-ok")  # the device on the plain listener
    stream = energy_stream(T0_MS, 300)
    try:
        assert svc.wait_connected(10)
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        st = store(info)
        wait_for(lambda: count(st, "furnace_energy_kwh", "tls-ok") >= 300, 30, "300 readings")
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "tls-ok") == [(ms * 1_000_000, v) for ms, v, _ in stream]


def test_a_broker_certificate_from_another_ca_stops_the_ingest_with_one_line(tmp_path, tls_stack):
    info = tls_stack.info
    other = tmp_path / "other-ca"
    make_certificates(other)  # a CA that did not sign the broker's certificate
    path, _ = _config(tmp_path, info, "tls-bad", other / "ca.crt")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "greenfoundry", "ingest", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the ingest kept retrying a TLS handshake that can never succeed")
    assert proc.returncode != 0
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert "certificate verify failed" in errors[0]
    assert proc.stderr.strip().splitlines()[-1] == errors[0]

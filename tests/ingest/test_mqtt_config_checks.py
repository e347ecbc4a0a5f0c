"""MQTT settings that would fail only once the ingest runs are refused at start, naming the key.

Found in the review of the gmqtt network path (2026-12-01), for both clients: a `mqtt.tls.ca_file`
that can be read but holds no certificate passed the config check (only readability was
checked) and `greenfoundry.mqtt.tls_context` then raised `ssl.SSLError` out of the Ingest's
constructor, a 27-line traceback naming no key; a client key that is not the certificate's did
the same. And gmqtt reads a large message in time that grows with the square of its size (a
32 MiB message: 2.35 s of CPU against paho's 0.29 s), so with `mqtt.client: gmqtt` the payload
limit is capped (`plant.GMQTT_MAX_PAYLOAD_BYTES`).
"""

from __future__ import annotations

import pytest
import yaml

from greenfoundry import plant
from greenfoundry.errors import ConfigError
from greenfoundry.stack import make_certificates
from tests.plant import plant_config

pytestmark = pytest.mark.servers
ENV = {"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x"}


def _with(cfg, *, mqtt: dict | None = None, ingest: dict | None = None):
    raw = yaml.safe_load(cfg.path.read_text())
    raw["mqtt"].update(mqtt or {})
    raw.setdefault("ingest", {}).update(ingest or {})
    cfg.path.write_text(yaml.safe_dump(raw))
    return cfg.path


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    make_certificates(d)
    return d


@pytest.mark.parametrize("client", ["paho", "gmqtt"])
def test_a_ca_file_that_is_not_a_certificate_is_refused_naming_the_key(tmp_path, stack, client):
    cfg = plant_config(tmp_path, stack, f"rv-tls-{client}")
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("this is not a PEM certificate\n")
    path = _with(cfg, mqtt={"client": client, "tls": {"ca_file": str(not_a_cert)}})
    with pytest.raises(ConfigError) as err:
        plant.load(path, env=ENV)
    assert "mqtt.tls.ca_file" in str(err.value) and "no usable PEM certificate" in str(err.value)


def test_a_key_that_is_not_the_certificates_is_refused_naming_the_key(tmp_path, stack, certs):
    cfg = plant_config(tmp_path, stack, "rv-tls-key")
    # The server's key with the client's certificate: both real PEM files, not a pair.
    tls = {"ca_file": str(certs / "ca.crt"), "cert_file": str(certs / "client.crt"),
           "key_file": str(certs / "server.key")}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        plant.load(_with(cfg, mqtt={"tls": tls}), env=ENV)
    assert "mqtt.tls.cert_file" in str(err.value) and "its own" in str(err.value)
    # The matching pair loads.
    tls["key_file"] = str(certs / "client.key")
    assert plant.load(_with(cfg, mqtt={"tls": tls}), env=ENV).mqtt.tls.cert_file is not None


def test_gmqtt_takes_payloads_up_to_its_cap_and_paho_beyond(tmp_path, stack):
    cap = plant.GMQTT_MAX_PAYLOAD_BYTES
    cfg = plant_config(tmp_path, stack, "rv-gmqtt-cap")
    path = _with(cfg, mqtt={"client": "gmqtt"}, ingest={"max_payload_bytes": cap})
    assert plant.load(path, env=ENV).ingest.max_payload_bytes == cap
    path = _with(cfg, ingest={"max_payload_bytes": cap + 1})
    with pytest.raises(ConfigError) as err:
        plant.load(path, env=ENV)
    assert "ingest.max_payload_bytes" in str(err.value) and "mqtt.client gmqtt" in str(err.value)
    path = _with(cfg, mqtt={"client": "paho"})
    assert plant.load(path, env=ENV).ingest.max_payload_bytes == cap + 1

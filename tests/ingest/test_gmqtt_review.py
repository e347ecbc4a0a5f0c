"""Defects found in the review of the gmqtt network path (2026-12-01), each a strict xfail that
names it. When the defect is fixed the test passes, the strict xfail turns that into a failure,
and whoever fixed it removes the mark.

REVIEW DEFECT (both clients, not only gmqtt): a `mqtt.tls.ca_file` that can be read but holds no
certificate passes the config check (greenfoundry/plant.py `_mqtt_tls` checks only that the file
is readable) and then `greenfoundry.mqtt.tls_context` raises `ssl.SSLError` out of the Ingest's
constructor: `greenfoundry ingest` prints a 27-line traceback that does not name the key, where
the house rule wants one line at start naming it.
"""

from __future__ import annotations

import ssl

import pytest
import yaml

from greenfoundry.errors import ConfigError
from greenfoundry.ingest.service import Ingest
from greenfoundry.plant import load as load_plant
from tests.plant import plant_config

pytestmark = pytest.mark.servers


@pytest.mark.xfail(
    strict=True,
    raises=ssl.SSLError,
    reason="REVIEW DEFECT: a ca_file that is not a certificate raises ssl.SSLError, unnamed",
)
@pytest.mark.parametrize("client", ["paho", "gmqtt"])
def test_a_ca_file_that_is_not_a_certificate_is_refused_naming_the_key(tmp_path, stack, client):
    cfg = plant_config(tmp_path, stack, f"rv-tls-{client}")
    raw = yaml.safe_load(cfg.path.read_text())
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("this is not a PEM certificate\n")
    raw["mqtt"]["client"] = client
    raw["mqtt"]["tls"] = {"ca_file": str(not_a_cert)}
    cfg.path.write_text(yaml.safe_dump(raw))
    env = {"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x"}
    # Refused at load or at the Ingest's construction: either is "at start".
    with pytest.raises(ConfigError) as err:
        Ingest(load_plant(cfg.path, env=env))
    assert "mqtt.tls.ca_file" in str(err.value), err.value

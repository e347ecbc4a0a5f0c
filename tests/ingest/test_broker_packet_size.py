"""A broker whose Maximum Packet Size (its CONNACK, MQTT v5 3.2.2.3.6) is smaller than the
ingest's own payload limit refuses messages the ingest would take: one warning at connect names
both numbers. Against a real Mosquitto of the test's own (its `max_packet_size` set) and the
shared stack's (sized from the payload limit: no warning)."""

from __future__ import annotations

import logging

import pytest

from greenfoundry.ingest.service import Ingest
from tests.ingest.helpers import OwnBroker
from tests.plant import plant_config

pytestmark = pytest.mark.servers

LOGGER = "greenfoundry.ingest.service"


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and "max_payload_bytes" in r.message
    ]


def test_a_broker_packet_limit_below_the_payload_limit_is_warned_about(tmp_path, stack, caplog):
    broker = OwnBroker(tmp_path, "max_packet_size 2000")
    cfg = broker.config(plant_config(tmp_path, stack, "pkt-small", max_payload_bytes=4096))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    svc = Ingest(cfg)
    try:
        svc.start()
        assert svc.wait_connected(10)
    finally:
        svc.stop()
        broker.close()
    # 2000 is the broker's setting above, 4096 the plant's; 4096 + 16 KiB = 20480 the advice.
    assert len(_warnings(caplog)) == 1, _warnings(caplog)
    (text,) = _warnings(caplog)
    assert "up to 2000 bytes" in text and "(4096)" in text and "max_packet_size 20480" in text


def test_the_stacks_broker_sized_from_the_payload_limit_gives_no_warning(tmp_path, stack, caplog):
    cfg = plant_config(tmp_path, stack, "pkt-fits")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    svc = Ingest(cfg)
    try:
        svc.start()
        assert svc.wait_connected(10)
    finally:
        svc.stop()
    assert _warnings(caplog) == []

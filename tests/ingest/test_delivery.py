"""Delivery across the real servers: what a plant publishes lands in InfluxDB exactly.

Expected values are the published ones (the canonical unit is the one published, so no
conversion), and timestamps are the payloads' own: equality is exact, value for value and
nanosecond for nanosecond.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from greenfoundry import mqtt
from greenfoundry.ingest.service import Ingest
from greenfoundry.store import where
from tests.plant import ALL_TIME, count, plant_config, store, wait_for

pytestmark = pytest.mark.servers

T0_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z, within the config's max_past_days


def _payloads(n: int, seq0: int = 0) -> list[tuple[int, float, str]]:
    """n readings, one per second, with values that do not round-trip through %g."""
    return [
        (
            T0_MS + i * 1000,
            1000.0 + i / 3,
            json.dumps(
                {"ts_ms": T0_MS + i * 1000, "value": 1000.0 + i / 3, "unit": "kWh", "seq": seq0 + i}
            ),
        )
        for i in range(n)
    ]


def _values(st, plant_id: str) -> list[tuple[int, float]]:
    df = st.query(f"SELECT value FROM furnace_energy_kwh {where({'plant': plant_id}, **ALL_TIME)}")
    return [] if df.empty else [(t.value, v) for t, v in zip(df["time"], df["value"], strict=True)]


@pytest.fixture
def running_ingest(tmp_path, stack):
    services = []

    def start(plant_id: str, **ingest):
        svc = Ingest(plant_config(tmp_path, stack, plant_id, **ingest))
        svc.start()
        assert svc.wait_connected(10)
        services.append(svc)
        return svc

    yield start
    for svc in services:
        svc.stop()


def test_mosquitto_pub_readings_arrive_exactly(stack, running_ingest):
    svc = running_ingest("deliv-pub")
    topic = svc.cfg.topic_for(svc.cfg.routes[("melt", "if1", "energy")])
    readings = _payloads(200)
    # mosquitto_pub -l sends each line of stdin as one message: a client we did not write.
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            stack.mqtt_host,
            "-p",
            str(stack.mqtt_port),
            "-u",
            stack.mqtt_username,
            "-P",
            stack.mqtt_password,
            "-q",
            "1",
            "-V",
            "mqttv5",
            "-t",
            topic,
            "-l",
        ],
        input="\n".join(p for _, _, p in readings) + "\n",
        text=True,
        check=True,
        timeout=30,
    )
    st = store(stack)
    wait_for(lambda: count(st, "furnace_energy_kwh", "deliv-pub") == 200, what="200 readings")
    assert _values(st, "deliv-pub") == [(ms * 1_000_000, v) for ms, v, _ in readings]


def test_paho_readings_and_batches_arrive_exactly(stack, running_ingest):
    svc = running_ingest("deliv-paho")
    cfg = svc.cfg
    single = _payloads(50)
    batch_ts = [T0_MS + 100_000 + i for i in range(3)]
    batch = {
        "readings": [
            {"signal": "energy", "ts_ms": batch_ts[0], "value": 2.5, "unit": "MWh"},
            {"signal": "tap_temp", "ts_ms": batch_ts[1], "value": 1498.25},
            {"signal": "tap_weight", "ts_ms": batch_ts[2], "value": 11800, "unit": "kg"},
        ]
    }
    pub = mqtt.make_client("deliv-paho-pub", stack.mqtt_username, stack.mqtt_password)
    pub.connect(stack.mqtt_host, stack.mqtt_port)
    pub.loop_start()
    try:
        topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
        infos = [pub.publish(topic, p, qos=1) for _, _, p in single]
        infos.append(pub.publish("gf/v1/deliv-paho/melt/if1/_batch", json.dumps(batch), qos=1))
        for info in infos:
            info.wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()
    st = store(stack)
    wait_for(lambda: count(st, "furnace_energy_kwh", "deliv-paho") == 51, what="51 readings")
    wait_for(lambda: count(st, "tap_iron_t", "deliv-paho") == 1, what="the tap weight")
    # Hand-converted: 2.5 MWh = 2500 kWh; 11800 kg = 11.8 t; 1498.25 °C as published.
    expected = [(ms * 1_000_000, v) for ms, v, _ in single] + [(batch_ts[0] * 1_000_000, 2500.0)]
    assert _values(st, "deliv-paho") == expected
    df = st.query(
        f"SELECT value FROM tap_temp_c, tap_iron_t {where({'plant': 'deliv-paho'}, **ALL_TIME)}"
    )
    got = {
        (m, t.value, v) for m, t, v in zip(df["measurement"], df["time"], df["value"], strict=True)
    }
    assert got == {
        ("tap_temp_c", batch_ts[1] * 1_000_000, 1498.25),
        ("tap_iron_t", batch_ts[2] * 1_000_000, 11.8),
    }


def test_self_metrics_are_written_and_counted(stack, running_ingest):
    svc = running_ingest("deliv-metrics")
    pub = mqtt.make_client("deliv-metrics-pub", stack.mqtt_username, stack.mqtt_password)
    pub.connect(stack.mqtt_host, stack.mqtt_port)
    pub.loop_start()
    topic = svc.cfg.topic_for(svc.cfg.routes[("melt", "if1", "energy")])
    # seq 0, 1, 5: a jump of 4, so 3 readings missing by sequence number.
    for seq in (0, 1, 5):
        pub.publish(
            topic, json.dumps({"ts_ms": T0_MS + seq, "value": 1.0, "seq": seq}), qos=1
        ).wait_for_publish(10)
    pub.publish(topic, b"{not json", qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    wait_for(lambda: svc.counters.received == 4, what="4 received")
    st = store(stack)

    def latest():
        df = st.query(
            "SELECT LAST(written), LAST(seq_gaps), LAST(rejected_malformed_json) "
            f"FROM gf_ingest {where({'plant': 'deliv-metrics'}, last_s=3600)}"
        )
        return None if df.empty else tuple(int(df.iloc[0][c]) for c in ("last", "last_1", "last_2"))

    wait_for(lambda: latest() == (3, 3, 1), what="self-metrics written=3 gaps=3 rejected=1")
    assert svc.counters.seq_gaps == 3


def test_wrong_mqtt_password_is_refused(stack):
    assert not mqtt.can_connect(stack.mqtt_host, stack.mqtt_port, stack.mqtt_username, "wrong")
    assert not mqtt.can_connect(stack.mqtt_host, stack.mqtt_port, None, None)
    assert mqtt.can_connect(
        stack.mqtt_host, stack.mqtt_port, stack.mqtt_username, stack.mqtt_password
    )


def test_a_lone_reading_is_written_within_the_batch_age_not_the_metrics_interval(
    stack, running_ingest
):
    # Regression: the writer slept until the next self-metrics point (here an hour away)
    # when a message arrived into an empty queue. The batch age is 50 ms; the 30 s guard is
    # far from both.
    svc = running_ingest("deliv-lone", batch_max_age_ms=50, self_metrics_interval_s=3600)
    pub = mqtt.make_client("deliv-lone-pub", stack.mqtt_username, stack.mqtt_password)
    pub.connect(stack.mqtt_host, stack.mqtt_port)
    pub.loop_start()
    topic = svc.cfg.topic_for(svc.cfg.routes[("melt", "if1", "energy")])
    pub.publish(topic, json.dumps({"ts_ms": T0_MS, "value": 7.0}), qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    st = store(stack)
    wait_for(lambda: count(st, "furnace_energy_kwh", "deliv-lone") == 1, 30, "the reading")

"""The system's topics (`<root>/<plant>/_…`, the alerts' state) are not readings: the ingest
acknowledges them and counts them as `ignored_system`, never a reject, never a dead letter.
Against the real broker and InfluxDB of the `stack` fixture, with the alerts engine's own
account publishing the alert (retained, QoS 1) as it will in production.
"""

from __future__ import annotations

import json

import pytest

from greenfoundry.ingest.payload import PayloadParser
from greenfoundry.ingest.service import SELF_MEASUREMENT, Ingest
from greenfoundry.store import where
from tests.plant import (
    ALL_TIME,
    Publisher,
    count,
    energy_stream,
    energy_values,
    plant_config,
    store,
    wait_for,
)
from tests.security.test_alerts_acl import _alerts_sender

pytestmark = pytest.mark.servers

T0_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z, within the example's max_past_days


def test_the_parser_knows_the_system_namespace(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "sys-unit")
    parser = PayloadParser(cfg)
    assert parser.is_system("gf/v1/sys-unit/_alerts/stack-so2/S1_so2")
    assert parser.is_system("gf/v1/other-plant/_alerts/r/t")  # any plant: never a reading
    assert not parser.is_system(cfg.topic_for(cfg.routes[("melt", "if1", "energy")]))
    assert not parser.is_system("gf/v1/sys-unit/melt/if1/_batch")


def test_a_retained_alert_is_acknowledged_counted_and_never_dead_lettered(tmp_path, stack):
    plant = "sys-retained"
    cfg = plant_config(tmp_path, stack, plant)
    alert_topic = f"gf/v1/{plant}/_alerts/stack-so2/S1_so2"
    alert = json.dumps({"state": "FIRING", "value": 512.0})  # not a reading's payload
    alerts = _alerts_sender(stack, "sys-retained-alerts")
    assert alerts.publish(alert_topic, alert, retain=True) < 0x80
    reading_topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    first, second = energy_stream(T0_MS, 1), energy_stream(T0_MS + 1000, 1, seq0=1)
    pub = Publisher(stack, "sys-retained-dev", plant=plant)
    st = store(stack)
    try:
        # The new subscription gets the retained alert first, then the reading published after.
        svc = Ingest(cfg)
        svc.start()
        assert svc.wait_connected(10)
        pub.publish(reading_topic, first[0][2])
        pub.wait_all()
        wait_for(lambda: count(st, "furnace_energy_kwh", plant) == 1, 30, "the first reading")
        wait_for(lambda: svc.counters.ignored_system == 1, 10, "the alert counted")
        svc.stop()  # drains, acknowledges, writes its last self-metrics
        assert (svc.counters.rejected, svc.counters.received) == (0, 1)
        # Acknowledged: the session resumes, and the broker has nothing of it to deliver again
        # (an unacknowledged QoS 1 message comes back first, before the next reading).
        again = Ingest(cfg)
        again.start()
        assert again.wait_connected(10)
        pub.publish(reading_topic, second[0][2])
        pub.wait_all()
        wait_for(lambda: count(st, "furnace_energy_kwh", plant) == 2, 30, "the second reading")
        again.stop()
    finally:
        assert alerts.publish(alert_topic, b"", retain=True) < 0x80  # clears the retained alert
        alerts.close()
        pub.close()
    assert again.counters.ignored_system == 0
    assert again.counters.rejected == 0
    # Nothing of the alert reached InfluxDB or the dead letters; the readings are exactly those
    # published (payload times and values of energy_stream).
    assert energy_values(st, plant) == [(ms * 1_000_000, v) for ms, v, _ in first + second]
    assert count(st, "gf_deadletter", plant, "payload_bytes") == 0
    assert cfg.ingest.deadletter_file.read_text() == ""
    # The self-metrics carry the count (cumulative per process): the first process reached 1,
    # the second stayed at 0, and neither rejected anything.
    df = st.query(
        f"SELECT ignored_system, rejected FROM {SELF_MEASUREMENT} "
        f"{where({'plant': plant}, **ALL_TIME)}"
    )
    assert df["ignored_system"].max() == 1
    assert df["ignored_system"].iloc[-1] == 0
    assert df["rejected"].max() == 0

"""Shared subscriptions: two ingest processes in one `$share` group split a plant's load, and
together they write every reading exactly once."""

from __future__ import annotations

import dataclasses

import pytest

from greenfoundry.ingest.service import Ingest, for_instance
from tests.ingest.helpers import OwnBroker, with_share_group
from tests.plant import (
    Publisher,
    count,
    energy_stream,
    energy_values,
    plant_config,
    store,
    wait_for,
)

pytestmark = pytest.mark.servers


def test_two_ingests_in_a_share_group_split_the_load(tmp_path, stack):
    # A broker of the test's own: the stack's ACL keeps `$share` from the ingest account (any
    # account in the group would take its share), so the option is tried where it is open.
    broker = OwnBroker(tmp_path)
    base = broker.config(plant_config(tmp_path, stack, "shared-a", batch_max_readings=100))
    base = with_share_group(base, "ingest", ["n0", "n1"])  # members declared, or refused
    services = [Ingest(for_instance(base, f"n{n}"), instance=f"n{n}") for n in range(2)]
    for svc in services:
        svc.start()
        assert svc.wait_connected(10)
    assert services[0].subscriptions == ["$share/ingest/gf/v1/shared-a/#"]
    assert services[0].cfg.mqtt.share_group == "ingest"
    # Each process its own session and spool (one fixed client id would be one session).
    assert [s.cfg.mqtt.client_id for s in services] == [
        "gf-ingest-shared-a-n0",
        "gf-ingest-shared-a-n1",
    ]
    assert services[0].cfg.ingest.spool_dir != services[1].cfg.ingest.spool_dir
    topic = base.topic_for(base.routes[("melt", "if1", "energy")])
    stream = energy_stream(1_795_300_000_000, 2000)
    pub = Publisher(dataclasses.replace(stack, mqtt_port=broker.port), "shared-pub")
    try:
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        st = store(stack)
        wait_for(
            lambda: sum(s.counters.received for s in services) == 2000,
            30,
            "2000 readings received between the two",
        )
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "shared-a") == 2000,
            30,
            "2000 readings in InfluxDB",
        )
    finally:
        pub.close()
        for svc in services:
            svc.stop()
        broker.close()
    got = [s.counters.received for s in services]
    # Mosquitto hands a shared subscription's messages round-robin: both must have worked.
    assert all(n > 0 for n in got), got
    assert sum(s.counters.written for s in services) == 2000
    assert energy_values(st, "shared-a") == [(ms * 1_000_000, v) for ms, v, _ in stream]

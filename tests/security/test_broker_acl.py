"""The broker's accounts and ACL against the attacks of issue 8, on the real Mosquitto 2.0.11.

With one account for everything (before the fix) a device could publish into another plant,
join the ingest's share group and take half the stream, or connect with the ingest's client id
and a clean start and wipe its queued session. Each test plays one attack with a device account
of the local stack and counts, in InfluxDB or at the ingest's side, that nothing was lost.
Expected counts are the numbers published.
"""

from __future__ import annotations

import json
import threading

import pytest

from greenfoundry import mqtt
from greenfoundry.ingest.service import Ingest
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

T0_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z, within the example's max_past_days
NOT_AUTHORIZED = 0x87  # MQTT v5 reason code "Not authorized" (CONNACK, PUBACK, SUBACK)


class Probe:
    """A bare paho client that records what the broker answered: the CONNACK reason code, each
    SUBACK's reason codes and the messages it receives."""

    def __init__(self, stack, username, password, client_id, *, clean_start=True, expiry_s=0):
        self.connack = None
        self.subacks: list[list[int]] = []
        self.messages: list[tuple[str, bytes]] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.make_client(client_id, username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(60, 60)  # a refused CONNECT is not retried in a test
        self.client.connect(
            stack.mqtt_host,
            stack.mqtt_port,
            clean_start=clean_start,
            properties=mqtt.connect_properties(session_expiry_s=expiry_s),
        )
        self.client.loop_start()
        assert self._connected.wait(10), "no CONNACK"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code.value
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subacks.append([rc.value for rc in reason_codes])
        self._subscribed.set()

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def subscribe(self, topic_filter: str) -> int:
        self._subscribed.clear()
        self.client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(10), f"no SUBACK for {topic_filter}"
        return self.subacks[-1][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _ingest(tmp_path, stack, plant_id):
    cfg = plant_config(tmp_path, stack, plant_id, role="ingest")
    svc = Ingest(cfg)
    svc.start()
    assert svc.wait_connected(10)
    return cfg, svc


def _expected(stream):
    return [(ms * 1_000_000, v) for ms, v, _ in stream]


def test_a_device_cannot_publish_into_another_plant(tmp_path, stack):
    cfg, svc = _ingest(tmp_path, stack, "sec-victim")
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    own = Publisher(stack, "sec-victim-dev", plant="sec-victim")
    intruder = Publisher(stack, "sec-intruder-dev", plant="sec-intruder")
    stream = energy_stream(T0_MS, 200)
    forged = energy_stream(T0_MS + 500, 200, seq0=10_000)  # other times and values
    try:
        for (_, _, good), (_, _, bad) in zip(stream, forged, strict=True):
            own.publish(topic, good)
            intruder.publish(topic, bad)
        own.wait_all()
        intruder.wait_all()
        st = store(stack)
        wait_for(lambda: count(st, "furnace_energy_kwh", "sec-victim") >= 200, 30, "200 readings")
        # Everything the plant's own device sent is acknowledged and lands; every message of the
        # other plant's device is refused at the broker (PUBACK "not authorized") and nothing of
        # it lands: the readings are exactly the plant's own.
        assert (own.refused, intruder.refused) == (0, 200)
    finally:
        own.close()
        intruder.close()
        svc.stop()  # drained: nothing more can arrive
    assert energy_values(st, "sec-victim") == _expected(stream)
    assert svc.counters.received == 200


def test_a_device_cannot_subscribe_nor_join_the_ingests_share_group(tmp_path, stack):
    cfg, svc = _ingest(tmp_path, stack, "sec-share")
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    ingest_account = stack.mqtt_account("ingest")
    # A second consumer of the ingest's own account in a share group, as a scaled-out ingest
    # would be, so the device has a group to join.
    member = Probe(stack, ingest_account.username, ingest_account.password, "sec-share-member")
    group = "$share/ingest/" + cfg.mqtt.subscribe[0]
    assert member.subscribe(group) < 0x80
    device = stack.device_account("sec-share", "sec-share-spy")
    spy = Probe(stack, device.username, device.password, "sec-share-spy")
    pub = Publisher(stack, "sec-share-dev", plant="sec-share")
    stream = energy_stream(T0_MS, 2000)
    try:
        assert spy.connack == 0  # a device may connect ...
        # ... but every subscription is refused at SUBACK, not granted and then starved.
        assert spy.subscribe(group) == NOT_AUTHORIZED
        assert spy.subscribe(cfg.mqtt.subscribe[0]) == NOT_AUTHORIZED
        assert spy.subscribe(f"{cfg.mqtt.topic_root}/#") == NOT_AUTHORIZED
        assert spy.subscribe("$SYS/#") == NOT_AUTHORIZED
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        assert pub.refused == 0
        st = store(stack)
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "sec-share") >= 2000,
            60,
            lambda: f"2000 readings, {count(st, 'furnace_energy_kwh', 'sec-share')} so far",
        )
        wait_for(lambda: len(member.messages) >= 2000, 30, "2000 messages at the group member")
    finally:
        for c in (member, spy):
            c.close()
        pub.close()
        svc.stop()
    # The ingest's plain subscription got every reading, the group (of one real member) every
    # message, the device none.
    assert energy_values(st, "sec-share") == _expected(stream)
    assert len(member.messages) == 2000
    assert spy.messages == []


def test_a_device_cannot_take_the_ingests_client_id_and_wipe_its_session(tmp_path, stack):
    cfg, svc = _ingest(tmp_path, stack, "sec-session")
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc.stop()  # away; its persistent session keeps its subscription and queues for it
    pub = Publisher(stack, "sec-session-dev", plant="sec-session")
    stream = energy_stream(T0_MS, 1000)
    for _, _, payload in stream:
        pub.publish(topic, payload)
    pub.wait_all()
    assert pub.refused == 0
    # The attack: a device account, the ingest's client id, a clean start (which would discard
    # the queued session). The device account is bound to its own client id: refused.
    device = stack.device_account("sec-session", "sec-session-dev2")
    attacker = Probe(stack, device.username, device.password, cfg.mqtt.client_id)
    assert attacker.connack == NOT_AUTHORIZED
    attacker.close()
    svc = Ingest(cfg)
    svc.start()
    try:
        assert svc.wait_connected(10)
        st = store(stack)
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "sec-session") >= 1000,
            60,
            lambda: f"1000 readings, {count(st, 'furnace_energy_kwh', 'sec-session')} so far",
        )
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "sec-session") == _expected(stream)


def test_the_ingest_may_not_publish_and_reads_the_brokers_dropped_count(stack):
    acc = stack.mqtt_account("ingest")
    probe = Probe(stack, acc.username, acc.password, "sec-ingest-probe")
    try:
        # The ingest reads the broker's counters (its dropped-messages count among them) ...
        assert probe.subscribe("$SYS/broker/publish/messages/dropped") < 0x80
        assert probe.subscribe("$SYS/broker/#") < 0x80
        # ... and gets them: the uptime is republished every sys_interval (10 s).
        wait_for(lambda: probe.messages, 30, "a $SYS/broker message")
        assert all(t.startswith("$SYS/broker/") for t, _ in probe.messages)
        # Outside $SYS/broker: refused.
        assert probe.subscribe("$SYS/#") == NOT_AUTHORIZED
        pubacks = []
        probe.client.on_publish = lambda c, u, mid, rc, props: pubacks.append(rc.value)
        probe.client.publish("gf/v1/sec-any/melt/if1/energy", json.dumps({"value": 1}), 1)
        wait_for(lambda: pubacks, 10, "a PUBACK")
        assert pubacks == [NOT_AUTHORIZED]
    finally:
        probe.close()


def test_the_simulators_account_is_bound_to_its_client_id(tmp_path, stack):
    plant_id = "sec-sim"
    # As an older stack left it: the simulator's account made without a client id.
    stack.device_account(plant_id, f"gf-sim-{plant_id}", bind=False)
    cfg = plant_config(tmp_path, stack, plant_id, role="device")
    assert cfg.mqtt.username == f"gf-sim-{plant_id}"
    password = cfg.mqtt.password.value
    # Its password with another client's id (the ingest's, to take its session): refused.
    thief = Probe(stack, cfg.mqtt.username, password, f"gf-ingest-{plant_id}")
    assert thief.connack == NOT_AUTHORIZED
    thief.close()
    # With its own id it connects: what the simulator's publisher uses by default.
    from greenfoundry.sim.publisher import Publisher as SimPublisher

    sim = SimPublisher(cfg).connect()
    try:
        assert sim.client_id == f"gf-sim-{plant_id}"
    finally:
        sim.close()

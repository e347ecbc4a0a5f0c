"""The alerts' state on MQTT (`<root>/<plant>/_alerts/<rule>/<target>`, retained, QoS 1) and who
may touch it, on the real Mosquitto 2.0.11 with the stack's dynamic-security roles.

The alerts account (`gf-alerts`) publishes and retains there and nowhere else; the operator
(dashboards) reads it; a plant's device, which may publish everywhere else under its plant, is
refused there by a deny ACL of a higher priority than its allow. Every expected reason code is
MQTT v5's (0 success, 0x87 not authorised); expected payloads are the ones published.
"""

from __future__ import annotations

import json
import threading

import pytest

from greenfoundry import mqtt
from tests.plant import wait_for
from tests.security.test_broker_acl import NOT_AUTHORIZED, Probe

pytestmark = pytest.mark.servers


class Sender(Probe):
    """A Probe that also publishes and waits for each PUBACK's reason code."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._acked = threading.Event()
        self._codes: dict[int, int] = {}
        self.client.on_publish = self._on_publish

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self._codes[mid] = reason_code.value
        self._acked.set()

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_for(lambda: info.mid in self._codes, 10, f"the PUBACK for {topic}")
        return self._codes[info.mid]


def _alerts_sender(stack, client_id):
    acc = stack.mqtt_account("alerts")
    assert acc.username == "gf-alerts"
    return Sender(stack, acc.username, acc.password, client_id)


def _operator(stack, client_id):
    return Probe(stack, stack.mqtt_username, stack.mqtt_password, client_id)


def test_the_alerts_account_retains_the_alerts_state_and_a_dashboard_reads_it(stack):
    topic = "gf/v1/sec-alerts-a/_alerts/stack-so2/S1_so2"
    state = json.dumps({"state": "FIRING", "value": 512.0, "limit": 400.0})
    alerts = _alerts_sender(stack, "sec-alerts-a-channel")
    try:
        assert alerts.publish(topic, state, retain=True) < 0x80
        # A dashboard connecting afterwards gets the current state: the message is retained.
        # (Every plant's alerts: other tests' retained states may come too; ours is among them.)
        ours = (topic, state.encode())
        dashboard = _operator(stack, "sec-alerts-a-dashboard")
        try:
            assert dashboard.subscribe("gf/v1/+/_alerts/#") < 0x80
            wait_for(lambda: ours in dashboard.messages, 10, "the retained alert at the dashboard")
            assert all("/_alerts/" in t for t, _ in dashboard.messages)
        finally:
            dashboard.close()
        # The alerts engine may read its own state back (after a restart).
        assert alerts.subscribe("gf/v1/+/_alerts/#") < 0x80
        wait_for(lambda: ours in alerts.messages, 10, "the retained alert read back")
        assert all("/_alerts/" in t for t, _ in alerts.messages)
    finally:
        assert alerts.publish(topic, b"", retain=True) < 0x80  # clears the retained state
        alerts.close()


def test_the_alerts_account_may_not_publish_a_reading_nor_read_anything_else(stack):
    alerts = _alerts_sender(stack, "sec-alerts-b-channel")
    try:
        reading = json.dumps({"ts_ms": 1_795_392_000_000, "value": 1.0})
        assert alerts.publish("gf/v1/sec-alerts-b/melt/if1/energy", reading) == NOT_AUTHORIZED
        # `_alerts` at another depth is not the alerts' namespace either.
        assert alerts.publish("gf/v1/_alerts/x", b"{}") == NOT_AUTHORIZED
        assert alerts.publish("gf/v1/sec-alerts-b/melt/_alerts/x", b"{}") == NOT_AUTHORIZED
        assert alerts.publish("$CONTROL/dynamic-security/v1", b"{}") == NOT_AUTHORIZED
        assert alerts.subscribe("gf/v1/#") == NOT_AUTHORIZED
        assert alerts.subscribe("gf/v1/sec-alerts-b/melt/#") == NOT_AUTHORIZED
        assert alerts.subscribe("$SYS/#") == NOT_AUTHORIZED
        assert alerts.subscribe("$share/ingest/gf/v1/#") == NOT_AUTHORIZED
    finally:
        alerts.close()


def test_a_device_may_not_publish_under_its_plants_alerts(stack):
    plant = "sec-alerts-c"
    topic = f"gf/v1/{plant}/_alerts/stack-so2/S1_so2"
    real = json.dumps({"state": "FIRING"})
    alerts = _alerts_sender(stack, "sec-alerts-c-channel")
    account = stack.device_account(plant, "sec-alerts-c-dev")
    device = Sender(stack, account.username, account.password, "sec-alerts-c-dev")
    try:
        assert alerts.publish(topic, real, retain=True) < 0x80
        # The device forges a resolved state (it would silence the alert on every dashboard):
        # refused, and the retained state is still the alerts engine's.
        forged = json.dumps({"state": "OK"})
        assert device.publish(topic, forged, retain=True) == NOT_AUTHORIZED
        assert device.publish(f"gf/v1/{plant}/_alerts", forged) == NOT_AUTHORIZED
        assert device.publish(f"gf/v1/{plant}/_alerts/x/y/z", forged) == NOT_AUTHORIZED
        # The deny is that narrow: the device's readings, `_batch` and all, still pass.
        reading = json.dumps({"ts_ms": 1_795_392_000_000, "value": 1.0})
        assert device.publish(f"gf/v1/{plant}/melt/if1/energy", reading) < 0x80
        assert device.publish(f"gf/v1/{plant}/melt/if1/_batch", '{"readings": []}') < 0x80
        dashboard = _operator(stack, "sec-alerts-c-dashboard")
        try:
            assert dashboard.subscribe(f"gf/v1/{plant}/_alerts/#") < 0x80
            wait_for(lambda: dashboard.messages, 10, "the retained alert at the dashboard")
            assert dashboard.messages == [(topic, real.encode())]
        finally:
            dashboard.close()
    finally:
        assert alerts.publish(topic, b"", retain=True) < 0x80
        alerts.close()
        device.close()


def test_system_topics_are_recognised_at_the_first_level_after_the_plant():
    root = "gf/v1/"
    assert mqtt.is_system_topic("gf/v1/p1/_alerts/stack-so2/S1_so2", root)
    assert mqtt.is_system_topic("gf/v1/p1/_anything", root)
    assert not mqtt.is_system_topic("gf/v1/p1/melt/if1/_batch", root)  # a device's batch
    assert not mqtt.is_system_topic("gf/v1/p1/melt/_x/y", root)
    assert not mqtt.is_system_topic("gf/v1//_alerts/x", root)  # no plant id
    assert not mqtt.is_system_topic("gf/v1/_alerts", root)
    assert not mqtt.is_system_topic("gf/v2/p1/_alerts/x", root)
    assert not mqtt.is_system_topic("gf/v1/p1", root)

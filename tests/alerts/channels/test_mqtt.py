"""The mqtt channel against the real Mosquitto of the `stack` fixture, with the broker's own
`alerts` account (greenfoundry/stack.py: the `alerts` dynsec role may publish and retain under
`<root>/+/_alerts/#` only) (alerts/channels/mqtt)."""

from __future__ import annotations

import dataclasses
import json
import signal
import threading

import pytest

from greenfoundry import mqtt
from greenfoundry.alerts.channels import mqtt as mqtt_channel
from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.errors import ConfigError
from greenfoundry.stack import LocalStack, free_port, make_certificates
from tests.alerts.channels import HangServer, node, notification, plant_cfg, sample
from tests.plant import wait_for

pytestmark = pytest.mark.servers


class Subscriber:
    """The stack's operator account (it reads every topic, as a dashboard would), connected
    after the publishes, collecting what the broker hands it: the retained state."""

    def __init__(self, stack, topic_filter: str, client_id: str):
        self.messages: list = []
        self.ready = threading.Event()
        self.client = mqtt.make_client(client_id, stack.mqtt_username, stack.mqtt_password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.client.on_message = lambda c, u, msg: self.messages.append(msg)
        self.client.connect(stack.mqtt_host, stack.mqtt_port, clean_start=True)
        self.client.loop_start()
        assert self.ready.wait(10), "no SUBACK"

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def broker_cfg(tmp_path, stack, plant_id):
    """The plant's config on the stack's broker, its client id its own (two clients with one id
    take the connection from each other)."""
    return plant_cfg(
        tmp_path,
        plant_id,
        host=stack.mqtt_host,
        port=stack.mqtt_port,
        client_id=f"gf-ingest-{plant_id}",
    )


def channel_for(tmp_path, stack, plant_id, **keys):
    account = stack.mqtt_account("alerts")
    cfg = broker_cfg(tmp_path, stack, plant_id)
    spec = {"type": "mqtt", "username": account.username, "password_env": "ALERTS_PW", **keys}
    env = {"ALERTS_PW": account.password}
    return mqtt_channel.parse(node(spec, "broker"), cfg, env, "broker")


def test_a_later_subscriber_gets_each_targets_current_state_retained(tmp_path, stack):
    plant_id = "mqtt-a"
    channel = channel_for(tmp_path, stack, plant_id, timeout_s=5)
    # The plant's client id with "-alerts"; the example plant's topic root gf/v1.
    assert channel.client_id == f"gf-ingest-{plant_id}-alerts"
    so2 = notification(0, plant_id)
    nox = notification(1, plant_id, details={"target": "S2/nox", "stack": "S2", "pollutant": "nox"})
    resolved = dataclasses.replace(so2, event="resolved", subject="Resolved: stack S1 SO2")
    try:
        channel.send(so2)
        channel.send(nox)
        first = Subscriber(stack, f"gf/v1/{plant_id}/_alerts/#", f"sub-{plant_id}-1")
        wait_for(lambda: len(first.messages) == 2, 10, "two retained states")
        got = {m.topic: (m.retain, m.qos, json.loads(m.payload)) for m in first.messages}
        assert got == {
            f"gf/v1/{plant_id}/_alerts/stack-warning/S1/so2": (
                True,
                1,
                {"version": 1, "state": "FIRING", **so2.to_dict()},
            ),
            f"gf/v1/{plant_id}/_alerts/stack-warning/S2/nox": (
                True,
                1,
                {"version": 1, "state": "FIRING", **nox.to_dict()},
            ),
        }
        first.close()

        # The resolution replaces the target's retained state; the other target's stays.
        channel.send(resolved)
        second = Subscriber(stack, f"gf/v1/{plant_id}/_alerts/#", f"sub-{plant_id}-2")
        wait_for(lambda: len(second.messages) == 2, 10, "two retained states")
        states = {m.topic: json.loads(m.payload) for m in second.messages}
        assert states[f"gf/v1/{plant_id}/_alerts/stack-warning/S1/so2"] == {
            "version": 1,
            "state": "OK",
            **resolved.to_dict(),
        }
        assert states[f"gf/v1/{plant_id}/_alerts/stack-warning/S2/nox"]["state"] == "FIRING"
        second.close()
    finally:
        channel.close()


def test_a_device_account_may_not_publish_alerts(tmp_path, stack):
    # A device of the plant itself, bound to the channel's client id: the broker's role
    # denies it `_alerts` (a forged alert state), so the PUBACK says "not authorized".
    plant_id = "mqtt-b"
    cfg = broker_cfg(tmp_path, stack, plant_id)
    device = stack.device_account(plant_id, f"gf-ingest-{plant_id}-alerts")
    spec = {"type": "mqtt", "username": device.username, "password_env": "PW", "timeout_s": 5}
    channel = mqtt_channel.parse(node(spec), cfg, {"PW": device.password}, "broker")
    try:
        with pytest.raises(PermanentChannelError, match=r"refused the publish to .*Not authori"):
            channel.send(notification(0, plant_id))
    finally:
        channel.close()


def test_a_wrong_password_is_permanent_and_no_broker_is_retryable(tmp_path, stack):
    wrong = channel_for(tmp_path, stack, "mqtt-c", timeout_s=5)
    wrong._password = "not-the-password"
    with pytest.raises(PermanentChannelError, match=r"refused: .*(bad user name|not authori)"):
        wrong.send(notification(0, "mqtt-c"))
    wrong.close()
    down = channel_for(tmp_path, stack, "mqtt-c", port=free_port(), timeout_s=5)
    with pytest.raises(
        ChannelError, match=r"channel broker: cannot connect to 127\.0\.0\.1:"
    ) as info:
        down.send(notification(1, "mqtt-c"))
    assert type(info.value) is ChannelError
    down.close()


def test_the_connection_comes_back_after_a_broker_restart(tmp_path, own_stack):
    stack = own_stack.info
    channel = channel_for(tmp_path, stack, "mqtt-d", timeout_s=1)
    try:
        channel.send(notification(0, "mqtt-d"))
        # A broker that holds the connection but does not answer (frozen): no PUBACK within
        # timeout_s is a retryable error, not a wait for ever.
        broker = own_stack._procs["mosquitto"]
        broker.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(ChannelError, match=r"no PUBACK from 127\.0\.0\.1:\d+ within 1 s"):
                channel.send(notification(1, "mqtt-d"))
        finally:
            broker.send_signal(signal.SIGCONT)
        own_stack.stop_mosquitto()
        with pytest.raises(ChannelError):
            channel.send(notification(1, "mqtt-d"))
        own_stack.start_mosquitto()
        channel.send(notification(2, "mqtt-d"))
        sub = Subscriber(stack, "gf/v1/mqtt-d/_alerts/#", "sub-mqtt-d")
        wait_for(lambda: len(sub.messages) == 1, 10, "the retained state")
        # Retained state survives the restart (persistence on) and the latest send replaced it.
        assert json.loads(sub.messages[0].payload)["id"] == "mqtt-d-stack-warning-0002"
        sub.close()
    finally:
        channel.close()


def test_a_peer_that_never_answers_connect_times_out(tmp_path, stack):
    hang = HangServer()
    try:
        channel = channel_for(tmp_path, stack, "mqtt-g", port=hang.port, timeout_s=0.3)
        with pytest.raises(ChannelError, match=r"no CONNACK from 127\.0\.0\.1:\d+ within 0\.3 s"):
            channel.send(notification(0, "mqtt-g"))
        channel.close()
    finally:
        hang.close()


def test_topics_and_payload_by_hand():
    n = notification(0, "p", rule="deadman", details={"target": "stack_conc_mg_m3:S1/so2"})
    assert mqtt_channel.topic("gf/v1", n) == "gf/v1/p/_alerts/deadman/stack_conc_mg_m3:S1/so2"
    furnace = notification(0, "p", rule="furnace-tier2", details={"furnace": "IF1"})
    assert mqtt_channel.topic("gf/v1", furnace) == "gf/v1/p/_alerts/furnace-tier2/IF1"
    odd = notification(0, "p", details={"target": "a+b/#/"})
    assert mqtt_channel.topic("gf/v1", odd) == "gf/v1/p/_alerts/stack-warning/a_b/_"
    snapshot = notification(0, "p", rule="snapshot", event="snapshot", details={})
    assert mqtt_channel.topic("gf/v1", snapshot) == "gf/v1/p/_alerts/snapshot/p-stack-warning-0000"
    assert json.loads(mqtt_channel.payload(snapshot))["state"] is None


def test_an_acknowledged_alert_keeps_its_state_in_the_retained_message():
    # `alerts ack` on an alert that fires, and on one whose data has stopped (STALE over a
    # firing alert; alerts/machine.py: acknowledge keeps the state). The retained message is
    # the target's state for a dashboard: the second must stay STALE, not turn FIRING.
    firing = {"target": "S1/so2", "from_state": "FIRING", "to_state": "FIRING"}
    stale = {"target": "S1/so2", "from_state": "STALE", "to_state": "STALE"}
    for details, state in ((firing, "FIRING"), (stale, "STALE")):
        n = notification(0, "p", event="acknowledged", details=details)
        assert json.loads(mqtt_channel.payload(n))["state"] == state


def test_sample_and_config_errors(tmp_path):
    cfg = plant_cfg(tmp_path, "mqtt-e")
    for name, mapping in sample("mqtt").items():
        channel = mqtt_channel.parse(
            node(mapping, name), cfg, {"GF_MQTT_ALERTS_PASSWORD": "x"}, name
        )
        # The plant's broker (config/plants/demo-dip/plant.yaml: 127.0.0.1:1883, no TLS).
        assert (channel.host, channel.port, channel.tls, channel.username) == (
            "127.0.0.1",
            1883,
            None,
            "alerts",
        )
        unresolved = mqtt_channel.parse(node(mapping, name), cfg, None, name)
        with pytest.raises(PermanentChannelError, match="password was not resolved"):
            unresolved.send(notification(0, "mqtt-e"))
        assert "x" not in repr(channel).replace("client_id", "")
    bad = [
        ({"password_env": "PW"}, r"\.username: missing; a password needs its username"),
        ({"username": "a", "password_env": "NOPE"}, r"\.password_env: environment variable NOPE"),
        ({"port": 0}, r"\.port: 0 is not allowed; expected between 1 and 65535"),
        ({"tls": {"ca_file": "/nonexistent/ca.crt"}}, r"\.tls\.ca_file: cannot read the file"),
        ({"qos": 2}, r"alerts\.channels\.test\.qos: unknown key"),
    ]
    for spec, message in bad:
        with pytest.raises(ConfigError, match=message):
            mqtt_channel.parse(node({"type": "mqtt", **spec}), cfg, {"PW": "x"}, "test")
    plain = mqtt_channel.parse(node({"type": "mqtt", "tls": False, "port": 1884}), cfg, {}, "t")
    assert (plain.tls, plain.port) == (None, 1884)


def test_the_plants_tls_is_taken_by_default(tmp_path):
    # A broker of the test's own with a TLS listener and a client certificate (the stack's
    # openssl CA); the plant's mqtt: section points at it, the channel names no host or TLS.
    own = LocalStack(tmp_path / "stack", tls=True)
    own.up()
    try:
        info = own.info
        tls = {
            "ca_file": str(info.tls_dir / "ca.crt"),
            "cert_file": str(info.tls_dir / "client.crt"),
            "key_file": str(info.tls_dir / "client.key"),
            "server_name": "localhost",  # the server certificate's DNS name, not the IP
        }
        cfg = plant_cfg(
            tmp_path, "mqtt-f", port=info.mqtt_tls_port, tls=tls, client_id="gf-ingest-mqtt-f"
        )
        account = info.mqtt_account("alerts")
        spec = {"type": "mqtt", "username": account.username, "password_env": "PW"}
        channel = mqtt_channel.parse(node(spec), cfg, {"PW": account.password}, "broker")
        assert channel.port == info.mqtt_tls_port and channel.tls.server_name == "localhost"
        try:
            channel.send(notification(0, "mqtt-f"))
        finally:
            channel.close()
        # Read back on the plain listener.
        sub = Subscriber(info, "gf/v1/mqtt-f/_alerts/#", "sub-mqtt-f")
        wait_for(lambda: len(sub.messages) == 1, 10, "the retained state")
        assert json.loads(sub.messages[0].payload)["id"] == "mqtt-f-stack-warning-0000"
        sub.close()

        # Another CA: the broker's certificate is not trusted, a retryable ChannelError.
        other = tmp_path / "other-ca"
        make_certificates(other)
        cfg = plant_cfg(
            tmp_path,
            "mqtt-f",
            port=info.mqtt_tls_port,
            tls={**tls, "ca_file": str(other / "ca.crt")},
            client_id="gf-ingest-mqtt-f",
        )
        untrusted = mqtt_channel.parse(node(spec), cfg, {"PW": account.password}, "broker")
        with pytest.raises(ChannelError, match=r"TLS with 127\.0\.0\.1:\d+ failed: .*certificate"):
            untrusted.send(notification(1, "mqtt-f"))
        untrusted.close()
    finally:
        own.down()

"""paho-mqtt 2.x clients for greenfoundry: MQTT v5, credentials, and a readiness check."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def make_client(
    client_id: str, username: str | None, password: str | None, *, manual_ack: bool = False
) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if username is not None:
        client.username_pw_set(username, password)
    return client


def connect_properties(
    *, session_expiry_s: int = 0, receive_maximum: int | None = None
) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return props


def can_connect(
    host: str, port: int, username: str | None, password: str | None, timeout_s: float = 2.0
) -> bool:
    """True when the broker accepts a CONNECT with these credentials (reason code 0)."""
    done = threading.Event()
    result = {"ok": False}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["ok"] = not reason_code.is_failure
        done.set()

    client = make_client("", username, password)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10, clean_start=True)
    except OSError:
        return False
    client.loop_start()
    try:
        done.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return result["ok"]

"""The `mqtt` channel: each alert's current state, retained on the plant's broker
(alerts/channels/mqtt/README.md).

A notification is published, QoS 1 and retained, to
`<topic_root>/<plant>/_alerts/<rule>/<target>`: one topic per alert target, whose retained
message is its latest notification (firing, repeat, acknowledged, stale, resolved), so a
dashboard that subscribes later gets every target's current state at once. `send` returns once
the broker's PUBACK says it has the message; a PUBACK with a failure reason (the account may not
publish there) is a `PermanentChannelError`, no PUBACK within `timeout_s` a `ChannelError`.

paho-mqtt 2.x, MQTT v5, through `greenfoundry.mqtt.make_client`. One connection per channel,
client id `<mqtt.client_id>-alerts`, opened at the first send and kept; after any failure it is
closed and the next send opens a new one (so that a broker that now refuses says why).
"""

from __future__ import annotations

import ssl
import threading
import time

import paho.mqtt.client as paho

from greenfoundry import mqtt
from greenfoundry.alerts.channels.base import ChannelError, PermanentChannelError
from greenfoundry.alerts.dispatch import DEFAULT_RETRY, RetryPolicy, json_text, parse_retry
from greenfoundry.alerts.notification import Notification
from greenfoundry.plant import MqttTls, _mqtt_tls, _secret

TYPE = "mqtt"
VERSION = 1  # of the payload's layout
CLIENT_SUFFIX = "-alerts"
# The alert's state after each event, for a dashboard that shows the current state.
STATE_AFTER = {
    "firing": "FIRING",
    "repeat": "FIRING",
    "acknowledged": "FIRING",
    "stale": "STALE",
    "resolved": "OK",
    "snapshot": None,
}
_BAD_LEVEL_CHARS = str.maketrans({"+": "_", "#": "_", "\0": "_"})


def target(notification: Notification) -> str:
    """The alert target's key (`S1/so2`, `IF1`, a deadman's signal key): `details["target"]`
    as the alerts engine sets it, else made from the details' items, else the notification id."""
    d = notification.details
    if d.get("target"):
        return str(d["target"])
    if d.get("stack") and d.get("pollutant"):
        return f"{d['stack']}/{d['pollutant']}"
    for key in ("furnace", "signal"):
        if d.get(key):
            return str(d[key])
    return notification.id


def topic(topic_root: str, notification: Notification) -> str:
    """`<topic_root>/<plant>/_alerts/<rule>/<target>`; a `+`, `#` or NUL in a level (not
    allowed in a topic name, MQTT v5 4.7.1) becomes `_`, and empty levels go."""
    levels = [
        notification.plant,
        mqtt.ALERTS_LEVEL,
        notification.rule,
        *target(notification).split("/"),
    ]
    clean = [level.translate(_BAD_LEVEL_CHARS) for level in levels if level]
    return "/".join([topic_root, *clean])


def payload(notification: Notification) -> bytes:
    """The notification's fields, the layout's version and the alert's state after it."""
    state = STATE_AFTER.get(notification.event)
    if notification.event == "acknowledged":
        # An acknowledgement keeps the state it finds: FIRING, or STALE over a firing alert
        # whose data has stopped, which a dashboard must still show as no data.
        state = notification.details.get("to_state") or state
    data = {
        "version": VERSION,
        "state": state,
        **notification.to_dict(),
    }
    return json_text(data).encode("utf-8")


class MqttChannel:
    """Publishes notifications retained on `host:port`. Safe to call from several threads (one
    publish at a time)."""

    type = TYPE

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        topic_root: str,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        tls: MqttTls | None = None,
        timeout_s: float = 10.0,
        keepalive_s: int = 30,
        retry: RetryPolicy = DEFAULT_RETRY,
        unresolved: bool = False,
    ):
        self.name = name
        self.host, self.port, self.tls = host, port, tls
        self.topic_root = topic_root
        self.client_id = client_id
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.retry = retry
        self._unresolved = unresolved  # its password was not resolved (config read without env)
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._cond = threading.Condition()
        self._connack = None  # the CONNACK's reason code of the current connection
        self._pubacks: dict[int, object] = {}  # mid → PUBACK reason code

    def __repr__(self) -> str:  # never the password
        return f"MqttChannel({self.name!r}, {self.host}:{self.port}, client_id={self.client_id!r})"

    # -- paho's callbacks (its network thread) ------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        with self._cond:
            self._connack = reason_code
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._cond:
            self._pubacks[mid] = reason_code
            self._cond.notify_all()

    # -- sending ------------------------------------------------------------------------------

    def send(self, notification: Notification) -> None:
        if self._unresolved:
            raise PermanentChannelError(
                f"channel {self.name}: its password was not resolved (the config was read "
                "without secrets)"
            )
        with self._lock:
            try:
                self._publish(topic(self.topic_root, notification), payload(notification))
            except ChannelError:
                self._disconnect()
                raise

    def _publish(self, name: str, data: bytes) -> None:
        client = self._connected()
        deadline = time.monotonic() + self.timeout_s
        # Not under self._cond: paho calls on_publish holding its own message lock, which
        # publish() takes too. The PUBACK may come before the wait starts; it is kept by mid.
        info = client.publish(name, data, qos=1, retain=True)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise ChannelError(
                f"channel {self.name}: the publish was not queued: {paho.error_string(info.rc)}"
            )
        with self._cond:
            while info.mid not in self._pubacks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelError(
                        f"channel {self.name}: no PUBACK from {self.host}:{self.port} within "
                        f"{self.timeout_s:g} s"
                    )
                self._cond.wait(remaining)
            reason = self._pubacks.pop(info.mid)
        if reason.is_failure:
            # "not authorized" and the like: the account's rights, not the moment, decide.
            raise PermanentChannelError(
                f"channel {self.name}: the broker refused the publish to {name}: {reason}"
            )

    def _connected(self) -> paho.Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        self._disconnect()
        client = mqtt.make_client(self.client_id, self.username, self._password, tls=self.tls)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.connect_timeout = self.timeout_s
        with self._cond:
            self._connack = None
            self._pubacks.clear()
        where = f"{self.host}:{self.port}"
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive_s, clean_start=True)
        except ssl.SSLError as exc:
            raise ChannelError(f"channel {self.name}: TLS with {where} failed: {exc}") from None
        except OSError as exc:
            raise ChannelError(
                f"channel {self.name}: cannot connect to {where}: {exc.strerror or exc}"
            ) from None
        client.loop_start()
        self._client = client
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while self._connack is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelError(
                        f"channel {self.name}: no CONNACK from {where} within {self.timeout_s:g} s"
                    )
                self._cond.wait(remaining)
            connack = self._connack
        if connack.is_failure:
            why = mqtt.refusal(connack)
            if why is not None:
                self._disconnect()
                raise PermanentChannelError(f"channel {self.name}: {where} refused: {why}")
            raise ChannelError(f"channel {self.name}: {where} refused for now: {connack}")
        return client

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()

    def close(self) -> None:
        with self._lock:
            self._disconnect()


# --------------------------------------------------------------------------- config


def parse(node, cfg, env: dict[str, str] | None, name: str) -> MqttChannel:
    """`alerts.channels.<name>` of type mqtt: `username`, `password_env` / `password_file`,
    `host`, `port`, `tls` (default: the plant's `mqtt:` section), `timeout_s`, `retries`,
    `retry_for` (README.md)."""
    node.choice("type", (TYPE,), TYPE)
    plant_mqtt = cfg.mqtt
    has_password = node.has("password_env") or node.has("password_file")
    password = _secret(node, "password", env)
    username = node.text("username", None)
    if has_password and username is None:
        node.fail("missing; a password needs its username", "username")
    if node.data.get("tls") is False:  # a plain connection, where the plant's uses TLS
        node.seen.add("tls")
        tls = None
    elif node.has("tls"):
        tls = _mqtt_tls(node)
    else:
        node.get("tls", None)
        tls = plant_mqtt.tls
    channel = MqttChannel(
        name,
        host=node.text("host", plant_mqtt.host),
        port=node.number("port", plant_mqtt.port, low=1, high=65535, integer=True),
        topic_root=plant_mqtt.topic_root,
        client_id=plant_mqtt.client_id + CLIENT_SUFFIX,
        username=username,
        password=None if password is None else password.value,
        tls=tls,
        timeout_s=node.number("timeout_s", 10.0, low=0.1, high=120, unit="s"),
        keepalive_s=plant_mqtt.keepalive_s,
        retry=parse_retry(node),
        # Not resolved: read without secrets, or by a command that does not send here.
        unresolved=has_password and password is None,
    )
    node.done()
    return channel

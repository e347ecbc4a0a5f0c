"""The ingest on gmqtt (`mqtt.client: gmqtt`, greenfoundry/mqtt_gmqtt.py) keeps every promise of
the paho path, against the real servers: exact delivery with acknowledgement only after the
durable write, InfluxDB down (spool, then replay), the ingest killed, the broker restarted, a
session that is gone after a reconnect (nothing acknowledged across connections), a wrong
password, the announced Maximum Packet Size, TLS.

Every stream has distinct timestamps and values (tests.plant.energy_stream); the expected list
is the published one, so equality is exact, value for value and nanosecond for nanosecond.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys

import pytest
import yaml

from greenfoundry.errors import ConfigError
from greenfoundry.ingest.service import Ingest, forget_session
from greenfoundry.plant import PlantConfig
from greenfoundry.plant import load as load_plant
from greenfoundry.stack import LocalStack, find_binary, make_certificates
from greenfoundry.store import where
from tests.ingest.helpers import OwnBroker, ingest_process
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

T0_MS = 1_795_600_000_000  # 2026-11-26T06:13:20Z, within the example's max_past_days


def _gmqtt(cfg: PlantConfig) -> PlantConfig:
    """`cfg` with `mqtt.client: gmqtt`, in the object and in its file (for a subprocess)."""
    raw = yaml.safe_load(cfg.path.read_text())
    raw["mqtt"]["client"] = "gmqtt"
    cfg.path.write_text(yaml.safe_dump(raw))
    return dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, client="gmqtt"))


def _expected(stream):
    return [(ms * 1_000_000, v) for ms, v, _ in stream]


def test_the_config_key_chooses_the_client_and_refuses_another(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "gm-key")
    assert cfg.mqtt.client == "paho"  # the default: the user chose paho
    raw = yaml.safe_load(cfg.path.read_text())
    raw["mqtt"]["client"] = "hbmqtt"
    cfg.path.write_text(yaml.safe_dump(raw))
    env = {"GF_MQTT_PASSWORD": "x", "GF_INFLUX_PASSWORD": "x"}
    with pytest.raises(ConfigError) as err:
        load_plant(cfg.path, env=env)
    assert str(err.value).endswith(
        "mqtt.client: 'hbmqtt' is not allowed; expected one of paho, gmqtt"
    ), err.value
    assert _gmqtt(cfg).mqtt.client == "gmqtt"
    assert load_plant(cfg.path, env=env).mqtt.client == "gmqtt"


def test_readings_arrive_exactly_and_every_message_is_acknowledged(tmp_path, stack):
    cfg = _gmqtt(plant_config(tmp_path, stack, "gm-exact", batch_max_readings=500))
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    st = store(stack)
    stream = energy_stream(T0_MS, 3000)
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(stack, "gm-exact-pub")
    try:
        assert svc.wait_connected(10)
        assert type(svc.net).__name__ == "GmqttNetwork"
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-exact") == 3000, 60, "3000 readings")
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "gm-exact") == _expected(stream)
    assert svc.counters.written == 3000 and svc.counters.acks_withheld == 0
    # Every message was acknowledged: a new connection of the same session gets nothing again.
    again = Ingest(cfg)
    again.start()
    try:
        assert again.wait_connected(10)
        pub = Publisher(stack, "gm-exact-pub")
        marker = energy_stream(T0_MS + 3000 * 1000, 1)
        pub.publish(topic, marker[0][2])
        pub.wait_all()
        pub.close()
        wait_for(lambda: again.counters.received >= 1, 30, "the marker")
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-exact") == 3001, 30, "the marker")
    finally:
        again.stop()
    assert again.counters.received == 1  # the marker only: none of the 3000 came again


def _last(st, plant_id: str, field: str) -> int | None:
    """The latest value of one of the ingest's self-metrics (gf_ingest), or None."""
    df = st.query(f"SELECT LAST({field}) FROM gf_ingest {where({'plant': plant_id}, last_s=3600)}")
    return None if df.empty else int(df.iloc[0]["last"])


def _set_batch_age(cfg: PlantConfig, age_ms: int) -> None:
    raw = yaml.safe_load(cfg.path.read_text())
    raw["ingest"]["batch_max_age_ms"] = age_ms
    cfg.path.write_text(yaml.safe_dump(raw))


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def test_sigkill_with_a_batch_not_yet_durable_then_restart_loses_nothing(tmp_path, stack):
    """The first process receives 200 messages and holds them in a batch that is not old enough
    to write (60 s), nor big enough (a batch by count starts at half the broker's window: the
    receive maximum 512 from the 256 MiB queue budget over 4 × 128 KiB payloads, so 256).
    Had gmqtt acknowledged any of them on receipt, the SIGKILL would lose it. The restarted
    process must receive all 200 again (its own `received` counter) with the 2800 published
    while it was away."""
    cfg = _gmqtt(
        plant_config(
            tmp_path, stack, "gm-kill", batch_max_readings=100_000, batch_max_age_ms=60_000
        )
    )
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    st = store(stack)
    log = tmp_path / "ingest.log"
    stream = energy_stream(T0_MS, 3000)
    first = stream[:200]
    proc = ingest_process(cfg.path, stack.dir, log)
    pub = Publisher(stack, "gm-kill-pub")
    try:
        wait_for(lambda: _last(st, "gm-kill", "received") == 0, 30, "the ingest to start")
        for _, _, payload in first:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: _last(st, "gm-kill", "received") == 200, 30, "200 received")
        assert count(st, "furnace_energy_kwh", "gm-kill") == 0  # received, none durable
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for _, _, payload in stream[200:]:
            pub.publish(topic, payload)  # queued by the broker for the ingest's session
        pub.wait_all()
        _set_batch_age(cfg, 100)
        proc = ingest_process(cfg.path, stack.dir, log)
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "gm-kill") == 3000, 60, "all 3000 readings"
        )
        # Every one of the first 200 came again: none had been acknowledged before it was durable.
        wait_for(lambda: _last(st, "gm-kill", "received") == 3000, 30, "3000 received again")
    finally:
        pub.close()
        status = _stop(proc)
    assert status == 0, log.read_text()[-2000:]
    assert energy_values(st, "gm-kill") == _expected(stream)


def test_influxdb_outage_then_a_broker_restart_lose_nothing(tmp_path, own_stack):
    """One stack of its own for both: InfluxDB stopped (the readings go to the spool, are
    acknowledged, and replay in order when it is back), then Mosquitto restarted (with its
    persistence) while a batch is received but not yet written: those messages must not be
    acknowledged on the next connection, and the broker delivers them again."""
    info = own_stack.info
    cfg = _gmqtt(
        plant_config(tmp_path, info, "gm-fail", batch_max_readings=100_000, batch_max_age_ms=1500)
    )
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(info, "gm-fail-pub")
    st = store(info)
    stream = energy_stream(T0_MS, 5000)
    try:
        assert svc.wait_connected(10)
        for _, _, payload in stream[:500]:
            pub.publish(topic, payload)
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-fail") == 500, 60, "the first 500")
        own_stack.stop_influxdb()
        for _, _, payload in stream[500:2000]:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: svc.counters.spooled >= 1500, 60, "1500 readings in the spool")
        own_stack.start_influxdb()
        wait_for(lambda: len(svc.spool) == 0, 60, "the spool to drain")
        assert svc.counters.replayed >= 1500
        # Received, not yet written (the batch age is 1.5 s, the count far from a batch).
        for _, _, payload in stream[2000:2200]:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: svc.counters.received >= 2200, 30, "2200 received")
        assert count(st, "furnace_energy_kwh", "gm-fail") < 2200  # some not yet acknowledged
        own_stack.stop_mosquitto()
        for _, _, payload in stream[2200:3000]:
            pub.publish(topic, payload)  # paho queues these until the broker is back
        own_stack.start_mosquitto()
        for _, _, payload in stream[3000:]:
            pub.publish(topic, payload)
        pub.wait_all(120)
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "gm-fail") == 5000, 120, "all 5000 readings"
        )
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "gm-fail") == _expected(stream)
    assert svc.counters.acks_withheld > 0  # the old connection's messages were not acknowledged


class _RestartableBroker(OwnBroker):
    """An anonymous Mosquitto of the test's own, without persistence: a restart forgets every
    session, so the ingest's next connection has no session present."""

    def restart(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.proc = subprocess.Popen(
            [find_binary("mosquitto"), "-c", str(self.dir / "mosquitto.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _own_broker_yaml(tmp_path, stack, broker, plant_id: str, **ingest) -> PlantConfig:
    """A gmqtt plant config file for `broker` (anonymous) and the stack's InfluxDB, run
    without --stack."""
    cfg = plant_config(tmp_path, stack, plant_id, **ingest)
    raw = yaml.safe_load(cfg.path.read_text())
    raw["mqtt"] = {
        "host": "127.0.0.1",
        "port": broker.port,
        "client_id": f"gf-ingest-{plant_id}",
        "topic_root": "gf/v1",
        "keepalive_s": 5,
        "client": "gmqtt",
    }
    raw["influxdb"] = {
        "url": cfg.influxdb.url,
        "database": cfg.influxdb.database,
        "username": cfg.influxdb.username,
        "password_env": "GF_INFLUX_PASSWORD",
    }
    cfg.path.write_text(yaml.safe_dump(raw))
    return cfg


def test_no_message_is_acknowledged_on_a_connection_whose_session_is_new(tmp_path, stack):
    """The generation guard. 200 messages are received on one connection and held (a 60 s
    batch age); the broker restarts without persistence, so the ingest's next connection has
    a new session, whose messages get the packet identifiers from 1 again. 100 new messages
    follow: the queue reaches half the window (256 of 512) and a batch of 256 is written, the
    200 old and 56 new; the 44 others wait. Were the old messages' PUBACKs sent on the new
    connection, they would acknowledge new messages 1..100 — the 44 among them not yet
    durable. The ingest is then killed: the 44 must come again to the restarted ingest."""
    broker = _RestartableBroker(tmp_path)
    cfg = _own_broker_yaml(
        tmp_path, stack, broker, "gm-gen", batch_max_readings=100_000, batch_max_age_ms=60_000
    )
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    st = store(stack)
    log = tmp_path / "ingest.log"
    env = {"GF_INFLUX_PASSWORD": cfg.influxdb.password.value}
    stream = energy_stream(T0_MS, 300)
    connected = lambda: log.read_text().count("connected to mqtt://")  # noqa: E731
    proc = ingest_process(cfg.path, None, log, env=env)
    try:
        wait_for(lambda: connected() == 1, 30, "the first connection")
        pub = _AnonymousPublisher(broker.port, "gm-gen-pub")
        for _, _, payload in stream[:200]:
            pub.publish(topic, payload)
        pub.wait_all()
        pub.close()
        wait_for(lambda: _last(st, "gm-gen", "received") == 200, 30, "200 received")
        assert count(st, "furnace_energy_kwh", "gm-gen") == 0
        broker.restart()
        wait_for(lambda: connected() == 2, 60, "the second connection")
        # The broker kept no session: the second connection's CONNACK says so.
        lines = [x for x in log.read_text().splitlines() if "connected to mqtt://" in x]
        assert lines[1].endswith("(session present: False)"), lines
        pub = _AnonymousPublisher(broker.port, "gm-gen-pub")
        for _, _, payload in stream[200:]:
            pub.publish(topic, payload)
        pub.wait_all()
        pub.close()
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-gen") == 256, 30, "a batch of 256")
        wait_for(lambda: _last(st, "gm-gen", "acks_withheld") == 200, 30, "200 withheld")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _set_batch_age(cfg, 100)
        proc = ingest_process(cfg.path, None, log, env=env)
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-gen") == 300, 30, "all 300 readings")
        wait_for(lambda: _last(st, "gm-gen", "received") == 44, 30, "the 44 again")
    finally:
        status = _stop(proc)
        broker.close()
    assert status == 0, log.read_text()[-2000:]
    assert energy_values(st, "gm-gen") == _expected(stream)


class _AnonymousPublisher(Publisher):
    """tests.plant.Publisher against an anonymous broker of the test's own."""

    def __init__(self, port: int, client_id: str):
        super().__init__(_Anon("127.0.0.1", port), client_id)


@dataclasses.dataclass
class _Anon:
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str | None = None
    mqtt_password: str | None = None


def test_a_wrong_mqtt_password_at_the_first_connect_stops_with_one_line(tmp_path, stack):
    cfg = _gmqtt(plant_config(tmp_path, stack, "gm-pw"))
    raw = yaml.safe_load(cfg.path.read_text())
    raw["mqtt"].update(host=cfg.mqtt.host, port=cfg.mqtt.port, username=cfg.mqtt.username)
    raw["influxdb"] = {
        "url": cfg.influxdb.url,
        "database": cfg.influxdb.database,
        "username": cfg.influxdb.username,
        "password_env": "GF_INFLUX_PASSWORD",
    }
    cfg.path.write_text(yaml.safe_dump(raw))
    env = {"GF_MQTT_PASSWORD": "not-the-password", "GF_INFLUX_PASSWORD": "x"}
    log = tmp_path / "ingest.log"
    proc = ingest_process(cfg.path, None, log, env=env)
    try:
        status = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert status == 1, err
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, err
    # Mosquitto 2.0.11 answers a wrong password with reason code 0x87 (not authorised) in v5.
    assert "refused the connection" in errors[0] and "not authorised" in errors[0], errors
    assert err.strip().splitlines()[-1] == errors[0]


def test_the_announced_packet_size_keeps_a_larger_message_at_the_broker(tmp_path, stack):
    """max_payload_bytes 4096 announces a Maximum Packet Size of 4096 + 16384 = 20480 bytes. A
    30,000-byte message is dropped by the broker for this client (never received, so never
    dead-lettered); a 10,000-byte one is received and dead-lettered as oversized; the reading
    after both is written. Order is kept, so once it is written the others came or never will."""
    cfg = _gmqtt(plant_config(tmp_path, stack, "gm-pkt", max_payload_bytes=4096))
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    st = store(stack)
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(stack, "gm-pkt-pub")
    try:
        assert svc.wait_connected(10)
        pub.publish(topic, b"x" * 30_000)
        pub.publish(topic, b"y" * 10_000)
        ((_, _, reading),) = energy_stream(T0_MS, 1)
        pub.publish(topic, reading)
        pub.wait_all()
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-pkt") == 1, 30, "the reading")
    finally:
        pub.close()
        svc.stop()
    assert svc.counters.messages == 2
    assert svc.counters.rejected_by_reason["oversized"] == 1
    records = [json.loads(x) for x in cfg.ingest.deadletter_file.read_text().splitlines()]
    assert [r["reason"] for r in records] == ["oversized"]


def test_a_retained_bad_message_is_dead_lettered_once_across_a_forgotten_session(tmp_path, stack):
    cfg = _gmqtt(plant_config(tmp_path, stack, "gm-retain"))
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    pub = Publisher(stack, "gm-retain-pub")
    pub.client.publish(topic, b"not json", qos=1, retain=True)
    pub.published += 1
    pub.wait_all()
    records = lambda: cfg.ingest.deadletter_file.read_text().splitlines()  # noqa: E731
    try:
        first = Ingest(cfg)
        first.start()
        assert first.wait_connected(10)
        wait_for(lambda: first.counters.rejected == 1, 30, "the retained message rejected")
        first.stop()
        forget_session(cfg, cfg.mqtt.client_id)  # the broker sends it again to a new session
        second = Ingest(cfg)
        second.start()
        assert second.wait_connected(10)
        wait_for(lambda: second.counters.retained_repeats == 1, 30, "the retained message again")
        second.stop()
    finally:
        pub.client.publish(topic, b"", qos=1, retain=True)
        pub.published += 1
        pub.wait_all()
        pub.close()
    assert second.counters.rejected == 0
    assert len(records()) == 1, records()
    assert json.loads(records()[0])["reason"] == "malformed_json"


@pytest.fixture
def tls_stack(tmp_path):
    stack = LocalStack(tmp_path / "stack", tls=True)
    stack.up()
    yield stack
    stack.down()


def _tls_config(tmp_path, info, plant_id: str, ca_file) -> tuple:
    """As tests/security/test_mqtt_tls.py: the TLS listener with the ingest's account and a
    client certificate, the name checked against "localhost" (not the IP connected to)."""
    from tests.security.test_mqtt_tls import _config

    path, _ = _config(tmp_path, info, plant_id, ca_file)
    raw = yaml.safe_load(path.read_text())
    raw["mqtt"]["client"] = "gmqtt"
    path.write_text(yaml.safe_dump(raw))
    return path, load_plant(path, env={})


def test_tls_with_a_client_certificate_and_a_foreign_ca(tmp_path, tls_stack):
    info = tls_stack.info
    _, cfg = _tls_config(tmp_path, info, "gm-tls", info.tls_dir / "ca.crt")
    assert cfg.mqtt.client == "gmqtt" and cfg.mqtt.tls.server_name == "localhost"
    svc = Ingest(cfg)
    svc.start()
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    pub = Publisher(info, "gm-tls-dev", plant="gm-tls")  # the device, on the plain listener
    stream = energy_stream(T0_MS, 300)
    st = store(info)
    try:
        assert svc.wait_connected(10)
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: count(st, "furnace_energy_kwh", "gm-tls") == 300, 30, "300 readings")
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "gm-tls") == _expected(stream)
    # Another CA: one line, a non-zero exit, no retry loop.
    other = tmp_path / "other-ca"
    make_certificates(other)
    (tmp_path / "bad").mkdir()
    path, _ = _tls_config(tmp_path / "bad", info, "gm-tls-bad", other / "ca.crt")
    proc = subprocess.run(
        [sys.executable, "-m", "greenfoundry", "ingest", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert "certificate verify failed" in errors[0]

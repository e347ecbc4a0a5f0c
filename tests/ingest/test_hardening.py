"""Issue 8, the ingest's side: a refused first connect, unwritable paths, `status` without the
MQTT password and with stale instances, a full spool disk, retained bad messages, declared
instances and forgotten sessions, the announced packet size and the broker's drop count. Each
against the real servers."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import threading
import time

import pytest
import yaml

from greenfoundry import mqtt
from greenfoundry.cli import main
from greenfoundry.ingest import deadletter
from greenfoundry.ingest.service import (
    BROKER_DROPPED_TOPIC,
    Ingest,
    for_instance,
    forget_session,
)
from tests.ingest.helpers import (
    OwnBroker,
    ingest_process,
    peak_rss_mb,
    with_instances,
)
from tests.plant import (
    EXAMPLE,
    Publisher,
    count,
    energy_stream,
    energy_values,
    plant_config,
    store,
    wait_for,
)

pytestmark = pytest.mark.servers

T0_MS = 1_795_500_000_000


def _expected(stream):
    return [(ms * 1_000_000, v) for ms, v, _ in stream]


def _own_yaml(tmp_path, stack, plant_id, **mqtt_keys):
    """A plant config file that names the stack's endpoints itself (no --stack), its secrets
    from GF_MQTT_PASSWORD and GF_INFLUX_PASSWORD."""
    cfg = plant_config(tmp_path, stack, plant_id)
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = plant_id
    raw["mqtt"].update(
        host=cfg.mqtt.host,
        port=cfg.mqtt.port,
        username=cfg.mqtt.username,
        client_id=f"gf-ingest-{plant_id}",
        **mqtt_keys,
    )
    raw["influxdb"] = {
        "url": cfg.influxdb.url,
        "database": cfg.influxdb.database,
        "username": cfg.influxdb.username,
        "password_env": "GF_INFLUX_PASSWORD",
    }
    raw["ingest"].update(spool_dir="spool", deadletter_file="dead.jsonl")
    path = tmp_path / f"{plant_id}-own.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, cfg


# ---- 7: a wrong password ---------------------------------------------------------------------


def test_a_wrong_mqtt_password_at_the_first_connect_stops_with_one_line(tmp_path, stack):
    path, cfg = _own_yaml(tmp_path, stack, "hard-pw")
    env = {
        "GF_MQTT_PASSWORD": "not-the-password",
        "GF_INFLUX_PASSWORD": cfg.influxdb.password.value,
    }
    log = tmp_path / "ingest.log"
    proc = ingest_process(path, None, log, env=env)
    try:
        status = proc.wait(30)  # before the fix it looped for ever ("Protocol error")
    finally:
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert status == 1, err
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, err
    # Mosquitto 2.0.11 answers a wrong password with reason code 0x87 (not authorised) in v5.
    assert "refused the connection" in errors[0] and "not authorised" in errors[0], errors
    assert "not-the-password" not in err and "Traceback" not in err


def test_status_resolves_only_the_readers_influxdb_secret(tmp_path, stack, capsys, monkeypatch):
    path, cfg = _own_yaml(tmp_path, stack, "hard-reader")
    raw = yaml.safe_load(path.read_text())
    reader = stack.influx_account("reader")
    raw["influxdb"] = {
        "url": cfg.influxdb.url,
        "database": cfg.influxdb.database,
        "users": {
            "ingest": {"username": "gf-ingest", "password_env": "GF_TEST_UNSET_INGEST"},
            "metrics": {"username": "gf-metrics", "password_file": str(tmp_path / "absent")},
            "reader": {"username": reader.username, "password_env": "GF_TEST_READER"},
        },
    }
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.delenv("GF_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("GF_TEST_UNSET_INGEST", raising=False)
    monkeypatch.setenv("GF_TEST_READER", reader.password)
    # Before the fix: "influxdb.users.ingest.password_env: environment variable
    # GF_TEST_UNSET_INGEST is not set", exit 1, though status never writes.
    assert main(["status", "--config", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert re.search(r"influxdb   \S+  version ", out), out
    assert "no self-metrics for plant hard-reader" in out
    # The reader's own secret is still required, and named.
    monkeypatch.delenv("GF_TEST_READER")
    assert main(["status", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "influxdb.users.reader.password_env" in err, err


# ---- 9: a path the ingest cannot write -----------------------------------------------------


@pytest.mark.parametrize("key", ["spool_dir", "deadletter_file"])
def test_a_path_the_ingest_cannot_write_is_one_error_line(tmp_path, stack, capsys, key):
    # A regular file where a directory must be: refused whoever runs the test (root too).
    (tmp_path / "plain-file").write_text("")
    cfg = plant_config(tmp_path, stack, f"hard-path-{key[:5]}", **{key: "plain-file/sub/x"})
    assert main(["ingest", "--config", str(cfg.path), "--stack", str(stack.dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and f"ingest.{key}: cannot write" in err[0], err
    assert "Not a directory" in err[0]


# ---- 8: status reads only InfluxDB, and says what is stale -----------------------------------


def test_status_needs_no_mqtt_password_and_flags_stale_and_missing_instances(
    tmp_path, stack, capsys, monkeypatch
):
    path, cfg = _own_yaml(
        tmp_path, stack, "hard-status", instances={"a": ["gf/v1/hard-status/melt/#"], "b": ["x/#"]}
    )
    monkeypatch.delenv("GF_MQTT_PASSWORD", raising=False)
    monkeypatch.setenv("GF_INFLUX_PASSWORD", cfg.influxdb.password.value)
    # Instance a stopped five hours ago: its last point, written as the ingest writes it.
    five_h_ago_ns = time.time_ns() - 5 * 3600 * 10**9
    store(stack).write_lines(
        [f"gf_ingest,instance=a,plant=hard-status received=7i,broker_dropped=0i {five_h_ago_ns}"]
    )
    assert main(["status", "--config", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    # 5 h by construction; a slow run may have passed the next minute.
    assert re.search(r"ingest     a  as of .*Z  STALE: nothing since 5 h [01] min ago", out), out
    assert "ingest     b  NOT SEEN: declared in mqtt.instances" in out, out
    assert "broker dropped 0 messages since it started" in out
    assert "spool-a" not in out and re.search(r"spool      \S+/spool/a: 0 readings", out), out


# ---- 2: the spool on a full disk -------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, for a spool that runs out of room."""
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_spool_disk_recovers_when_influxdb_is_back(tmp_path, own_stack, small_disk):
    info = own_stack.info
    cfg = plant_config(
        tmp_path, info, "hard-full", batch_max_readings=200, spool_dir=str(small_disk / "spool")
    )
    # Leave about 60 KiB: room for a few batches of ~100-byte lines, not for 3000 readings.
    st = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 60 * 1024))
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(info, "hard-full-pub")
    stream = energy_stream(T0_MS, 3000)
    try:
        assert svc.wait_connected(10)
        own_stack.stop_influxdb()
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        # The spool fills up and the writer keeps its batch (nothing behind it acknowledged).
        wait_for(lambda: svc.counters.spooled > 0, 30, "the spool to take some readings")
        wait_for(lambda: svc._pending is not None, 30, "a batch the full spool refused")
        assert svc.counters.spooled < 3000
        own_stack.start_influxdb()
        # Before the fix: 0 of them landed (the failed batch went to the full spool first).
        wait_for(
            lambda: count(store(info), "furnace_energy_kwh", "hard-full") == 3000,
            90,
            "all 3000 readings",
        )
        wait_for(lambda: len(svc.spool) == 0, 30, "the spool to drain")
    finally:
        pub.close()
        svc.stop()
    assert energy_values(store(info), "hard-full") == _expected(stream)
    assert not list((small_disk / "spool").glob("*.tmp")), "a partial batch file was left"


def test_a_retained_reject_is_marked_only_once_its_dead_letter_point_is_durable(
    tmp_path, own_stack, small_disk
):
    # InfluxDB down and the spool's disk full: the gf_deadletter point of a retained bad message
    # can be made durable nowhere. Its key must not be marked meanwhile: a marked retained
    # message is never recorded again, so a crash now would lose the point for good. Before the
    # fix the key was fsync'd together with the file record, before the point was written.
    info = own_stack.info
    cfg = plant_config(tmp_path, info, "hard-mark", spool_dir=str(small_disk / "spool"))
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc = Ingest(cfg)
    retained_path = svc.dead.retained_path
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize))
    pub = Publisher(info, "hard-mark-pub")
    try:
        # Retained before the ingest subscribes, so it arrives flagged retained.
        pub.client.publish(topic, b"not json", qos=1, retain=True)
        pub.published += 1
        pub.wait_all()
        own_stack.stop_influxdb()
        svc.start()
        assert svc.wait_connected(10)
        wait_for(
            lambda: svc._pending is not None, 30, "a batch neither InfluxDB nor the spool took"
        )
        assert len(cfg.ingest.deadletter_file.read_text().splitlines()) == 1  # the file: durable
        assert retained_path.read_text() == ""  # the key: not yet
        own_stack.start_influxdb()
        wait_for(
            lambda: count(store(info), "gf_deadletter", "hard-mark", "payload_bytes") == 1,
            60,
            "the dead-letter point in InfluxDB",
        )
        wait_for(lambda: retained_path.read_text().strip(), 10, "the retained key marked")
    finally:
        pub.client.publish(topic, b"", qos=1, retain=True)  # clears the retained message
        pub.published += 1
        pub.wait_all()
        pub.close()
        svc.stop()
    assert retained_path.read_text().split() == [deadletter.retained_key(topic, b"not json")]


# ---- 6: a retained bad message ---------------------------------------------------------------


def test_a_retained_bad_message_is_dead_lettered_once_across_restarts(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "hard-retain")
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    pub = Publisher(stack, "hard-retain-pub")
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
        assert len(records()) == 1
        # A new session (an expired one, a restart after --forget-session): the broker sends
        # the retained message again to the new subscription.
        forget_session(cfg, cfg.mqtt.client_id)
        second = Ingest(cfg)
        second.start()
        assert second.wait_connected(10)
        wait_for(lambda: second.counters.retained_repeats == 1, 30, "the retained message again")
        second.stop()
    finally:
        pub.client.publish(topic, b"", qos=1, retain=True)  # clears the retained message
        pub.published += 1
        pub.wait_all()
        pub.close()
    assert second.counters.rejected == 0
    assert len(records()) == 1, records()  # before the fix: once per new subscription
    assert json.loads(records()[0])["reason"] == "malformed_json"


# ---- 1: declared instances, forgotten sessions ------------------------------------------------


def test_declared_instances_each_take_their_own_part_of_the_tree(tmp_path, stack):
    base = plant_config(tmp_path, stack, "hard-inst", batch_max_readings=100)
    base = with_instances(
        base, {"melt": ["gf/v1/hard-inst/melt/#"], "env": ["gf/v1/hard-inst/env/#"]}
    )
    services = {n: Ingest(for_instance(base, n), instance=n) for n in ("melt", "env")}
    melt = base.topic_for(base.routes[("melt", "if1", "energy")])
    dust = base.topic_for(base.routes[("env", "melt-stack", "dust")])
    stream = energy_stream(T0_MS, 500)
    pub = Publisher(stack, "hard-inst-pub")
    try:
        for svc in services.values():
            svc.start()
            assert svc.wait_connected(10)
        for i, (ms, _, payload) in enumerate(stream):
            pub.publish(melt, payload)
            pub.publish(dust, json.dumps({"ts_ms": ms, "value": 5.0 + i / 1000}))
        pub.wait_all()
        wait_for(
            lambda: [s.counters.written for s in services.values()] == [500, 500],
            30,
            "500 readings written by each instance",
        )
    finally:
        pub.close()
        for svc in services.values():
            svc.stop()
    # Each instance got its own area only: nothing of the other's, nothing twice.
    assert [s.counters.received for s in services.values()] == [500, 500]
    assert energy_values(store(stack), "hard-inst") == _expected(stream)
    assert services["melt"].cfg.mqtt.client_id == "gf-ingest-hard-inst-melt"


def _session_present(cfg, client_id) -> bool:
    """Connect as `client_id` without a clean start: does the broker still hold its session?"""
    done, result = threading.Event(), {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["present"] = flags.session_present
        done.set()

    m = cfg.mqtt
    client = mqtt.make_client(client_id, m.username, m.password.value)
    client.on_connect = on_connect
    client.connect(
        m.host, m.port, clean_start=False, properties=mqtt.connect_properties(session_expiry_s=60)
    )
    client.loop_start()
    try:
        assert done.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return result["present"]


def test_forget_session_removes_an_old_session_and_refuses_a_foreign_id(tmp_path, stack, capsys):
    cfg = plant_config(tmp_path, stack, "hard-forget")
    old = cfg.mqtt.client_id
    svc = Ingest(cfg)
    svc.start()
    assert svc.wait_connected(10)
    svc.stop()
    assert _session_present(cfg, old)  # a persistent session, queueing while the ingest is away
    argv = ["ingest", "--config", str(cfg.path), "--stack", str(stack.dir)]
    assert main([*argv, "--forget-session", old]) == 0
    assert f"forgot the session of {old!r}" in capsys.readouterr().out
    assert not _session_present(cfg, old)
    # Another program's session is not the ingest's to remove, unless forced.
    assert main([*argv, "--forget-session", "someone-else"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a client id of this plant's ingest" in err[0], err
    assert "--force" in err[0]
    assert main([*argv, "--forget-session", "someone-else", "--force"]) == 0


# ---- 5: the announced Maximum Packet Size ----------------------------------------------------


def _publish_once(stack, topic, payload) -> None:
    """One QoS 1 publish, waiting for its PUBACK or for the broker to drop the connection (a
    broker with message_size_limit refuses a large one)."""
    done = threading.Event()
    client = mqtt.make_client("hard-big-pub", stack.mqtt_username, stack.mqtt_password)
    client.on_publish = lambda *a: done.set()
    client.on_disconnect = lambda *a: done.set()
    client.connect(stack.mqtt_host, stack.mqtt_port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert done.wait(60), "no PUBACK and no disconnect for the large message"
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_64_mib_message_never_reaches_the_ingest(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "hard-big", self_metrics_interval_s=0.2)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    st = store(stack)
    proc = ingest_process(cfg.path, stack.dir, tmp_path / "ingest.log")
    try:
        wait_for(lambda: count(st, "gf_ingest", "hard-big", "received") > 0, 30, "the ingest")
        idle_mb = peak_rss_mb(proc.pid)
        _publish_once(stack, topic, b"x" * 64 * 2**20)
        # A reading padded with spaces to exactly max_payload_bytes: the largest it accepts.
        reading = json.dumps({"ts_ms": T0_MS, "value": 1.5})
        limit = cfg.ingest.max_payload_bytes
        pub = Publisher(stack, "hard-big-pub2")
        pub.publish(topic, reading + " " * (limit - len(reading)))
        pub.wait_all()
        pub.close()
        wait_for(lambda: count(st, "furnace_energy_kwh", "hard-big") == 1, 30, "the reading")
        peak_mb = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    dead = cfg.ingest.deadletter_file
    assert not dead.exists() or dead.read_text() == "", "the large message reached the ingest"
    # Receiving it would take at least its 64 MiB; 32 MiB is room for the normal churn.
    assert peak_mb - idle_mb < 32, (idle_mb, peak_mb)


# ---- 4: the broker's dropped-message count ---------------------------------------------------


def test_the_broker_dropped_count_is_in_the_self_metrics_and_status(tmp_path, stack, capsys):
    broker = OwnBroker(tmp_path, "max_queued_messages 10", "sys_interval 1")
    try:
        cfg = broker.config(plant_config(tmp_path, stack, "hard-drop", self_metrics_interval_s=0.2))
        # An offline persistent session with a queue of 10: 30 messages for it, 20 dropped.
        victim = mqtt.make_client("hard-drop-victim", None, None)
        props = mqtt.connect_properties(session_expiry_s=600)
        victim.connect("127.0.0.1", broker.port, clean_start=True, properties=props)
        victim.loop_start()
        sub = threading.Event()
        victim.on_subscribe = lambda *a: sub.set()
        victim.subscribe("victim/#", qos=1)
        assert sub.wait(10)
        victim.disconnect()
        victim.loop_stop()
        sender = mqtt.make_client("hard-drop-pub", None, None)
        acked = []
        sender.on_publish = lambda *a: acked.append(1)
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        for i in range(30):
            sender.publish("victim/x", str(i), qos=1)
        wait_for(lambda: len(acked) == 30, 30, "30 PUBACKs")
        sender.disconnect()
        sender.loop_stop()
        svc = Ingest(cfg, instance="hard-drop-1")
        svc.start()
        try:
            assert svc.wait_connected(10)
            wait_for(lambda: svc.broker_dropped == 20, 30, f"{BROKER_DROPPED_TOPIC} = 20")
        finally:
            svc.stop()  # its last self-metrics point carries the count
    finally:
        broker.close()
    assert main(["status", "--config", str(cfg.path), "--stack", str(stack.dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"hard-drop-1 .*\n.*\n  broker dropped 20 messages since it started", out), out
    assert "MESSAGES LOST" in out

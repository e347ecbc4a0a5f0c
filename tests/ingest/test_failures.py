"""What fails in between must lose nothing: the ingest killed, InfluxDB gone, the broker
restarted. Each test streams readings with distinct timestamps and values and then asserts
that InfluxDB holds exactly the published list, value for value and timestamp for timestamp."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from greenfoundry.ingest.service import Ingest
from greenfoundry.store import where
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

T0_MS = 1_795_400_000_000


def _ingest_process(cfg_path, stack_dir, log_path):
    env = dict(os.environ, GF_MQTT_PASSWORD="unused", GF_INFLUX_PASSWORD="unused")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfoundry",
            "ingest",
            "--config",
            str(cfg_path),
            "--stack",
            str(stack_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "ab"),
    )


def _expected(stream):
    return [(ms * 1_000_000, v) for ms, v, _ in stream]


def test_sigkill_mid_stream_then_restart_loses_nothing(tmp_path, stack):
    cfg = plant_config(tmp_path, stack, "fail-kill", batch_max_readings=200)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    st = store(stack)
    proc = _ingest_process(cfg.path, stack.dir, tmp_path / "ingest.log")
    stream = energy_stream(T0_MS, 6000)
    pub = Publisher(stack, "fail-kill-pub")
    try:
        wait_for(
            lambda: count(st, "gf_ingest", "fail-kill", "received") > 0, 30, "the ingest to start"
        )
        for _, _, payload in stream[:3000]:
            pub.publish(topic, payload)
        # Kill it while it is writing: some readings are in InfluxDB, others in flight.
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "fail-kill") >= 500, 60, "the first readings"
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for _, _, payload in stream[3000:]:
            pub.publish(topic, payload)  # the broker queues these for the ingest's session
        pub.wait_all()
        proc = _ingest_process(cfg.path, stack.dir, tmp_path / "ingest.log")
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "fail-kill") == 6000, 120, "all 6000 readings"
        )
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(30)
    assert status == 0, (tmp_path / "ingest.log").read_text()[-2000:]
    assert energy_values(st, "fail-kill") == _expected(stream)


def test_influxdb_outage_spools_then_replays_everything_in_order(tmp_path, own_stack):
    info = own_stack.info
    cfg = plant_config(tmp_path, info, "fail-influx", batch_max_readings=500)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(info, "fail-influx-pub")
    st = store(info)
    # 1000 s before, 3000 s during and 1000 s after the outage, at one reading a second.
    stream = energy_stream(T0_MS, 5000)
    try:
        assert svc.wait_connected(10)
        for _, _, payload in stream[:1000]:
            pub.publish(topic, payload)
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "fail-influx") == 1000,
            60,
            "the readings before the outage",
        )
        own_stack.stop_influxdb()
        for _, _, payload in stream[1000:4000]:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: svc.counters.spooled >= 3000, 60, "3000 readings in the spool")
        assert svc.spool.pending_lines >= 3000
        own_stack.start_influxdb()
        for _, _, payload in stream[4000:]:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "fail-influx") == 5000, 120, "all 5000 readings"
        )
        wait_for(lambda: len(svc.spool) == 0, 30, "the spool to drain")
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "fail-influx") == _expected(stream)
    assert svc.counters.replayed >= 3000
    assert svc.counters.written + svc.counters.replayed == 5000


def test_mosquitto_restart_loses_nothing_at_qos1(tmp_path, own_stack):
    info = own_stack.info
    # A long batch age, so that messages sit received but unacknowledged when the broker goes
    # away: they must not be acknowledged on the next connection (their packet identifiers
    # belonged to the old one), and the broker must deliver them again.
    cfg = plant_config(
        tmp_path, info, "fail-broker", batch_max_readings=100_000, batch_max_age_ms=1500
    )
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc = Ingest(cfg)
    svc.start()
    st = store(info)
    stream = energy_stream(T0_MS, 4000)
    pub = Publisher(info, "fail-broker-pub")
    try:
        assert svc.wait_connected(10)
        for _, _, payload in stream[:2000]:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: svc.counters.received >= 2000, 30, "2000 readings received")
        assert count(st, "furnace_energy_kwh", "fail-broker") < 2000  # some are not yet acked
        own_stack.stop_mosquitto()
        for _, _, payload in stream[2000:3000]:
            pub.publish(topic, payload)  # paho queues these until the broker is back
        own_stack.start_mosquitto()
        for _, _, payload in stream[3000:]:
            pub.publish(topic, payload)
        pub.wait_all(120)
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "fail-broker") == 4000, 120, "all 4000 readings"
        )
    finally:
        pub.close()
        svc.stop()
    assert energy_values(st, "fail-broker") == _expected(stream)
    assert svc.counters.acks_withheld > 0  # the old connection's messages were not acked


def test_sigterm_drains_flushes_and_exits_zero(tmp_path, stack):
    # A long batch age, a large batch and a window (receive maximum 512 MiB / (4 × 128 KiB) =
    # 1024, a batch at half of it) above the 300 messages: only the drain on SIGTERM can have
    # written these readings.
    cfg = plant_config(
        tmp_path,
        stack,
        "fail-term",
        batch_max_readings=100_000,
        batch_max_age_ms=60_000,
        queue_budget_mb=512,
    )
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    proc = _ingest_process(cfg.path, stack.dir, tmp_path / "ingest.log")
    st = store(stack)
    stream = energy_stream(T0_MS, 300)
    pub = Publisher(stack, "fail-term-pub")
    try:
        wait_for(
            lambda: count(st, "gf_ingest", "fail-term", "received") > 0, 30, "the ingest to start"
        )
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: _received(st, "fail-term") == 300, 30, "300 readings received")
        assert count(st, "furnace_energy_kwh", "fail-term") == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
    assert energy_values(st, "fail-term") == _expected(stream)


def _received(st, plant_id: str) -> int:
    df = st.query(f"SELECT LAST(received) FROM gf_ingest {where({'plant': plant_id}, last_s=3600)}")
    return 0 if df.empty else int(df.iloc[0]["last"])


def test_replay_dead_letters_points_beyond_retention_and_lands_the_rest(tmp_path, own_stack):
    """InfluxDB 1.x answers 400 'partial write: points beyond retention policy dropped' for
    points older than a database's retention. Such a chunk met during replay is halved until the
    refused points are found: they are dead-lettered, every other reading lands."""
    import dataclasses
    import time as _time

    from greenfoundry.stack import store_for

    info = own_stack.info
    store_for(info).query_raw("CREATE DATABASE gf_rp WITH DURATION 1h", database="")
    cfg = plant_config(tmp_path, info, "fail-rp", batch_max_readings=100)
    # The ingest's InfluxDB user may write only where it is granted: this database too.
    writer = cfg.influxdb.user("ingest").username
    store_for(info).query_raw(f'GRANT WRITE ON "gf_rp" TO "{writer}"', database="")
    cfg = dataclasses.replace(cfg, influxdb=dataclasses.replace(cfg.influxdb, database="gf_rp"))
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    now_ms = _time.time_ns() // 1_000_000
    # 30 readings two hours old (beyond the 1 h retention) between 60 recent ones.
    old = energy_stream(now_ms - 7_200_000, 30, seq0=100)
    recent = energy_stream(now_ms - 600_000, 60, seq0=200)
    stream = recent[:30] + old + recent[30:]
    svc = Ingest(cfg)
    svc.start()
    pub = Publisher(info, "fail-rp-pub")
    st = store_for(info, "gf_rp")
    try:
        assert svc.wait_connected(10)
        own_stack.stop_influxdb()  # everything goes to the spool, so the replay meets the 400
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: svc.spool.pending_readings == 90, 30, "90 readings in the spool")
        own_stack.start_influxdb()
        wait_for(lambda: len(svc.spool) == 0, 60, "the spool to drain")
    finally:
        pub.close()
        svc.stop()
    assert svc.counters.rejected_by_reason["store_rejected"] == 30
    assert energy_values(st, "fail-rp") == _expected(recent)
    records = [json.loads(x) for x in cfg.ingest.deadletter_file.read_text().splitlines()]
    assert len(records) == 30
    assert all("beyond retention policy" in r["detail"] for r in records)
    assert {json.loads(r["payload"].split(" value=")[1].split(" ")[0]) for r in records} == {
        v for _, v, _ in old
    }


def test_the_writer_survives_a_local_disk_error_and_acks_in_order(tmp_path, own_stack):
    """The spool's disk fails once while InfluxDB is down: the batch stays with the writer, is
    tried again, nothing behind it is acknowledged first, and every reading lands later."""
    info = own_stack.info
    cfg = plant_config(tmp_path, info, "fail-disk", batch_max_readings=50)
    topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
    svc = Ingest(cfg)
    real_append = svc.spool.append
    failures = []

    def failing_once(lines, readings):
        if not failures:
            failures.append(len(lines))
            raise OSError(28, "No space left on device")
        real_append(lines, readings)

    svc.spool.append = failing_once
    svc.start()
    pub = Publisher(info, "fail-disk-pub")
    st = store(info)
    stream = energy_stream(T0_MS, 400)
    try:
        assert svc.wait_connected(10)
        own_stack.stop_influxdb()
        for _, _, payload in stream:
            pub.publish(topic, payload)
        pub.wait_all()
        wait_for(lambda: svc.counters.spooled == 400, 30, "400 readings spooled")
        own_stack.start_influxdb()
        wait_for(
            lambda: count(st, "furnace_energy_kwh", "fail-disk") == 400, 60, "all 400 readings"
        )
    finally:
        pub.close()
        svc.stop()
    assert failures, "the disk error was never hit"
    assert energy_values(st, "fail-disk") == _expected(stream)

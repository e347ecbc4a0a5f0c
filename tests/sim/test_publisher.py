"""The publisher: how a run maps plant time to the wall clock, and one run across a real
Mosquitto (the `stack` fixture of tests/conftest.py) whose messages must equal the model's."""

from __future__ import annotations

import json
import math
import secrets
import threading
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest

from greenfoundry import cli
from greenfoundry import mqtt as gf_mqtt
from greenfoundry.errors import UsageError
from greenfoundry.sim.faults import Faults
from greenfoundry.sim.plant import PlantModel, iter_batches
from greenfoundry.sim.publisher import Publisher, PublishError, plan_run, run
from tests.plant import plant_config, wait_for

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
NOW_S = NOW.timestamp()


# ------------------------------------------------------------------------ plans (no network)


def test_real_time_runs_from_now():
    plan = plan_run(NOW_S, duration_s=600)
    assert plan.live == (NOW, NOW + timedelta(seconds=600)) and plan.backfill is None
    assert plan.wall_time_of(int((NOW_S + 30) * 1000)) == NOW_S + 30
    assert plan_run(NOW_S, duration_s=None).live == (NOW, None)


def test_faster_runs_replay_plant_time_that_ends_when_the_run_ends():
    """One day at 1440×: one minute of wall time, ending with the plant clock on the wall clock,
    so no timestamp is ever in the future."""
    plan = plan_run(NOW_S, duration_s=86400, speed=1440)
    end = NOW + timedelta(seconds=60)
    assert plan.live == (end - timedelta(days=1), end)
    assert plan.wall_time_of(int(plan.live[0].timestamp() * 1000)) == pytest.approx(NOW_S)
    assert plan.wall_time_of(int(end.timestamp() * 1000)) == pytest.approx(end.timestamp())
    for h in range(0, 25):
        ts = plan.live[0] + timedelta(hours=h)
        assert ts.timestamp() <= plan.wall_time_of(int(ts.timestamp() * 1000)) + 1e-6


def test_as_fast_as_possible_and_backfill_end_now():
    plan = plan_run(NOW_S, duration_s=3600, as_fast_as_possible=True)
    assert plan.live == (NOW - timedelta(hours=1), NOW) and plan.speed == math.inf
    plan = plan_run(NOW_S, duration_s=None, backfill_days=90)
    assert plan.backfill == (NOW - timedelta(days=90), NOW) and plan.live is None
    plan = plan_run(NOW_S, duration_s=3600, backfill_days=7)
    assert plan.backfill == (NOW - timedelta(days=7), NOW) and plan.live[0] == NOW


def test_plans_that_make_no_sense_are_refused():
    with pytest.raises(UsageError, match="needs a duration"):
        plan_run(NOW_S, duration_s=None, speed=10)
    with pytest.raises(UsageError, match="needs a duration"):
        plan_run(NOW_S, duration_s=None, as_fast_as_possible=True)
    with pytest.raises(UsageError, match="speed"):
        plan_run(NOW_S, duration_s=60, speed=0.5)


def test_cli_documents_simulate_and_refuses_bad_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    out = capsys.readouterr().out
    for option in ("--config", "--stack", "--seed", "--duration", "--speed", "--as-fast-as-possible",
                   "--backfill", "--faults", "--fault-rate", "--interval", "--max-inflight"):  # fmt: skip
        assert option in out
    assert cli.main(["simulate", "--config", "x.yaml", "--faults", "noise"]) == 2
    assert "unknown fault mode 'noise'" in capsys.readouterr().err


# ------------------------------------------------------------------------ across a real broker


class Recorder:
    """A paho subscriber that keeps every (topic, payload) it receives, in order."""

    def __init__(self, stack, topic_filter: str):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client_id = f"gf-sim-test-sub-{secrets.token_hex(3)}"
        self.client = gf_mqtt.make_client(client_id, stack.mqtt_username, stack.mqtt_password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(stack.mqtt_host, stack.mqtt_port, 30, clean_start=True)
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.servers
def test_what_arrives_is_what_the_model_emitted(stack, tmp_path):
    """A backfill of one day (batches) then an hour of live plant time (single messages) with
    every fault mode on, through Mosquitto with authentication: the subscriber receives exactly
    the model's messages, and the run returns only once every PUBACK is in."""
    cfg = plant_config(tmp_path, stack, "simtest")
    root = f"{cfg.mqtt.topic_root}/{cfg.plant.id}"
    faults = Faults.parse("all", rate=3.0)
    recorder = Recorder(stack, f"{root}/#")
    try:
        stats = run(
            cfg,
            seed=11,
            faults=faults,
            backfill_days=1,
            duration_s=3600,
            as_fast_as_possible=True,
            max_inflight=20,
            clock=lambda: NOW_S,
        )
        plan = plan_run(NOW_S, duration_s=3600, as_fast_as_possible=True, backfill_days=1)
        model = PlantModel(cfg, 11, faults=faults)
        expected = [(t, p) for t, p, _ in iter_batches(cfg, model.events(*plan.backfill))]
        expected += [(e.topic, e.encode()) for e in model.events(*plan.live)]
        assert stats.messages == len(expected) == stats.acked and stats.refused == 0
        assert 1 <= stats.peak_inflight <= 20  # the window held
        assert stats.bad_payloads > 0 and stats.faults["gap_dropped"] > 0
        wait_for(lambda: recorder.count() >= len(expected), 30, "every message at the subscriber")
        assert recorder.messages == expected
    finally:
        recorder.close()
    batch = json.loads(next(p for t, p in expected if t.endswith("/_batch")))
    assert {"signal", "ts_ms", "value", "unit", "seq"} == set(batch["readings"][0])


@pytest.mark.servers
def test_simulate_command_through_the_stack_directory(stack, tmp_path, monkeypatch, capsys):
    """--stack takes the broker and credentials from stack.json: the config's secrets
    (GF_MQTT_PASSWORD …) need not be set."""
    cfg = plant_config(tmp_path, stack, "simcli")
    monkeypatch.delenv("GF_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("GF_INFLUX_PASSWORD", raising=False)
    recorder = Recorder(stack, f"{cfg.mqtt.topic_root}/{cfg.plant.id}/#")
    try:
        argv = ["simulate", "--config", str(cfg.path), "--stack", str(stack.dir),
                "--duration", "10m", "--as-fast-as-possible", "--seed", "3"]  # fmt: skip
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        sent = int(out.split("published ")[1].split(" ")[0])
        assert f"{sent} acknowledged, 0 refused" in out
        # 25 sampled topics × 10 minutes (the two boundary noise points among them), plus any
        # taps (a few), and where the 10 minutes cross an hour the hour's production events (9
        # topics × 2 furnaces + 4 line topics) and the outfall's hourly samples (4 topics:
        # tests/sim/test_plant.py counts the same).
        assert 250 <= sent <= 250 + 4 + 22 + 4
        wait_for(lambda: recorder.count() >= sent, 30, "the command's messages")
        assert recorder.count() == sent
    finally:
        recorder.close()


def test_an_unreachable_broker_is_one_clear_error(tmp_path):
    import dataclasses
    import socket

    from tests.sim.conftest import make_config

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = make_config(tmp_path)
    cfg = dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, port=port))
    with pytest.raises(PublishError, match=f"cannot reach the MQTT broker at 127.0.0.1:{port}"):
        run(cfg, duration_s=60, as_fast_as_possible=True)


@pytest.mark.servers
def test_wrong_password_is_one_clear_error(stack, tmp_path):
    import dataclasses

    from greenfoundry.plant import Secret

    cfg = plant_config(tmp_path, stack, "simauth")
    bad = dataclasses.replace(
        cfg, mqtt=dataclasses.replace(cfg.mqtt, password=Secret("test", "nope"))
    )
    with pytest.raises(PublishError, match="refused"):
        Publisher(bad, connect_timeout_s=5).connect()


@pytest.mark.servers
def test_a_background_run_stops_on_request_with_everything_acknowledged(stack, tmp_path):
    """The demo's use: a day at 1440× in a thread, stopped early once messages flow."""
    from greenfoundry.sim.publisher import SimulatorThread

    cfg = plant_config(tmp_path, stack, "simthread")
    recorder = Recorder(stack, f"{cfg.mqtt.topic_root}/{cfg.plant.id}/#")
    try:
        sim = SimulatorThread(cfg, seed=2, duration_s=86400, speed=1440)
        sim.start()
        wait_for(lambda: recorder.count() >= 50, 30, "the first messages")
        stats = sim.stop(timeout_s=30)
        assert not sim.is_alive() and sim.error is None
        assert 50 <= stats.messages == stats.acked
        assert stats.messages < 15 * 1440  # it did stop before the day was over
        wait_for(lambda: recorder.count() >= stats.messages, 30, "the last messages")
        assert recorder.count() == stats.messages
    finally:
        recorder.close()


def test_every_simulate_option_is_documented_in_the_readme():
    from pathlib import Path

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["simulate"]
    readme = (Path(__file__).resolve().parents[2] / "sim" / "README.md").read_text()
    options = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
    assert len(options) >= 11
    for option in options:
        if option != "--help":
            assert f"`{option}" in readme, option

"""The command line over the real servers: `stack`, `status` and `demo`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from greenfoundry.cli import main
from greenfoundry.ingest.service import Ingest
from tests.plant import Publisher, energy_stream, plant_config, wait_for

pytestmark = pytest.mark.servers


def test_stack_up_status_down(tmp_path, capsys):
    d = str(tmp_path / "st")
    assert main(["stack", "up", "--dir", d]) == 0
    try:
        out = capsys.readouterr().out
        assert "credentials in" in out
        state = json.loads((tmp_path / "st" / "stack.json").read_text())
        assert oct((tmp_path / "st" / "stack.json").stat().st_mode & 0o777) == "0o600"
        assert state["mqtt"]["password"] not in out  # printed output never shows secrets
        assert main(["stack", "status", "--dir", d]) == 0
        status = capsys.readouterr().out
        assert re.search(r"mosquitto\s+running\s+answering", status)
        assert re.search(r"influxd\s+running\s+answering", status)
    finally:
        assert main(["stack", "down", "--dir", d]) == 0
    assert main(["stack", "status", "--dir", d]) == 1
    assert "stopped" in capsys.readouterr().out


def test_stack_commands_need_an_existing_stack(tmp_path, capsys):
    assert main(["stack", "down", "--dir", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.startswith("error: no stack in")


@pytest.mark.parametrize("hours", ["0", "-1", "nan"])
def test_status_refuses_a_look_back_that_is_not_above_zero(hours, capsys):
    assert main(["status", "--config", "unused.yaml", "--hours", hours]) == 2
    assert capsys.readouterr().err.startswith(f"error: --hours {hours} is not allowed")


def test_status_shows_the_latest_self_metrics(tmp_path, stack, capsys):
    cfg = plant_config(tmp_path, stack, "cli-status", self_metrics_interval_s=0.2)
    svc = Ingest(cfg, instance="cli-status-1")
    started = datetime.now(UTC).replace(microsecond=0)
    svc.start()
    pub = Publisher(stack, "cli-status-pub")
    try:
        assert svc.wait_connected(10)
        topic = cfg.topic_for(cfg.routes[("melt", "if1", "energy")])
        for _, _, payload in energy_stream(1_795_390_000_000, 25):
            pub.publish(topic, payload)
        pub.publish(topic, b"[]")  # one reject: bad_shape
        pub.wait_all()
        wait_for(
            lambda: svc.counters.written == 25 and svc.counters.rejected == 1,
            30,
            "25 written and 1 rejected",
        )
    finally:
        pub.close()
        svc.stop()  # emits a last self-metrics point with the final counts
    assert main(["status", "--config", str(cfg.path), "--stack", str(stack.dir)]) == 0
    out = capsys.readouterr().out
    line = re.search(r"cli-status-1\s+as of (\S+ \S+)Z", out)
    assert line, out
    as_of = datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert as_of >= started, f"as of {as_of}, the ingest started at {started}"
    assert re.search(r"received 26\s+written 25\s+spooled 0\s+replayed 0\s+rejected 1", out), out
    assert "rejected by reason: bad_shape 1" in out
    assert "deadletter" in out and ": 1 records" in out

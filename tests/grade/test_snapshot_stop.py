"""The snapshot catch-up stops with the service: a set stop event makes no month, and the next
call makes the month that was due (a plant without readings: its rows say no data)."""

from __future__ import annotations

import datetime as dt
import threading

import yaml

from greenfoundry.config import plant_file
from greenfoundry.grade import snapshot
from tests.metrics.engine_helpers import metrics_config


def test_a_stopped_service_makes_no_snapshot_and_the_next_run_makes_the_due_month(tmp_path, stack):
    pid = "snap-stop"
    cfg = metrics_config(tmp_path, stack, pid)
    raw = yaml.safe_load(plant_file().with_name("evidence.yaml").read_text(encoding="utf-8"))
    raw["plant"] = pid
    cfg.path.with_name("evidence.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    # 2026-11-02 12:00 UTC: October's snapshot is due (the 1st at 06:00 local has passed).
    now = dt.datetime(2026, 11, 2, 12, tzinfo=dt.timezone.utc)
    stopped = threading.Event()
    stopped.set()
    assert snapshot.run_due(cfg, now, stop=stopped) == []
    made = snapshot.run_due(cfg, now)
    assert [p.name for p in made] == [f"{pid}-2026-10.json"]
    assert snapshot.run_due(cfg, now) == []  # made once

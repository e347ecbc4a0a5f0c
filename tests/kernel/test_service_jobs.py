"""`metrics run` also runs the alerts, the rolling grade and the monthly snapshot, each as its own
job of the one scheduler: shown end to end on the real InfluxDB, from hand-written readings to
a FIRING transition, its notification in the journal, and today's grade stored."""

from __future__ import annotations

import json
import time

import pandas as pd
import yaml

from greenfoundry.config import plant_file
from greenfoundry.grade import rolling
from greenfoundry.metrics.service import MetricsService
from greenfoundry.store import where
from tests.metrics.engine_helpers import metrics_config, store, write
from tests.plant import wait_for


def _evidence_beside(cfg, plant_id: str) -> None:
    """The demo plant's declared evidence, for this test's plant id, beside its config."""
    raw = yaml.safe_load(plant_file().with_name("evidence.yaml").read_text(encoding="utf-8"))
    raw["plant"] = plant_id
    cfg.path.with_name("evidence.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")


def test_the_service_fires_an_alert_and_stores_todays_grade(tmp_path, stack):
    pid = "svc-jobs"
    st = store(stack)
    cfg = metrics_config(tmp_path, stack, pid, history_days=2)
    _evidence_beside(cfg, pid)
    # 80 minutes of the melting stack's dust at 24 mg/m³ ending a minute ago, one reading a
    # minute: its limit C is 30 mg/m³ (the demo plant), so the rolling hourly mean is
    # 24 / 30 = 0.8 C once 45 valid minutes are in: above the 0.7 C warning line.
    now = pd.Timestamp.now(tz="UTC").floor("min")
    t0 = now - pd.Timedelta(minutes=81)
    dust = {"device": "melt-stack", "pollutant": "particulate"}
    write(
        st,
        pid,
        "stack_conc_mg_m3",
        dust,
        [(int((t0 + pd.Timedelta(minutes=i, seconds=30)).value), 24.0) for i in range(80)],
    )
    service = MetricsService(cfg, store=st).start()
    try:
        journal = cfg.alerts.state_dir / "notifications.jsonl"

        def fired():
            df = st.query(
                "SELECT * FROM gf_alert "
                + where({"plant": pid, "rule": "stack-warning"}, start_ns=0, end_ns=now.value + 1)
            )
            return not df.empty and "FIRING" in set(df["state"])

        wait_for(fired, timeout_s=60, what="the stack warning FIRING in gf_alert")
        wait_for(
            lambda: journal.exists() and '"stack-warning"' in journal.read_text(encoding="utf-8"),
            timeout_s=30,
            what="the warning's notification in the journal",
        )
        lines = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
        warning = [x for x in lines if x["rule"] == "stack-warning" and x["event"] == "firing"]
        assert len(warning) == 1  # one notification, not one per tick
        assert warning[0]["details"]["target"] == "melt-stack/particulate"
        today = now.tz_convert(cfg.plant.timezone).date()
        wait_for(
            lambda: rolling.read_grade(st, cfg, today) is not None,
            timeout_s=60,
            what="today's rolling grade",
        )
    finally:
        started = time.monotonic()
        service.stop()
        assert time.monotonic() - started < 30  # stop waits for the jobs in progress, not for ever
    assert service.errors["alerts"] == 0 and service.errors["grade"] == 0


def test_a_failed_start_up_reconcile_is_held_and_raised_and_the_alerts_stop_with_it(
    tmp_path, stack
):
    import dataclasses
    import socket

    import pytest

    from greenfoundry.errors import StoreError
    from greenfoundry.store import InfluxStore

    cfg = metrics_config(tmp_path, stack, "svc-reconcile-fails")
    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dataclasses.replace(
        cfg, influxdb=dataclasses.replace(cfg.influxdb, url=f"http://127.0.0.1:{port}")
    )
    service = MetricsService(cfg, store=InfluxStore.from_config(cfg.influxdb, role="metrics"))
    with pytest.raises(StoreError):
        service.start()
    try:
        assert isinstance(service.error, StoreError) and not service.ready.is_set()
    finally:
        service.stop()  # the caller stops it: the alerts' job ends with the scheduler
    assert service._scheduler.state == 0  # apscheduler's STATE_STOPPED
